//! Running `mshub` as a child process, with cleanup even when a test fails.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary under test: this build's, or `MSHUB_UNDER_TEST` (e.g. an older release, to
/// show that an attack replay fails against it).
pub fn mshub() -> Command {
    let bin =
        std::env::var_os("MSHUB_UNDER_TEST").unwrap_or_else(|| env!("CARGO_BIN_EXE_mshub").into());
    let mut cmd = Command::new(bin);
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
admin = "127.0.0.1:0"
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
        Self::start_with_env(args, &[])
    }

    /// As [`Running::start`], with more environment (e.g. an S3 bucket's credentials).
    pub fn start_with_env(args: &[&str], env: &[(String, String)]) -> Running {
        let mut child = mshub()
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
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

// ----- SMTP: instances, real clients, the store of a stopped instance -----

use std::sync::Arc;
use std::time::Instant;

use mshub_directory::{Address, Directory, Domain};
use mshub_store::{MasterKey, SpecialUse, Store};

/// The SMTP ports a running hub printed after `mshub ready`.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub relay: u16,
    pub submission: u16,
    pub submissions: u16,
}

impl Running {
    /// Waits for `mshub ready` and the listener lines after it, and reads the SMTP ports.
    pub fn smtp_ports(&mut self) -> Ports {
        self.wait_for("mshub ready");
        self.wait_for("  submissions ");
        let port = |key: &str| -> u16 {
            self.stdout
                .iter()
                .find_map(|line| {
                    let mut words = line.split_whitespace();
                    (words.next() == Some(key))
                        .then(|| words.next())
                        .flatten()
                        .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
                        .map(|a| a.port())
                })
                .unwrap_or_else(|| panic!("no {key} line in:\n{}", self.stdout.join("\n")))
        };
        Ports {
            relay: port("smtp-relay"),
            submission: port("submission"),
            submissions: port("submissions"),
        }
    }
}

/// A port free right now on 127.0.0.1 (for listeners whose address must be known in advance).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One hub in its own directory, started and stopped at will; killed when dropped.
pub struct Instance {
    running: Option<Running>,
    pub ports: Ports,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub hub_domain: String,
    /// The CA file clients verify the hub's certificate with.
    pub ca: PathBuf,
    start_args: Vec<String>,
    /// More environment for the hub's process.
    pub env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Instance {
    /// `mshub demo` in a fresh temporary directory, every listener on a port the system picks.
    pub fn demo() -> Instance {
        Self::demo_with("", &[])
    }

    /// As [`Instance::demo`], with `config` appended to the test configuration (whole TOML
    /// tables, e.g. a `[blobs]` section) and `env` given to the hub's process.
    pub fn demo_with(config: &str, env: &[(&str, String)]) -> Instance {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let config_path = write_test_demo_config(&dir);
        if !config.is_empty() {
            let mut text = std::fs::read_to_string(&config_path).unwrap();
            text.push_str(config);
            std::fs::write(&config_path, text).unwrap();
        }
        let config = config_path;
        let mut instance = Instance::new(
            &dir,
            config,
            "mshub.test",
            dir.join("tls/cert.pem"),
            vec!["demo".into(), "--data".into(), dir.to_str().unwrap().into()],
        );
        instance._tmp = Some(tmp);
        instance.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        instance.start();
        instance
    }

    /// An instance that is not started yet.
    pub fn new(
        dir: &Path,
        config: PathBuf,
        hub_domain: &str,
        ca: PathBuf,
        start_args: Vec<String>,
    ) -> Instance {
        Instance {
            running: None,
            ports: Ports {
                relay: 0,
                submission: 0,
                submissions: 0,
            },
            dir: dir.to_path_buf(),
            config,
            hub_domain: hub_domain.into(),
            ca,
            start_args,
            env: Vec::new(),
            _tmp: None,
        }
    }

    pub fn start(&mut self) {
        assert!(self.running.is_none(), "already running");
        let args: Vec<&str> = self.start_args.iter().map(String::as_str).collect();
        let mut running = Running::start_with_env(&args, &self.env);
        self.ports = running.smtp_ports();
        self.running = Some(running);
    }

    /// SIGTERM: the hub must exit cleanly.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.terminate();
        }
    }

    /// SIGKILL, no shutdown at all.
    pub fn kill(&mut self) {
        drop(self.running.take());
    }

    /// `mshub --config <this instance's> args…` (the hub must be stopped).
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = run(&all, stdin);
        assert!(
            out.status.success(),
            "mshub {args:?} failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    /// Opens the store of the stopped instance.
    pub fn open_store(&self) -> (Arc<Store>, Directory) {
        assert!(
            self.running.is_none(),
            "stop the instance before opening its store"
        );
        let key = std::fs::read_to_string(self.dir.join("master.key")).unwrap();
        let store = Arc::new(
            Store::open(&self.dir.join("store"), MasterKey::new(&key).unwrap())
                .expect("the store opens"),
        );
        let directory = Directory::open(
            store.clone(),
            Domain::try_from(self.hub_domain.as_str()).unwrap(),
        )
        .unwrap();
        (store, directory)
    }

    /// Every message in `address`'s INBOX, oldest first (the instance must be stopped).
    pub fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        let (store, directory) = self.open_store();
        let account = directory
            .account_by_address(&Address::try_from(address).unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("no account {address}"));
        let inbox = store
            .special_mailbox(account.id, SpecialUse::Inbox)
            .unwrap();
        store
            .messages(inbox.id)
            .unwrap()
            .iter()
            .map(|m| store.read_message(inbox.id, m.uid).unwrap())
            .collect()
    }
}

