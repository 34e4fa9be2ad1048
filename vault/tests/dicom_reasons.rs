//! What a patient and a sender read when a DICOM file is refused or an image is not shown:
//! French, saying what is wrong with the file, never the parser's English.

use std::time::Duration;

use mshub_vault::dicom::read_instance;
use mshub_vault::dicom::render::{render_png, Preset};
use mshub_vault::dicom::StudyBuilder;
use mshub_vault::{DicomLimits, Rejection};

/// A tag, its value representation and its value.
type Element<'a> = ((u16, u16), &'a [u8; 2], &'a [u8]);

/// The file meta group with the given elements, explicit VR little endian, after `DICM`.
fn meta(elements: &[Element<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    for (tag, vr, value) in elements {
        out.extend(element(*tag, vr, value));
    }
    out
}

fn element(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut value = value.to_vec();
    if value.len() % 2 == 1 {
        value.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&tag.0.to_le_bytes());
    out.extend_from_slice(&tag.1.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&value);
    out
}

const EXPLICIT_LE: &[u8] = b"1.2.840.10008.1.2.1";

/// A complete file meta group, with its group length, as dicom-rs wants it.
fn full_meta() -> Vec<u8> {
    let group: Vec<u8> = [
        element((0x0002, 0x0001), b"OB", &[0, 1]),
        element((0x0002, 0x0002), b"UI", b"1.2.840.10008.5.1.4.1.1.7"),
        element((0x0002, 0x0003), b"UI", b"1.2.3.4"),
        element((0x0002, 0x0010), b"UI", EXPLICIT_LE),
    ]
    .concat();
    let mut out = meta(&[((0x0002, 0x0000), b"UL", &(group.len() as u32).to_le_bytes())]);
    out.extend(group);
    out
}

/// The reason as the sender and the patient read it.
fn refusal(bytes: &[u8]) -> String {
    match read_instance(bytes, "x.dcm", &DicomLimits::default()) {
        Err(r) => r.to_string(),
        Ok(_) => panic!("accepted"),
    }
}

fn assert_french(reason: &str) {
    for english in [
        "truncated",
        "Could not",
        "declares",
        "bytes",
        "unreadable",
        "no DICM",
        "file meta",
        "— DICOM",
        "frames",
        "pixels, more",
        "reader failed",
    ] {
        assert!(!reason.contains(english), "{english:?} in {reason:?}");
    }
}

#[test]
fn a_truncated_element_is_refused_in_french_with_what_it_announces_and_what_is_left() {
    let mut f = full_meta();
    f.extend(element((0x0010, 0x0010), b"PN", b"DOE^J"));
    // Rows (0028,0010) announces 512 bytes; 4 follow.
    f.extend_from_slice(&[0x28, 0x00, 0x10, 0x00, b'U', b'S', 0x00, 0x02]);
    f.extend_from_slice(&[1, 2, 3, 4]);
    let reason = refusal(&f);
    assert!(
        reason.starts_with("fichier DICOM refusé x.dcm : fichier DICOM tronqué : l'élément (0028,0010) annonce 512 octets, il en reste 4"),
        "{reason}"
    );
    assert_french(&reason);
}

#[test]
fn what_the_dicom_library_refuses_is_told_in_french() {
    // A file meta group without MediaStorageSOPClassUID (0002,0002): the structural walk
    // passes it, the DICOM library refuses it in its own words.
    let mut f = meta(&[((0x0002, 0x0010), b"UI", EXPLICIT_LE)]);
    f.extend(element((0x0010, 0x0010), b"PN", b"DOE^J"));
    let reason = refusal(&f);
    assert!(
        reason.contains("élément (0002,0010) inattendu dans l'en-tête du fichier")
            && reason.contains("une information obligatoire qui le précède manque"),
        "{reason}"
    );
    assert_french(&reason);
}

#[test]
fn not_a_dicom_file_and_missing_identifiers_are_said_in_french() {
    let reason = refusal(b"hello, this is not DICOM at all");
    assert!(reason.contains("ce n'est pas un fichier DICOM"), "{reason}");
    assert_french(&reason);
    let mut f = full_meta();
    f.extend(element((0x0010, 0x0010), b"PN", b"DOE^J"));
    let reason = refusal(&f);
    assert!(
        reason.contains("pas d'identifiant d'examen (StudyInstanceUID, 0020,000D)"),
        "{reason}"
    );
    assert_french(&reason);
}

#[test]
fn image_bounds_are_said_in_french() {
    let mut f = full_meta();
    f.extend(element((0x0020, 0x000D), b"UI", b"1.2.3"));
    f.extend(element((0x0020, 0x000E), b"UI", b"1.2.3.1"));
    f.extend(element((0x0028, 0x0008), b"IS", b"100000"));
    f.extend(element((0x0028, 0x0010), b"US", &4u16.to_le_bytes()));
    f.extend(element((0x0028, 0x0011), b"US", &4u16.to_le_bytes()));
    f.extend(element((0x0028, 0x0100), b"US", &8u16.to_le_bytes()));
    f.extend(element((0x7FE0, 0x0010), b"OB", &[0; 16]));
    let reason = refusal(&f);
    assert!(
        reason.contains("100000 images annoncées (NumberOfFrames), au plus 2000"),
        "{reason}"
    );
    assert_french(&reason);
}

#[test]
fn limits_of_a_message_are_said_in_french() {
    let limits = DicomLimits {
        time_budget: Duration::ZERO,
        ..DicomLimits::default()
    };
    std::thread::sleep(Duration::from_millis(2));
    let mut builder = StudyBuilder::new(&limits);
    let reason = builder.add("a.dcm", b"x").unwrap_err().to_string();
    assert!(reason.contains("temps de lecture"), "{reason}");
    assert_french(&reason);

    let limits = DicomLimits {
        max_files: 0,
        ..DicomLimits::default()
    };
    let mut builder = StudyBuilder::new(&limits);
    let reason = builder.add("a.dcm", b"x").unwrap_err().to_string();
    assert!(reason.contains("plus de 0 fichiers DICOM"), "{reason}");
    assert_french(&reason);

    let limits = DicomLimits {
        max_file: 4,
        ..DicomLimits::default()
    };
    let reason = read_instance(b"0123456789", "gros.dcm", &limits)
        .unwrap_err()
        .to_string();
    assert_eq!(
        reason,
        "fichier DICOM refusé gros.dcm : fichier trop volumineux (plus de 4 octets)"
    );
    let rejection = read_instance(b"0123456789", "gros.dcm", &limits).unwrap_err();
    assert!(matches!(rejection, Rejection::DicomTooLarge { .. }));
}

#[test]
fn an_image_that_cannot_be_shown_says_why_in_french() {
    let reason = render_png(
        b"not dicom",
        "x.dcm",
        0,
        Preset::Default,
        256,
        &DicomLimits::default(),
    )
    .unwrap_err();
    assert!(reason.contains("ce n'est pas un fichier DICOM"), "{reason}");
    assert!(!reason.starts_with("fichier DICOM refusé"), "{reason}");
    assert_french(&reason);
}
