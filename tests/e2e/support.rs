//! Running `mshub` as a child process, with cleanup even when a test fails.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn mshub() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mshub"));
    cmd.env_remove("MSHUB_MASTER_KEY");
    cmd
}

/// Runs `mshub args…` to completion, feeding `stdin`.
pub fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = mshub()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mshub starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    child.wait_with_output().expect("mshub exits")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes the demo configuration a test instance uses: the demo's, but every listener on a
/// port the system chooses, so tests never collide with each other or a running demo.
pub fn write_test_demo_config(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("mshub.toml");
    std::fs::write(
        &path,
        r#"hub_domain = "mshub.test"
data_dir = "store"
master_key_file = "master.key"
local_domains = ["hopital.mshub.test"]
[listen]
smtp_relay = "127.0.0.1:0"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"
https = "127.0.0.1:0"
"#,
    )
    .unwrap();
    path
}

/// A running `mshub` that is killed when dropped.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub stdout: Vec<String>,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        let mut child = mshub()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mshub starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            stdout: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix`; panics with what was printed if it never comes.
    pub fn wait_for(&mut self, prefix: &str) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    let found = line.starts_with(prefix);
                    self.stdout.push(line);
                    if found {
                        return;
                    }
                }
                Err(e) => panic!(
                    "no line starting with {prefix:?} ({e}); printed so far:\n{}",
                    self.stdout.join("\n")
                ),
            }
        }
    }

    /// SIGTERM, then waits: the exit status must be a success (a clean shutdown).
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "mshub exited with {status} after SIGTERM");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
