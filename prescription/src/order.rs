//! The structured part a prescriber sends: an `ordonnance.json` attachment (schema in the
//! crate's documentation), read from the message and checked before anything is issued.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Deserialize;

use crate::Refusal;

/// The attachment's file name (compared without case).
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

/// Cheap look at a raw message: may it carry an `ordonnance.json`?
pub fn may_carry_order(raw: &[u8]) -> bool {
    let needle = ORDER_FILE.as_bytes();
    raw.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The `ordonnance.json` attachment of a message: `None` when there is none, else its bytes.
/// More than one is refused: one message, one prescription.
pub fn find_order(raw: &[u8]) -> Option<Result<Vec<u8>, Refusal>> {
    let message = MessageParser::default().parse(raw)?;
    let mut found = message.attachments().filter(|part| {
        part.attachment_name()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case(ORDER_FILE))
    });
    let first = found.next()?;
    if found.next().is_some() {
        return Some(Err(Refusal::invalid(
            "le message porte plusieurs fichiers ordonnance.json ; une ordonnance par message",
        )));
    }
    let bytes = first.contents();
    if bytes.len() > MAX_ORDER_BYTES {
        return Some(Err(Refusal::invalid(format!(
            "ordonnance.json dépasse {} Kio",
            MAX_ORDER_BYTES / 1024
        ))));
    }
    Some(Ok(bytes.to_vec()))
}

/// Parses `ordonnance.json` and checks every field's shape and bounds. Who sends it to whom
/// is checked by [`crate::Prescriptions::issue`].
pub fn parse_order(bytes: &[u8]) -> Result<Order, Refusal> {
    let order: Order = serde_json::from_slice(bytes)
        .map_err(|e| Refusal::invalid(format!("ordonnance.json illisible : {e}")))?;
    if order.version != 1 {
        return Err(Refusal::invalid(format!(
            "version {} de ordonnance.json inconnue (seule la version 1 est lue)",
            order.version
        )));
    }
    if crate::model::day::parse(&order.date).is_none() {
        return Err(Refusal::invalid(format!(
            "date {:?} invalide (attendu AAAA-MM-JJ)",
            order.date
        )));
    }
    if let Some(v) = order.validity_days {
        if !(1..=MAX_VALIDITY_DAYS).contains(&v) {
            return Err(Refusal::invalid(format!(
                "validity_days doit être entre 1 et {MAX_VALIDITY_DAYS} (reçu {v})"
            )));
        }
    }
    if order.lines.is_empty() {
        return Err(Refusal::invalid("l'ordonnance ne porte aucune ligne"));
    }
    if order.lines.len() > MAX_LINES {
        return Err(Refusal::invalid(format!(
            "l'ordonnance porte {} lignes (au plus {MAX_LINES})",
            order.lines.len()
        )));
    }
    for (n, line) in order.lines.iter().enumerate() {
        let at = n + 1;
        text_field(&line.drug, "drug", at, 200)?;
        text_field(&line.dose, "dose", at, 300)?;
        text_field(&line.duration, "duration", at, 100)?;
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(Refusal::invalid(format!(
                "ligne {at} : quantity doit être entre 1 et {MAX_QUANTITY} (reçu {})",
                line.quantity
            )));
        }
        if line.renewals > MAX_RENEWALS {
            return Err(Refusal::invalid(format!(
                "ligne {at} : au plus {MAX_RENEWALS} renouvellements (reçu {})",
                line.renewals
            )));
        }
    }
    Ok(order)
}

fn text_field(value: &str, name: &str, line: usize, max: usize) -> Result<(), Refusal> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Refusal::invalid(format!("ligne {line} : {name} est vide")));
    }
    if trimmed.chars().count() > max {
        return Err(Refusal::invalid(format!(
            "ligne {line} : {name} dépasse {max} caractères"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Refusal::invalid(format!(
            "ligne {line} : {name} contient des caractères de contrôle"
        )));
    }
    Ok(())
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
            "ligne 1 : quantity",
        );
        bad(
            &good.replace("\"renewals\":2", "\"renewals\":13"),
            "ligne 2 : au plus 12",
        );
        bad(
            &good.replace("Paracétamol 500 mg", " "),
            "ligne 2 : drug est vide",
        );
        bad(
            &good.replace("\"version\":1", "\"version\":1,\"extra\":1"),
            "unknown field",
        );
        bad(
            &good.replace("7 jours", &"x".repeat(101)),
            "duration dépasse",
        );
        bad(&good.replace("7 jours", "7\\u0007jours"), "contrôle");
        bad("{", "illisible");
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