pub const MARTIN: (&str, &str) = ("dr.martin@hopital.mshub.test", "demo-martin");
pub const LABO: (&str, &str) = ("labo@hopital.mshub.test", "demo-labo");
pub const CAMILLE: (&str, &str) = ("284057511204339@patient.mshub.test", "demo-camille");

fn py(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/py")
        .join(script)
}

/// What one raw SMTP dialogue (tests/e2e/py/dialogue.py) got: each step with its reply.
#[derive(Debug)]
pub struct Transcript(pub Vec<(String, String)>);

impl Transcript {
    /// The reply to the first step starting with `step`.
    pub fn reply(&self, step: &str) -> &str {
        self.0
            .iter()
            .find(|(s, _)| s.starts_with(step))
            .map(|(_, r)| r.as_str())
            .unwrap_or_else(|| panic!("no step {step:?} in the dialogue:\n{self}"))
    }

    /// The reply to the first step starting with `step` must start with `expected`.
    pub fn expect(&self, step: &str, expected: &str) {
        let reply = self.reply(step);
        assert!(
            reply.starts_with(expected),
            "{step:?} got {reply:?}, expected {expected:?}; whole dialogue:\n{self}"
        );
    }

    /// Every reply, in order.
    pub fn replies(&self) -> Vec<&str> {
        self.0.iter().map(|(_, r)| r.as_str()).collect()
    }
}

impl std::fmt::Display for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (step, reply) in &self.0 {
            let reply: String = reply.chars().take(300).collect();
            writeln!(f, "  {step:<40} -> {reply}")?;
        }
        Ok(())
    }
}

