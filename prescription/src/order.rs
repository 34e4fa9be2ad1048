//! The structured part a prescriber sends: an `ordonnance.json` attachment (schema in the
//! crate's documentation), read from the message and checked before anything is issued.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Deserialize;

use crate::Refusal;

mod check;
mod pdf_files;

pub use check::MAX_PROBLEMS;

/// The attachment's usual file name; others are recognised too ([`find_order_file`]).
pub const ORDER_FILE: &str = "ordonnance.json";
/// Largest `ordonnance.json` read.
pub const MAX_ORDER_BYTES: usize = 64 * 1024;
/// Most lines on one prescription.
pub const MAX_LINES: usize = 20;
/// Most renewals of one line (a year of monthly dispensings).
pub const MAX_RENEWALS: u8 = 12;
/// Most units per dispensing of one line.
pub const MAX_QUANTITY: u32 = 99;
/// Validity when the prescriber gives none: three months.
pub const DEFAULT_VALIDITY_DAYS: u32 = 90;
/// Longest validity: one year.
pub const MAX_VALIDITY_DAYS: u32 = 365;

/// `ordonnance.json`, as the prescriber's software writes it (version 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub version: u32,
    pub prescriber: OrderPrescriber,
    pub patient: OrderPatient,
    /// YYYY-MM-DD.
    pub date: String,
    #[serde(default)]
    pub validity_days: Option<u32>,
    pub lines: Vec<OrderLine>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderPrescriber {
    pub rpps: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderPatient {
    pub ins: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub drug: String,
    pub dose: String,
    pub duration: String,
    #[serde(default = "one")]
    pub quantity: u32,
    #[serde(default)]
    pub renewals: u8,
}

fn one() -> u32 {
    1
}

/// Cheap look at a raw message: may it carry a prescription? Its attachments' names and
/// media types are in the headers, in clear: a name with "ordonnance", any JSON, or a PDF
/// (which may embed one).
pub fn may_carry_order(raw: &[u8]) -> bool {
    let contains = |needle: &[u8]| {
        raw.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    contains(b"ordonnance") || contains(b"json") || contains(b"pdf")
}

/// A prescription found in a message: where it was (the attachment's name, or the PDF's
/// and its embedded file's) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Whether a file name says "prescription": `ordonnance….json` in any case, whatever
/// follows or precedes (`Ordonnance_Dupont.json`, `ordonnance (1).json`).
fn named_order(name: &str) -> bool {
    let lower = name.trim().to_lowercase();
    lower.ends_with(".json") && (lower.contains("ordonnance") || lower.contains("prescription"))
}

fn is_json(name: &str, mime: &str) -> bool {
    name.trim().to_ascii_lowercase().ends_with(".json")
        || mime == "application/json"
        || mime == "text/json"
        || mime.ends_with("+json")
}

fn is_pdf(name: &str, mime: &str, bytes: &[u8]) -> bool {
    mime == "application/pdf"
        || name.trim().to_ascii_lowercase().ends_with(".pdf")
        || bytes.starts_with(b"%PDF-")
}

/// Whether JSON content has the prescription's shape: an object with at least two of the
/// schema's own members (`prescriber`, `patient`, `lines`). Read only within
/// [`MAX_ORDER_BYTES`].
fn has_order_shape(bytes: &[u8]) -> bool {
    if bytes.len() > MAX_ORDER_BYTES {
        return false;
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(o)) => {
            ["prescriber", "patient", "lines"]
                .iter()
                .filter(|k| o.contains_key(**k))
                .count()
                >= 2
        }
        _ => false,
    }
}

/// What looked like a prescription: read, or not readable with the reason.
type Candidate = (String, Result<Vec<u8>, String>);

fn candidates(raw: &[u8]) -> Vec<Candidate> {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let mut found: Vec<Candidate> = Vec::new();
    for part in message.attachments() {
        let name = part
            .attachment_name()
            .unwrap_or_default()
            .trim()
            .to_string();
        let mime = part
            .content_type()
            .map(|ct| {
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase()
            })
            .unwrap_or_default();
        let bytes = part.contents();
        let shown = if name.is_empty() {
            format!("pièce jointe {mime}")
        } else {
            name.clone()
        };
        if is_json(&name, &mime) {
            // Named as one (and refused with its reason if it is not one), or shaped as one.
            if named_order(&name) || has_order_shape(bytes) {
                found.push((shown, Ok(bytes.to_vec())));
            }
        } else if is_pdf(&name, &mime, bytes) {
            if bytes.len() > pdf_files::MAX_PDF_BYTES {
                continue;
            }
            for embedded in pdf_files::embedded_files(bytes, MAX_ORDER_BYTES + 1) {
                let inner = embedded.name.clone().unwrap_or_default();
                let label = format!(
                    "{shown} (fichier joint au PDF{})",
                    if inner.is_empty() {
                        String::new()
                    } else {
                        format!(" « {inner} »")
                    }
                );
                match embedded.content {
                    Ok(content) if named_order(&inner) || has_order_shape(&content) => {
                        found.push((label, Ok(content)));
                    }
                    Ok(_) => {}
                    Err(why) if named_order(&inner) => found.push((
                        label,
                        Err(format!(
                            "ce fichier joint au PDF n'a pas pu être lu ({why})"
                        )),
                    )),
                    Err(why) => {
                        tracing::debug!(pdf = %shown, reason = %why, "prescription: an embedded file of a PDF was not read");
                    }
                }
            }
        }
    }
    // The same prescription twice (as an attachment and inside its PDF copy) is one.
    let mut unique: Vec<Candidate> = Vec::new();
    for c in found {
        if !unique
            .iter()
            .any(|u| matches!((&u.1, &c.1), (Ok(a), Ok(b)) if a == b))
        {
            unique.push(c);
        }
    }
    unique
}

/// The prescription a message carries, recognised by its content and media type rather than
/// by its exact name: a JSON attachment named `ordonnance….json`, or any JSON with the
/// prescription's shape, or such a file embedded in a PDF attachment. `None` when nothing in
/// the message looks like one; a refusal when something does but cannot be read, or when
/// there are several (one message, one prescription).
pub fn find_order_file(raw: &[u8]) -> Option<Result<OrderFile, Refusal>> {
    let mut found = candidates(raw);
    if found.len() > 1 {
        let names: Vec<String> = found
            .iter()
            .take(5)
            .map(|(n, _)| format!("« {n} »"))
            .collect();
        return Some(Err(Refusal::invalid(format!(
            "le message porte plusieurs ordonnances ({}) ; une ordonnance par message",
            names.join(", ")
        ))));
    }
    let (name, bytes) = found.pop()?;
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(why) => return Some(Err(Refusal::invalid(format!("{name} : {why}")))),
    };
    if bytes.len() > MAX_ORDER_BYTES {
        return Some(Err(Refusal::invalid(format!(
            "{name} dépasse {} Kio",
            MAX_ORDER_BYTES / 1024
        ))));
    }
    Some(Ok(OrderFile { name, bytes }))
}

