//! Cost of the care-relationship check on a document read (issue "vault", care relationships:
//! "the access check adds under 1 ms at p99 to a document read with 10,000 relationships in
//! the store"). Ignored by default; `bench/vault-access.sh` runs it in release:
//! `cargo test --release -p mshub-vault --test access_bench -- --ignored --nocapture`.
//!
//! A real store (the test fixture: sled in a temporary directory, sealed records, audit chain)
//! with 1,000 more patients, 200 more professionals and 10,000 recorded relationships
//! (Follows and Grant) spread over them; 10 of the patients have 3 PDF documents each, filed by
//! the lab like any delivery. Then, for each (patient, professional with a relationship,
//! document), interleaved, one after the other on one thread:
//! - `read_document` by the professional (settings, `standing`, matrix, audit record);
//! - `read_document` of the same document by the patient (settings only: no relationship
//!   check, no audit record);
//! - and the parts alone: `standing` (the `vault-care` prefix scan and the dates kept in
//!   clear), the prefix scan alone, the opening of a link (an OpenPGP decryption, which the
//!   check no longer does: shown for comparison); `patient_settings` (the measured patients have a settings record: a médecin
//!   traitant who is not among the readers); one audit append like the read's (durable); the
//!   first-access marker commit a read does after the first (a failed check: no write); and
//!   the directory lookup of the filing organisation (the author ground, professionals only).
//!
//! Nothing here asserts a time: the figures are printed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mshub_directory::*;
use mshub_store::{AccountId, AuditEvent, Batch, Commit, Tree};
use mshub_vault::*;

const PATIENTS: usize = 1_000;
const PROFESSIONALS: usize = 200;
/// Relationships per patient: PATIENTS × this = 10,000.
const PER_PATIENT: usize = 10;
/// Patients whose documents are read (every 100th).
const MEASURED: usize = 10;
/// Passes over every (patient, professional, document) of the measured patients.
const ROUNDS: usize = 10;
/// Threads that build the store (they share the store's group-committed flushes).
const SETUP_THREADS: usize = 8;

fn patient(directory: &Directory, i: usize) -> Account {
    // NIR body: sex, year, month, department 75, commune, order; key computed.
    let sex = if i % 2 == 0 { Sex::Female } else { Sex::Male };
    let year = 1940 + (i % 60) as u16;
    let month = 1 + (i % 12) as u8;
    let body = format!(
        "{}{:02}{:02}75{:03}{:03}",
        if sex == Sex::Female { 2 } else { 1 },
        year % 100,
        month,
        100 + i / 900,
        1 + i % 900
    );
    let ins = ins_with_key(&body);
    directory
        .add_account(
            Address::try_from(format!("{ins}@patient.mshub.test").as_str()).unwrap(),
            AccountKind::Patient {
                ins: Ins::try_from(ins.as_str()).unwrap(),
                given_name: format!("Patient{i}"),
                family_name: "Banc".into(),
                birth_date: BirthDate::try_from(format!("{year}-{month:02}-15").as_str()).unwrap(),
                sex,
            },
            None,
            "bench",
        )
        .unwrap()
}

fn professional(directory: &Directory, i: usize) -> Account {
    directory
        .add_account(
            Address::try_from(format!("pro{i:03}@chu.mshub.test").as_str()).unwrap(),
            AccountKind::Professional {
                rpps: rpps(1_000_500_000 + i as u64),
                given_name: "Banc".into(),
                family_name: format!("Pro{i:03}"),
                // Physicians: the matrix lets them see every category, so every measured
                // read is allowed on the care ground.
                profession: Profession::Physician,
                specialty: String::new(),
                city: String::new(),
            },
            None,
            "bench",
        )
        .unwrap()
}

/// The professionals (indices) patient `p` has a relationship with: 10 distinct ones.
fn team(p: usize) -> impl Iterator<Item = usize> {
    (0..PER_PATIENT).map(move |k| (p * 7 + k * (PROFESSIONALS / PER_PATIENT)) % PROFESSIONALS)
}

/// `f` over `0..n`, split among the setup threads; results in index order.
fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        let chunk = n.div_ceil(SETUP_THREADS);
        for (c, slots) in out.chunks_mut(chunk).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (j, slot) in slots.iter_mut().enumerate() {
                    *slot = Some(f(c * chunk + j));
                }
            });
        }
    });
    out.into_iter().map(Option::unwrap).collect()
}

