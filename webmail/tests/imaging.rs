//! The imaging pages in process: a DICOM study written by pydicom
//! (tests/fixtures/dicom/make_dicom.py) filed into Camille's vault, then its study page,
//! viewer, images, thumbnails and downloads through the router, by the patient and by a
//! relative with a delegation (audited), and refused to anyone else.

mod support;

use support::browser::Browser;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::Router;
use base64::Engine as _;

use mshub_directory::{
    Account, AccountKind, Address, BirthDate, Directory, Domain, DomainEntry, DomainRole, Ins, Sex,
};
use mshub_store::{MasterKey, Store};
use mshub_vault::{FilingOutcome, Vault};
use mshub_webmail::{router, Webmail};

const PASSWORD: &str = "correct-horse-battery-staple";
const CAMILLE_INS: &str = "284057511204339";
const CAMILLE: &str = "284057511204339@patient.mshub.test";
const HELENE_INS: &str = "255081416802538";
const HELENE: &str = "255081416802538@patient.mshub.test";
const LABO: &str = "labo@chu.mshub.test";

struct Hub {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    directory: Arc<Directory>,
    camille: Account,
    helene: Account,
    router: Router,
    files: HashMap<String, Vec<u8>>,
    _dicom: tempfile::TempDir,
}

fn patient(ins: &str, given: &str, birth: &str) -> AccountKind {
    AccountKind::Patient {
        ins: Ins::try_from(ins).unwrap(),
        given_name: given.into(),
        family_name: "Durand".into(),
        birth_date: BirthDate::try_from(birth).unwrap(),
        sex: Sex::Female,
    }
}

fn dicom_files() -> (tempfile::TempDir, HashMap<String, Vec<u8>>) {
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

fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let directory =
        Arc::new(Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap());
    directory
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("chu.mshub.test").unwrap(),
                role: DomainRole::Local,
            },
            "test",
        )
        .unwrap();
    let add = |addr: &str, kind: AccountKind| {
        directory
            .add_account(
                Address::try_from(addr).unwrap(),
                kind,
                Some(PASSWORD),
                "test",
            )
            .unwrap()
    };
    let camille = add(CAMILLE, patient(CAMILLE_INS, "Camille", "1984-05-12"));
    let helene = add(HELENE, patient(HELENE_INS, "Hélène", "1955-08-14"));
    add(
        LABO,
        AccountKind::Organisation {
            name: "Centre d'imagerie".into(),
            members: vec![],
        },
    );
    let mta = support::mta(store.clone(), directory.clone());
    let router = router(Webmail::new(store.clone(), directory.clone(), mta));
    let (dicom, files) = dicom_files();
    Hub {
        _dir: dir,
        store,
        directory,
        camille,
        helene,
        router,
        files,
        _dicom: dicom,
    }
}

impl Hub {
    /// Study A's files attached to a message from the lab, filed; the study's document id.
    fn file_study(&self) -> String {
        let names = [
            "ct-1.dcm",
            "ct-2.dcm",
            "ct-3.dcm",
            "mr-1.dcm",
            "cr-1.dcm",
            "xa-multiframe.dcm",
            "sr.dcm",
            "j2k.dcm",
        ];
        let mut message = format!(
            "From: <{LABO}>\r\nTo: <{CAMILLE}>\r\nSubject: Images\r\n\
             Message-ID: <images@chu.mshub.test>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nVoici vos images.\r\n"
        );
        for name in names {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&self.files[name]);
            message.push_str(&format!(
                "--b\r\nContent-Type: application/dicom; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
            ));
        }
        message.push_str("--b--\r\n");
        let vault = Vault::new(self.store.clone(), self.directory.clone());
        let filing = vault.file_message(
            &self.camille,
            Some(&Address::try_from(LABO).unwrap()),
            message.as_bytes(),
        );
        assert!(
            matches!(filing.outcome(), FilingOutcome::Filed { .. }),
            "{filing:?}"
        );
        vault.reference(filing.documents()[0]).unwrap().to_string()
    }

    fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: HashMap::new(),
        }
    }

    fn audit_details(&self, actor: &str) -> Vec<String> {
        self.store
            .audit_records(0, 10_000)
            .unwrap()
            .into_iter()
            .filter(|r| r.event.actor == actor && r.event.action == "document.read")
            .map(|r| r.event.detail)
            .collect()
    }
}

