//! What the IMAP conformance tests share: a hub over a real store in a temporary directory
//! with Dr Martin's account, and a client driving a session in memory, line by line.

#![allow(dead_code)] // each test binary uses its part

pub mod bytes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

use mshub_directory::*;
use mshub_imap::session::{Connection, Session};
use mshub_imap::{Imap, ImapConfig};
use mshub_store::{AccountId, MailboxId, MasterKey, SpecialUse, Store};

pub const MARTIN: &str = "dr.martin@hopital.mshub.test";

pub struct Hub {
    pub _dir: tempfile::TempDir,
    pub imap: Arc<Imap>,
    pub store: Arc<Store>,
    pub directory: Arc<Directory>,
}

pub fn tls_config() -> Arc<rustls::ServerConfig> {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(c.signing_key.serialize_der()).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![c.cert.der().clone()], key)
        .unwrap(),
    )
}

/// A hub with Dr Martin (password `demo-martin`) on `hopital.mshub.test`.
pub fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Arc::new(Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap());
    directory
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("hopital.mshub.test").unwrap(),
                role: DomainRole::Local,
            },
            "t",
        )
        .unwrap();
    directory
        .add_account(
            Address::try_from(MARTIN).unwrap(),
            AccountKind::Professional {
                rpps: Rpps::try_from("10003456786").unwrap(),
                given_name: "Jean".into(),
                family_name: "Martin".into(),
                profession: Profession::Physician,
                specialty: String::new(),
                city: String::new(),
            },
            Some("demo-martin"),
            "t",
        )
        .unwrap();
    let imap = Imap::new(
        ImapConfig::default(),
        store.clone(),
        directory.clone(),
        tls_config(),
    );
    Hub {
        _dir: dir,
        imap,
        store,
        directory,
    }
}

impl Hub {
    /// Dr Martin's account.
    pub fn account(&self) -> AccountId {
        self.directory
            .account_by_address(&Address::try_from(MARTIN).unwrap())
            .unwrap()
            .unwrap()
            .id
    }

    /// Dr Martin's mailbox of this special use.
    pub fn mailbox(&self, special: SpecialUse) -> MailboxId {
        self.store
            .special_mailbox(self.account(), special)
            .unwrap()
            .id
    }
}

pub struct Client {
    rd: BufReader<ReadHalf<DuplexStream>>,
    wr: WriteHalf<DuplexStream>,
}

/// A session of `hub` over TLS (as the server sees it) running on its own task, and the
/// client's halves of the in-memory connection to it.
pub fn connect(hub: &Hub) -> (ReadHalf<DuplexStream>, WriteHalf<DuplexStream>) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let mut session = Session::new(
        hub.imap.clone(),
        server,
        Connection {
            id: 1,
            peer: "127.0.0.1:4000".parse::<SocketAddr>().unwrap(),
            tls: true,
        },
    );
    tokio::spawn(async move { session.run(true).await });
    tokio::io::split(client)
}

impl Client {
    pub async fn login(hub: &Hub) -> Client {
        let (rd, wr) = connect(hub);
        let mut c = Client {
            rd: BufReader::new(rd),
            wr,
        };
        let greeting = c.line().await;
        assert!(greeting.starts_with("* OK"), "{greeting}");
        let r = c.cmd("l", &format!("LOGIN {MARTIN} demo-martin")).await;
        assert!(last(&r).starts_with("l OK "), "{r:?}");
        c
    }

    pub async fn line(&mut self) -> String {
        let mut s = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.rd.read_line(&mut s))
            .await
            .expect("a reply within 10 s")
            .unwrap();
        s.trim_end_matches(['\r', '\n']).to_string()
    }

    pub async fn send(&mut self, raw: &[u8]) {
        self.wr.write_all(raw).await.unwrap();
    }

    /// Sends `tag line` and returns every line up to and including the tagged one.
    pub async fn cmd(&mut self, tag: &str, line: &str) -> Vec<String> {
        self.send(format!("{tag} {line}\r\n").as_bytes()).await;
        self.until(tag).await
    }

    pub async fn until(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line().await;
            let done = l.starts_with(&format!("{tag} "));
            out.push(l);
            if done {
                return out;
            }
        }
    }

    /// `tag APPEND mailbox flags {n}` then `msg`: every line up to the tagged one.
    pub async fn append_with(
        &mut self,
        tag: &str,
        mailbox: &str,
        flags: &str,
        msg: &[u8],
    ) -> Vec<String> {
        self.send(format!("{tag} APPEND {mailbox} {flags} {{{}}}\r\n", msg.len()).as_bytes())
            .await;
        let cont = self.line().await;
        assert!(cont.starts_with("+ "), "{cont}");
        self.send(msg).await;
        self.send(b"\r\n").await;
        self.until(tag).await
    }

    /// The words of the `* CAPABILITY` line.
    pub async fn capabilities(&mut self) -> Vec<String> {
        let r = self.cmd("c", "CAPABILITY").await;
        let caps = r.iter().find(|l| l.starts_with("* CAPABILITY")).unwrap();
        caps.split(' ').map(str::to_string).collect()
    }

    /// Selects INBOX and expunges its first message, so that UIDs are sequence numbers plus one.
    pub async fn select_inbox_without_the_first(&mut self) {
        let r = self.cmd("s", "SELECT INBOX").await;
        assert!(last(&r).starts_with("s OK"), "{r:?}");
        let r = self.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
        assert!(last(&r).starts_with("d OK"), "{r:?}");
        let r = self.cmd("e", "EXPUNGE").await;
        assert!(last(&r).starts_with("e OK"), "{r:?}");
    }
}

/// A message of `headers` (line ends made CRLF) and a body of `body_len` octets `x`.
pub fn message(headers: &str, body_len: usize) -> Vec<u8> {
    let mut m = format!("{headers}\n\n")
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes();
    m.extend(std::iter::repeat_n(b'x', body_len));
    m.extend_from_slice(b"\r\n");
    m
}

/// The tagged line that ends a reply.
pub fn last(r: &[String]) -> &str {
    r.last().unwrap()
}
