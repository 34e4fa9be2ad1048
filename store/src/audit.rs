//! The audit chain (DESIGN §5): append-only records, each holding the hash of the previous one,
//! so that editing or removing any record is detected by [`crate::Store::verify_audit`].
//!
//! Record `n` is stored under its sequence number; a head record holds the last sequence
//! number and hash, so that removing the newest records is detected too.
//!
//! The event of a record (who, what, to what: a patient's address holds the INS) is sealed to
//! the hub ([`Store::seal_field`], bound to the record's number); the hash covers the sealed
//! form, so checking the chain needs no key, and the hash says nothing of the event either.
//! Records written before events were sealed hold them in clear, and still verify and read. An attacker who
//! rewrites the whole chain and the head from some point on is not detected by the chain alone:
//! publishing the head hash elsewhere (a log, a peer) closes that gap.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{Batch, Tree};
use crate::{json, now, Result, Store, StoreError};

const AUDIT: Tree = Tree("audit");
const META: Tree = Tree("meta");
const HEAD: &[u8] = b"audit-head";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, by whom, to what. Identifiers, not personal data: the actor and subject are
/// account addresses or ids, never a message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Who acted: an account address, `operator`, or a service name.
    pub actor: String,
    /// A stable dotted verb, e.g. `account.create`, `document.read`.
    pub action: String,
    /// What it was done to, e.g. an account address or `document:42`.
    pub subject: String,
    /// Optional free detail (never patient data).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl AuditEvent {
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            detail: String::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// One link of the chain as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    /// Unix time, seconds.
    pub at: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hex SHA-256 of the previous record (zeros for the first).
    pub prev: String,
    /// Hex SHA-256 of this record's other fields.
    pub hash: String,
}

/// One link of the chain as written to the store.
#[derive(Serialize, Deserialize)]
struct Stored {
    seq: u64,
    at: i64,
    #[serde(flatten)]
    event: StoredEvent,
    prev: String,
    hash: String,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredEvent {
    /// [`Store::seal_field`] of the event's JSON.
    Sealed { sealed: String },
    /// Records written before events were sealed.
    Plain(AuditEvent),
}

#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    at: i64,
    event: &'a AuditEvent,
    prev: &'a str,
}

#[derive(Serialize)]
struct HashedSealed<'a> {
    seq: u64,
    at: i64,
    sealed: &'a str,
    prev: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

fn hash_of(seq: u64, at: i64, event: &AuditEvent, prev: &str) -> String {
    let canonical = serde_json::to_vec(&Hashed {
        seq,
        at,
        event,
        prev,
    })
    .expect("serialising plain strings cannot fail");
    hex_digest(&canonical)
}

fn hash_of_sealed(seq: u64, at: i64, sealed: &str, prev: &str) -> String {
    let canonical = serde_json::to_vec(&HashedSealed {
        seq,
        at,
        sealed,
        prev,
    })
    .expect("serialising plain strings cannot fail");
    hex_digest(&canonical)
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a record's event is sealed with: its number, so that it opens nowhere else.
fn context(seq: u64) -> Vec<u8> {
    let mut c = b"audit ".to_vec();
    c.extend_from_slice(&seq.to_be_bytes());
    c
}

impl Stored {
    fn hash(&self) -> String {
        match &self.event {
            StoredEvent::Sealed { sealed } => hash_of_sealed(self.seq, self.at, sealed, &self.prev),
            StoredEvent::Plain(event) => hash_of(self.seq, self.at, event, &self.prev),
        }
    }
}

/// What `verify` found on an intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub records: u64,
    pub head: String,
}

impl Store {
    /// The next link after `head`: the event sealed, the hash over what is stored.
    fn link(&self, seq: u64, at: i64, event: &AuditEvent, prev: String) -> Result<Stored> {
        let sealed = self.seal_field(&context(seq), &json(event))?;
        let hash = hash_of_sealed(seq, at, &sealed, &prev);
        Ok(Stored {
            seq,
            at,
            event: StoredEvent::Sealed { sealed },
            prev,
            hash,
        })
    }

    /// The record as callers see it, its event opened.
    fn opened(&self, stored: Stored) -> Result<AuditRecord> {
        let event = match stored.event {
            StoredEvent::Plain(event) => event,
            StoredEvent::Sealed { sealed } => {
                let plain = self.open_field(&context(stored.seq), &sealed)?;
                serde_json::from_slice(&plain)
                    .map_err(|e| StoreError::corrupt("audit record", e))?
            }
        };
        Ok(AuditRecord {
            seq: stored.seq,
            at: stored.at,
            event,
            prev: stored.prev,
            hash: stored.hash,
        })
    }