fn three_pdfs(hub: &Hub, patient: &Account, n: usize) -> Vec<DocumentId> {
    let AccountKind::Patient { ins, .. } = &patient.kind else {
        unreachable!()
    };
    let docs: Vec<XdmDoc> = [
        ("11502-2", "Bilan sanguin"),
        ("18748-4", "Radio du thorax"),
        ("57833-6", "Ordonnance"),
    ]
    .into_iter()
    .enumerate()
    .map(|(j, (code, title))| {
        let mut d = XdmDoc::new(
            &format!("DOC000{}.PDF", j + 1),
            code,
            title,
            &pdf(&format!("{title} {n}")),
        );
        d.patient_id = format!("{ins}^^^&{INS_OID}&ISO");
        d
    })
    .collect();
    let raw = message(
        patient.address.as_str(),
        &[(
            "IHE_XDM.ZIP",
            "application/zip",
            &xdm_zip(&[("SUBSET01", docs)]),
        )],
        "",
    );
    let labo = Address::try_from(LABO).unwrap();
    let filing = hub.vault.file_message(patient, Some(&labo), &raw);
    let filed = filing.documents();
    assert_eq!(filed.len(), 3, "{filing:?}");
    filed
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

/// p50, p99 and max of `samples` (sorted in place), nearest-rank.
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    let rank = |p: usize| samples[(samples.len() * p).div_ceil(100).max(1) - 1];
    (rank(50), rank(99), *samples.last().unwrap())
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

#[test]
#[ignore = "a benchmark, not a test: bench/vault-access.sh runs it in release"]
fn access_check_with_10000_relationships() {
    let hub = hub();
    let setup = Instant::now();
    let patients = parallel(PATIENTS, |i| patient(&hub.directory, i));
    let pros = parallel(PROFESSIONALS, |i| professional(&hub.directory, i));
    let in_a_year = mshub_store::now() + 365 * 24 * 3600;
    parallel(PATIENTS, |p| {
        for (k, pro) in team(p).enumerate() {
            let (relationship, until) = match (p + k) % 4 {
                0 | 2 => (Relationship::Follows, None),
                1 => (Relationship::Grant, Some(in_a_year)),
                _ => (Relationship::Grant, None),
            };
            hub.vault
                .add_relationship(&patients[p], &pros[pro], relationship, until)
                .unwrap();
        }
    });
    let measured: Vec<usize> = (0..MEASURED).map(|m| m * (PATIENTS / MEASURED)).collect();
    let documents: Vec<Vec<DocumentId>> = measured
        .iter()
        .map(|&p| three_pdfs(&hub, &patients[p], p))
        .collect();
    // A settings record for each measured patient (as any patient who named a médecin
    // traitant has), so that `patient_settings` opens one, on both kinds of read.
    for &p in &measured {
        hub.vault
            .set_referring_doctor(&patients[p], Some(&hub.bernard.address))
            .unwrap();
    }
    let setup = setup.elapsed();

    // What the store holds: every recorded relationship, by kind (the key ends with its code).
    let care = hub
        .store
        .kv()
        .scan(Tree("vault-care"), &[], None, None)
        .unwrap();
    let follows = care.iter().filter(|(k, _)| k.last() == Some(&2)).count();
    let grants = care.iter().filter(|(k, _)| k.last() == Some(&3)).count();
    let mut pairs: Vec<&[u8]> = care.iter().map(|(k, _)| &k[..16]).collect();
    pairs.dedup();
    // The patients' own view agrees for the measured ones.
    for &p in &measured {
        let team = hub.vault.care_team(&patients[p]).unwrap();
        let linked = team
            .iter()
            .filter(|e| {
                e.links
                    .iter()
                    .any(|l| matches!(l.relationship, Relationship::Follows | Relationship::Grant))
            })
            .count();
        assert_eq!(linked, PER_PATIENT, "patient {p}: {team:?}");
    }

    // Every (measured patient, professional of its team, document).
    let cases: Vec<(usize, usize, DocumentId)> = measured
        .iter()
        .zip(&documents)
        .flat_map(|(&p, docs)| team(p).flat_map(move |pro| docs.iter().map(move |&d| (p, pro, d))))
        .collect();

    // Warm-up, not measured: each professional's first read of a patient's documents also
    // notifies the patient (once per pair).
    let mut first_reads = Vec::new();
    for &(p, pro, _) in cases.iter().step_by(3) {
        let d = documents[measured.iter().position(|&m| m == p).unwrap()][0];
        let (t, read) = time(|| hub.vault.read_document(&pros[pro], d));
        read.unwrap();
        first_reads.push(t);
    }

    let labo = Address::try_from(LABO).unwrap();
    let now = mshub_store::now();
    let ops = 9;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); ops];
    let mut read_bytes = 0usize;
    for round in 0..ROUNDS {
        for (c, &(p, pro, d)) in cases.iter().enumerate() {
            let patient = &patients[p];
            let viewer = &pros[pro];
            let settings = hub.vault.patient_settings(patient.id).unwrap();
            assert!(settings.referring_doctor.is_some());
            let mut pair = patient.id.to_key().to_vec();
            pair.extend_from_slice(&viewer.id.to_key());
            let links = hub
                .store
                .kv()
                .scan(Tree("vault-care"), &pair, None, None)
                .unwrap();
            assert_eq!(links.len(), 1);
            let link = links[0].1.clone();
            // Rotate the order so that no measurement always follows the same one.
            for o in 0..ops {
                let op = (o + round + c) % ops;
                let t = match op {
                    0 => {
                        let (t, bytes) = time(|| hub.vault.read_document(viewer, d));
                        read_bytes += bytes.unwrap().len();
                        t
                    }
                    1 => {
                        let (t, bytes) = time(|| hub.vault.read_document(patient, d));
                        read_bytes += bytes.unwrap().len();
                        t
                    }
                    2 => {
                        let (t, standing) =
                            time(|| hub.vault.standing(patient.id, viewer, &settings, now));
                        assert!(standing.unwrap().is_some());
                        t
                    }
                    3 => time(|| hub.vault.patient_settings(patient.id).unwrap()).0,
                    4 => {
                        // The same record the professional's read appends (another action name).
                        let event = AuditEvent::new(
                            viewer.address.as_str(),
                            "bench.document.read",
                            format!("document:{d}"),
                        )
                        .with_detail(format!(
                            "patient:{} ground:care:follows matrix:physician×biologie part:original",
                            patient.id
                        ));
                        time(|| hub.store.audit(event).unwrap()).0
                    }
                    5 => {
                        let (t, org) = time(|| hub.directory.account_by_address(&labo));
                        assert!(org.unwrap().is_some());
                        t
                    }
                    6 => {
                        let (t, found) = time(|| {
                            hub.store
                                .kv()
                                .scan(Tree("vault-care"), &pair, None, None)
                                .unwrap()
                        });
                        assert_eq!(found.len(), 1);
                        t
                    }
                    7 => {
                        // A stored link is since ‖ until ‖ owner ‖ OpenPGP message; the
                        // check reads the dates and no longer opens it (only to show it, or
                        // for an emergency's reason): measured for comparison.
                        let (owner, sealed) = link[16..].split_at(8);
                        let owner = AccountId(u64::from_be_bytes(owner.try_into().unwrap()));
                        let (t, plain) = time(|| hub.store.open_sealed(owner, sealed));
                        assert!(!plain.unwrap().is_empty());
                        t
                    }
                    _ => {
                        // What `first_access` commits on every read after the first.
                        let mut batch = Batch::new();
                        batch.check(Tree("vault-first-access"), pair.clone(), None);
                        batch.put(
                            Tree("vault-first-access"),
                            pair.clone(),
                            now.to_be_bytes().to_vec(),
                        );
                        let (t, commit) = time(|| hub.store.kv().commit(&batch).unwrap());
                        assert_eq!(commit, Commit::Conflict);
                        t
                    }
                };
                samples[op].push(t);
            }
        }
    }
    assert!(read_bytes > 0);

    let reads = hub.audits("document.read").len();
    let labels = [
        "read_document, professional with a relationship",
        "read_document, the patient (no check, no audit)",
        "standing() alone (scan, dates in clear)",
        "patient_settings() alone",
        "one audit append alone (durable)",
        "directory lookup of the filing lab (author ground)",
        "  vault-care prefix scan alone",
        "  opening a link (OpenPGP), no longer in the check",
        "first-access marker commit alone (check fails, no write)",
    ];
    let stats: Vec<(Duration, Duration, Duration)> =
        samples.iter_mut().map(|s| percentiles(s)).collect();
    println!();
    println!(
        "store: {} patients and {} professionals ({} + {} created here, the rest the fixture's); \
         setup {:.0} s",
        PATIENTS + 2,
        PROFESSIONALS + 6,
        PATIENTS,
        PROFESSIONALS,
        setup.as_secs_f64()
    );
    println!(
        "relationships in the store (scan of vault-care): {} ({follows} follows, {grants} grants) \
         over {} (patient, professional) pairs",
        care.len(),
        pairs.len()
    );
    println!(
        "measured: {} patients × {PER_PATIENT} professionals × 3 documents × {ROUNDS} rounds; \
         {} document.read audit records written",
        MEASURED, reads
    );
    println!();
    println!("| measured | n | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (label, (s, (p50, p99, max))) in labels.iter().zip(samples.iter().zip(&stats)) {
        println!(
            "| {label} | {} | {} | {} | {} |",
            s.len(),
            us(*p50),
            us(*p99),
            us(*max)
        );
    }
    let mut first = first_reads.clone();
    let (f50, f99, fmax) = percentiles(&mut first);
    println!(
        "| (warm-up) first read of a pair, notifies the patient | {} | {} | {} | {} |",
        first_reads.len(),
        us(f50),
        us(f99),
        us(fmax)
    );
    println!();
    let added = stats[0].1.as_secs_f64() - stats[1].1.as_secs_f64();
    println!(
        "added by the check at p99: p99(professional read) − p99(patient read) = {:.1} µs \
         ({:.3} ms); p50: {:.1} µs",
        added * 1e6,
        added * 1e3,
        (stats[0].0.as_secs_f64() - stats[1].0.as_secs_f64()) * 1e6
    );
    println!(
        "standing() alone at p99: {} ({:.3} ms)",
        us(stats[2].1),
        stats[2].1.as_secs_f64() * 1e3
    );
}
