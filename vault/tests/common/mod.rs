//! Test hub (real store and directory in a temporary directory) and fixture builders: IHE XDM
//! zips, METADATA.XML, CDA documents and MIME messages, generated here so that each test shows
//! exactly what it sends (see tests/fixtures/README.md).

#![allow(dead_code)]

use std::io::Write as _;
use std::sync::Arc;

use mshub_directory::*;
use mshub_store::{MasterKey, SpecialUse, Store};
use mshub_vault::*;

pub const CAMILLE_INS: &str = "284057511204339";
pub const PAUL_INS: &str = "190017511200164";
pub const INS_OID: &str = "1.2.250.1.213.1.4.8";
pub const LABO: &str = "labo@chu.mshub.test";
pub const MARTIN: &str = "claire.martin@chu.mshub.test";

pub struct Hub {
    pub _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub directory: Arc<Directory>,
    pub vault: Vault,
    pub camille: Account,
    pub paul: Account,
    /// Physician, author of the lab's documents in the fixtures.
    pub martin: Account,
    /// Physician, Camille's referring doctor in the tests that set one.
    pub bernard: Account,
    /// Physician with no tie to the patient.
    pub dubois: Account,
    pub pharmacist: Account,
    pub nurse: Account,
    pub radiology: Account,
    /// The lab's system mailbox (an organisation).
    pub labo: Account,
}

/// An 11-digit RPPS with its Luhn check digit.
pub fn rpps(body: u64) -> Rpps {
    let body = format!("{body:010}");
    for check in 0..10 {
        if let Ok(r) = Rpps::try_from(format!("{body}{check}").as_str()) {
            return r;
        }
    }
    unreachable!("one check digit fits")
}

/// A valid INS from a 13-digit body.
pub fn ins_with_key(body: &str) -> String {
    let n: u64 = body.parse().unwrap();
    format!("{body}{:02}", 97 - n % 97)
}

pub fn hub() -> Hub {
    hub_with_limits(XdmLimits::default())
}

pub fn hub_with_limits(limits: XdmLimits) -> Hub {
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
            .add_account(Address::try_from(addr).unwrap(), kind, None, "test")
            .unwrap()
    };
    let pro = |addr: &str, n: u64, family: &str, profession: Profession| {
        add(
            addr,
            AccountKind::Professional {
                rpps: rpps(n),
                given_name: "Test".into(),
                family_name: family.into(),
                profession,
                specialty: String::new(),
                city: String::new(),
            },
        )
    };
    let camille = add(
        &format!("{CAMILLE_INS}@patient.mshub.test"),
        AccountKind::Patient {
            ins: Ins::try_from(CAMILLE_INS).unwrap(),
            given_name: "Camille".into(),
            family_name: "Durand".into(),
            birth_date: BirthDate::try_from("1984-05-12").unwrap(),
            sex: Sex::Female,
        },
    );
    let paul = add(
        &format!("{PAUL_INS}@patient.mshub.test"),
        AccountKind::Patient {
            ins: Ins::try_from(PAUL_INS).unwrap(),
            given_name: "Paul".into(),
            family_name: "Petit".into(),
            birth_date: BirthDate::try_from("1990-01-02").unwrap(),
            sex: Sex::Male,
        },
    );
    let martin = pro(MARTIN, 1000345678, "Martin", Profession::Physician);
    let bernard = pro(
        "paul.bernard@chu.mshub.test",
        1000345679,
        "Bernard",
        Profession::Physician,
    );
    let dubois = pro(
        "luc.dubois@chu.mshub.test",
        1000345680,
        "Dubois",
        Profession::Physician,
    );
    let pharmacist = pro(
        "anne.pharma@chu.mshub.test",
        1000345681,
        "Pharma",
        Profession::Pharmacist,
    );
    let nurse = pro(
        "ines.soins@chu.mshub.test",
        1000345682,
        "Soins",
        Profession::Nurse,
    );
    let radiology = pro(
        "marc.radio@chu.mshub.test",
        1000345683,
        "Radio",
        Profession::RadiologyTechnician,
    );
    let labo = add(
        LABO,
        AccountKind::Organisation {
            name: "Laboratoire du CHU".into(),
            members: vec![martin.address.clone()],
        },
    );
    let vault = Vault::with_tables(
        store.clone(),
        directory.clone(),
        DocumentTypes::builtin(),
        AccessMatrix::builtin(),
        limits,
    );
    Hub {
        _dir: dir,
        store,
        directory,
        vault,
        camille,
        paul,
        martin,
        bernard,
        dubois,
        pharmacist,
        nurse,
        radiology,
        labo,
    }
}

impl Hub {
    /// The raw messages of an account's INBOX, as text.
    pub fn inbox(&self, account: &Account) -> Vec<String> {
        let inbox = self
            .store
            .special_mailbox(account.id, SpecialUse::Inbox)
            .unwrap();
        self.store
            .messages(inbox.id)
            .unwrap()
            .into_iter()
            .map(|m| String::from_utf8(self.store.read_message(inbox.id, m.uid).unwrap()).unwrap())
            .collect()
    }

