//! Filing cost (issue 6 "Benchmark"): a 1 MiB document in an XDM archive, and a 100-document
//! subset. Ignored by default; run with
//! `cargo test -p mshub-vault --test throughput -- --ignored --nocapture` (numbers from a
//! debug build are pessimistic: the goal, under 20 ms per 1 MiB document, is for release).

mod common;

use std::time::Instant;

use common::*;

fn noise(len: usize, seed: u64) -> Vec<u8> {
    // A PDF header then xorshift bytes: incompressible, like a scanned PDF's image streams.
    let mut x = seed | 1;
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((pdf.len()..len).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    pdf
}

#[test]
#[ignore = "a benchmark, not a test: bench/vault-filing.sh runs it in release"]
fn filing_throughput() {
    let hub = hub();
    let to = format!("{CAMILLE_INS}@patient.mshub.test");

    let rounds = 5;
    let mut total = std::time::Duration::ZERO;
    for i in 0..rounds {
        let doc = XdmDoc::new("DOC0001.PDF", "11502-2", "Gros PDF", &noise(1 << 20, i + 1));
        let raw = message(
            &to,
            &[(
                "IHE_XDM.ZIP",
                "application/zip",
                &xdm_zip(&[("SUBSET01", vec![doc])]),
            )],
            "",
        );
        let start = Instant::now();
        let filing = hub.file_for_camille(&raw);
        total += start.elapsed();
        assert_eq!(filing.documents().len(), 1, "{filing:?}");
    }
    println!(
        "1 MiB XDM document: {:.1} ms per filing",
        total.as_secs_f64() * 1000.0 / rounds as f64
    );

    let docs: Vec<XdmDoc> = (0..100)
        .map(|i| {
            XdmDoc::new(
                &format!("DOC{i:04}.PDF"),
                "11502-2",
                &format!("Résultat {i}"),
                &pdf(&format!("résultat {i}")),
            )
        })
        .collect();
    let raw = message(
        &to,
        &[(
            "IHE_XDM.ZIP",
            "application/zip",
            &xdm_zip(&[("SUBSET01", docs)]),
        )],
        "",
    );
    let start = Instant::now();
    let filing = hub.file_for_camille(&raw);
    let elapsed = start.elapsed();
    assert_eq!(filing.documents().len(), 100);
    println!(
        "100-document subset: {:.0} ms ({:.1} ms per document)",
        elapsed.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64() * 10.0
    );
    let start = Instant::now();
    let listed = hub.vault.documents_for_patient(&hub.camille).unwrap().len();
    println!(
        "listing {listed} documents: {:.0} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
}
