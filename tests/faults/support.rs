//! The hub as a child process on fixed free ports (so that a restart keeps them), and the
//! Python clients that load it and read it back (`py/load.py`, `py/reader.py`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MARTIN: (&str, &str) = ("dr.martin@hopital.mshub.test", "demo-martin");
pub const LABO: (&str, &str) = ("labo@hopital.mshub.test", "demo-labo");

/// The goal after a fault ends: acknowledged mail again within this long.
pub const RECOVERY_GOAL: Duration = Duration::from_secs(5);

/// The cases that run a hub take turns: each picks its ports in advance (a hub restarted
/// after a crash must come back on the same ones), and two at once could pick the same free
/// port — the second hub then fails to start.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// A tmpfs of `bytes` mounted on a fresh temporary directory, unmounted on drop.
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    pub fn mount(bytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs as root");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// One demo hub in `dir`, its stderr (the log) in `dir/../hub.log`.
pub struct Hub {
    pub dir: PathBuf,
    pub log: PathBuf,
    pub submission: u16,
    pub imap: u16,
    /// The admin listener (`/readyz`).
    pub admin: u16,
    /// More environment for the hub (the object store's credentials).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Hub {
    /// A demo hub in `dir` (created), not started.
    pub fn new(dir: &Path, log: &Path) -> Hub {
        Self::with_config(dir, log, "")
    }

    /// A demo hub in `dir` whose configuration ends with `extra` (`[store]`, `[blobs]`
    /// sections), not started.
    pub fn with_config(dir: &Path, log: &Path, extra: &str) -> Hub {
        std::fs::create_dir_all(dir).unwrap();
        let (submission, imap, admin) = (free_port(), free_port(), free_port());
        std::fs::write(
            dir.join("mshub.toml"),
            format!(
                r#"hub_domain = "mshub.test"
data_dir = "store"
master_key_file = "master.key"
local_domains = ["hopital.mshub.test"]
[listen]
smtp_relay = "127.0.0.1:0"
submission = "127.0.0.1:{submission}"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:{imap}"
imaps = "127.0.0.1:0"
https = "127.0.0.1:0"
admin = "127.0.0.1:{admin}"
{extra}"#
            ),
        )
        .unwrap();
        Hub {
            dir: dir.to_path_buf(),
            log: log.to_path_buf(),
            submission,
            imap,
            admin,
            env: Vec::new(),
            child: None,
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("tls/cert.pem")
    }

    /// Starts the hub and waits for `mshub ready`.
    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mshub"))
            .args(["demo", "--data", self.dir.to_str().unwrap()])
            .env_remove("MSHUB_MASTER_KEY")
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("mshub starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) if line.starts_with("mshub ready") => break,
                Ok(_) => {}
                Err(e) => panic!("the hub did not start ({e}); see {}", self.log.display()),
            }
        }
        self.child = Some(child);
    }

    /// `GET /readyz` on the admin listener: the status code and the body.
    pub fn readyz(&self) -> (u16, String) {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.admin)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let code = answer
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_string());
        (code, body)
    }

    /// Whether the process started last is still running (it never exited nor restarted).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: no shutdown at all.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit; whether it was clean.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        child.wait().unwrap().success()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn py(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/faults/py")
        .join(script)
}

