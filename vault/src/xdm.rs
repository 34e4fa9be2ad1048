//! IHE XDM (IHE ITI TF-1 §16, TF-3 §4.2.4): a zip with `IHE_XDM/SUBSETnn/METADATA.XML` (an ebRIM
//! `SubmitObjectsRequest`) and the documents it describes.
//!
//! The archive comes from the network, so it is read defensively: the entry count is bounded,
//! every name is checked before use, sizes are counted while decompressing (the headers are not
//! trusted) against a total limit and a compression-ratio limit, nested archives are refused,
//! the metadata is parsed without DTD or entities, and each document's size and SHA-1 are
//! checked against the metadata. Nothing is filed unless the whole archive passes.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use mshub_directory::{Address, Ins};

use crate::document::{sha1_hex, Author};
use crate::Rejection;

/// Bounds on what an archive may expand to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdmLimits {
    /// Total of the entries' uncompressed sizes, as actually decompressed.
    pub max_total: u64,
    /// Uncompressed ÷ compressed size of one entry…
    pub max_ratio: u64,
    /// …checked only once the entry is past this size (small files of blanks compress well).
    pub ratio_floor: u64,
    pub max_entries: usize,
}

impl Default for XdmLimits {
    fn default() -> Self {
        Self {
            max_total: 200 * 1024 * 1024,
            max_ratio: 100,
            ratio_floor: 1024 * 1024,
            max_entries: 1000,
        }
    }
}

/// OIDs of the INS assigning authorities accepted in a patientId (ANS, "Référentiel INS"):
/// the NIR-based INS, and the two test authorities of the qualification platform.
pub const INS_OIDS: [&str; 3] = [
    "1.2.250.1.213.1.4.8",
    "1.2.250.1.213.1.4.10",
    "1.2.250.1.213.1.4.11",
];

// ebRIM classification schemes of XDSDocumentEntry (IHE ITI TF-3 §4.2.5.2).
const SCHEME_AUTHOR: &str = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d";
const SCHEME_CLASS: &str = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a";
const SCHEME_TYPE: &str = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983";
const SCHEME_CONFIDENTIALITY: &str = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f";
const SCHEME_FORMAT: &str = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d";
const SCHEME_PATIENT_ID: &str = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427";

/// A coded value (code, coding scheme, display name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coded {
    pub code: String,
    pub scheme: String,
    pub display: String,
}

/// One XDSDocumentEntry of a METADATA.XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentEntry {
    pub id: String,
    pub mime: String,
    pub title: String,
    pub uri: String,
    pub hash: String,
    pub size: u64,
    /// HL7 DTM values as given (`YYYYMMDDhhmmss`).
    pub creation_time: Option<String>,
    pub service_start: Option<String>,
    pub service_stop: Option<String>,
    /// XDSDocumentEntry.patientId, a CX (`INS^^^&OID&ISO`).
    pub patient_id: String,
    pub type_code: Option<Coded>,
    pub class_code: Option<Coded>,
    pub format_code: Option<Coded>,
    pub confidentiality: Vec<Coded>,
    pub author: Author,
}

/// A document of the archive, checked against its metadata.
#[derive(Debug, Clone)]
pub struct XdmDocument {
    /// `SUBSET01`, …
    pub subset: String,
    pub entry: DocumentEntry,
    pub content: Vec<u8>,
}

/// Does this look like an XDM archive (a zip with an `IHE_XDM/` folder)? Entry names are
/// stored uncompressed, so a byte search suffices to decide whether to try.
pub fn looks_like_xdm(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
        && bytes
            .windows(8)
            .any(|w| w.eq_ignore_ascii_case(b"IHE_XDM/"))
}

/// Why a name is unsafe, if it is: absolute, a drive, `..`, backslashes or control characters.
fn unsafe_name(name: &str) -> bool {
    name.starts_with('/')
        || name.contains('\\')
        || name.chars().any(char::is_control)
        || name.as_bytes().get(1) == Some(&b':')
        || name.split('/').any(|c| c == ".." || c == ".")
}

fn is_zip(name: &str, content: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".zip")
        || content.starts_with(b"PK\x03\x04")
        || content.starts_with(b"PK\x05\x06")
        || content.starts_with(b"PK\x07\x08")
}

