//! The patient space's lifecycle over a real embedded store, with a clock the test drives:
//! roster import, opposition, automatic opening, early activation, closing, reopening and
//! destruction after the retention delay.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use mshub_directory::*;
use mshub_store::{MasterKey, SpecialUse, Store};

const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const DAY: i64 = 86_400;
/// The test's "now": 2026-01-01.
const T0: i64 = 1_767_225_600;

fn directory() -> (tempfile::TempDir, Directory) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap();
    let directory =
        Directory::open(Arc::new(store), Domain::try_from("mshub.test").unwrap()).unwrap();
    directory.set_lifecycle_policy(LifecyclePolicy {
        opposition_secs: 30 * DAY,
        retention_secs: 90 * DAY,
    });
    (dir, directory)
}

/// A valid INS for a woman born in May 1984, numbered `n`.
fn ins(n: u32) -> Ins {
    let body = format!("28405751{:05}", n % 100_000);
    let key = 97 - body.parse::<u64>().unwrap() % 97;
    Ins::try_from(format!("{body}{key:02}").as_str()).unwrap()
}

fn patient(n: u32) -> RosterPatient {
    RosterPatient {
        ins: ins(n),
        given_name: format!("Camille{n}"),
        family_name: "Durand".into(),
        birth_date: BirthDate::try_from("1984-05-12").unwrap(),
        sex: Sex::Female,
    }
}

fn import_one(dir: &Directory, n: u32, now: i64) -> (Account, String) {
    match dir
        .import_patients(&[patient(n)], now, "operator")
        .unwrap()
        .remove(0)
    {
        RosterOutcome::Created { account, code, .. } => (*account, code),
        other => panic!("not created: {other:?}"),
    }
}

fn birth() -> BirthDate {
    BirthDate::try_from("1984-05-12").unwrap()
}

fn state(dir: &Directory, address: &Address) -> Lifecycle {
    dir.account_by_address(address).unwrap().unwrap().lifecycle
}

fn audit_actions(dir: &Directory, subject: &Address) -> Vec<String> {
    dir.store()
        .audit_records(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.subject == subject.as_str())
        .map(|r| r.event.action)
        .collect()
}

fn deliver(dir: &Directory, account: &Account, text: &str) -> mshub_store::BlobId {
    let inbox = dir
        .store()
        .special_mailbox(account.id, SpecialUse::Inbox)
        .unwrap();
    dir.store()
        .append(inbox.id, text.as_bytes(), BTreeSet::new(), T0)
        .unwrap()
        .blob
}

#[test]
fn imported_spaces_are_pending_without_keys_and_reimport_changes_nothing() {
    let (_tmp, dir) = directory();
    let roster: Vec<_> = (1..=5).map(patient).collect();
    let outcomes = dir.import_patients(&roster, T0, "operator").unwrap();
    assert_eq!(outcomes.len(), 5);
    for o in &outcomes {
        let RosterOutcome::Created {
            account,
            opposition_deadline,
            ..
        } = o
        else {
            panic!("{o:?}");
        };
        assert_eq!(*opposition_deadline, T0 + 30 * DAY);
        assert_eq!(
            account.lifecycle,
            Lifecycle::Pending {
                opposition_deadline: T0 + 30 * DAY
            }
        );
        // Key generation is deferred to the first need.
        assert!(!dir.store().has_account_key(account.id).unwrap());
    }
    let again = dir.import_patients(&roster, T0 + DAY, "operator").unwrap();
    assert!(
        again.iter().all(|o| *o == RosterOutcome::Unchanged),
        "{again:?}"
    );
    // The same INS with other traits is refused, not overwritten.
    let mut other = patient(1);
    other.given_name = "Claude".into();
    let refused = dir.import_patients(&[other], T0, "operator").unwrap();
    assert!(matches!(&refused[0], RosterOutcome::Refused(r) if r.contains("other identity")));
    // A birth year that contradicts the INS.
    let mut wrong = patient(9);
    wrong.birth_date = BirthDate::try_from("1990-05-12").unwrap();
    let refused = dir.import_patients(&[wrong], T0, "operator").unwrap();
    assert!(matches!(&refused[0], RosterOutcome::Refused(r) if r.contains("birth year")));
    // Each creation is in the audit chain, which still verifies.
    let a = dir.patient_address(&ins(3));
    assert_eq!(audit_actions(&dir, &a), ["account.create"]);
    dir.store().verify_audit().unwrap();
}