    /// Audit records with this action.
    pub fn audits(&self, action: &str) -> Vec<mshub_store::AuditRecord> {
        self.store
            .audit_records(0, 100_000)
            .unwrap()
            .into_iter()
            .filter(|r| r.event.action == action)
            .collect()
    }

    /// Files `raw` as delivered to Camille by the lab.
    pub fn file_for_camille(&self, raw: &[u8]) -> Filing {
        let labo = Address::try_from(LABO).unwrap();
        self.vault.file_message(&self.camille, Some(&labo), raw)
    }
}

/// One document of an XDM subset, with what its metadata says.
#[derive(Clone)]
pub struct XdmDoc {
    pub uri: String,
    pub mime: String,
    pub title: String,
    pub type_code: String,
    pub content: Vec<u8>,
    pub patient_id: String,
    pub author_email: Option<String>,
    pub confidentiality: String,
    /// Overrides of the hash and size slots (defence tests).
    pub hash: Option<String>,
    pub size: Option<u64>,
}

impl XdmDoc {
    pub fn new(uri: &str, type_code: &str, title: &str, content: &[u8]) -> Self {
        Self {
            uri: uri.into(),
            mime: if uri.ends_with(".XML") {
                "text/xml".into()
            } else {
                "application/pdf".into()
            },
            title: title.into(),
            type_code: type_code.into(),
            content: content.to_vec(),
            patient_id: format!("{CAMILLE_INS}^^^&{INS_OID}&ISO"),
            author_email: Some(MARTIN.into()),
            confidentiality: "N".into(),
            hash: None,
            size: None,
        }
    }
}

fn sha1_hex(bytes: &[u8]) -> String {
    mshub_vault::sha1_hex(bytes)
}

/// An ebRIM SubmitObjectsRequest describing `docs` (IHE ITI TF-3 §4.2.3 / XDM).
pub fn metadata_xml(docs: &[XdmDoc]) -> String {
    let mut entries = String::new();
    for (i, d) in docs.iter().enumerate() {
        let telecom = d
            .author_email
            .as_ref()
            .map(|e| {
                format!(r#"<rim:Slot name="authorTelecom"><rim:ValueList><rim:Value>^^Internet^{e}</rim:Value></rim:ValueList></rim:Slot>"#)
            })
            .unwrap_or_default();
        entries.push_str(&format!(
            r#"
    <rim:ExtrinsicObject id="Document{i:02}" mimeType="{mime}" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
      <rim:Slot name="creationTime"><rim:ValueList><rim:Value>20240115103000</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="serviceStartTime"><rim:ValueList><rim:Value>20240114080000</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="serviceStopTime"><rim:ValueList><rim:Value>20240114090000</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="hash"><rim:ValueList><rim:Value>{hash}</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="size"><rim:ValueList><rim:Value>{size}</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="URI"><rim:ValueList><rim:Value>{uri}</rim:Value></rim:ValueList></rim:Slot>
      <rim:Slot name="sourcePatientId"><rim:ValueList><rim:Value>{pid}</rim:Value></rim:ValueList></rim:Slot>
      <rim:Name><rim:LocalizedString value="{title}"/></rim:Name>
      <rim:Classification classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" classifiedObject="Document{i:02}" nodeRepresentation="">
        <rim:Slot name="authorPerson"><rim:ValueList><rim:Value>810003456780^MARTIN^Claire^^^Dr^^^&amp;1.2.250.1.71.4.2.1&amp;ISO</rim:Value></rim:ValueList></rim:Slot>
        <rim:Slot name="authorInstitution"><rim:ValueList><rim:Value>Laboratoire du CHU^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^IDNST^^^31234567890</rim:Value></rim:ValueList></rim:Slot>
        {telecom}
      </rim:Classification>
      <rim:Classification classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a" classifiedObject="Document{i:02}" nodeRepresentation="{code}">
        <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.6.1</rim:Value></rim:ValueList></rim:Slot>
      </rim:Classification>
      <rim:Classification classificationScheme="urn:uuid:f0306f51-975f-434e-a61c-c59651d33983" classifiedObject="Document{i:02}" nodeRepresentation="{code}">
        <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.6.1</rim:Value></rim:ValueList></rim:Slot>
        <rim:Name><rim:LocalizedString value="type"/></rim:Name>
      </rim:Classification>
      <rim:Classification classificationScheme="urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f" classifiedObject="Document{i:02}" nodeRepresentation="{conf}">
        <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.5.25</rim:Value></rim:ValueList></rim:Slot>
      </rim:Classification>
      <rim:Classification classificationScheme="urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d" classifiedObject="Document{i:02}" nodeRepresentation="urn:ihe:iti:xds-sd:pdf:2008"/>
      <rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" registryObject="Document{i:02}" value="{pid}">
        <rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name>
      </rim:ExternalIdentifier>
    </rim:ExtrinsicObject>"#,
            mime = d.mime,
            hash = d.hash.clone().unwrap_or_else(|| sha1_hex(&d.content)),
            size = d.size.unwrap_or(d.content.len() as u64),
            uri = d.uri,
            pid = d.patient_id.replace('&', "&amp;"),
            title = d.title.replace('\'', "&apos;"),
            code = d.type_code,
            conf = d.confidentiality,
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
  <rim:RegistryObjectList>{entries}
    <rim:RegistryPackage id="SubmissionSet01"/>
  </rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>
"#
    )
}

/// A zip of these (name, content) entries, deflated.
pub fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(content).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// An XDM zip: for each subset, its METADATA.XML and documents, plus the INDEX.HTM and
/// README.TXT the profile asks for.
pub fn xdm_zip(subsets: &[(&str, Vec<XdmDoc>)]) -> Vec<u8> {
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        (
            "INDEX.HTM".into(),
            b"<html><body>XDM</body></html>".to_vec(),
        ),
        ("README.TXT".into(), b"IHE XDM media".to_vec()),
    ];
    for (subset, docs) in subsets {
        entries.push((
            format!("IHE_XDM/{subset}/METADATA.XML"),
            metadata_xml(docs).into_bytes(),
        ));
        for d in docs {
            entries.push((format!("IHE_XDM/{subset}/{}", d.uri), d.content.clone()));
        }
    }
    let borrowed: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, c)| (n.as_str(), c.clone()))
        .collect();
    zip_of(&borrowed)
}

pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                T[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A multipart/mixed message from the lab to `to` with these (file name, content type, bytes)
/// attachments, base64-encoded, and extra header lines.
pub fn message(to: &str, attachments: &[(&str, &str, &[u8])], extra_headers: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Laboratoire <{LABO}>\r\nTo: <{to}>\r\nSubject: Resultats\r\n\
         Message-ID: <{}@chu.mshub.test>\r\nMIME-Version: 1.0\r\n{extra_headers}\
         Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n\
         --BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVeuillez trouver ci-joint.\r\n",
        sha1_hex(format!("{attachments:?}{extra_headers}").as_bytes())
    );
    for (name, ctype, bytes) in attachments {
        m.push_str(&format!(
            "--BOUNDARY\r\nContent-Type: {ctype}; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        ));
        let encoded = base64(bytes);
        for line in encoded.as_bytes().chunks(76) {
            m.push_str(std::str::from_utf8(line).unwrap());
            m.push_str("\r\n");
        }
    }
    m.push_str("--BOUNDARY--\r\n");
    m.into_bytes()
}

/// A minimal PDF (enough for the magic and a viewer).
pub fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {text}\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
        .into_bytes()
}

/// A CDA R2 document for `ins` with a structured body (two sections) or, if `pdf_body` is
/// given, a nonXMLBody carrying that PDF in base64.
pub fn cda(ins: &str, code: &str, title: &str, pdf_body: Option<&[u8]>) -> Vec<u8> {
    let body = match pdf_body {
        Some(pdf) => format!(
            r#"<nonXMLBody><text mediaType="application/pdf" representation="B64">{}</text></nonXMLBody>"#,
            base64(pdf)
        ),
        None => r#"<structuredBody>
      <component><section>
        <title>Résultats</title>
        <text><paragraph>Hémoglobine : 13,5 g/dL</paragraph><paragraph>Leucocytes : 6,2 G/L</paragraph></text>
      </section></component>
      <component><section>
        <title>Conclusion</title>
        <text>Bilan <content>normal</content>.</text>
      </section></component>
    </structuredBody>"#
            .to_string(),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="CDA.xsl"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.250.1.999.1" extension="DOC-1"/>
  <code code="{code}" codeSystem="2.16.840.1.113883.6.1" displayName="{title}"/>
  <title>{title}</title>
  <effectiveTime value="20240115103000+0100"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget><patientRole>
    <id root="{INS_OID}" extension="{ins}"/>
    <patient><name><given>Camille</given><family>DURAND</family></name></patient>
  </patientRole></recordTarget>
  <author><time value="20240115103000+0100"/><assignedAuthor>
    <id root="1.2.250.1.71.4.2.1" extension="810003456780"/>
    <telecom value="mailto:{MARTIN}"/>
    <assignedPerson><name><prefix>Dr</prefix><given>Claire</given><family>MARTIN</family></name></assignedPerson>
    <representedOrganization><name>Laboratoire du CHU</name></representedOrganization>
  </assignedAuthor></author>
  <component>
    {body}
  </component>
</ClinicalDocument>
"#
    )
    .into_bytes()
}

pub fn failure(filing: &Filing) -> Rejection {
    let failures: Vec<_> = filing.failures().collect();
    assert_eq!(
        failures.len(),
        1,
        "expected one refused attachment: {filing:?}"
    );
    failures[0].1.clone()
}