    /// Appends one record to the chain, durably.
    pub fn audit(&self, event: AuditEvent) -> Result<AuditRecord> {
        self.retry(crate::AUDIT_LANE, || {
            let raw_head = self.kv.get(META, HEAD)?;
            let head = match &raw_head {
                Some(raw) => serde_json::from_slice::<Head>(raw)
                    .map_err(|e| StoreError::corrupt("audit head", e))?,
                None => Head {
                    seq: 0,
                    hash: GENESIS.into(),
                },
            };
            let seq = head.seq + 1;
            let at = now();
            let stored = self.link(seq, at, &event, head.hash)?;
            let mut batch = Batch::new();
            batch.check(META, HEAD, raw_head);
            batch.put(AUDIT, seq.to_be_bytes(), json(&stored));
            batch.put(
                META,
                HEAD,
                json(&Head {
                    seq,
                    hash: stored.hash.clone(),
                }),
            );
            let record = AuditRecord {
                seq,
                at,
                event: event.clone(),
                prev: stored.prev,
                hash: stored.hash,
            };
            Ok((batch, record))
        })
    }

    /// Appends several records in one durable write, in order (bulk operations: a roster
    /// import audits each account it creates without paying a flush for each).
    pub fn audit_many(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.retry(crate::AUDIT_LANE, || {
            let raw_head = self.kv.get(META, HEAD)?;
            let mut head = match &raw_head {
                Some(raw) => serde_json::from_slice::<Head>(raw)
                    .map_err(|e| StoreError::corrupt("audit head", e))?,
                None => Head {
                    seq: 0,
                    hash: GENESIS.into(),
                },
            };
            let at = now();
            let mut batch = Batch::new();
            batch.check(META, HEAD, raw_head);
            for event in events {
                let seq = head.seq + 1;
                let stored = self.link(seq, at, event, std::mem::take(&mut head.hash))?;
                batch.put(AUDIT, seq.to_be_bytes(), json(&stored));
                head = Head {
                    seq,
                    hash: stored.hash,
                };
            }
            batch.put(META, HEAD, json(&head));
            Ok((batch, ()))
        })
    }

    /// Records in order, from `after` (exclusive), at most `limit`.
    pub fn audit_records(&self, after: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        self.kv
            .scan(AUDIT, &[], Some(&after.to_be_bytes()), Some(limit))?
            .into_iter()
            .map(|(_, v)| {
                let stored: Stored = serde_json::from_slice(&v)
                    .map_err(|e| StoreError::corrupt("audit record", e))?;
                self.opened(stored)
            })
            .collect()
    }

    /// Walks the whole chain: every record's hash, every link, no gap, and the head.
    pub fn verify_audit(&self) -> Result<AuditReport> {
        let broken = |seq, reason: String| StoreError::AuditBroken { seq, reason };
        let mut prev_hash = GENESIS.to_string();
        let mut expected_seq = 1u64;
        let mut after = 0u64;
        loop {
            let page = self
                .kv
                .scan(AUDIT, &[], Some(&after.to_be_bytes()), Some(1024))?;
            if page.is_empty() {
                break;
            }
            for (key, value) in &page {
                let key_seq = key
                    .as_slice()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| broken(expected_seq, "a record has a malformed key".into()))?;
                let record: Stored = serde_json::from_slice(value)
                    .map_err(|e| broken(key_seq, format!("record is unreadable: {e}")))?;
                if key_seq != expected_seq || record.seq != key_seq {
                    return Err(broken(
                        expected_seq,
                        format!("record {expected_seq} is missing (found {key_seq} next)"),
                    ));
                }
                if record.prev != prev_hash {
                    return Err(broken(
                        key_seq,
                        "it does not link to the previous record".into(),
                    ));
                }
                if record.hash() != record.hash {
                    return Err(broken(
                        key_seq,
                        "its content was altered (hash mismatch)".into(),
                    ));
                }
                prev_hash = record.hash;
                expected_seq += 1;
                after = key_seq;
            }
        }
        let records = expected_seq - 1;
        let head = match self.kv.get(META, HEAD)? {
            Some(raw) => Some(
                serde_json::from_slice::<Head>(&raw)
                    .map_err(|e| broken(records, format!("the head is unreadable: {e}")))?,
            ),
            None => None,
        };
        match head {
            None if records == 0 => {}
            None => return Err(broken(records, "the chain head is missing".into())),
            Some(h) if h.seq == records && h.hash != prev_hash => {
                return Err(broken(
                    records,
                    "it does not match the chain head: its content was altered".into(),
                ))
            }
            Some(h) if h.seq != records => {
                return Err(broken(
                    records.min(h.seq) + 1,
                    format!(
                        "the head says {} records but {} are present: records were removed",
                        h.seq, records
                    ),
                ))
            }
            Some(_) => {}
        }
        Ok(AuditReport {
            records,
            head: prev_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Commit, MasterKey};

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::new(&MasterKey::generate()).unwrap();
        let store = Store::open(dir.path(), master).unwrap();
        (dir, store)
    }