/// A Python client running until its stdin is closed, its lines kept with their arrival.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn spawn(script: &str, args: &[String]) -> Client {
        let mut child = Command::new("python3")
            .arg(py(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                kept.lock().unwrap().push((Instant::now(), line));
            }
        });
        Client {
            stdin: child.stdin.take(),
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// SMTP submission from `from` to `to` on `threads` connections, messages of `sizes`.
    pub fn load(hub: &Hub, prefix: &str, threads: u32, sizes: &str) -> Client {
        Self::load_with(hub, prefix, threads, sizes, &[])
    }

    /// The same with more arguments to `load.py` (`--attachments`).
    pub fn load_with(hub: &Hub, prefix: &str, threads: u32, sizes: &str, more: &[&str]) -> Client {
        let mut args: Vec<String> = vec![
            "--port".into(),
            hub.submission.to_string(),
            "--cafile".into(),
            hub.ca().display().to_string(),
            "--user".into(),
            MARTIN.0.into(),
            "--password".into(),
            MARTIN.1.into(),
            "--to".into(),
            LABO.0.into(),
            "--prefix".into(),
            prefix.into(),
            "--threads".into(),
            threads.to_string(),
            "--sizes".into(),
            sizes.into(),
        ];
        args.extend(more.iter().map(|s| s.to_string()));
        Self::spawn("load.py", &args)
    }

    /// An IMAP client reading the recipient's INBOX again and again.
    pub fn reader(hub: &Hub) -> Client {
        Self::spawn("reader.py", &reader_args(hub))
    }

    /// Lines so far starting with `prefix`, with their arrival.
    pub fn lines(&self, prefix: &str) -> Vec<(Instant, String)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Waits until `count` lines start with `prefix`, at most `limit`.
    pub fn wait_lines(&self, prefix: &str, count: usize, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.lines(prefix).len() >= count {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Closes stdin, waits for the client to finish, and returns all its lines.
    pub fn stop(mut self) -> Vec<(Instant, String)> {
        drop(self.stdin.take());
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reader_args(hub: &Hub) -> Vec<String> {
    vec![
        "--port".into(),
        hub.imap.to_string(),
        "--cafile".into(),
        hub.ca().display().to_string(),
        "--user".into(),
        LABO.0.into(),
        "--password".into(),
        LABO.1.into(),
    ]
}

/// (UIDVALIDITY, UID) → Message-ID pairs of the INBOX read once now.
pub fn read_inbox(hub: &Hub) -> Vec<(String, u32, String)> {
    let mut args = reader_args(hub);
    args.push("--once".into());
    let out = Command::new("python3")
        .arg(py("reader.py"))
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reading the INBOX: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen_pairs(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string),
    )
}

/// The `seen V U M` lines as (V, U, M).
pub fn seen_pairs(lines: impl IntoIterator<Item = String>) -> Vec<(String, u32, String)> {
    lines
        .into_iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("seen")).then_some(())?;
            Some((
                w.next()?.to_string(),
                w.next()?.parse().ok()?,
                w.next()?.to_string(),
            ))
        })
        .collect()
}

/// What one case sent, and what became of it.
#[derive(Debug, Default)]
pub struct Report {
    pub sent: usize,
    pub acknowledged: usize,
    pub refused: usize,
    pub unknown: usize,
    pub found: usize,
    pub missing: usize,
    pub duplicated: usize,
    pub refused_but_delivered: usize,
    pub reused_uids: usize,
    pub recovery: Option<Duration>,
}

impl Report {
    /// From the load's lines, every (UIDVALIDITY, UID, Message-ID) a reader saw at any time,
    /// and the final state of the INBOX; only Message-IDs starting with `<prefix` count.
    pub fn new(
        prefix: &str,
        load: &[(Instant, String)],
        seen: &[(String, u32, String)],
        last: &[(String, u32, String)],
    ) -> Report {
        let mine = |mid: &str| mid.starts_with(&format!("<{prefix}-"));
        let mut r = Report::default();
        let mut acked = BTreeSet::new();
        let mut refused = BTreeSet::new();
        for (_, line) in load {
            let mut w = line.split_whitespace();
            match (w.next(), w.next()) {
                (Some("ack"), Some(mid)) => {
                    acked.insert(mid.to_string());
                }
                (Some("refused"), Some(mid)) => {
                    refused.insert(mid.to_string());
                }
                (Some("unknown"), Some(_)) => r.unknown += 1,
                _ => {}
            }
        }
        r.acknowledged = acked.len();
        r.refused = refused.len();
        r.sent = r.acknowledged + r.refused + r.unknown;
        let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, _, mid) in last.iter().filter(|(_, _, m)| mine(m)) {
            *copies.entry(mid).or_default() += 1;
        }
        r.found = acked
            .iter()
            .filter(|m| copies.contains_key(m.as_str()))
            .count();
        r.missing = r.acknowledged - r.found;
        r.duplicated = copies.values().filter(|&&n| n > 1).count();
        r.refused_but_delivered = refused
            .iter()
            .filter(|m| copies.contains_key(m.as_str()))
            .count();
        let mut by_uid: BTreeMap<(&str, u32), BTreeSet<&str>> = BTreeMap::new();
        for (v, u, m) in seen.iter().chain(last) {
            by_uid.entry((v, *u)).or_default().insert(m);
        }
        r.reused_uids = by_uid.values().filter(|mids| mids.len() > 1).count();
        r
    }

    pub fn check(&self, case: &str) {
        println!("{case}: {self:?}");
        assert!(self.acknowledged > 0, "{case}: nothing was acknowledged");
        assert_eq!(self.missing, 0, "{case}: acknowledged but missing");
        assert_eq!(self.duplicated, 0, "{case}: stored twice");
        assert_eq!(
            self.refused_but_delivered, 0,
            "{case}: refused but delivered"
        );
        assert_eq!(self.reused_uids, 0, "{case}: a UID given to two messages");
        if let Some(recovery) = self.recovery {
            assert!(
                recovery < RECOVERY_GOAL,
                "{case}: recovered in {recovery:?}"
            );
        }
    }
}
