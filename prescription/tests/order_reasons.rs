//! What a prescriber reads when an `ordonnance.json` is refused: every problem of the
//! document at once, in French, each naming the field as the prescriber's software writes it;
//! and which attachments are taken for a prescription at all.

use mshub_prescription::order::{find_order, parse_order, MAX_PROBLEMS};

fn good() -> String {
    r#"{"version":1,"prescriber":{"rpps":"10003456786"},"patient":{"ins":"284057511204339"},
"date":"2026-11-26","lines":[
 {"drug":"Amoxicilline 1 g, comprimé","dose":"1 comprimé matin et soir","duration":"7 jours","quantity":2,"renewals":0},
 {"drug":"Paracétamol 500 mg","dose":"1 à 2 comprimés si douleur","duration":"1 mois","quantity":1,"renewals":2}
]}"#
    .to_string()
}

fn reason(text: &str) -> String {
    parse_order(text.as_bytes()).unwrap_err().to_string()
}

#[test]
fn every_problem_is_named_with_its_field_path_in_french() {
    let text = r#"{"version":1,"prescriber":{"rpps":"10003456786"},
"date":"2026-02-30","validity_days":400,"lines":[
 {"drug":"Amoxicilline","dose":"1 matin","duration":"7 jours","quantity":2},
 {"drug":" ","dose":"1 soir","duration":"1 mois","quantity":-1,"renewals":13,"note":"x"}
]}"#;
    let got = reason(text);
    for expected in [
        "champ « patient » manquant",
        "« date » n'est pas une date réelle au format AAAA-MM-JJ, trouvé « 2026-02-30 »",
        "« validity_days » doit être un nombre entier de 1 à 365, trouvé « 400 »",
        "« lines[1].drug » (ligne 2) est vide",
        "« lines[1].quantity » (ligne 2) doit être un nombre entier de 1 à 99, trouvé « -1 »",
        "« lines[1].renewals » (ligne 2) doit être un nombre entier de 0 à 12, trouvé « 13 »",
        "champ « lines[1].note » inconnu",
    ] {
        assert!(got.contains(expected), "{expected:?} missing from: {got}");
    }
    assert!(got.contains("7 problèmes"), "{got}");
    assert!(!got.contains("missing field"), "{got}");
}