#[test]
fn opposed_space_is_never_opened_nor_recreated_and_its_content_is_destroyed() {
    let (_tmp, dir) = directory();
    let (account, code) = import_one(&dir, 1, T0);
    // Mail filed while pending: keys and mailboxes appear on first need.
    let blob = deliver(&dir, &account, "Subject: resultats\r\n\r\nmarker\r\n");
    assert!(dir.store().has_account_key(account.id).unwrap());
    // Wrong code, wrong birth date, unknown INS: one and the same refusal.
    for (i, b, c) in [
        (ins(1), birth(), "AAAA-AAAA-AAAA"),
        (
            ins(1),
            BirthDate::try_from("1984-05-13").unwrap(),
            code.as_str(),
        ),
        (ins(2), birth(), code.as_str()),
    ] {
        assert!(matches!(
            dir.oppose_with_code(&i, &b, c, T0 + DAY, HOME),
            Err(DirectoryError::BadActivationCode)
        ));
    }
    let opposed = dir
        .oppose_with_code(&ins(1), &birth(), &code.to_lowercase(), T0 + DAY, HOME)
        .unwrap();
    assert_eq!(opposed.lifecycle, Lifecycle::Opposed { at: T0 + DAY });
    assert!(
        matches!(&opposed.kind, AccountKind::Patient { given_name, .. } if given_name.is_empty())
    );
    // The content went with the keys.
    assert!(!dir.store().has_account_key(account.id).unwrap());
    assert!(dir.store().mailboxes(account.id).unwrap().is_empty());
    assert!(dir.store().read_blob(account.id, blob).is_err());
    // The deadline passes: it stays opposed.
    let report = dir.tick(T0 + 31 * DAY, 100).unwrap();
    assert!(report.opened.is_empty());
    assert!(matches!(
        state(&dir, &account.address),
        Lifecycle::Opposed { .. }
    ));
    // A later import does not recreate it.
    let again = dir
        .import_patients(&[patient(1)], T0 + 60 * DAY, "operator")
        .unwrap();
    assert!(matches!(&again[0], RosterOutcome::Refused(r) if r.contains("opposed")));
    // Neither the code nor an operator can oppose twice or activate it.
    assert!(dir
        .activate(&ins(1), &birth(), &code, "a long password!", T0, HOME)
        .is_err());
    assert!(matches!(
        dir.oppose(&account.address, T0, "operator"),
        Err(DirectoryError::WrongState { .. })
    ));
    let actions = audit_actions(&dir, &account.address);
    assert_eq!(actions, ["account.create", "space.oppose"]);
}

#[test]
fn without_an_answer_the_space_opens_at_the_deadline_and_the_code_then_sets_a_password() {
    let (_tmp, dir) = directory();
    let (account, code) = import_one(&dir, 1, T0);
    let msg = deliver(&dir, &account, "Subject: compte rendu\r\n\r\nwaiting\r\n");
    let report = dir.tick(T0 + 30 * DAY - 1, 100).unwrap();
    assert!(report.opened.is_empty());
    assert!(matches!(
        state(&dir, &account.address),
        Lifecycle::Pending { .. }
    ));
    let report = dir.tick(T0 + 30 * DAY, 100).unwrap();
    assert_eq!(report.opened, vec![account.address.clone()]);
    assert_eq!(state(&dir, &account.address), Lifecycle::Active);
    // Opening twice does nothing.
    assert!(dir.tick(T0 + 31 * DAY, 100).unwrap().opened.is_empty());
    // No password yet: the code of the notice still lets the patient choose one.
    let active = dir
        .activate(
            &ins(1),
            &birth(),
            &code,
            "correct horse battery",
            T0 + 32 * DAY,
            HOME,
        )
        .unwrap();
    assert!(active.activation_code.is_none());
    let logged = dir
        .authenticate(
            account.address.as_str(),
            "correct horse battery",
            HOME,
            Door::Web,
        )
        .unwrap();
    assert_eq!(logged.id, account.id);
    // What was filed while pending is there.
    let inbox = dir
        .store()
        .special_mailbox(account.id, SpecialUse::Inbox)
        .unwrap();
    let messages = dir.store().messages(inbox.id).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].blob, msg);
    // The code is single use.
    assert!(matches!(
        dir.activate(
            &ins(1),
            &birth(),
            &code,
            "another long password",
            T0 + 33 * DAY,
            HOME
        ),
        Err(DirectoryError::BadActivationCode)
    ));
    assert_eq!(
        audit_actions(&dir, &account.address),
        ["account.create", "space.open", "space.activate"]
    );
}

#[test]
fn early_activation_needs_a_long_password_and_opens_at_once() {
    let (_tmp, dir) = directory();
    let (account, code) = import_one(&dir, 1, T0);
    // Pending: no login possible (no password at all).
    assert!(dir
        .authenticate(
            account.address.as_str(),
            "whatever-password",
            HOME,
            Door::Web
        )
        .is_err());
    assert!(matches!(
        dir.activate(&ins(1), &birth(), &code, "too short", T0 + DAY, HOME),
        Err(DirectoryError::WeakPassword(_))
    ));
    let a = dir
        .activate(&ins(1), &birth(), &code, "twelve chars!", T0 + DAY, HOME)
        .unwrap();
    assert_eq!(a.lifecycle, Lifecycle::Active);
    assert!(dir.store().has_account_key(a.id).unwrap());
    assert!(dir.store().special_mailbox(a.id, SpecialUse::Inbox).is_ok());
    dir.authenticate(account.address.as_str(), "twelve chars!", HOME, Door::Web)
        .unwrap();
    // The deadline passing later changes nothing; opposition is no longer possible.
    assert!(dir.tick(T0 + 40 * DAY, 100).unwrap().opened.is_empty());
    assert!(matches!(
        dir.oppose(&account.address, T0 + 2 * DAY, "operator"),
        Err(DirectoryError::WrongState { .. })
    ));
}

