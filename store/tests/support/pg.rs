//! A throwaway PostgreSQL cluster for tests: Debian's PostgreSQL binaries, `initdb` in a
//! temporary directory, the server on a free loopback port (fsync on, as in production),
//! stopped and removed when the guard drops, a panicking test included.
//!
//! `initdb` refuses to run as root: as root the cluster belongs to the `postgres` user that
//! Debian's package creates (`scripts/install-deps --tests` installs it). A missing binary or a
//! server that does not start fails the test with the reason; nothing is skipped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
}

/// The newest Debian PostgreSQL, else whatever `initdb` the PATH has.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match found {
        Some(p) if !p.is_empty() => Path::new(&p).parent().unwrap().to_path_buf(),
        _ => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): \
             run scripts/install-deps --tests"
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

impl PgCluster {
    /// Creates and starts a cluster; panics with PostgreSQL's own words if it cannot.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("mshub-pg-")
            .tempdir()
            .unwrap();
        let as_root = is_root();
        if as_root {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .output()
                .expect("chown runs");
            assert!(
                out.status.success(),
                "cannot give the test cluster's directory to the postgres user (is Debian's \
                 postgresql package installed? scripts/install-deps --tests): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            as_root,
        };
        let data = cluster.data_dir();
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "mshub",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A free port may be taken between our probe and the server's bind: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port();
            match cluster.pg_ctl_start() {
                Ok(()) => return cluster,
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let data = self.data_dir();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}' \
             -c fsync=on -c synchronous_commit=on -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        ))
    }

    /// Stops the server as a crash would (`-m immediate`: no checkpoint, WAL replayed at the
    /// next start), then starts it again on the same port.
    pub fn crash_and_restart(&self) {
        self.crash();
        self.start_again();
    }

    /// Stops the server as a crash would (`-m immediate`): clients lose their connections at
    /// once, and what was not committed is gone.
    pub fn crash(&self) {
        let data = self.data_dir();
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server again on its port after [`PgCluster::crash`] (WAL replayed).
    pub fn start_again(&self) {
        self.pg_ctl_start()
            .unwrap_or_else(|e| panic!("PostgreSQL did not restart: {e}"));
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of PostgreSQL's programs, as the postgres user when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` (created by [`PgCluster::create_db`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://mshub@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_db(&self, db: &str) -> String {
        let out = self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "mshub",
                db,
            ],
        );
        assert!(
            out.status.success(),
            "createdb {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(db)
    }

    /// Runs SQL with psql in `db` and returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "mshub",
                "-d",
                db,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn postmaster_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let pid = self.postmaster_pid();
        let data = self.data_dir();
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "-t",
                "20",
                "stop",
            ],
        );
        if !out.status.success() {
            if let Some(pid) = pid {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.data_dir().join("postmaster.pid").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