/// Reads every entry of the archive within the limits, keyed by name.
fn read_entries(bytes: &[u8], limits: &XdmLimits) -> Result<BTreeMap<String, Vec<u8>>, Rejection> {
    let unreadable = |e: zip::result::ZipError| Rejection::ZipUnreadable {
        detail: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(unreadable)?;
    if archive.len() > limits.max_entries {
        return Err(Rejection::ZipTooManyEntries {
            count: archive.len(),
            limit: limits.max_entries,
        });
    }
    let mut entries = BTreeMap::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(unreadable)?;
        let name = file.name().to_string();
        if unsafe_name(&name) {
            return Err(Rejection::PathTraversal { entry: name });
        }
        if file.is_dir() {
            continue;
        }
        let remaining = limits.max_total.saturating_sub(total);
        // The compressed size comes from the headers: bound it by what was actually sent.
        let by_ratio = file
            .compressed_size()
            .min(bytes.len() as u64)
            .saturating_mul(limits.max_ratio)
            .max(limits.ratio_floor);
        let limit = remaining.min(by_ratio);
        let mut content = Vec::new();
        (&mut file)
            .take(limit.saturating_add(1))
            .read_to_end(&mut content)
            .map_err(|e| Rejection::ZipUnreadable {
                detail: format!("{name}: {e}"),
            })?;
        let got = content.len() as u64;
        if got > limit {
            return Err(if limit == remaining {
                Rejection::ZipTooLarge {
                    limit: limits.max_total,
                }
            } else {
                Rejection::ZipRatio {
                    entry: name,
                    limit: limits.max_ratio,
                }
            });
        }
        total += got;
        if is_zip(&name, &content) {
            return Err(Rejection::NestedZip { entry: name });
        }
        if entries.insert(name.clone(), content).is_some() {
            return Err(Rejection::ZipUnreadable {
                detail: format!("{name} appears twice"),
            });
        }
    }
    Ok(entries)
}

/// Reads an XDM archive: every DocumentEntry of every subset with its checked content.
pub fn read_xdm(bytes: &[u8], limits: &XdmLimits) -> Result<Vec<XdmDocument>, Rejection> {
    let entries = read_entries(bytes, limits)?;
    // Names compared case-insensitively: XDM media come from ISO 9660 habits (upper case),
    // senders are not consistent.
    let by_upper: BTreeMap<String, &str> = entries
        .keys()
        .map(|k| (k.to_ascii_uppercase(), k.as_str()))
        .collect();
    let subsets: Vec<(&str, &str)> = entries
        .keys()
        .filter_map(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            match parts.as_slice() {
                [root, subset, file]
                    if root.eq_ignore_ascii_case("IHE_XDM")
                        && file.eq_ignore_ascii_case("METADATA.XML") =>
                {
                    Some((*subset, k.as_str()))
                }
                _ => None,
            }
        })
        .collect();
    if subsets.is_empty() {
        return Err(Rejection::MissingMetadata);
    }
    let mut documents = Vec::new();
    for (subset, metadata_name) in subsets {
        let xml = &entries[metadata_name];
        for entry in parse_metadata(xml, metadata_name)? {
            if unsafe_name(&entry.uri) || entry.uri.contains('/') {
                return Err(Rejection::PathTraversal {
                    entry: entry.uri.clone(),
                });
            }
            let full = format!("IHE_XDM/{subset}/{}", entry.uri).to_ascii_uppercase();
            let content = by_upper
                .get(&full)
                .map(|name| entries[*name].clone())
                .ok_or_else(|| Rejection::MissingDocument {
                    uri: entry.uri.clone(),
                })?;
            if content.len() as u64 != entry.size {
                return Err(Rejection::SizeMismatch {
                    uri: entry.uri.clone(),
                    expected: entry.size,
                    actual: content.len() as u64,
                });
            }
            let actual = sha1_hex(&content);
            if !actual.eq_ignore_ascii_case(entry.hash.trim()) {
                return Err(Rejection::HashMismatch {
                    uri: entry.uri.clone(),
                    expected: entry.hash.clone(),
                    actual,
                });
            }
            documents.push(XdmDocument {
                subset: subset.to_string(),
                entry,
                content,
            });
        }
    }
    Ok(documents)
}

/// Parses XML from an attachment: UTF-8, no DTD, no entity but the predefined ones.
pub(crate) fn parse_xml<'a>(
    text: &'a str,
    file: &str,
) -> Result<roxmltree::Document<'a>, Rejection> {
    // roxmltree refuses a DTD by default (`allow_dtd: false`), and with no DTD no entity can
    // be declared: entity expansion attacks (billion laughs, XXE) cannot start.
    roxmltree::Document::parse(text).map_err(|e| match e {
        roxmltree::Error::DtdDetected
        | roxmltree::Error::UnknownEntityReference(..)
        | roxmltree::Error::EntityReferenceLoop(..) => Rejection::XmlDtd {
            file: file.to_string(),
            detail: e.to_string(),
        },
        other => Rejection::XmlInvalid {
            file: file.to_string(),
            detail: other.to_string(),
        },
    })
}

