//! A real Garage (an S3-compatible object store) for tests: started on free loopback ports in a
//! temporary directory with a single-node layout, an access key and a bucket, and stopped when
//! dropped, whatever the test did. If it cannot start, the caller gets the reason (and a test
//! fails with it: nothing here skips).
//!
//! The binary is `$MSHUB_GARAGE` if set, else `bin/garage` under `$GARAGE_ROOT` (default
//! `/var/tmp/garage-bin`, where `scripts/install-deps --tests` installs it), else `garage` on
//! the `PATH`.
//!
//! ```ignore
//! let garage = Garage::start().unwrap_or_else(|e| panic!("{e}"));
//! // An mshub configuration that keeps its blobs in the bucket, under its own prefix:
//! let toml = garage.blobs_config("node-a");
//! // …and the credentials, which mshub reads from the environment only:
//! command.envs(garage.credentials_env());
//! ```
//!
//! Only std and `tempfile`: the file is shared by the store's tests and the end-to-end tests.

#![allow(dead_code)]

use std::io::Read as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The version `scripts/install-deps` installs and these tests were written against.
pub const GARAGE_VERSION: &str = "2.5.0";
/// The region Garage signs for (its `s3_region`).
pub const REGION: &str = "garage";
/// How long Garage may take to come up before the test fails.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// A running single-node Garage with one bucket, writable with one key.
pub struct Garage {
    child: Child,
    /// Stops Garage and removes its files if this process dies without running `Drop`
    /// (a panic that aborts, a kill, a `static` never dropped): its stdin closes then.
    watchdog: Option<(Child, ChildStdin)>,
    config: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`, the S3 API.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The Garage binary to run, or why there is none.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("MSHUB_GARAGE") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("MSHUB_GARAGE={} is not a file", path.display()))
        };
    }
    let root = std::env::var_os("GARAGE_ROOT").unwrap_or_else(|| "/var/tmp/garage-bin".into());
    let installed = Path::new(&root).join("bin/garage");
    if installed.is_file() {
        return Ok(installed);
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("garage"))
            .find(|p| p.is_file())
    }) {
        return Ok(found);
    }
    Err(format!(
        "no Garage binary: neither $MSHUB_GARAGE, {} nor `garage` on the PATH \
         (`scripts/install-deps --tests` installs Garage {GARAGE_VERSION})",
        installed.display()
    ))
}

/// One Garage for a whole test binary, started on first use. Tests share its bucket and keep
/// apart by using a prefix each. It stops when the test process exits.
pub fn shared() -> &'static Garage {
    static SHARED: OnceLock<Result<Garage, String>> = OnceLock::new();
    match SHARED.get_or_init(Garage::start) {
        Ok(garage) => garage,
        Err(reason) => panic!("Garage (S3) could not start: {reason}"),
    }
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Ports the system hands out now; all listeners are held until every port is chosen so the
/// same one is not given twice.
fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot find a free loopback port: {e}"))?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(|e| format!("cannot read a bound port: {e}"))?
            .port();
    }
    Ok(ports)
}

impl Garage {
    /// Starts Garage and prepares a bucket `mshub` with a key that may read and write it.
    pub fn start() -> Result<Garage, String> {
        let garage = binary()?;
        check_version(&garage)?;
        let dir = tempfile::Builder::new()
            .prefix("mshub-garage-")
            .tempdir()
            .map_err(|e| format!("cannot create Garage's directory: {e}"))?;
        let [rpc, s3, admin] = free_ports::<3>()?;
        let config = dir.path().join("garage.toml");
        // `*_fsync`: a PUT is answered only once the data and metadata are on disk, which is
        // what the blob store promises its callers.
        let text = format!(
            r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
metadata_fsync = true
data_fsync = true
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "{admin_token}"
"#,
            root = dir.path().display(),
            rpc_secret = random_hex(32)?,
            admin_token = random_hex(16)?,
        );
        write_private(&config, &text)?;
        let log = dir.path().join("garage.log");
        let child = spawn_server(&garage, &config, &log)?;
        let watchdog = start_watchdog(child.id(), dir.path());
        let mut this = Garage {
            child,
            watchdog,
            config,
            log,
            dir,
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket: "mshub".into(),
            region: REGION.into(),
            access_key_id: format!("GK{}", random_hex(12)?),
            secret_access_key: random_hex(32)?,
        };
        this.set_up(s3).map_err(|e| this.with_log(e))?;
        Ok(this)
    }

    /// Stops Garage as a crash would (SIGKILL), keeping its data: the S3 port refuses
    /// connections until [`Garage::restart`].
    pub fn stop(&mut self) {
        self.stop_watchdog();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts Garage again on the same ports and data after [`Garage::stop`], and waits until
    /// its S3 API serves the bucket again.
    pub fn restart(&mut self) -> Result<(), String> {
        let garage = binary()?;
        self.child = spawn_server(&garage, &self.config, &self.log)?;
        self.watchdog = start_watchdog(self.child.id(), self.dir.path());
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.with_log(format!("Garage exited at restart ({status})")));
            }
            let s3 = self.endpoint.trim_start_matches("http://");
            if self
                .cli_output(&["bucket", "info", &self.bucket])
                .is_ok_and(|o| o.status.success())
                && TcpStream::connect(s3).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.with_log(format!(
                    "Garage did not serve its bucket within {BOOT_TIMEOUT:?} of a restart"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_watchdog(&mut self) {
        // The watchdog first, so that it never signals a pid the system has reused.
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            drop(stdin);
        }
    }

    fn set_up(&mut self, s3_port: u16) -> Result<(), String> {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        // `garage status` answers once the node's RPC is up.
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("Garage exited at start ({status})"));
            }
            if self
                .cli_output(&["status"])
                .is_ok_and(|o| o.status.success())
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Garage did not answer `garage status` within {BOOT_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let node = self.cli(&["node", "id", "-q"])?;
        let node = node
            .trim()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        if node.len() < 16 {
            return Err(format!(
                "unexpected node id from `garage node id`: {node:?}"
            ));
        }
        self.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node])?;
        self.cli(&["layout", "apply", "--version", "1"])?;
        let (key_id, secret) = (self.access_key_id.clone(), self.secret_access_key.clone());
        self.cli(&[
            "key",
            "import",
            "--yes",
            "-n",
            "mshub-tests",
            &key_id,
            &secret,
        ])?;
        let bucket = self.bucket.clone();
        self.create_bucket(&bucket)?;
        // The S3 port is bound with the RPC one; wait until it accepts anyway.
        while TcpStream::connect(("127.0.0.1", s3_port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("Garage's S3 port {s3_port} never accepted"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Another bucket, readable and writable with the same key.
    pub fn create_bucket(&self, name: &str) -> Result<(), String> {
        self.cli(&["bucket", "create", name])?;
        let key = self.access_key_id.clone();
        self.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", name, "--key", &key,
        ])?;
        Ok(())
    }

    fn cli_output(&self, args: &[&str]) -> Result<Output, String> {
        let garage = binary()?;
        Command::new(&garage)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", garage.display()))
    }

    /// Runs `garage -c <config> args…`; its standard output, or why it failed.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = self.cli_output(args)?;
        if !out.status.success() {
            return Err(format!(
                "`garage {}` failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn with_log(&self, reason: String) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("{reason}\n--- end of Garage's log ---\n{}", tail.join("\n"))
    }

    /// The directory holding Garage's configuration, metadata and data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An mshub `[blobs]` section that keeps blobs in this bucket under `prefix`.
    pub fn blobs_config(&self, prefix: &str) -> String {
        format!(
            "[blobs]\nbackend = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\nregion = \"{}\"\n\
             prefix = \"{prefix}\"\n",
            self.endpoint, self.bucket, self.region
        )
    }

    /// The environment that gives mshub this bucket's credentials.
    pub fn credentials_env(&self) -> [(&'static str, String); 2] {
        [
            ("MSHUB_S3_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("MSHUB_S3_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
        ]
    }
}

/// `garage server` with this configuration, its output appended to `log`.
fn spawn_server(garage: &Path, config: &Path, log: &Path) -> Result<Child, String> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open Garage's log: {e}"))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("cannot share Garage's log: {e}"))?;
    Command::new(garage)
        .arg("-c")
        .arg(config)
        .arg("server")
        .env("RUST_LOG", "garage=warn")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", garage.display()))
}

fn check_version(garage: &Path) -> Result<(), String> {
    let out = Command::new(garage)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {} --version: {e}", garage.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "garage cargo:2.5.0 [features: …]" from crates.io, "garage v2.5.0 …" from a release.
    if !text
        .split(|c: char| c.is_whitespace() || c == ':' || c == 'v')
        .any(|word| word == GARAGE_VERSION)
    {
        return Err(format!(
            "{} is not Garage v{GARAGE_VERSION}: {:?} (run `scripts/install-deps --tests`)",
            garage.display(),
            text.trim()
        ));
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A shell that waits for its stdin to close, then stops Garage and removes its directory.
/// Best effort: without it, `Drop` still does the same.
fn start_watchdog(pid: u32, dir: &Path) -> Option<(Child, ChildStdin)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"cat >/dev/null; kill "$0" 2>/dev/null; sleep 1; kill -9 "$0" 2>/dev/null; rm -rf "$1""#)
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take()?;
    Some((child, stdin))
}

impl Drop for Garage {
    fn drop(&mut self) {
        // The watchdog first, then Garage itself; the temporary directory goes with
        // `self.dir`.
        self.stop_watchdog();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