impl Browser {
    async fn login(&mut self, login: &str) {
        let token = self.get("/login").await.csrf();
        let p = self
            .post(
                "/login",
                &[("_csrf", &token), ("login", login), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
    }

    async fn token(&mut self) -> String {
        self.get("/settings").await.csrf()
    }
}

fn png_pixels(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[tokio::test]
async fn the_patient_sees_the_study_steps_through_images_and_downloads_the_originals() {
    let h = hub();
    let id = h.file_study();
    let mut b = h.browser();
    b.login(CAMILLE).await;

    let list = b.get("/documents").await.text();
    assert!(list.contains(&format!("href=\"/imaging/{id}\"")), "{list}");
    assert!(list.contains("Imagerie (1)"));

    let study = b.get(&format!("/imaging/{id}")).await;
    assert_eq!(study.status, StatusCode::OK);
    assert!(study
        .header(header::CONTENT_SECURITY_POLICY)
        .contains("default-src 'none'"));
    let text = study.text();
    for expected in [
        "<h1>Scanner thoracique</h1>",
        "12 novembre 2026",
        "Centre d'imagerie du Parc",
        "ACC-2026-77",
        "Série 1 : Thorax sans injection",
        "Scanner (tomodensitométrie) (CT)",
        "Thorax",
        "3 images",
        "IRM (MR)",
        "5 images",
        "Objet sans image",
        "JPEG 2000",
        &format!("src=\"/imaging/{id}/series/0/thumbnail\""),
        "alt=\"Aperçu de la Série 1 : Thorax sans injection\"",
        &format!("href=\"/documents/{id}/file\""),
        &format!("href=\"/imaging/{id}/series/1/files/0\""),
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    // No thumbnail for the series that cannot be shown.
    assert!(!text.contains(&format!("/imaging/{id}/series/5/thumbnail")));

    let thumb = b.get(&format!("/imaging/{id}/series/0/thumbnail")).await;
    assert_eq!(thumb.status, StatusCode::OK);
    assert_eq!(thumb.header(header::CONTENT_TYPE), "image/png");
    assert_eq!(png_pixels(&thumb.body).0, 64);

    // The viewer: first image, no previous, a next link keeping the preset.
    let viewer = b.get(&format!("/imaging/{id}/series/0")).await;
    assert_eq!(viewer.status, StatusCode::OK);
    let text = viewer.text();
    assert!(text.contains("Image 1 sur 3"));
    assert!(!text.contains("Image précédente"));
    assert!(text.contains(&format!(
        "href=\"/imaging/{id}/series/0?image=2&amp;fenetre=defaut\""
    )));
    assert!(text.contains("label for=\"image\""));
    for preset in [
        "Os",
        "Poumon",
        "Cerveau",
        "Tissus mous",
        "Réglage du fichier",
    ] {
        assert!(text.contains(&format!(">{preset}</a>")), "{preset}");
    }
    let viewer = b
        .get(&format!("/imaging/{id}/series/0?image=3&fenetre=os"))
        .await
        .text();
    assert!(viewer.contains("Image 3 sur 3"));
    assert!(viewer.contains(&format!(
        "href=\"/imaging/{id}/series/0?image=2&amp;fenetre=os\""
    )));
    assert!(!viewer.contains("Image suivante"));
    assert!(viewer.contains(&format!(
        "src=\"/imaging/{id}/series/0/image?image=3&amp;fenetre=os\""
    )));
    assert!(
        viewer.contains("alt=\"Image 3 sur 3 de la Série 1 : Thorax sans injection, réglage Os\"")
    );
    // Not a CT: no Hounsfield presets.
    let mr = b.get(&format!("/imaging/{id}/series/1")).await.text();
    assert!(!mr.contains(">Os</a>"));
    assert!(mr.contains("Automatique (min–max)"));

    // The image: HU = 64c + r + 200 - 1024 on the third CT image, bone window 500/2000.
    let image = b
        .get(&format!("/imaging/{id}/series/0/image?image=3&fenetre=os"))
        .await;
    assert_eq!(image.header(header::CONTENT_TYPE), "image/png");
    let (w, _, px) = png_pixels(&image.body);
    assert_eq!(w, 64);
    let hu = (64 * 40 + 8 + 200) as f64 - 1024.0;
    let want = (((hu - 499.5) / 1999.0 + 0.5) * 255.0).round() as u8;
    assert_eq!(px[8 * 64 + 40], want);

    // Wrong requests get a reason.
    let p = b.get(&format!("/imaging/{id}/series/0?image=9")).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.text().contains("entre 1 et 3"));
    let p = b
        .get(&format!("/imaging/{id}/series/0?fenetre=soleil"))
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.text().contains("« soleil » n'existe pas"));
    let p = b.get(&format!("/imaging/{id}/series/5")).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.text().contains("JPEG 2000"));
    assert_eq!(
        b.get(&format!("/imaging/{id}/series/9")).await.status,
        StatusCode::NOT_FOUND
    );

    // Downloads: one original file, and the whole study as a zip.
    let file = b.get(&format!("/imaging/{id}/series/1/files/0")).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.header(header::CONTENT_TYPE), "application/dicom");
    assert!(file
        .header(header::CONTENT_DISPOSITION)
        .contains("mr-1.dcm"));
    assert_eq!(file.body, h.files["mr-1.dcm"]);
    let zip = b.get(&format!("/documents/{id}/file")).await;
    assert_eq!(zip.status, StatusCode::OK);
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip.body)).unwrap();
    assert_eq!(archive.len(), 8);
    // The patient's own reads are not audited.
    assert!(h.audit_details(CAMILLE).is_empty());
}

