//! The patient adds her own documents, end to end over HTTPS with curl (`-F`, the multipart
//! form a browser posts): a PDF is stored and shown as hers, a professional who follows her
//! reads it through the API as "ajouté par le patient", and a file whose bytes are not what
//! its name says, or one too large, is refused with a French reason and nothing stored.

use std::path::Path;

use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";

fn pdf(marker: &str) -> Vec<u8> {
    format!(
        "%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\n% {marker}\ntrailer <</Root 1 0 R>>\n%%EOF\n"
    )
    .into_bytes()
}

/// Posts the add form of `web` with `file` (a path and its media type) and the fields.
fn add(web: &CurlSession, file: (&Path, &str), fields: &[(&str, &str)]) -> HttpReply {
    let form = web.request("/documents/ajouter", None);
    assert_eq!(form.status, 200, "{form:?}");
    let csrf = csrf_field(&form);
    let mut args: Vec<String> = vec!["-F".into(), format!("_csrf={csrf}")];
    args.push("-F".into());
    args.push(format!("file=@{};type={}", file.0.display(), file.1));
    for (name, value) in fields {
        args.push("-F".into());
        args.push(format!("{name}={value}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    web.request_with("/documents/ajouter", Post::Nothing, &args)
}

#[test]
fn a_patient_adds_a_pdf_a_follower_reads_it_and_a_wrong_file_is_refused_in_french() {
    let mut hub = Instance::demo();
    let port = hub.https_port();
    let files = tempfile::tempdir().unwrap();
    let camille = signed_in(&hub, port, CAMILLE);
    let documents = || text(&camille.request("/documents", None).body);
    assert!(documents().contains(r#"href="/documents/ajouter""#));

    // A PDF, with a type, a title and a date.
    let marker = "e2e-ajout-7f3a";
    let good = files.path().join("prise de sang.pdf");
    std::fs::write(&good, pdf(marker)).unwrap();
    let reply = add(
        &camille,
        (&good, "application/pdf"),
        &[
            ("type", "11502-2"),
            ("title", "Résultats de mars"),
            ("date", "2026-03-04"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", text(&reply.body));
    let location = reply.header("location").unwrap().to_string();
    assert!(location.starts_with("/documents/"), "{location}");
    let page = text(&camille.request(&location, None).body);
    assert!(page.contains("Résultats de mars"), "{page}");
    assert!(page.contains("ajouté par le patient"), "{page}");
    assert!(documents().contains("Résultats de mars"));
    let original = camille.request(&format!("{location}/file"), None);
    assert_eq!(original.status, 200);
    assert!(contains(&original.body, marker));

    // A professional who wrote to her reads it through the API, marked as the patient's.
    writes_to_camille(&hub, port, MARTIN);
    let list = curl(
        &hub.ca,
        port,
        &format!("/api/v1/patients/{CAMILLE_INS}/documents"),
        Some(MARTIN),
    );
    assert_eq!(list.status, 200, "{list:?}");
    let json = list.json();
    let added = json["documents"]
        .as_array()
        .or_else(|| json.as_array())
        .expect("a list of documents")
        .iter()
        .find(|d| d["title"] == "Résultats de mars")
        .unwrap_or_else(|| panic!("not listed: {json}"))
        .clone();
    assert_eq!(added["added_by_patient"], true, "{added}");
    assert!(added["author"]
        .as_str()
        .unwrap()
        .contains("ajouté par le patient"));

    // A photo named as a PDF: refused, the entries kept, nothing stored.
    let before = documents().matches("<li").count();
    let fake = files.path().join("compte-rendu.pdf");
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
    jpeg.extend_from_slice(b"JFIF\0 photo");
    std::fs::write(&fake, &jpeg).unwrap();
    let refused = add(
        &camille,
        (&fake, "application/pdf"),
        &[("type", "11502-2"), ("title", "Titre gardé")],
    );
    assert_eq!(refused.status, 422);
    let page = text(&refused.body);
    assert!(page.contains("extension .pdf"), "{page}");
    assert!(page.contains("Titre gardé"), "{page}");

    // Over the size limit: refused before anything reaches the vault.
    let big = files.path().join("scan.pdf");
    let mut bytes = pdf("big");
    bytes.resize(21 * 1024 * 1024, b' ');
    std::fs::write(&big, &bytes).unwrap();
    let refused = add(&camille, (&big, "application/pdf"), &[("title", "Gros")]);
    assert_eq!(refused.status, 413);
    assert!(text(&refused.body).contains("Le fichier dépasse 20 Mo"));

    // No form token, no document.
    let forged = camille.request_with(
        "/documents/ajouter",
        Post::Nothing,
        &[
            "-F",
            &format!("file=@{};type=application/pdf", good.display()),
        ],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(documents().matches("<li").count(), before);
    hub.stop();
}