/// Runs a raw SMTP dialogue: `mode` is `plain` (STARTTLS as a step) or `tls` (implicit TLS);
/// the hub's certificate is verified against `ca` for the name localhost.
pub fn dialogue(port: u16, mode: &str, ca: &Path, steps: &str) -> Transcript {
    let mut child = Command::new("python3")
        .arg(py("dialogue.py"))
        .args([&port.to_string(), mode, ca.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    let steps = steps.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(steps.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "dialogue.py failed: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    Transcript(
        text(&out.stdout)
            .lines()
            .map(|l| {
                let (step, reply) = l.split_once('\t').unwrap_or((l, ""));
                (step.to_string(), reply.to_string())
            })
            .collect(),
    )
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A small message with CRLF line ends; `headers` are extra header lines without CRLF.
pub fn message(from: &str, to: &str, subject: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut m = format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n");
    for h in headers {
        m.push_str(h);
        m.push_str("\r\n");
    }
    m.push_str("Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n\r\n");
    for line in body.lines() {
        m.push_str(line);
        m.push_str("\r\n");
    }
    m.into_bytes()
}

/// The steps of an authenticated submission on the STARTTLS port, ending with QUIT.
pub fn submit_steps(user: (&str, &str), from: &str, to: &[&str], message: &[u8]) -> String {
    let mut s = format!(
        "send EHLO client.test\nstarttls\nsend EHLO client.test\nauth-plain {} {}\nsend MAIL FROM:<{from}>\n",
        user.0, user.1
    );
    for r in to {
        s.push_str(&format!("send RCPT TO:<{r}>\n"));
    }
    s.push_str(&format!("data {}\nsend QUIT\n", hex(message)));
    s
}

/// Runs tests/e2e/py/send.py (smtplib) with these arguments.
pub fn send_py(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(py("send.py"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs")
}

/// `who` (address, password) submits `message` to `to` with smtplib over implicit TLS and
/// AUTH (tests/e2e/py/send.py); panics unless it was accepted.
pub fn submit(hub: &Instance, who: (&str, &str), to: &str, message: &[u8]) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message).unwrap();
    let port = hub.ports.submissions.to_string();
    let out = send_py(&[
        "--port",
        &port,
        "--mode",
        "ssl",
        "--cafile",
        hub.ca.to_str().unwrap(),
        "--user",
        who.0,
        "--password",
        who.1,
        "--sender",
        who.0,
        "--to",
        to,
        "--message",
        file.path().to_str().unwrap(),
    ]);
    assert!(
        text(&out.stdout).contains("SENT"),
        "not accepted: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The message as the client sent it: `stored` without the Received: header the hub added on
/// top (which must be there).
pub fn without_received(stored: &[u8]) -> &[u8] {
    assert!(
        stored.starts_with(b"Received: "),
        "no Received: header on top:\n{}",
        text(&stored[..stored.len().min(400)])
    );
    let mut i = 0;
    loop {
        let end = stored[i..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("header line ends")
            + i
            + 2;
        if !matches!(stored.get(end), Some(b' ' | b'\t')) {
            return &stored[end..];
        }
        i = end;
    }
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Calls `check` every `every` until it is true or `limit` has passed; says whether it was.
pub fn poll(limit: Duration, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(every);
    }
}

// ----- IMAP -----

/// The IMAP ports a running hub printed after `mshub ready`: (STARTTLS, implicit TLS).
impl Running {
    pub fn imap_ports(&mut self) -> (u16, u16) {
        // The SMTP lines come first: they may have been read already.
        if !self.stdout.iter().any(|l| l.starts_with("  imaps ")) {
            self.wait_for("  imaps ");
        }
        let port = |key: &str| -> u16 {
            self.stdout
                .iter()
                .find_map(|line| {
                    let mut words = line.split_whitespace();
                    (words.next() == Some(key))
                        .then(|| words.next())
                        .flatten()
                        .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
                        .map(|a| a.port())
                })
                .unwrap_or_else(|| panic!("no {key} line in:\n{}", self.stdout.join("\n")))
        };
        (port("imap"), port("imaps"))
    }
}

/// Runs tests/e2e/py/imap_client.py with these arguments.
pub fn imap_py(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(py("imap_client.py"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs")
}

impl Instance {
    /// The running instance's IMAP ports: (STARTTLS, implicit TLS).
    pub fn imap_ports(&mut self) -> (u16, u16) {
        self.running
            .as_mut()
            .expect("the instance is running")
            .imap_ports()
    }
}

impl Instance {
    /// The process id of the running hub (to read its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.running
            .as_ref()
            .expect("the instance is running")
            .child
            .id()
    }
}

// ----- HTTPS -----

impl Running {
    /// The HTTPS port a running hub printed after `mshub ready`.
    pub fn https_port(&mut self) -> u16 {
        self.listener_port("https")
    }
}

impl Running {
    /// The port of the listener printed as `  <key>  <address>` after `mshub ready`.
    pub fn listener_port(&mut self, key: &str) -> u16 {
        let prefix = format!("  {key} ");
        if !self.stdout.iter().any(|l| l.starts_with(&prefix)) {
            self.wait_for(&prefix);
        }
        self.stdout
            .iter()
            .find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some(key))
                    .then(|| words.next())
                    .flatten()
                    .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
                    .map(|a| a.port())
            })
            .unwrap_or_else(|| panic!("no {key} line in:\n{}", self.stdout.join("\n")))
    }
}

impl Instance {
    /// The running instance's admin port (metrics and health, plain HTTP).
    pub fn admin_port(&mut self) -> u16 {
        self.running
            .as_mut()
            .expect("the instance is running")
            .listener_port("admin")
    }

    /// The running instance's HTTPS port.
    pub fn https_port(&mut self) -> u16 {
        self.running
            .as_mut()
            .expect("the instance is running")
            .https_port()
    }
}

/// A browser of the tests, driven with curl: one cookie jar, the hub's certificate verified,
/// redirects not followed.
pub struct CurlSession {
    ca: PathBuf,
    port: u16,
    /// curl arguments given on every request (e.g. `--interface 127.0.0.2`).
    always: Vec<String>,
    jar: tempfile::TempDir,
}

/// What a request sends.
pub enum Post<'a> {
    /// A GET.
    Nothing,
    /// A urlencoded form, each pair encoded by curl (an empty form still is a POST).
    Form(&'a [(&'a str, &'a str)]),
    /// A urlencoded body sent exactly as given (`%09`, a raw tab…).
    Raw(&'a str),
}

impl CurlSession {
    pub fn new(hub: &Instance, port: u16) -> CurlSession {
        CurlSession {
            ca: hub.ca.clone(),
            port,
            always: Vec::new(),
            jar: tempfile::tempdir().unwrap(),
        }
    }

    /// A session whose connections come from the loopback address `source`.
    pub fn from_source(hub: &Instance, port: u16, source: &str) -> CurlSession {
        let mut session = Self::new(hub, port);
        session.always = vec!["--interface".into(), source.into()];
        session
    }

    /// GET, or POST of `form` (urlencoded pairs) when given.
    pub fn request(&self, path: &str, form: Option<&[(&str, &str)]>) -> HttpReply {
        self.request_with(path, form.map_or(Post::Nothing, Post::Form), &[])
    }

    /// [`Self::request`] with any body and extra curl arguments.
    pub fn request_with(&self, path: &str, post: Post<'_>, extra: &[&str]) -> HttpReply {
        let headers = self.jar.path().join("headers");
        let body = self.jar.path().join("body");
        let jar = self.jar.path().join("cookies");
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--max-time", "60", "--cacert"])
            .arg(&self.ca)
            .args(&self.always)
            .arg("--cookie")
            .arg(&jar)
            .arg("--cookie-jar")
            .arg(&jar)
            .arg("--dump-header")
            .arg(&headers)
            .arg("--output")
            .arg(&body)
            .args(["--write-out", "%{http_code}"]);
        match post {
            Post::Nothing => {}
            Post::Form(form) => {
                cmd.args(["--data", ""]);
                for (name, value) in form {
                    cmd.arg("--data-urlencode").arg(format!("{name}={value}"));
                }
            }
            Post::Raw(raw) => {
                cmd.arg("--data-raw").arg(raw);
            }
        }
        let out = cmd
            .args(extra)
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .stdin(Stdio::null())
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
        HttpReply {
            status: text(&out.stdout).trim().parse().expect("an HTTP status"),
            // Only the name is trimmed: a value keeps what the server put in it (a tab…).
            headers: std::fs::read_to_string(&headers)
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| {
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    (
                        n.trim().to_ascii_lowercase(),
                        v.trim_end_matches('\r').to_string(),
                    )
                })
                .collect(),
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    /// The login form, fetched (its cookie and CSRF token) and posted.
    pub fn log_in(&self, login: &str, password: &str) -> HttpReply {
        let page = self.request("/login", None);
        assert_eq!(page.status, 200, "{page:?}");
        let csrf = csrf_field(&page);
        self.request(
            "/login",
            Some(&[("_csrf", &csrf), ("login", login), ("password", password)]),
        )
    }
}

/// The `_csrf` hidden field of a page (every form of a page carries the same token).
pub fn csrf_field(page: &HttpReply) -> String {
    let html = text(&page.body);
    let marker = r#"name="_csrf" value=""#;
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no _csrf field in:\n{html}"));
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').expect("the field's end")].to_string()
}

/// What `curl` got from an HTTPS request.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    /// Header lines as received, lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&self.body)))
    }
}

/// `curl --cacert <ca>` GET of `https://127.0.0.1:<port><path>`, with HTTP Basic if `login`.
pub fn curl(ca: &Path, port: u16, path: &str, login: Option<(&str, &str)>) -> HttpReply {
    let out_dir = tempfile::tempdir().unwrap();
    let headers = out_dir.path().join("headers");
    let body = out_dir.path().join("body");
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
        .arg(ca)
        .arg("--dump-header")
        .arg(&headers)
        .arg("--output")
        .arg(&body)
        .args(["--write-out", "%{http_code}"]);
    if let Some((user, password)) = login {
        // A test password: fine on the command line.
        cmd.args(["--user", &format!("{user}:{password}")]);
    }
    let out = cmd
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
    let status = text(&out.stdout).trim().parse().expect("an HTTP status");
    let headers = std::fs::read_to_string(&headers)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// Relays one IHE XDM archive (one document of type `loinc`, carrying `marker`) from the lab
/// system to Camille with swaks: relay port, STARTTLS, AUTH (it sends as a local address).
pub fn relay_xdm(hub: &Instance, name: &str, loinc: &str, title: &str, marker: &str) {
    relay_xdm_as(hub, LABO, name, loinc, title, marker);
}

/// As [`relay_xdm`], sent (and authored) by `sender` (address, password): another
/// organisation's system, or a professional's own software.
pub fn relay_xdm_as(
    hub: &Instance,
    sender: (&str, &str),
    name: &str,
    loinc: &str,
    title: &str,
    marker: &str,
) {
    let zip = hub.dir.join(name);
    let made = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/py/make_xdm.py"
        ))
        .arg(&zip)
        .args([
            CAMILLE.0.split('@').next().unwrap(),
            loinc,
            title,
            sender.0,
            marker,
        ])
        .status()
        .unwrap();
    assert!(made.success());
    let relay = hub.ports.relay.to_string();
    let attach = format!("@{}", zip.display());
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &relay,
            "--tls",
            "--ehlo",
            "sil.hopital.test",
            "--auth",
            "PLAIN",
            "--auth-user",
            sender.0,
            "--auth-password",
            sender.1,
            "--from",
            sender.0,
            "--to",
            CAMILLE.0,
            "--header",
            &format!("Subject: {title}"),
            "--attach-type",
            "application/zip",
            "--attach-name",
            "IHE_XDM.ZIP",
            "--attach",
            &attach,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let transcript = text(&out.stdout);
    assert!(
        transcript.contains("250 2.0.0 OK: queued as"),
        "{transcript}"
    );
}

/// `mshub account add` of a nurse, Inès Leroy (ines.leroy@hopital.mshub.test), with a password
/// on standard input: the operator's usual first command.
pub fn add_nurse(config: &str) -> Output {
    run(
        &[
            "--config",
            config,
            "account",
            "add",
            "ines.leroy@hopital.mshub.test",
            "professional",
            "--rpps",
            "10000000009",
            "--given-name",
            "Inès",
            "--family-name",
            "Leroy",
            "--profession",
            "nurse",
            "--password-stdin",
        ],
        "a-long-password\n",
    )
}

// ----- Care relationships: who may read a patient's documents -----

/// `mshub account add <address> professional …` with `password` on standard input (the hub
/// must be stopped): `(given name, family name, profession, specialty, city, rpps)`.
pub fn add_professional(hub: &Instance, who: (&str, &str), person: [&str; 6]) {
    let [given, family, profession, specialty, city, rpps] = person;
    hub.cli(
        &[
            "account",
            "add",
            who.0,
            "professional",
            "--rpps",
            rpps,
            "--given-name",
            given,
            "--family-name",
            family,
            "--profession",
            profession,
            "--specialty",
            specialty,
            "--city",
            city,
            "--password-stdin",
        ],
        &format!("{}\n", who.1),
    );
}

/// A web session of `who` (login, password), signed in.
pub fn signed_in(hub: &Instance, port: u16, who: (&str, &str)) -> CurlSession {
    let web = CurlSession::new(hub, port);
    let reply = web.log_in(who.0, who.1);
    assert_eq!(reply.status, 303, "{} could not sign in: {reply:?}", who.0);
    web
}

/// The value of the field `name` in the first form of `html` posting to `action`.
pub fn form_field(html: &str, action: &str, name: &str) -> Option<String> {
    let form = &html[html.find(&format!(r#"action="{action}""#))?..];
    let form = &form[..form.find("</form>")?];
    let marker = format!(r#"name="{name}" value=""#);
    let value = &form[form.find(&marker)? + marker.len()..];
    Some(value[..value.find('"')?].to_string())
}

/// Posts the patient's form `/documents/acces/{action}` as the page "Accès des
/// professionnels" does: its CSRF token, then `fields`.
pub fn care_post(web: &CurlSession, action: &str, fields: &[(&str, &str)]) -> HttpReply {
    let page = web.request("/documents/acces", None);
    assert_eq!(page.status, 200, "{page:?}");
    let csrf = csrf_field(&page);
    let mut form = vec![("_csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    web.request(&format!("/documents/acces/{action}"), Some(&form))
}

/// A change on "Accès des professionnels" went through: back to the page with its notice.
pub fn assert_care_done(reply: &HttpReply, done: &str) {
    assert_eq!(reply.status, 303, "{reply:?}\n{}", text(&reply.body));
    assert_eq!(
        reply.header("location"),
        Some(format!("/documents/acces?done={done}").as_str()),
        "{reply:?}"
    );
}

/// The patient of `web` searches the directory on "Accès des professionnels" for `query`,
/// which must find exactly one professional, and presses that card's button posting to
/// `/documents/acces/{action}` (`follow`, `referring`, or `grant` with `("days", …)` in
/// `extra`). Returns the professional's account id, as the page's forms name it.
pub fn name_professional(
    web: &CurlSession,
    query: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> String {
    let page = web.request_with(
        "/documents/acces",
        Post::Nothing,
        &["--get", "--data-urlencode", &format!("q={query}")],
    );
    assert_eq!(page.status, 200, "{page:?}");
    let html = text(&page.body);
    let search = &html[html.find(r#"id="h-add""#).expect("the search section")..];
    let search = &search[..search.find(r#"id="h-emergency""#).unwrap_or(search.len())];
    let cards: Vec<&str> = search.split(r#"<article class="card""#).skip(1).collect();
    assert_eq!(
        cards.len(),
        1,
        "searching {query:?} should find one professional:\n{search}"
    );
    let action_path = format!("/documents/acces/{action}");
    let id = form_field(cards[0], &action_path, "professional")
        .unwrap_or_else(|| panic!("no form {action_path} on the card:\n{}", cards[0]));
    let csrf = csrf_field(&page);
    let mut form = vec![("_csrf", csrf.as_str()), ("professional", id.as_str())];
    form.extend_from_slice(extra);
    let reply = web.request(&action_path, Some(&form));
    assert!(
        reply.status == 303
            && reply
                .header("location")
                .is_some_and(|l| l.starts_with("/documents/acces?done=")),
        "{action_path} for {query:?}: {reply:?}\n{}",
        text(&reply.body)
    );
    id
}

/// The card of `name` among the professionals the page lists (not the search results): the
/// patient presses its button posting to `/documents/acces/{action}` (block, unblock, end…),
/// with the card's own hidden fields. Returns the reply.
pub fn care_entry_action(web: &CurlSession, name: &str, action: &str) -> HttpReply {
    let page = web.request("/documents/acces", None);
    assert_eq!(page.status, 200, "{page:?}");
    let html = text(&page.body);
    let listed = &html[..html.find(r#"id="h-add""#).expect("the search section")];
    let at = listed
        .find(&format!(r#"<article class="card" aria-label="{name}""#))
        .unwrap_or_else(|| panic!("{name} is not listed:\n{listed}"));
    let card = &listed[at..];
    let card = &card[..card.find("</article>").expect("the card's end")];
    let action_path = format!("/documents/acces/{action}");
    let form_at = card
        .find(&format!(r#"action="{action_path}""#))
        .unwrap_or_else(|| panic!("no form {action_path} on {name}'s card:\n{card}"));
    let form = &card[form_at..];
    let form = &form[..form.find("</form>").expect("the form's end")];
    // Every hidden field of that form, as the browser would send them.
    let mut fields: Vec<(String, String)> = Vec::new();
    for input in form.split("<input ").skip(1) {
        let attr = |a: &str| {
            let m = format!(r#"{a}=""#);
            input
                .find(&m)
                .map(|i| &input[i + m.len()..])
                .map(|v| v[..v.find('"').unwrap()].to_string())
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            fields.push((n, v));
        }
    }
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    web.request(&action_path, Some(&fields))
}

/// `who` writes a short message to Camille (submission, implicit TLS, AUTH): a professional
/// who wrote to the patient reads her space (the care relationship "vous a écrit"). Waits
/// until the professionals' API lets `who` list her documents.
pub fn writes_to_camille(hub: &Instance, port: u16, who: (&str, &str)) {
    submit(
        hub,
        who,
        CAMILLE.0,
        &message(
            who.0,
            CAMILLE.0,
            "Suivi de votre dossier",
            &[],
            "Bonjour,\n\nJe suis vos examens en cours. Bien cordialement.\n",
        ),
    );
    let ins = CAMILLE.0.split('@').next().unwrap();
    let path = format!("/api/v1/patients/{ins}/documents");
    let mut last = None;
    let related = poll(Duration::from_secs(30), Duration::from_millis(300), || {
        let reply = curl(&hub.ca, port, &path, Some(who));
        let ok = reply.status == 200;
        last = Some(reply);
        ok
    });
    assert!(related, "{} wrote, yet: {last:?}", who.0);
}

impl CurlSession {
    /// A long GET (a `text/event-stream`…) with this session's cookies: `curl --no-buffer
    /// --include`, so the status line and headers, then the body, reach the child's stdout as
    /// they come. The caller reads it, and kills the child if it must.
    pub fn stream(&self, path: &str, limit: Duration) -> Child {
        Command::new("curl")
            .args(["--silent", "--show-error", "--no-buffer", "--include"])
            .args(["--max-time", &limit.as_secs().to_string(), "--cacert"])
            .arg(&self.ca)
            .args(&self.always)
            .arg("--cookie")
            .arg(self.jar.path().join("cookies"))
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl runs")
    }
}

/// Runs the imaplib script `tests/e2e/py/<script>` against the hub's IMAP-over-TLS port as
/// Dr Martin, and asserts that it ended with `DONE`, printed no `FAIL` and printed
/// `PASS <check>` for each of `checks`.
pub fn imaplib_checks(hub: &mut Instance, script: &str, checks: &[&str]) {
    let (_, imaps) = hub.imap_ports();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/py")
        .join(script);
    let out = Command::new("python3")
        .arg(path)
        .args([
            "--port",
            &imaps.to_string(),
            "--cafile",
            hub.ca.to_str().unwrap(),
            "--user",
            MARTIN.0,
            "--password",
            MARTIN.1,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.ends_with("DONE\n") && !stdout.contains("FAIL"),
        "{script} failed:\n{stdout}{}",
        text(&out.stderr)
    );
    for check in checks {
        let line = format!("PASS {check}");
        assert!(stdout.contains(&line), "{line} missing:\n{stdout}");
    }
}