/// [`find_order_file`]'s bytes.
pub fn find_order(raw: &[u8]) -> Option<Result<Vec<u8>, Refusal>> {
    find_order_file(raw).map(|r| r.map(|f| f.bytes))
}

/// Parses `ordonnance.json` and checks every field's shape and bounds, naming every problem
/// (at most [`MAX_PROBLEMS`]) by its path in the document. Who sends it to whom is checked by
/// [`crate::Prescriptions::issue`].
pub fn parse_order(bytes: &[u8]) -> Result<Order, Refusal> {
    if bytes.len() > MAX_ORDER_BYTES {
        return Err(Refusal::invalid(format!(
            "le fichier d'ordonnance dépasse {} Kio",
            MAX_ORDER_BYTES / 1024
        )));
    }
    let document: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Refusal::invalid(check::syntax_error(&e)))?;
    let problems = check::check(&document);
    if !problems.is_empty() {
        return Err(Refusal::invalid(problems.sentence()));
    }
    serde_json::from_value(document).map_err(|e| {
        // The check above follows the same schema: reaching this is a bug, told plainly.
        tracing::warn!(error = %e, "prescription: a checked order does not deserialise");
        Refusal::invalid("le document ne suit pas le schéma de la version 1")
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(date: &str) -> String {
        format!(
            r#"{{"version":1,"prescriber":{{"rpps":"10003456786"}},"patient":{{"ins":"284057511204339"}},
            "date":"{date}","lines":[
              {{"drug":"Amoxicilline 1 g, comprimé","dose":"1 comprimé matin et soir","duration":"7 jours","quantity":2,"renewals":0}},
              {{"drug":"Paracétamol 500 mg","dose":"1 à 2 comprimés si douleur, 6 par jour au plus","duration":"1 mois","quantity":1,"renewals":2}}
            ]}}"#
        )
    }

    #[test]
    fn a_good_order_parses_with_defaults() {
        let o = parse_order(sample("2026-11-26").as_bytes()).unwrap();
        assert_eq!(o.lines.len(), 2);
        assert_eq!(o.validity_days, None);
        assert_eq!(o.lines[1].renewals, 2);
    }

    #[test]
    fn bad_orders_are_refused_with_the_field() {
        let bad = |text: &str, expected: &str| {
            let err = parse_order(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} (wanted {expected})");
        };
        let good = sample("2026-11-26");
        bad(&good.replace("\"version\":1", "\"version\":2"), "version 2");
        bad(&good.replace("2026-11-26", "2026-02-30"), "date");
        bad(
            &good.replace("\"quantity\":2", "\"quantity\":0"),
            "« lines[0].quantity » (ligne 1) doit être un nombre entier de 1 à 99, trouvé « 0 »",
        );
        bad(
            &good.replace("\"renewals\":2", "\"renewals\":13"),
            "« lines[1].renewals » (ligne 2) doit être un nombre entier de 0 à 12",
        );
        bad(
            &good.replace("Paracétamol 500 mg", " "),
            "« lines[1].drug » (ligne 2) est vide",
        );
        bad(
            &good.replace("\"version\":1", "\"version\":1,\"extra\":1"),
            "champ « extra » inconnu",
        );
        bad(
            &good.replace("7 jours", &"x".repeat(101)),
            "« lines[0].duration » (ligne 1) dépasse 100 caractères",
        );
        bad(&good.replace("7 jours", "7\\u0007jours"), "contrôle");
        bad("{", "JSON illisible ligne 1, colonne 1");
    }

    #[test]
    fn the_attachment_is_found_by_name() {
        let msg = format!(
            "From: a@b.test\r\nTo: c@d.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
             Content-Type: text/plain\r\n\r\nBonjour\r\n--B\r\n\
             Content-Type: application/json\r\n\
             Content-Disposition: attachment; filename=\"Ordonnance.json\"\r\n\r\n{}\r\n--B--\r\n",
            sample("2026-11-26")
        );
        assert!(may_carry_order(msg.as_bytes()));
        let bytes = find_order(msg.as_bytes()).unwrap().unwrap();
        assert!(parse_order(&bytes).is_ok());
        assert!(find_order(b"From: a@b.test\r\n\r\nBonjour\r\n").is_none());
    }
}
