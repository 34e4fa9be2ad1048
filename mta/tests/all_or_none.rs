//! A message answered once is stored all or none: its local copies, the outbound queue entry
//! for its remote recipients and (for an in-process submission) the sender's Sent copy are one
//! atomic write. When any part of it cannot be written, the refusal (451) is true: no local
//! recipient has the message, nothing is queued, and the sender's retry doubles nothing.

use std::sync::{Arc, Mutex};

use mshub_directory::*;
use mshub_mta::refusal::Refusal;
use mshub_mta::{Mta, MtaConfig, TlsIdentity};
use mshub_store::backend::{Entries, Write};
use mshub_store::{
    Applied, Backend, Batch, BlobStore, FsBlobStore, Health, MasterKey, SledBackend, SpecialUse,
    Store, StoreError, SyncTicket, Tree,
};

const MARTIN: &str = "dr.martin@hopital.mshub.test";
const LABO: &str = "labo@hopital.mshub.test";
const BERNARD: &str = "bernard@autre-operateur.test";

type Rule = Box<dyn Fn(&Write) -> bool + Send + Sync>;

/// The hub's sled backend, except that a batch with a write the rule picks fails, as a write
/// on a full disk would.
struct Failing {
    inner: SledBackend,
    rule: Mutex<Option<Rule>>,
}

impl Failing {
    fn fail_when(&self, rule: impl Fn(&Write) -> bool + Send + Sync + 'static) {
        *self.rule.lock().unwrap() = Some(Box::new(rule));
    }

    fn heal(&self) {
        *self.rule.lock().unwrap() = None;
    }

    fn refuses(&self, batch: &Batch) -> bool {
        let rule = self.rule.lock().unwrap();
        rule.as_ref().is_some_and(|r| batch.writes.iter().any(r))
    }
}

impl Backend for Failing {
    fn get(&self, tree: Tree, key: &[u8]) -> mshub_store::Result<Option<Vec<u8>>> {
        self.inner.get(tree, key)
    }
    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: Option<usize>,
    ) -> mshub_store::Result<Entries> {
        self.inner.scan(tree, prefix, after, limit)
    }
    fn apply(&self, batch: &Batch) -> mshub_store::Result<Applied> {
        if self.refuses(batch) {
            return Err(StoreError::Backend(
                "no space left on device (test fault)".into(),
            ));
        }
        self.inner.apply(batch)
    }
    fn sync(&self, ticket: SyncTicket) -> mshub_store::Result<()> {
        self.inner.sync(ticket)
    }
    fn tree_names(&self) -> mshub_store::Result<Vec<String>> {
        self.inner.tree_names()
    }
    fn health(&self) -> Health {
        self.inner.health()
    }
}

struct Hub {
    _dir: tempfile::TempDir,
    mta: Arc<Mta>,
    store: Arc<Store>,
    kv: Arc<Failing>,
    martin: Account,
    labo: Account,
}

fn identity() -> TlsIdentity {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    TlsIdentity {
        certs: vec![c.cert.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::try_from(c.signing_key.serialize_der()).unwrap(),
    }
}

fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let kv = Arc::new(Failing {
        inner: SledBackend::open(&dir.path().join("kv")).unwrap(),
        rule: Mutex::new(None),
    });
    let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(&dir.path().join("blobs")).unwrap());
    let store = Arc::new(
        Store::with_backends(
            dir.path(),
            kv.clone() as Arc<dyn Backend>,
            blobs,
            MasterKey::new(&MasterKey::generate()).unwrap(),
        )
        .unwrap(),
    );
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
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("autre-operateur.test").unwrap(),
                role: DomainRole::Trusted {
                    route: None,
                    tls: TlsPolicy::Required,
                    certificate_names: Vec::new(),
                },
            },
            "t",
        )
        .unwrap();
    let martin = directory
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
    let labo = directory
        .add_account(
            Address::try_from(LABO).unwrap(),
            AccountKind::Organisation {
                name: "Labo".into(),
                members: vec![Address::try_from(MARTIN).unwrap()],
            },
            Some("demo-labo"),
            "t",
        )
        .unwrap();
    let mta = Mta::new(
        MtaConfig::default(),
        store.clone(),
        directory,
        &identity(),
        Vec::new(),
    )
    .unwrap();
    Hub {
        _dir: dir,
        mta,
        store,
        kv,
        martin,
        labo,
    }
}

impl Hub {
    fn count(&self, account: &Account, mailbox: SpecialUse) -> usize {
        let mb = self.store.special_mailbox(account.id, mailbox).unwrap();
        self.store.messages(mb.id).unwrap().len()
    }

    fn queued(&self) -> usize {
        self.store
            .kv()
            .scan(Tree("queue"), &[], None, None)
            .unwrap()
            .len()
    }

    fn submit(&self, to: &[&str], body: &str) -> Result<(), Refusal> {
        let message = format!(
            "From: {MARTIN}\r\nTo: {}\r\nSubject: all or none\r\n\
             Message-ID: <{body}@hopital.mshub.test>\r\n\r\n{body}\r\n",
            to.join(", ")
        );
        let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
        self.mta
            .submit(&self.martin, &to, message.as_bytes())
            .map(drop)
    }
}

/// Local and remote recipients in one message, the queue entry failing to be written: the
/// local recipient does not have it either.
#[test]
fn a_queue_entry_that_cannot_be_written_leaves_no_local_copy() {
    let hub = hub();
    for body in ["short", &"long line of a large message\r\n".repeat(4000)] {
        hub.kv.fail_when(|w| w.tree.0 == "queue");
        let refused = hub.submit(&[LABO, BERNARD], body);
        assert!(
            matches!(refused, Err(Refusal::StorageFailed)),
            "{refused:?}"
        );
        assert_eq!(
            hub.count(&hub.labo, SpecialUse::Inbox),
            0,
            "refused: nowhere"
        );
        assert_eq!(hub.count(&hub.martin, SpecialUse::Sent), 0);
        assert_eq!(hub.queued(), 0);
        hub.kv.heal();
    }
    hub.submit(&[LABO, BERNARD], "again").unwrap();
    assert_eq!(hub.count(&hub.labo, SpecialUse::Inbox), 1);
    assert_eq!(hub.count(&hub.martin, SpecialUse::Sent), 1);
    assert_eq!(hub.queued(), 1);
}

/// The Sent copy of an in-process submission failing to be written: nobody has the message,
/// so that the retry leaves one copy for each recipient and one in Sent.
#[test]
fn a_sent_copy_that_cannot_be_written_leaves_no_copy_anywhere() {
    let hub = hub();
    let sent = hub
        .store
        .special_mailbox(hub.martin.id, SpecialUse::Sent)
        .unwrap()
        .id;
    let prefix = sent.0.to_be_bytes();
    hub.kv
        .fail_when(move |w| w.tree.0 == "message" && w.key.starts_with(&prefix));
    for to in [&[LABO][..], &[LABO, BERNARD], &[BERNARD]] {
        let refused = hub.submit(to, "sent");
        assert!(
            matches!(refused, Err(Refusal::StorageFailed)),
            "{to:?}: {refused:?}"
        );
        assert_eq!(hub.count(&hub.labo, SpecialUse::Inbox), 0, "{to:?}");
        assert_eq!(hub.queued(), 0, "{to:?}");
    }
    hub.kv.heal();
    hub.submit(&[LABO, BERNARD], "sent").unwrap();
    assert_eq!(hub.count(&hub.labo, SpecialUse::Inbox), 1);
    assert_eq!(hub.count(&hub.martin, SpecialUse::Sent), 1);
    assert_eq!(hub.queued(), 1);
}