#[tokio::test]
async fn a_relative_views_by_delegation_and_is_audited_others_see_nothing() {
    let h = hub();
    let id = h.file_study();

    // Hélène, without a delegation: Camille's study is not hers.
    let mut helene = h.browser();
    helene.login(HELENE).await;
    for path in [
        format!("/imaging/{id}"),
        format!("/imaging/{id}/series/0"),
        format!("/imaging/{id}/series/0/image?image=1"),
        format!("/imaging/{id}/series/0/thumbnail"),
        format!("/imaging/{id}/series/0/files/0"),
    ] {
        assert_eq!(
            helene.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Without a session: to the login page.
    let p = h.browser().get(&format!("/imaging/{id}")).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);

    let mut camille = h.browser();
    camille.login(CAMILLE).await;
    let token = camille.token().await;
    let p = camille
        .post(
            "/settings/delegations",
            &[("_csrf", &token), ("address", HELENE), ("level", "read")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let token = helene.token().await;
    let p = helene
        .post(
            "/space",
            &[("_csrf", &token), ("space", &h.camille.id.0.to_string())],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);

    assert_eq!(
        helene.get(&format!("/imaging/{id}")).await.status,
        StatusCode::OK
    );
    let viewer = helene.get(&format!("/imaging/{id}/series/3?image=4")).await;
    assert!(viewer.text().contains("Image 4 sur 5"));
    let image = helene
        .get(&format!("/imaging/{id}/series/3/image?image=4"))
        .await;
    assert_eq!(image.status, StatusCode::OK);
    let file = helene.get(&format!("/imaging/{id}/series/0/files/2")).await;
    assert_eq!(file.body, h.files["ct-3.dcm"]);

    let details = h.audit_details(HELENE);
    let parts: Vec<&str> = details
        .iter()
        .inspect(|d| assert!(d.contains("ground:delegate"), "{d}"))
        .filter_map(|d| d.split_whitespace().find(|w| w.starts_with("part:")))
        .collect();
    assert_eq!(parts, ["part:study", "part:viewer", "part:dicom-file"]);
    let history = camille.get("/documents/history").await.text();
    assert!(history.contains("a consulté le document (délégation)"));
    assert!(history.contains("Scanner thoracique"));

    // Revoked: nothing more.
    let token = camille.token().await;
    camille
        .post(
            "/settings/delegations/revoke",
            &[("_csrf", &token), ("delegate", &h.helene.id.0.to_string())],
        )
        .await;
    let p = helene.get(&format!("/imaging/{id}")).await;
    assert_ne!(p.status, StatusCode::OK);
    h.store.verify_audit().unwrap();
}
