//! Finding 9, guessable document ids: documents were numbered 1, 2, 3… in every URL, so a
//! professional walked `/api/v1/documents/1..N` through every patient's vault as far as the
//! profession matrix let them. A document is now named by a reference that cannot be guessed
//! from another one; the numbers, and any reference guessed or altered, are 404 (never 403,
//! which would tell that the document exists).

use std::path::Path;
use std::time::Duration;

use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";

fn list(ca: &Path, port: u16) -> Vec<serde_json::Value> {
    let reply = curl(
        ca,
        port,
        &format!("/api/v1/patients/{CAMILLE_INS}/documents"),
        Some(MARTIN),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json().as_array().cloned().unwrap_or_default()
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

#[test]
fn sequential_and_altered_document_ids_are_not_found() {
    let mut hub = Instance::demo();
    let port = hub.https_port();
    let ca = hub.ca.clone();
    // dr.martin reads Camille's space (a care relationship): he wrote to her first.
    writes_to_camille(&hub, port, MARTIN);

    let sent = [
        ("bio.zip", "11502-2", "Bilan sanguin", "BIO-MARKER-71d"),
        ("rx.zip", "57833-6", "Ordonnance du 3 mars", "RX-MARKER-0e4"),
        (
            "img.zip",
            "18748-4",
            "Radiographie du genou",
            "IMG-MARKER-c52",
        ),
    ];
    for (name, loinc, title, marker) in sent {
        relay_xdm(&hub, name, loinc, title, marker);
    }
    let filed = poll(Duration::from_secs(30), Duration::from_millis(500), || {
        list(&ca, port).len() == sent.len()
    });
    assert!(filed, "not filed: {:?}", list(&ca, port));

    // The numbers a walker would try: none names a document, whoever asks.
    for n in 0..=12 {
        let reply = curl(&ca, port, &format!("/api/v1/documents/{n}"), Some(MARTIN));
        assert_eq!(reply.status, 404, "/api/v1/documents/{n}: {reply:?}");
    }

    // The listed ids work, and say nothing of the others.
    let listed = list(&ca, port);
    let ids: Vec<String> = listed
        .iter()
        .map(|d| {
            d["id"]
                .as_str()
                .unwrap_or_else(|| panic!("the id is not a string: {d}"))
                .to_string()
        })
        .collect();
    for (doc, id) in listed.iter().zip(&ids) {
        assert!(id.len() >= 20, "{id} is short");
        assert!(
            id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{id} needs escaping in a URL"
        );
        assert!(
            !id.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|part| part.parse::<u64>().is_ok()),
            "{id} carries a number"
        );
        let fetched = curl(&ca, port, &format!("/api/v1/documents/{id}"), Some(MARTIN));
        assert_eq!(fetched.status, 200, "{id}: {fetched:?}");
        let title = doc["title"].as_str().unwrap_or_default();
        let (_, _, _, marker) = sent
            .iter()
            .find(|(_, _, t, _)| *t == title)
            .unwrap_or_else(|| panic!("unexpected document {doc}"));
        assert!(contains(&fetched.body, marker), "{id} is not {title}");
    }
    for pair in ids.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_ne!(a, b);
        let reversed = |s: &str| s.chars().rev().collect::<String>();
        assert!(
            common_prefix(a, b) < 8 && common_prefix(&reversed(a), &reversed(b)) < 8,
            "consecutive documents {a} and {b} look alike"
        );
    }

    // Any change to a real id, or a well-formed id never issued: 404, not 403.
    let id = &ids[0];
    let mut forged: Vec<String> = Vec::new();
    for at in [0, id.len() / 2, id.len() - 1] {
        let mut chars: Vec<char> = id.chars().collect();
        chars[at] = if chars[at] == 'a' { 'b' } else { 'a' };
        forged.push(chars.into_iter().collect());
    }
    forged.push("a".repeat(id.len()));
    forged.push(format!("{id}a"));
    forged.push(id[..id.len() - 1].to_string());
    forged.push(id.to_ascii_uppercase());
    for f in &forged {
        let reply = curl(&ca, port, &format!("/api/v1/documents/{f}"), Some(MARTIN));
        assert_eq!(reply.status, 404, "{f}: {reply:?}");
    }

    hub.stop();
}