pub(crate) fn xml_text<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|e| Rejection::XmlInvalid {
        file: file.to_string(),
        detail: format!("not UTF-8: {e}"),
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    local: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == local)
}

/// The values of a `<Slot name=…>` child, joined in order (ebRIM splits long URIs as
/// `1|first part`, `2|second part`: IHE ITI TF-3 §4.2.3.2.24).
fn slot_values(node: roxmltree::Node<'_, '_>, name: &str) -> Vec<String> {
    children(node, "Slot")
        .filter(|s| s.attribute("name") == Some(name))
        .flat_map(|s| s.descendants().filter(|d| d.tag_name().name() == "Value"))
        .filter_map(|v| v.text().map(|t| t.trim().to_string()))
        .collect()
}

fn slot(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    slot_values(node, name).into_iter().next()
}

fn localized_name(node: roxmltree::Node<'_, '_>) -> Option<String> {
    children(node, "Name")
        .flat_map(|n| n.descendants())
        .find(|d| d.tag_name().name() == "LocalizedString")
        .and_then(|d| d.attribute("value"))
        .map(str::to_string)
}

fn joined_uri(values: Vec<String>) -> String {
    let numbered: Option<Vec<(u32, String)>> = values
        .iter()
        .map(|v| {
            let (n, rest) = v.split_once('|')?;
            Some((n.parse().ok()?, rest.to_string()))
        })
        .collect();
    match numbered {
        Some(mut parts) if values.len() > 1 => {
            parts.sort_by_key(|(n, _)| *n);
            parts.into_iter().map(|(_, p)| p).collect()
        }
        _ => values.into_iter().next().unwrap_or_default(),
    }
}

/// Parses the DocumentEntries of a METADATA.XML.
pub fn parse_metadata(bytes: &[u8], file: &str) -> Result<Vec<DocumentEntry>, Rejection> {
    let text = xml_text(bytes, file)?;
    let doc = parse_xml(text, file)?;
    let incomplete = |detail: String| Rejection::MetadataIncomplete {
        file: file.to_string(),
        detail,
    };
    let mut out = Vec::new();
    for eo in doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "ExtrinsicObject")
    {
        let id = eo.attribute("id").unwrap_or_default().to_string();
        let mut entry = DocumentEntry {
            id: id.clone(),
            mime: eo.attribute("mimeType").unwrap_or_default().to_string(),
            title: localized_name(eo).unwrap_or_default(),
            uri: joined_uri(slot_values(eo, "URI")),
            hash: slot(eo, "hash").unwrap_or_default(),
            creation_time: slot(eo, "creationTime"),
            service_start: slot(eo, "serviceStartTime"),
            service_stop: slot(eo, "serviceStopTime"),
            ..DocumentEntry::default()
        };
        entry.size = match slot(eo, "size") {
            Some(s) => s
                .parse()
                .map_err(|_| incomplete(format!("entry {id}: size {s:?} is not a number")))?,
            None => return Err(incomplete(format!("entry {id} has no size slot"))),
        };
        if entry.uri.is_empty() {
            return Err(incomplete(format!("entry {id} has no URI slot")));
        }
        if entry.hash.is_empty() {
            return Err(incomplete(format!("entry {id} has no hash slot")));
        }
        for c in children(eo, "Classification") {
            let scheme = c
                .attribute("classificationScheme")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let coded = || Coded {
                code: c
                    .attribute("nodeRepresentation")
                    .unwrap_or_default()
                    .to_string(),
                scheme: slot(c, "codingScheme").unwrap_or_default(),
                display: localized_name(c).unwrap_or_default(),
            };
            match scheme.as_str() {
                SCHEME_AUTHOR => {
                    entry.author = Author {
                        person: slot(c, "authorPerson").as_deref().and_then(xcn_name),
                        person_id: slot(c, "authorPerson").as_deref().and_then(xcn_id),
                        institution: slot(c, "authorInstitution")
                            .and_then(|v| v.split('^').next().map(str::to_string))
                            .filter(|v| !v.is_empty()),
                        address: slot(c, "authorTelecom").as_deref().and_then(xtn_email),
                    }
                }
                SCHEME_CLASS => entry.class_code = Some(coded()),
                SCHEME_TYPE => entry.type_code = Some(coded()),
                SCHEME_FORMAT => entry.format_code = Some(coded()),
                SCHEME_CONFIDENTIALITY => entry.confidentiality.push(coded()),
                _ => {}
            }
        }
        entry.patient_id = children(eo, "ExternalIdentifier")
            .find(|x| {
                x.attribute("identificationScheme")
                    .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME_PATIENT_ID))
                    || localized_name(*x).as_deref() == Some("XDSDocumentEntry.patientId")
            })
            .and_then(|x| x.attribute("value"))
            .map(str::to_string)
            .ok_or_else(|| incomplete(format!("entry {id} has no XDSDocumentEntry.patientId")))?;
        out.push(entry);
    }
    if out.is_empty() {
        return Err(incomplete("no XDSDocumentEntry (ExtrinsicObject)".into()));
    }
    Ok(out)
}