    /// A store with a chain of five records, `detail` "n=<seq>".
    fn chain_of_five() -> (tempfile::TempDir, Store, Vec<AuditRecord>) {
        let (dir, store) = open();
        let records = (1..=5)
            .map(|n| {
                let event = AuditEvent::new("operator", "account.create", format!("account:{n}"))
                    .with_detail(format!("n={n}"));
                store.audit(event).unwrap()
            })
            .collect();
        (dir, store, records)
    }

    fn raw_record(store: &Store, seq: u64) -> serde_json::Value {
        let raw = store.kv().get(AUDIT, &seq.to_be_bytes()).unwrap().unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    fn write_raw(store: &Store, seq: u64, value: &serde_json::Value) {
        let mut batch = Batch::new();
        batch.put(AUDIT, seq.to_be_bytes(), serde_json::to_vec(value).unwrap());
        assert_eq!(store.kv().commit(&batch).unwrap(), Commit::Done);
    }

    fn remove(store: &Store, tree: Tree, key: &[u8]) {
        let mut batch = Batch::new();
        batch.remove(tree, key);
        assert_eq!(store.kv().commit(&batch).unwrap(), Commit::Done);
    }

    fn broken_at(store: &Store) -> u64 {
        match store.verify_audit() {
            Err(StoreError::AuditBroken { seq, .. }) => seq,
            other => panic!("tampering went unnoticed: {other:?}"),
        }
    }

    #[test]
    fn an_empty_chain_verifies() {
        let (_dir, store) = open();
        let report = store.verify_audit().unwrap();
        assert_eq!(report.records, 0);
        assert_eq!(report.head, GENESIS);
        assert!(store.audit_records(0, 10).unwrap().is_empty());
    }

    #[test]
    fn a_chain_of_five_records_verifies() {
        let (_dir, store, records) = chain_of_five();
        assert_eq!(
            records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(records[0].prev, GENESIS);
        for pair in records.windows(2) {
            assert_eq!(pair[1].prev, pair[0].hash);
            assert_ne!(pair[1].hash, pair[0].hash);
        }
        let report = store.verify_audit().unwrap();
        assert_eq!(report.records, 5);
        assert_eq!(report.head, records[4].hash);

        assert_eq!(store.audit_records(0, 100).unwrap(), records);
        assert_eq!(store.audit_records(2, 2).unwrap(), records[2..4]);
        assert!(store.audit_records(5, 10).unwrap().is_empty());
        assert_eq!(records[2].event.detail, "n=3");
    }

    #[test]
    fn editing_a_record_is_detected_at_that_record() {
        let (_dir, store, _) = chain_of_five();
        let mut record = raw_record(&store, 3);
        let sealed = record["sealed"].as_str().unwrap().to_string();
        let (rest, last) = sealed.split_at(sealed.len() - 1);
        record["sealed"] = format!("{rest}{}", if last == "0" { "1" } else { "0" }).into();
        write_raw(&store, 3, &record);
        assert_eq!(broken_at(&store), 3);
    }

    #[test]
    fn events_are_sealed_at_rest_and_bound_to_their_record() {
        let (_dir, store, records) = chain_of_five();
        let raw = store.kv().get(AUDIT, &3u64.to_be_bytes()).unwrap().unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(
            !text.contains("account:3") && !text.contains("operator"),
            "{text}"
        );
        // A sealed event moved onto another record does not open there.
        let mut moved = raw_record(&store, 3);
        moved["sealed"] = raw_record(&store, 2)["sealed"].clone();
        write_raw(&store, 3, &moved);
        assert!(store.audit_records(2, 1).is_err());
        write_raw(&store, 3, &serde_json::to_value(&records[2]).unwrap());
    }

    #[test]
    fn records_written_in_clear_before_sealing_still_verify_and_read() {
        let (_dir, store) = open();
        // Two records as they were written before events were sealed.
        let mut prev = GENESIS.to_string();
        let mut head = None;
        for seq in 1..=2u64 {
            let event = AuditEvent::new("operator", "account.create", format!("account:{seq}"));
            let hash = hash_of(seq, 100, &event, &prev);
            let record = AuditRecord {
                seq,
                at: 100,
                event,
                prev: prev.clone(),
                hash: hash.clone(),
            };
            write_raw(&store, seq, &serde_json::to_value(&record).unwrap());
            head = Some(Head {
                seq,
                hash: hash.clone(),
            });
            prev = hash;
        }
        let mut batch = Batch::new();
        batch.put(META, HEAD, json(&head.unwrap()));
        assert_eq!(store.kv().commit(&batch).unwrap(), Commit::Done);
        let third = store
            .audit(AuditEvent::new("operator", "account.delete", "account:1"))
            .unwrap();
        assert_eq!(third.prev, prev);
        assert_eq!(store.verify_audit().unwrap().records, 3);
        let read = store.audit_records(0, 10).unwrap();
        assert_eq!(read[1].event.subject, "account:2");
        assert_eq!(read[2], third);
    }

    #[test]
    fn removing_a_middle_record_is_detected() {
        let (_dir, store, _) = chain_of_five();
        remove(&store, AUDIT, &3u64.to_be_bytes());
        assert_eq!(broken_at(&store), 3);
    }

    #[test]
    fn removing_the_first_record_is_detected() {
        let (_dir, store, _) = chain_of_five();
        remove(&store, AUDIT, &1u64.to_be_bytes());
        assert_eq!(broken_at(&store), 1);
    }

    #[test]
    fn removing_the_last_record_is_detected_by_the_head() {
        let (_dir, store, _) = chain_of_five();
        remove(&store, AUDIT, &5u64.to_be_bytes());
        assert_eq!(broken_at(&store), 5);
    }

    #[test]
    fn removing_the_head_is_detected() {
        let (_dir, store, _) = chain_of_five();
        remove(&store, META, HEAD);
        assert_eq!(broken_at(&store), 5);
    }

    #[test]
    fn an_edited_record_with_a_recomputed_hash_is_detected_by_the_next_link() {
        let (_dir, store, records) = chain_of_five();
        let mut forged = records[2].clone();
        forged.event.detail = "forged".into();
        forged.hash = hash_of(forged.seq, forged.at, &forged.event, &forged.prev);
        write_raw(&store, 3, &serde_json::to_value(&forged).unwrap());
        assert_eq!(broken_at(&store), 4);
    }

    #[test]
    fn an_edited_last_record_with_a_recomputed_hash_is_detected_by_the_head() {
        let (_dir, store, records) = chain_of_five();
        let mut forged = records[4].clone();
        forged.event.actor = "someone-else".into();
        forged.hash = hash_of(forged.seq, forged.at, &forged.event, &forged.prev);
        write_raw(&store, 5, &serde_json::to_value(&forged).unwrap());
        match store.verify_audit() {
            Err(StoreError::AuditBroken { seq: 5, reason }) => {
                assert!(reason.contains("altered"), "{reason}");
            }
            other => panic!("expected the head to catch record 5: {other:?}"),
        }
    }

    #[test]
    fn appending_after_a_verified_chain_extends_it() {
        let (_dir, store, records) = chain_of_five();
        let sixth = store
            .audit(AuditEvent::new("operator", "account.delete", "account:1"))
            .unwrap();
        assert_eq!(sixth.seq, 6);
        assert_eq!(sixth.prev, records[4].hash);
        assert!(sixth.event.detail.is_empty());
        assert_eq!(store.verify_audit().unwrap().records, 6);
    }

    #[test]
    fn concurrent_appends_form_one_chain() {
        let (_dir, store) = open();
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..10 {
                        store
                            .audit(AuditEvent::new(
                                format!("worker-{t}"),
                                "test.append",
                                format!("{i}"),
                            ))
                            .unwrap();
                    }
                });
            }
        });
        let report = store.verify_audit().unwrap();
        assert_eq!(report.records, 40);
        let records = store.audit_records(0, 100).unwrap();
        assert_eq!(records.len(), 40);
        for t in 0..4 {
            let actor = format!("worker-{t}");
            assert_eq!(
                records.iter().filter(|r| r.event.actor == actor).count(),
                10
            );
        }
    }
}
