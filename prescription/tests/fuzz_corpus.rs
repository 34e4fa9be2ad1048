//! The fuzz targets' corpora (`fuzz/corpus/<target>/`) and crash reproducers
//! (`fuzz/artifacts/<target>/`), replayed through the same harnesses (`fuzz/harness/`) as
//! ordinary tests: a panic on any of them fails. See fuzz/README.md.

#[path = "../../fuzz/harness/prescription_order.rs"]
mod prescription_order;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn prescription_order_corpus() {
    replay::replay("prescription_order", prescription_order::run);
}

/// The MIME corpus, through the prescription's prefilter.
#[test]
fn mime_message_corpus() {
    replay::replay("mime_message", |data| {
        let _ = mshub_prescription::may_carry_order(data);
    });
}

/// Hostile inputs of the formats a prescription is recognised in (JSON under any name, a PDF
/// embedding one), through the same harness: none may panic or run unbounded.
#[test]
fn hostile_pdfs_and_json_through_the_harness() {
    let wrap = |name: &str, mime: &str, content: &[u8]| {
        let mut m = format!(
            "From: a@b.test\r\nTo: c@d.test\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
             Content-Type: {mime}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
        )
        .into_bytes();
        m.extend_from_slice(content);
        m.extend_from_slice(b"\r\n--B--\r\n");
        m
    };
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let pdfs: Vec<Vec<u8>> = vec![
        b"%PDF-1.7\n1 0 obj << /EF << /F 1 0 R >> /F (ordonnance.json) >> endobj".to_vec(),
        b"%PDF-1.7\n2 0 obj << /EF << /F 3 0 R >> /UF <feff00> >> endobj\n3 0 obj << /Length 3 0 R /Filter /FlateDecode >> stream\nxx".to_vec(),
        format!("%PDF-1.7\n2 0 obj << /EF {deep} >> endobj").into_bytes(),
        b"%PDF-1.7\n5 0 obj << /Type /ObjStm /N 4294967295 /First -1 /Length 1 >> stream\nx\nendstream endobj /EF".to_vec(),
        b"%PDF-1.7\n9 0 obj (\\".to_vec(),
        [b"%PDF-1.7\n".as_slice(), &b"0 0 obj /EF ".repeat(50_000)].concat(),
    ];
    for pdf in &pdfs {
        prescription_order::run(&wrap("ordonnance.pdf", "application/pdf", pdf));
        prescription_order::run(pdf);
    }
    let json: Vec<Vec<u8>> = vec![
        deep.clone().into_bytes(),
        format!("{{\"lines\":{deep},\"patient\":1}}").into_bytes(),
        b"{\"prescriber\":{},\"patient\":[],\"lines\":[1,null,{\"quantity\":1e999}]}".to_vec(),
        b"{\"version\":18446744073709551616,\"lines\":{}}".to_vec(),
        vec![0xFF; 100],
    ];
    for j in &json {
        prescription_order::run(&wrap("Ordonnance (2).json", "application/json", j));
        prescription_order::run(&wrap("x.bin", "application/json", j));
    }
}