#[test]
fn nested_fields_and_types_are_named() {
    let text = good()
        .replace(r#""ins":"284057511204339""#, r#""nir":"1""#)
        .replace(r#""rpps":"10003456786""#, r#""rpps":10003456786"#)
        .replace(r#""quantity":2"#, r#""quantity":"2""#);
    let got = reason(&text);
    for expected in [
        "champ « patient.ins » manquant",
        "champ « patient.nir » inconnu",
        "« prescriber.rpps » doit être un texte, trouvé le nombre « 10003456786 »",
        "« lines[0].quantity » (ligne 1) doit être un nombre entier de 1 à 99, trouvé le texte « 2 »",
    ] {
        assert!(got.contains(expected), "{expected:?} missing from: {got}");
    }
}

#[test]
fn the_number_of_problems_reported_is_bounded() {
    let line = r#"{"drug":"","dose":"","duration":"","quantity":0}"#;
    let lines = vec![line; 20].join(",");
    let text = format!(
        r#"{{"version":1,"prescriber":{{"rpps":"1"}},"patient":{{"ins":"2"}},"date":"x","lines":[{lines}]}}"#
    );
    let got = reason(&text);
    let shown = got.matches(" ; ").count() + 1;
    assert!(shown <= MAX_PROBLEMS + 1, "{shown} parts: {got}");
    assert!(got.contains("et 61 autres problèmes"), "{got}");
}

#[test]
fn a_json_syntax_error_gives_its_line_and_column_in_french() {
    let got = reason("{\n  \"version\": 1,\n  \"patient\": {\"ins\": \"1\"},\n}\n");
    assert!(
        got.contains("JSON illisible ligne 4, colonne 1 : virgule en trop"),
        "{got}"
    );
    let got = reason("{\"version\": 1,\n \"date\": \"2026-11-26");
    assert!(got.contains("ligne 2"), "{got}");
    assert!(got.contains("se termine avant la fin"), "{got}");
    assert!(!got.contains("EOF"), "{got}");
    let got = reason("[1, 2]");
    assert!(got.contains("doit être un objet JSON"), "{got}");
    let got = reason("{\"version\":1}\u{0}\u{ff}");
    assert!(got.contains("JSON illisible"), "{got}");
}

#[test]
fn an_unknown_version_is_the_only_problem_reported() {
    let got = reason(&good().replace("\"version\":1", "\"version\":2"));
    assert!(
        got.contains("version 2 de l'ordonnance inconnue (seule la version 1 est lue)"),
        "{got}"
    );
    let got = reason(&good().replace("\"version\":1,", ""));
    assert!(got.contains("champ « version » manquant"), "{got}");
}

#[test]
fn a_good_order_still_parses() {
    let order = parse_order(good().as_bytes()).unwrap();
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.lines[1].renewals, 2);
    let mut defaults = good().replace(r#","quantity":2,"renewals":0"#, "");
    defaults = defaults.replace(r#""date""#, r#""validity_days":null,"date""#);
    let order = parse_order(defaults.as_bytes()).unwrap();
    assert_eq!(order.lines[0].quantity, 1);
    assert_eq!(order.validity_days, None);
}

#[test]
fn an_oversized_order_is_refused_by_its_size() {
    let text = format!("{}{}", good(), " ".repeat(70 * 1024));
    assert!(reason(&text).contains("dépasse 64 Kio"));
}

fn message(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut m = b"From: a@b.test\r\nTo: c@d.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
        Content-Type: text/plain\r\n\r\nBonjour\r\n"
        .to_vec();
    for (name, mime, content) in parts {
        m.extend_from_slice(b"--B\r\nContent-Type: ");
        m.extend_from_slice(mime.as_bytes());
        if !name.is_empty() {
            m.extend_from_slice(b"\r\nContent-Disposition: attachment; filename=\"");
            m.extend_from_slice(name.as_bytes());
            m.extend_from_slice(b"\"");
        }
        m.extend_from_slice(b"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        let b64 = base64_encode(content);
        for chunk in b64.as_bytes().chunks(76) {
            m.extend_from_slice(chunk);
            m.extend_from_slice(b"\r\n");
        }
    }
    m.extend_from_slice(b"--B--\r\n");
    m
}

fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn found(raw: &[u8]) -> Option<Result<Vec<u8>, String>> {
    assert!(
        mshub_prescription::may_carry_order(raw),
        "the prefilter lets it through"
    );
    find_order(raw).map(|r| r.map_err(|e| e.to_string()))
}

#[test]
fn a_prescription_is_recognised_under_other_names() {
    let order = good();
    for name in [
        "Ordonnance_Dupont.json",
        "ordonnance (1).json",
        "ORDONNANCE.JSON",
        "export.json",
    ] {
        let raw = message(&[(name, "application/octet-stream", order.as_bytes())]);
        let bytes = found(&raw)
            .unwrap_or_else(|| panic!("{name} not recognised"))
            .unwrap();
        assert!(parse_order(&bytes).is_ok(), "{name}");
    }
    // No name at all: the media type and the content's shape.
    let raw = message(&[("", "application/json", order.as_bytes())]);
    assert!(found(&raw).is_some_and(|r| r.is_ok()));
}

#[test]
fn json_that_is_not_a_prescription_is_left_alone() {
    let raw = message(&[(
        "resultats.json",
        "application/json",
        br#"{"version":1,"results":[1,2]}"#,
    )]);
    assert!(find_order(&raw).is_none());
    let raw = message(&[("notes.txt", "text/plain", good().as_bytes())]);
    assert!(find_order(&raw).is_none());
}

#[test]
fn something_named_a_prescription_that_is_not_one_says_why() {
    let raw = message(&[(
        "ordonnance (1).json",
        "application/json",
        b"{\"version\": 1,",
    )]);
    let bytes = found(&raw).expect("recognised").unwrap();
    let err = parse_order(&bytes).unwrap_err().to_string();
    assert!(err.contains("JSON illisible ligne 1, colonne 14"), "{err}");
}

#[test]
fn the_same_prescription_attached_twice_is_one() {
    let order = good();
    let raw = message(&[
        ("ordonnance.json", "application/json", order.as_bytes()),
        ("Ordonnance (1).json", "application/json", order.as_bytes()),
    ]);
    assert!(found(&raw).expect("recognised").is_ok());
}

#[test]
fn two_prescriptions_in_one_message_are_refused_by_name() {
    let order = good();
    let raw = message(&[
        ("ordonnance.json", "application/json", order.as_bytes()),
        (
            "Ordonnance_Dupont.json",
            "application/json",
            order.replace("2026-11-26", "2026-11-27").as_bytes(),
        ),
    ]);
    let err = found(&raw).expect("recognised").unwrap_err();
    assert!(err.contains("plusieurs ordonnances"), "{err}");
    assert!(err.contains("Ordonnance_Dupont.json"), "{err}");
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn a_prescription_embedded_in_a_pdf_attachment_is_recognised() {
    let pdf = fixture("ordonnance-jointe.pdf");
    let raw = message(&[("Ordonnance Dupont.pdf", "application/pdf", &pdf)]);
    let file = mshub_prescription::order::find_order_file(&raw)
        .expect("recognised")
        .unwrap();
    assert_eq!(
        file.name,
        "Ordonnance Dupont.pdf (fichier joint au PDF « ordonnance.json »)"
    );
    let order = parse_order(&file.bytes).unwrap();
    assert_eq!(order.lines[0].drug, "Amoxicilline 1 g");
    // A PDF with nothing embedded is not a prescription.
    let raw = message(&[(
        "cr.pdf",
        "application/pdf",
        &fixture("sans-fichier-joint.pdf"),
    )]);
    assert!(find_order(&raw).is_none());
}

#[test]
fn an_unreadable_prescription_in_a_pdf_says_why() {
    let mut pdf = fixture("ordonnance-jointe.pdf");
    pdf.extend_from_slice(b"trailer\n<< /Encrypt 9 0 R >>\n");
    let raw = message(&[("ordo.pdf", "application/pdf", &pdf)]);
    let err = found(&raw).expect("recognised").unwrap_err();
    assert!(
        err.contains("« ordonnance.json »") && err.contains("le PDF est chiffré"),
        "{err}"
    );
}
