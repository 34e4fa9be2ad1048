//! The patient's pages on a phone (390×844, a mobile user agent, touch), in headless Chromium
//! (tests/e2e/browser/phone.mjs): a photo added through the camera input, a masked PDF, a file
//! whose bytes are not what its name says; the profile and the medical profile; an appointment
//! added to the agenda. Every page visited passes axe-core and does not scroll sideways; curl
//! then checks what the hub stored.

use std::time::Duration;

use crate::browser_run::{artifacts_dir, require_browser_tools, run_script};
use crate::support::*;

/// A baseline JPEG (ITU-T T.81, one grey component) of a uniform light page, `width`×`height`
/// pixels: every 8×8 block is the first one's (DC only), so the entropy-coded data is a few
/// bits per block. Wider than a phone's screen, as a camera's photo is.
fn page_photo(width: u16, height: u16) -> Vec<u8> {
    // Level 232: DC = 8 × (232 − 128) = 832, quantised by 8 to 104, of category 7.
    const DC: u8 = 104;
    const CATEGORY: u8 = 7;
    let mut j = vec![0xFF, 0xD8];
    // APP0 (JFIF 1.1, no density, no thumbnail).
    j.extend_from_slice(&[
        0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    // DQT: table 0, every quantiser 8.
    j.extend_from_slice(&[0xFF, 0xDB, 0, 67, 0]);
    j.extend_from_slice(&[8; 64]);
    // SOF0: 8 bits, height, width, one component (id 1, no subsampling, table 0).
    j.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8]);
    j.extend_from_slice(&height.to_be_bytes());
    j.extend_from_slice(&width.to_be_bytes());
    j.extend_from_slice(&[1, 1, 0x11, 0]);
    // DHT DC 0: two codes of 2 bits, 00 → category 0 (no change), 01 → CATEGORY.
    j.extend_from_slice(&[0xFF, 0xC4, 0, 21, 0x00, 0, 2]);
    j.extend_from_slice(&[0; 14]);
    j.extend_from_slice(&[0, CATEGORY]);
    // DHT AC 0: one code of 1 bit, 0 → end of block.
    j.extend_from_slice(&[0xFF, 0xC4, 0, 20, 0x10, 1]);
    j.extend_from_slice(&[0; 15]);
    j.push(0x00);
    // SOS: component 1 with tables 0/0, spectral selection 0–63, no approximation.
    j.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]);
    let blocks = usize::from(width.div_ceil(8)) * usize::from(height.div_ceil(8));
    let mut bits: Vec<bool> = Vec::with_capacity(10 + 3 * blocks);
    let mut put = |value: u32, count: u32| {
        for i in (0..count).rev() {
            bits.push((value >> i) & 1 == 1);
        }
    };
    put(0b01, 2);
    put(u32::from(DC), u32::from(CATEGORY));
    put(0, 1);
    for _ in 1..blocks {
        put(0b00, 2);
        put(0, 1);
    }
    // The last byte is padded with 1 bits; a 0xFF byte of data is followed by a stuffed 0.
    for byte in bits.chunks(8) {
        let b = (0..8).fold(0u8, |b, i| {
            (b << 1) | u8::from(*byte.get(i).unwrap_or(&true))
        });
        j.push(b);
        if b == 0xFF {
            j.push(0);
        }
    }
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

fn pdf(marker: &str) -> Vec<u8> {
    format!(
        "%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\n% {marker}\ntrailer <</Root 1 0 R>>\n%%EOF\n"
    )
    .into_bytes()
}

/// Camille on a 390 px phone: documents (camera photo, masked PDF, a JPEG named .pdf refused),
/// profile and medical profile (a future vaccination refused), an appointment added; no page
/// scrolls sideways, none has a serious or critical axe-core violation.
#[test]
fn phone_the_patient_adds_documents_fills_her_profile_and_agenda_on_a_390_px_screen() {
    require_browser_tools();
    let shots = artifacts_dir("phone");
    let files = tempfile::tempdir().unwrap();
    let photo = files.path().join("IMG_20260312_093015.jpg");
    let jpeg = page_photo(960, 1280);
    std::fs::write(&photo, &jpeg).unwrap();
    let report = files.path().join("bilan-sanguin.pdf");
    std::fs::write(&report, pdf("e2e-phone-pdf-4c1d")).unwrap();
    // A photo under a PDF's name: the vault reads the bytes, not the name.
    let fake = files.path().join("echographie.pdf");
    std::fs::write(&fake, &jpeg).unwrap();

    let mut hub = Instance::demo();
    let port = hub.https_port();
    let base = format!("https://127.0.0.1:{port}");
    println!("browser screenshots: {}", shots.display());
    let (ok, stdout, stderr) = run_script(
        "phone.mjs",
        &[
            &base,
            shots.to_str().unwrap(),
            photo.to_str().unwrap(),
            report.to_str().unwrap(),
            fake.to_str().unwrap(),
        ],
        Duration::from_secs(300),
    );
    println!("--- phone.mjs stdout ---\n{stdout}--- phone.mjs stderr ---\n{stderr}");
    assert!(
        ok,
        "the browser scenario failed (screenshots in {}):\n{stderr}",
        shots.display()
    );

    // What the hub stored, read back with curl.
    let camille = signed_in(&hub, port, CAMILLE);
    let documents = text(&camille.request("/documents", None).body);
    assert!(
        documents.contains("Ordonnance du Dr Martin (photo)"),
        "{documents}"
    );
    assert!(documents.contains("Bilan sanguin de mars"), "{documents}");
    assert!(
        !documents.contains("Échographie mal nommée"),
        "the refused file was stored: {documents}"
    );
    let at = documents.find("Ordonnance du Dr Martin (photo)").unwrap();
    let href = documents[..at].rfind("href=\"/documents/").unwrap() + "href=\"".len();
    let link = &documents[href..href + documents[href..].find('"').unwrap()];
    let original = camille.request(&format!("{link}/file"), None);
    assert_eq!(original.status, 200, "{original:?}");
    assert_eq!(original.body, jpeg, "the photo stored is not the one taken");

    let medical = text(&camille.request("/profile/medical", None).body);
    for shown in [
        "<strong>Pénicilline</strong>",
        "<strong>dTcaP</strong> — le 15 mars 2021",
        "<strong>Julien Moreau</strong>",
    ] {
        assert!(medical.contains(shown), "{shown} is not in:\n{medical}");
    }
    assert!(!medical.contains("<strong>grippe</strong>"), "{medical}");
    let agenda = text(&camille.request("/agenda", None).body);
    assert!(agenda.contains("Dentiste, détartrage"), "{agenda}");
    hub.stop();
}