#[test]
fn close_reopen_close_then_destroyed_after_the_retention_delay() {
    let (tmp, dir) = directory();
    let (account, code) = import_one(&dir, 1, T0);
    dir.activate(&ins(1), &birth(), &code, "correct horse battery", T0, HOME)
        .unwrap();
    // A message large enough to live in the blob directory, and a small inline one.
    // Hex of a pseudo-random sequence: does not compress below the inline limit.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let noise: String = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdef"[(x % 16) as usize])
        })
        .collect();
    let big = format!("Subject: imagerie\r\n\r\n{noise}\r\n");
    let big_blob = deliver(&dir, &account, &big);
    let small_blob = deliver(&dir, &account, "Subject: ordonnance\r\n\r\nsmall\r\n");
    let blob_file = tmp
        .path()
        .join("blobs")
        .join(&big_blob.to_string()[..2])
        .join(big_blob.to_string());
    assert!(blob_file.exists(), "{}", blob_file.display());

    let closed = dir
        .close(&account.address, T0 + DAY, &account.address.to_string())
        .unwrap();
    assert_eq!(
        closed.lifecycle,
        Lifecycle::Closed {
            at: T0 + DAY,
            destroy_after: T0 + 91 * DAY
        }
    );
    // Closed: the password is right but the space is not open, and says so.
    assert!(matches!(
        dir.authenticate(
            account.address.as_str(),
            "correct horse battery",
            HOME,
            Door::Web
        ),
        Err(DirectoryError::NotOpen { .. })
    ));
    assert!(matches!(
        dir.authenticate(
            account.address.as_str(),
            "correct horse battery",
            HOME,
            Door::Mail
        ),
        Err(DirectoryError::Disabled(_))
    ));
    // Reopened with the password during the delay.
    let reopened = dir
        .reopen_with_password(
            account.address.as_str(),
            "correct horse battery",
            T0 + 10 * DAY,
            HOME,
        )
        .unwrap();
    assert_eq!(reopened.lifecycle, Lifecycle::Active);
    // Closed again; the first close's deadline no longer counts.
    dir.close(&account.address, T0 + 20 * DAY, "operator")
        .unwrap();
    let report = dir.tick(T0 + 91 * DAY, 100).unwrap();
    assert!(report.destroyed.is_empty(), "{report:?}");
    assert!(dir.store().has_account_key(account.id).unwrap());
    // After the delay it can no longer be reopened, and the tick destroys it.
    assert!(dir
        .reopen(&account.address, T0 + 110 * DAY, "operator")
        .is_err());
    let report = dir.tick(T0 + 110 * DAY, 100).unwrap();
    assert_eq!(report.destroyed, vec![account.address.clone()]);
    assert_eq!(
        state(&dir, &account.address),
        Lifecycle::Destroyed { at: T0 + 110 * DAY }
    );
    // Content gone from the data directory: the blob file, the mailboxes, the key.
    assert!(!blob_file.exists());
    assert!(dir.store().mailboxes(account.id).unwrap().is_empty());
    assert!(!dir.store().has_account_key(account.id).unwrap());
    assert!(dir.store().read_blob(account.id, small_blob).is_err());
    let record = dir.account_by_address(&account.address).unwrap().unwrap();
    assert!(record.password_hash.is_none());
    assert!(
        matches!(&record.kind, AccountKind::Patient { family_name, .. } if family_name.is_empty())
    );
    // Not recreated by a later import, and every step is in the verified chain.
    let again = dir
        .import_patients(&[patient(1)], T0 + 200 * DAY, "operator")
        .unwrap();
    assert!(matches!(&again[0], RosterOutcome::Refused(_)));
    assert_eq!(
        audit_actions(&dir, &account.address),
        [
            "account.create",
            "space.activate",
            "space.close",
            "space.reopen",
            "space.close",
            "space.destroy"
        ]
    );
    dir.store().verify_audit().unwrap();
}

#[test]
fn a_large_roster_is_imported_in_batches_with_one_audit_record_each() {
    let (_tmp, dir) = directory();
    let roster: Vec<_> = (1..=3000).map(patient).collect();
    let before = dir.store().verify_audit().unwrap().records;
    let start = std::time::Instant::now();
    let mut created = 0;
    for chunk in roster.chunks(lifecycle::IMPORT_BATCH) {
        created += dir
            .import_patients(chunk, T0, "operator")
            .unwrap()
            .iter()
            .filter(|o| matches!(o, RosterOutcome::Created { .. }))
            .count();
    }
    assert_eq!(created, 3000);
    eprintln!("3000 patients imported in {:?}", start.elapsed());
    assert_eq!(dir.store().verify_audit().unwrap().records, before + 3000);
    // A later tick opens them all, by batches.
    let mut opened = 0;
    loop {
        let n = dir.tick(T0 + 30 * DAY, 1000).unwrap().opened.len();
        if n == 0 {
            break;
        }
        opened += n;
    }
    assert_eq!(opened, 3000);
}