/// The INS of a patientId CX `INS^^^&OID&ISO`, if its assigning authority is an INS one.
pub fn parse_patient_id(cx: &str) -> Result<Ins, Rejection> {
    let bad = |detail: String| Rejection::BadPatientId {
        id: cx.to_string(),
        detail,
    };
    let parts: Vec<&str> = cx.trim().split('^').collect();
    let oid = parts
        .get(3)
        .and_then(|a| a.split('&').nth(1))
        .unwrap_or_default();
    if !INS_OIDS.contains(&oid) {
        return Err(bad(format!(
            "assigning authority {oid:?} is not an INS authority ({})",
            INS_OIDS.join(", ")
        )));
    }
    Ins::try_from(parts[0]).map_err(|e| bad(e.to_string()))
}

/// `id^family^given^second^suffix^prefix…` (HL7 v2 XCN) → "prefix given family".
fn xcn_name(xcn: &str) -> Option<String> {
    let c: Vec<&str> = xcn.split('^').collect();
    if c.len() == 1 {
        return Some(xcn.to_string()).filter(|s| !s.is_empty());
    }
    let get = |i: usize| c.get(i).copied().unwrap_or_default();
    let name = [get(5), get(2), get(1)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Some(name).filter(|s| !s.is_empty())
}

fn xcn_id(xcn: &str) -> Option<String> {
    xcn.split_once('^')
        .map(|(id, _)| id.to_string())
        .filter(|id| !id.is_empty())
}

/// The e-mail of an XTN (`^^Internet^someone@example`), or a bare address.
fn xtn_email(xtn: &str) -> Option<Address> {
    let candidate = xtn
        .split('^')
        .nth(3)
        .filter(|s| s.contains('@'))
        .unwrap_or(xtn);
    Address::try_from(candidate.trim_start_matches("mailto:")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_recognised() {
        for bad in [
            "../x",
            "IHE_XDM/../../etc/passwd",
            "/etc/passwd",
            "C:/x",
            "a\\b",
            "IHE_XDM/./x",
        ] {
            assert!(unsafe_name(bad), "{bad}");
        }
        assert!(!unsafe_name("IHE_XDM/SUBSET01/DOC0001.XML"));
        assert!(!unsafe_name("README.TXT"));
    }

    #[test]
    fn patient_ids_with_ins_authorities_are_accepted() {
        let ins = parse_patient_id("284057511204339^^^&1.2.250.1.213.1.4.8&ISO").unwrap();
        assert_eq!(ins.as_str(), "284057511204339");
        assert!(parse_patient_id("284057511204339^^^&1.2.250.1.213.1.4.10&ISO").is_ok());
        assert!(matches!(
            parse_patient_id("284057511204339^^^&1.2.3.4&ISO"),
            Err(Rejection::BadPatientId { .. })
        ));
        assert!(matches!(
            parse_patient_id("284057511204338^^^&1.2.250.1.213.1.4.8&ISO"),
            Err(Rejection::BadPatientId { .. })
        ));
    }

    #[test]
    fn author_fields_are_read() {
        assert_eq!(
            xcn_name("810001234567^MARTIN^Claire^^^Dr^^^&1.2.250.1.71.4.2.1&ISO").as_deref(),
            Some("Dr Claire MARTIN")
        );
        assert_eq!(
            xcn_id("810001234567^MARTIN^Claire").as_deref(),
            Some("810001234567")
        );
        assert_eq!(
            xtn_email("^^Internet^claire.martin@chu.example").map(|a| a.to_string()),
            Some("claire.martin@chu.example".to_string())
        );
    }

    #[test]
    fn split_uris_are_joined() {
        assert_eq!(joined_uri(vec!["2|B.XML".into(), "1|A".into()]), "AB.XML");
        assert_eq!(joined_uri(vec!["DOC.XML".into()]), "DOC.XML");
    }
}
