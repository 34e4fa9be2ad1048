//! DICOM studies in the vault: files written by pydicom (tests/fixtures/dicom/make_dicom.py),
//! attached or inside an XDM archive, filed as one imaging document per study; hostile and
//! truncated files refused with their reason; frames rendered with the window/level formula;
//! the access rules and the audit of every read.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use mshub_vault::dicom::render::Preset;
use mshub_vault::*;

/// The fixtures, written by pydicom into a temporary directory.
fn dicom_files() -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dicom/make_dicom.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "make_dicom.py failed (pydicom is installed by scripts/install-deps --tests): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    (dir, files)
}

fn to_camille(attachments: &[(&str, &str, &[u8])]) -> Vec<u8> {
    message(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        attachments,
        "",
    )
}

fn png_pixels(png_bytes: &[u8]) -> (u32, u32, png::ColorType, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type, buf)
}

/// DICOM PS3.3 C.11.2.1.2.1, written out again here on purpose.
fn expected(x: f64, center: f64, width: f64) -> u8 {
    if x <= center - 0.5 - (width - 1.0) / 2.0 {
        0
    } else if x > center - 0.5 + (width - 1.0) / 2.0 {
        255
    } else {
        (((x - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0).round() as u8
    }
}

const STUDY_A: &[&str] = &[
    "ct-1.dcm",
    "ct-2.dcm",
    "ct-3.dcm",
    "mr-1.dcm",
    "cr-1.dcm",
    "xa-multiframe.dcm",
    "sr.dcm",
    "j2k.dcm",
];

fn study_a_message(files: &BTreeMap<String, Vec<u8>>, extra: &[&str]) -> Vec<u8> {
    let attachments: Vec<(&str, &str, &[u8])> = STUDY_A
        .iter()
        .chain(extra)
        .map(|n| (*n, "application/dicom", files[*n].as_slice()))
        .collect();
    to_camille(&attachments)
}

fn study_document(hub: &Hub) -> Document {
    hub.vault
        .documents_for_patient(&hub.camille)
        .unwrap()
        .into_iter()
        .find(|d| {
            d.study
                .as_ref()
                .is_some_and(|s| s.study_uid == "1.2.826.0.1.3680043.8.498.1")
        })
        .expect("study A filed")
}

#[test]
fn attached_dicom_files_become_one_imaging_document_per_study() {
    let hub = hub();
    let (_dir, files) = dicom_files();
    let filing = hub.file_for_camille(&study_a_message(&files, &["other-study.dcm", "DICOMDIR"]));
    assert!(
        matches!(filing.outcome(), FilingOutcome::Filed { .. }),
        "{filing:?}"
    );
    // Nine files of two studies, the DICOMDIR (an index) not reported.
    assert_eq!(filing.attachments.len(), 9, "{filing:?}");
    let mut ids = filing.documents();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "{filing:?}");

    let doc = study_document(&hub);
    assert_eq!(doc.category, Category::Imagerie);
    assert_eq!(doc.type_code, "18726-0");
    assert_eq!(doc.title, "Scanner thoracique");
    assert_eq!(doc.created.as_deref(), Some("20261112093000"));
    assert_eq!(doc.source, Source::Dicom);
    assert_eq!(doc.mime, "application/zip");
    // The author is the authenticated sender (the lab's mailbox, from the directory); the
    // institution the DICOM files name is kept as declared.
    assert_eq!(doc.author.address.as_ref().map(|a| a.as_str()), Some(LABO));
    assert_eq!(
        doc.author.institution.as_deref(),
        Some("Laboratoire du CHU")
    );
    assert_eq!(
        doc.declared_author
            .as_ref()
            .and_then(|d| d.institution.as_deref()),
        Some("Centre d'imagerie du Parc")
    );
    let study = doc.study.clone().unwrap();
    assert_eq!(study.date.as_deref(), Some("20261112"));
    assert_eq!(study.description.as_deref(), Some("Scanner thoracique"));
    assert_eq!(study.accession.as_deref(), Some("ACC-2026-77"));
    let summary: Vec<_> = study
        .series
        .iter()
        .map(|s| {
            (
                s.number,
                s.modality.as_str(),
                s.description.as_deref(),
                s.body_part.as_deref(),
                s.images(),
                s.instances.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Some(1),
                "CT",
                Some("Thorax sans injection"),
                Some("CHEST"),
                3,
                3
            ),
            (Some(2), "MR", Some("T1 axial"), Some("HEAD"), 1, 1),
            (Some(3), "CR", Some("Thorax face"), Some("CHEST"), 1, 1),
            (Some(4), "XA", Some("Angiographie ciné"), None, 5, 1),
            (Some(5), "SR", Some("Compte rendu structuré"), None, 0, 1),
            (Some(6), "CT", Some("Reconstruction JPEG 2000"), None, 1, 1),
        ]
    );
    let ct: Vec<Option<i32>> = study.series[0].instances.iter().map(|i| i.number).collect();
    assert_eq!(ct, [Some(1), Some(2), Some(3)]);
    let j2k = &study.series[5].instances[0];
    assert!(
        j2k.undecodable
            .as_deref()
            .is_some_and(|r| r.contains("JPEG 2000")),
        "{j2k:?}"
    );
    assert!(!study.series[5].viewable());
    assert!(study.series[0].viewable());

    // The content is a zip holding every original file, byte for byte.
    let archive = hub.vault.read_document(&hub.camille, doc.id).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
    assert_eq!(zip.len(), STUDY_A.len());
    for name in STUDY_A {
        let mut entry = zip.by_name(name).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        assert_eq!(&bytes, &files[*name], "{name}");
    }
    let (instance, bytes) = hub
        .vault
        .read_study_file(&hub.camille, doc.id, 1, 0)
        .unwrap();
    assert_eq!(instance.file, "mr-1.dcm");
    assert_eq!(bytes, files["mr-1.dcm"]);

    let filed = hub.audits("document.file");
    assert_eq!(filed.len(), 2);
    assert!(filed
        .iter()
        .all(|r| r.event.detail.contains("type:18726-0 source:dicom")));
    // The patient is told in a notice that names the study.
    assert!(hub
        .inbox(&hub.camille)
        .iter()
        .any(|m| m.contains("Scanner thoracique")));
}

#[test]
fn hostile_and_truncated_files_are_refused_with_their_reason_and_the_rest_is_filed() {
    let hub = hub();
    let (_dir, files) = dicom_files();
    let bad = [
        (
            "truncated.dcm",
            "fichier DICOM tronqué : l'élément (7FE0,0010) annonce 8192 octets",
        ),
        ("huge-length.dcm", "annonce 4294967280 octets"),
        ("absurd-size.dcm", "65535 × 65535"),
        ("many-frames.dcm", "100000 images annoncées"),
        ("deep.dcm", "imbriquées sur plus de 16 niveaux"),
        (
            "unknown-vr.dcm",
            "type de valeur (VR) invalide pour l'élément (0008,0016)",
        ),
        ("garbage.dcm", "ce n'est pas un fichier DICOM"),
        ("no-preamble-garbage.dcm", "l'en-tête du fichier"),
    ];
    let pdf = pdf("compte rendu");
    let mut attachments: Vec<(&str, &str, &[u8])> =
        vec![("ct-1.dcm", "application/dicom", &files["ct-1.dcm"])];
    for (name, _) in &bad {
        attachments.push((name, "application/dicom", &files[*name]));
    }
    attachments.push(("cr.pdf", "application/pdf", &pdf));
    let started = std::time::Instant::now();
    let filing = hub.file_for_camille(&to_camille(&attachments));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    let failures: BTreeMap<&str, String> = filing
        .failures()
        .map(|(name, r)| (name, r.to_string()))
        .collect();
    assert_eq!(failures.len(), bad.len(), "{failures:#?}");
    for (name, reason) in bad {
        let got = &failures[name];
        assert!(got.contains(reason), "{name}: {got}");
        assert!(
            got.starts_with(&format!("fichier DICOM refusé {name}")),
            "{got}"
        );
    }
    // The good file and the PDF are filed; the message outcome reports the refusals.
    let docs = hub.vault.documents_for_patient(&hub.camille).unwrap();
    assert_eq!(docs.len(), 2);
    let study = study_document(&hub).study.unwrap();
    assert_eq!(study.series.len(), 1);
    assert_eq!(study.series[0].images(), 1);
    match filing.outcome() {
        FilingOutcome::Failed { reason } => {
            assert!(reason.contains("2 documents classés"), "{reason}");
            assert!(reason.contains("deep.dcm refusé"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn limits_on_size_and_files_are_enforced() {
    let (_dir, files) = dicom_files();
    let hub = hub();
    let vault =
        Vault::new(hub.store.clone(), hub.directory.clone()).with_dicom_limits(DicomLimits {
            max_file: 9000,
            max_files: 2,
            ..DicomLimits::default()
        });
    let raw = to_camille(&[
        ("mr-1.dcm", "application/dicom", &files["mr-1.dcm"]),
        ("ct-1.dcm", "application/dicom", &files["ct-1.dcm"]),
        ("cr-1.dcm", "application/dicom", &files["cr-1.dcm"]),
        ("sr.dcm", "application/dicom", &files["sr.dcm"]),
    ]);
    let sender = mshub_directory::Address::try_from(LABO).unwrap();
    let filing = vault.file_message(&hub.camille, Some(&sender), &raw);
    let failures: BTreeMap<&str, String> = filing
        .failures()
        .map(|(name, r)| (name, r.to_string()))
        .collect();
    assert!(
        failures["ct-1.dcm"].contains("plus de 9000 octets"),
        "{failures:?}"
    );
    assert!(
        failures["sr.dcm"].contains("plus de 2 fichiers DICOM dans un même message"),
        "{failures:?}"
    );
    assert_eq!(filing.documents().len(), 2, "{filing:?}");
}

#[test]
fn dicom_files_inside_an_xdm_archive_are_filed_as_a_study_beside_its_other_documents() {
    let hub = hub();
    let (_dir, files) = dicom_files();
    let dicom = |uri: &str, file: &str| {
        let mut d = XdmDoc::new(uri, "18726-0", "Image", &files[file]);
        d.mime = "application/dicom".into();
        d
    };
    let mut masked = dicom("IMG00003.DCM", "ct-3.dcm");
    masked.confidentiality = "MASQUE_PS".into();
    let zip = xdm_zip(&[(
        "SUBSET01",
        vec![
            XdmDoc::new(
                "DOC0001.PDF",
                "18748-4",
                "Compte rendu du scanner",
                &pdf("cr"),
            ),
            dicom("IMG00001.DCM", "ct-1.dcm"),
            dicom("IMG00002.DCM", "ct-2.dcm"),
            masked,
            dicom("IMG00004.DCM", "truncated.dcm"),
        ],
    )]);
    let filing = hub.file_for_camille(&to_camille(&[("IHE_XDM.ZIP", "application/zip", &zip)]));
    let failures: Vec<(String, String)> = filing
        .failures()
        .map(|(n, r)| (n.to_string(), r.to_string()))
        .collect();
    assert_eq!(failures.len(), 1, "{filing:?}");
    assert_eq!(failures[0].0, "IHE_XDM.ZIP/IMG00004.DCM");
    assert!(failures[0].1.contains("tronqué"), "{}", failures[0].1);
    assert_eq!(filing.documents().len(), 2, "{filing:?}");

    let docs = hub.vault.documents_for_patient(&hub.camille).unwrap();
    assert!(docs.iter().any(|d| d.title == "Compte rendu du scanner"));
    let study = study_document(&hub);
    assert!(study.masked, "one masked entry masks the study");
    let s = study.study.unwrap();
    assert_eq!(s.series[0].images(), 3);
    let names: Vec<&str> = s.series[0]
        .instances
        .iter()
        .map(|i| i.file.as_str())
        .collect();
    assert_eq!(names, ["IMG00001.DCM", "IMG00002.DCM", "IMG00003.DCM"]);
}

#[test]
fn rendered_pixels_follow_the_rescale_and_the_window_level_formula() {
    let hub = hub();
    let (_dir, files) = dicom_files();
    hub.file_for_camille(&study_a_message(&files, &[]));
    let doc = study_document(&hub);
    let image = |series, n, preset| {
        png_pixels(
            &hub.vault
                .study_image(&hub.camille, doc.id, series, n, preset)
                .unwrap(),
        )
    };

    // CT, 16-bit signed, HU = stored - 1024, stored(r, c) = 64c + r + 100·(instance - 1).
    let (w, h, color, px) = image(0, 0, Preset::Default);
    assert_eq!((w, h, color), (64, 64, png::ColorType::Grayscale));
    let at = |px: &[u8], r: usize, c: usize| px[r * 64 + c];
    let hu = |r: usize, c: usize, n: usize| (64 * c + r + 100 * n) as f64 - 1024.0;
    for (r, c) in [(10, 14), (0, 0), (63, 20), (5, 16)] {
        assert_eq!(
            at(&px, r, c),
            expected(hu(r, c, 0), 40.0, 400.0),
            "({r}, {c})"
        );
    }
    assert!(
        px.iter().any(|v| *v > 0 && *v < 255),
        "some pixels inside the window"
    );
    let (_, _, _, bone) = image(0, 0, Preset::Bone);
    assert_eq!(at(&bone, 10, 30), expected(hu(10, 30, 0), 500.0, 2000.0));
    let (_, _, _, lung) = image(0, 2, Preset::Lung);
    assert_eq!(at(&lung, 7, 3), expected(hu(7, 3, 2), -600.0, 1500.0));
    assert_ne!(
        at(&lung, 7, 3),
        at(&image(0, 0, Preset::Lung).3, 7, 3),
        "third image differs"
    );

    // MR, 16-bit unsigned, no window in the file: the frame's range (0 to 1927).
    let (w, _, _, mr) = image(1, 0, Preset::Default);
    assert_eq!(w, 48);
    let (center, width) = (1927.0 / 2.0 + 0.5, 1928.0);
    assert_eq!(
        mr[20 * 48 + 24],
        expected((40 * 24 + 20) as f64, center, width)
    );
    assert_eq!(mr[0], 0);
    assert_eq!(mr[47 * 48 + 47], 255);

    // CR, 8-bit MONOCHROME1: the lowest value is white.
    let (w, h, _, cr) = image(2, 0, Preset::Default);
    assert_eq!((w, h), (32, 40));
    assert_eq!(cr[0], 255);
    assert_eq!(cr[39 * 32 + 31], 0);
    let (center, width) = (187.0 / 2.0 + 0.5, 188.0);
    assert_eq!(cr[10 * 32 + 5], 255 - expected(45.0, center, width));

    // XA, RLE Lossless, 5 frames; window 128/256 renders a value as itself.
    for frame in [0u32, 3, 4] {
        let (_, _, _, xa) = image(3, frame, Preset::Default);
        let value = 50 * frame as usize + 5;
        assert_eq!(xa[2 * 32 + 5] as usize, value, "frame {frame}");
    }
    assert!(matches!(
        hub.vault
            .study_image(&hub.camille, doc.id, 3, 5, Preset::Default),
        Err(VaultError::NoSuchImage { .. })
    ));

    // JPEG 2000: kept, not shown, with the reason.
    match hub
        .vault
        .study_image(&hub.camille, doc.id, 5, 0, Preset::Default)
    {
        Err(VaultError::Undisplayable(reason)) => assert!(reason.contains("JPEG 2000"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn thumbnails_and_images_are_cached_sealed_and_removed_with_the_study() {
    let hub = hub();
    let (_dir, files) = dicom_files();
    hub.file_for_camille(&study_a_message(&files, &[]));
    let doc = study_document(&hub);
    let blob = doc.blob.unwrap();
    // Made at filing, for the viewable series only.
    for series in [0, 1, 2, 3] {
        let thumb = hub
            .store
            .derived(hub.camille.id, blob, &format!("dicom-thumb:{series}"))
            .unwrap()
            .unwrap_or_else(|| panic!("thumbnail {series}"));
        assert_eq!(
            thumb,
            hub.vault
                .study_thumbnail(&hub.camille, doc.id, series)
                .unwrap()
        );
        assert!(thumb.starts_with(b"\x89PNG"));
    }
    assert!(hub
        .store
        .derived(hub.camille.id, blob, "dicom-thumb:5")
        .unwrap()
        .is_none());
    // The CT thumbnail is its middle image (instance 2).
    let (_, _, _, thumb) = png_pixels(&hub.vault.study_thumbnail(&hub.camille, doc.id, 0).unwrap());
    let (_, _, _, second) = png_pixels(
        &hub.vault
            .study_image(&hub.camille, doc.id, 0, 1, Preset::Default)
            .unwrap(),
    );
    assert_eq!(thumb, second);

    let kind = "dicom-image:0:1:defaut";
    assert!(hub
        .store
        .derived(hub.camille.id, blob, kind)
        .unwrap()
        .is_some());
    // Another owner's key cannot open the cache.
    assert!(hub.store.derived(hub.paul.id, blob, kind).is_err());

    hub.vault.delete(&hub.camille, doc.id).unwrap();
    assert!(hub
        .store
        .derived(hub.camille.id, blob, kind)
        .unwrap()
        .is_none());
    assert!(hub
        .store
        .derived(hub.camille.id, blob, "dicom-thumb:0")
        .unwrap()
        .is_none());
    assert!(matches!(
        hub.vault
            .study_image(&hub.camille, doc.id, 0, 0, Preset::Default),
        Err(VaultError::Deleted(_))
    ));
}

#[test]
fn study_reads_follow_the_access_rules_and_are_audited() {
    let hub = hub();
    let (_dir, files) = dicom_files();
    hub.file_for_camille(&study_a_message(&files, &[]));
    let doc = study_document(&hub);
    // Camille names both among the professionals who follow her: the matrix decides.
    for pro in [&hub.pharmacist, &hub.radiology] {
        hub.vault
            .add_relationship(&hub.camille, pro, Relationship::Follows, None)
            .unwrap();
    }
    // Without a care relationship, nothing: the other physician is refused.
    assert!(matches!(
        hub.vault.read_study(&hub.dubois, doc.id),
        Err(VaultError::Denied {
            denial: Denial::NoRelationship,
            ..
        })
    ));

    // The matrix: pharmacists do not see imaging; a radiology technician does.
    assert!(matches!(
        hub.vault
            .study_image(&hub.pharmacist, doc.id, 0, 0, Preset::Default),
        Err(VaultError::Denied {
            denial: Denial::Matrix,
            ..
        })
    ));
    hub.vault
        .study_image(&hub.radiology, doc.id, 0, 0, Preset::Default)
        .unwrap();
    hub.vault
        .read_study_file(&hub.radiology, doc.id, 0, 1)
        .unwrap();
    let reads = hub.audits("document.read");
    let parts: Vec<&str> = reads
        .iter()
        .filter(|r| r.event.actor == hub.radiology.address.as_str())
        .filter_map(|r| {
            r.event
                .detail
                .split_whitespace()
                .find(|w| w.starts_with("part:"))
        })
        .collect();
    assert_eq!(parts, ["part:image", "part:dicom-file"]);
    assert_eq!(hub.audits("document.read.denied").len(), 2);

    // Masked by the patient: the technician no longer sees it; the patient's reads are not
    // audited (they are the patient's own).
    hub.vault.mask(&hub.camille, doc.id).unwrap();
    assert!(matches!(
        hub.vault.read_study(&hub.radiology, doc.id),
        Err(VaultError::Denied {
            denial: Denial::Masked,
            ..
        })
    ));
    let before = hub.audits("document.read").len();
    hub.vault.read_study(&hub.camille, doc.id).unwrap();
    assert_eq!(hub.audits("document.read").len(), before);
    // Another patient sees nothing.
    assert!(hub.vault.read_study(&hub.paul, doc.id).is_err());
    hub.store.verify_audit().unwrap();
}

#[test]
fn colour_images_are_rendered_in_rgb_interleaved_or_by_plane() {
    let hub = hub();
    let (_dir, files) = dicom_files();
    let filing = hub.file_for_camille(&to_camille(&[
        ("us-rgb.dcm", "application/dicom", &files["us-rgb.dcm"]),
        (
            "us-rgb-planar.dcm",
            "application/dicom",
            &files["us-rgb-planar.dcm"],
        ),
    ]));
    let id = filing.documents()[0];
    for series in [0, 1] {
        let png = hub
            .vault
            .study_image(&hub.camille, id, series, 0, Preset::Default)
            .unwrap();
        let (w, h, color, px) = png_pixels(&png);
        assert_eq!(
            (w, h, color),
            (8, 8, png::ColorType::Rgb),
            "series {series}"
        );
        let at = (2 * 8 + 3) * 3;
        assert_eq!(&px[at..at + 3], &[60, 90, 200], "series {series}");
    }
}

#[test]
fn the_time_budget_refuses_what_is_left() {
    let (_dir, files) = dicom_files();
    let hub = hub();
    let vault =
        Vault::new(hub.store.clone(), hub.directory.clone()).with_dicom_limits(DicomLimits {
            time_budget: std::time::Duration::ZERO,
            ..DicomLimits::default()
        });
    let raw = to_camille(&[("ct-1.dcm", "application/dicom", &files["ct-1.dcm"])]);
    let filing = vault.file_message(&hub.camille, None, &raw);
    let (name, rejection) = filing.failures().next().expect("refused");
    assert_eq!(name, "ct-1.dcm");
    assert!(
        rejection.to_string().contains("temps de lecture"),
        "{rejection}"
    );
    assert!(filing.documents().is_empty());
}
