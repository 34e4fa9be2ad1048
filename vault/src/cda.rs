//! HL7 CDA R2 documents: the header the vault files by (title, LOINC code, date, patient INS,
//! author) and a plain-text rendering of the header and narrative for the patient.
//! The original bytes are always what is kept; the rendering is a convenience.

use mshub_directory::{Address, Ins};

use crate::document::Author;
use crate::xdm::{parse_xml, xml_text, INS_OIDS};
use crate::{DocumentTypes, Rejection};

/// A section of the narrative body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub text: String,
}

/// The body of a CDA: a narrative in sections, or another format wrapped (often a PDF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Structured(Vec<Section>),
    /// `nonXMLBody`: media type and the decoded content, if it was inline base64.
    NonXml {
        media_type: String,
        content: Option<Vec<u8>>,
    },
    Empty,
}

/// What the vault reads from a CDA document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cda {
    pub title: String,
    /// `code/@code`, LOINC.
    pub code: Option<String>,
    pub code_display: Option<String>,
    /// `effectiveTime/@value` (HL7 TS).
    pub effective_time: Option<String>,
    /// `recordTarget/patientRole/id` with an INS authority as root.
    pub patient_ins: Option<Ins>,
    /// The raw value of that id when it is not a valid INS.
    pub patient_id_raw: Option<String>,
    pub author: Author,
    /// `confidentialityCode/@code` (N, R, V, or the French MASQUE_PS / INVISIBLE_PATIENT).
    pub confidentiality: Vec<String>,
    pub body: Body,
}

/// Whether bytes look like a CDA document (worth a full parse).
pub fn looks_like_cda(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    head.windows(16).any(|w| w == b"ClinicalDocument")
}

type Node<'a, 'i> = roxmltree::Node<'a, 'i>;

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn path<'a, 'i>(node: Node<'a, 'i>, names: &[&str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

fn text_of(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Narrative text (CDA R2 §4.3.5) flattened: block elements end a line. Iterative: the
/// nesting depth comes from the sender, and a recursion could exhaust the stack.
fn narrative(node: Node<'_, '_>, out: &mut String) {
    // (node, closing): an explicit stack in place of recursion.
    let mut stack: Vec<(Node<'_, '_>, bool)> = node.children().rev().map(|c| (c, false)).collect();
    // Whether the source had a space (or a cell boundary) since the last word written.
    let mut space = false;
    while let Some((n, closing)) = stack.pop() {
        if closing {
            match n.tag_name().name() {
                "paragraph" | "br" | "tr" | "item" | "caption" | "list" | "table"
                    if !out.is_empty() && !out.ends_with('\n') =>
                {
                    out.push('\n');
                }
                "td" | "th" => space = true,
                _ => {}
            }
        } else if n.is_text() {
            let raw = n.text().unwrap_or_default();
            let words: Vec<&str> = raw.split_whitespace().collect();
            space |= raw.starts_with(char::is_whitespace);
            if !words.is_empty() {
                if space && !out.is_empty() && !out.ends_with('\n') {
                    out.push(' ');
                }
                out.push_str(&words.join(" "));
                space = raw.ends_with(char::is_whitespace);
            }
        } else if n.is_element() {
            stack.push((n, true));
            stack.extend(n.children().rev().map(|c| (c, false)));
        }
    }
}

fn person_name(name: Node<'_, '_>) -> String {
    let parts: Vec<String> = ["prefix", "given", "family"]
        .iter()
        .flat_map(|p| {
            name.children()
                .filter(move |c| c.is_element() && c.tag_name().name() == *p)
                .map(text_of)
        })
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        text_of(name)
    } else {
        parts.join(" ")
    }
}

/// Parses a CDA R2 document.
pub fn parse_cda(bytes: &[u8], file: &str) -> Result<Cda, Rejection> {
    let text = xml_text(bytes, file)?;
    let doc = parse_xml(text, file)?;
    let root = doc.root_element();
    if root.tag_name().name() != "ClinicalDocument" {
        return Err(Rejection::NotCda {
            file: file.to_string(),
            detail: format!("the root element is <{}>", root.tag_name().name()),
        });
    }
    let code = child(root, "code");
    let mut cda = Cda {
        title: child(root, "title").map(text_of).unwrap_or_default(),
        code: code.and_then(|c| c.attribute("code")).map(str::to_string),
        code_display: code
            .and_then(|c| c.attribute("displayName"))
            .map(str::to_string),
        effective_time: child(root, "effectiveTime")
            .and_then(|e| e.attribute("value"))
            .map(str::to_string),
        patient_ins: None,
        patient_id_raw: None,
        author: Author::default(),
        confidentiality: root
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "confidentialityCode")
            .filter_map(|c| c.attribute("code").map(str::to_string))
            .collect(),
        body: Body::Empty,
    };
    if let Some(role) = path(root, &["recordTarget", "patientRole"]) {
        let ins_id = role.children().find(|c| {
            c.is_element()
                && c.tag_name().name() == "id"
                && c.attribute("root").is_some_and(|r| INS_OIDS.contains(&r))
        });
        if let Some(ext) = ins_id.and_then(|i| i.attribute("extension")) {
            match Ins::try_from(ext) {
                Ok(ins) => cda.patient_ins = Some(ins),
                Err(_) => cda.patient_id_raw = Some(ext.to_string()),
            }
        }
    }
    if let Some(assigned) = path(root, &["author", "assignedAuthor"]) {
        cda.author = Author {
            person: child(assigned, "assignedPerson")
                .and_then(|p| child(p, "name"))
                .map(person_name)
                .filter(|s| !s.is_empty()),
            person_id: child(assigned, "id")
                .and_then(|i| i.attribute("extension"))
                .map(str::to_string),
            institution: path(assigned, &["representedOrganization", "name"])
                .map(text_of)
                .filter(|s| !s.is_empty()),
            address: assigned
                .children()
                .filter(|c| c.is_element() && c.tag_name().name() == "telecom")
                .filter_map(|t| t.attribute("value")?.strip_prefix("mailto:"))
                .find_map(|v| Address::try_from(v).ok()),
        };
    }
    if let Some(component) = child(root, "component") {
        if let Some(structured) = child(component, "structuredBody") {
            let sections = structured
                .descendants()
                .filter(|d| d.is_element() && d.tag_name().name() == "section")
                .map(|s| {
                    let mut text = String::new();
                    if let Some(t) = child(s, "text") {
                        narrative(t, &mut text);
                    }
                    Section {
                        title: child(s, "title").map(text_of).unwrap_or_default(),
                        text: text.trim().to_string(),
                    }
                })
                .collect();
            cda.body = Body::Structured(sections);
        } else if let Some(text) = path(component, &["nonXMLBody", "text"]) {
            let media_type = text
                .attribute("mediaType")
                .unwrap_or("application/octet-stream")
                .to_string();
            let content = if text.attribute("representation") == Some("B64") {
                let b64: Vec<u8> = text_of(text)
                    .bytes()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                mail_parser::decoders::base64::base64_decode(&b64)
            } else {
                None
            };
            cda.body = Body::NonXml {
                media_type,
                content,
            };
        }
    }
    Ok(cda)
}

/// An HL7 TS value (HL7 V3 Data Types R1, TS: `YYYYMMDDHHMMSS.UUUU[+|-ZZzz]`), to the day at
/// least.
struct Hl7Time {
    /// Days since 1970-01-01.
    day: i64,
    /// Hour, minute and second, when the value goes past the day.
    time: Option<(i64, i64, i64)>,
    /// The UTC offset in minutes, when the value has one. Without it the time is the
    /// author's local time: for a French hub, Paris time already.
    offset: Option<i64>,
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_hl7(ts: &str) -> Option<Hl7Time> {
    let b = ts.trim().as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0i64, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    if !matches!(digits, 8 | 10 | 12 | 14) {
        return None;
    }
    let mut rest = &b[digits..];
    // Fractions of a second are allowed after the seconds only, and not shown.
    if digits == 14 && rest.first() == Some(&b'.') {
        let fraction = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if fraction == 0 {
            return None;
        }
        rest = &rest[1 + fraction..];
    }
    let offset = match rest {
        [] => None,
        [sign @ (b'+' | b'-'), zone @ ..] if zone.len() == 4 => {
            let zone = std::str::from_utf8(zone).ok()?;
            if !zone.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (h, m) = (
                zone[..2].parse::<i64>().ok()?,
                zone[2..].parse::<i64>().ok()?,
            );
            if h > 14 || m > 59 {
                return None;
            }
            Some(if *sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            })
        }
        _ => return None,
    };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let time = if digits > 8 {
        let h = num(8..10)?;
        let mi = if digits >= 12 { num(10..12)? } else { 0 };
        let s = if digits >= 14 { num(12..14)? } else { 0 };
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        Some((h, mi, s))
    } else {
        None
    };
    Some(Hl7Time {
        day: days_from_civil(y, m, d),
        time,
        offset,
    })
}

/// The instant an HL7 TS value names, as Unix seconds: only for a time of day with a UTC
/// offset (a time without one is the author's local time, a date is a whole day).
pub fn hl7_unix(ts: &str) -> Option<i64> {
    let t = parse_hl7(ts)?;
    let (h, m, s) = t.time?;
    Some(t.day * 86_400 + h * 3600 + m * 60 + s - t.offset? * 60)
}

/// An HL7 TS value as a French reader expects it, in Paris time: "20240312133000+0000" →
/// "12/03/2024 14:30" (a UTC offset is converted to Europe/Paris, with the summer time of the
/// day); a time without an offset is local already and shown as it is; a date stays that day.
/// A value that is not a real date or time is shown as given.
pub fn french_date(ts: &str) -> String {
    let Some(t) = parse_hl7(ts) else {
        return ts.to_string();
    };
    let b = ts.trim().as_bytes();
    let digits = |r: std::ops::Range<usize>| String::from_utf8_lossy(&b[r]).into_owned();
    let local_day = format!("{}/{}/{}", digits(6..8), digits(4..6), digits(0..4));
    match (t.time, hl7_unix(ts)) {
        (Some(_), Some(unix)) => mshub_agenda::french::numeric_datetime(unix)
            .unwrap_or_else(|| mshub_agenda::french::datetime(unix)),
        (Some((h, m, _)), None) => format!("{local_day} {h:02}:{m:02}"),
        (None, _) => local_day,
    }
}

impl Cda {
    /// A readable plain-text rendering: the header, then each section.
    pub fn render(&self, types: &DocumentTypes) -> String {
        let mut out = String::new();
        let title = if self.title.is_empty() {
            "Document sans titre"
        } else {
            &self.title
        };
        out.push_str(title);
        out.push('\n');
        out.push_str(&"=".repeat(title.chars().count()));
        out.push('\n');
        let doc_type = types.classify(self.code.as_deref());
        let type_label = match (&self.code_display, doc_type.category) {
            (Some(display), crate::Category::AClasser) => display.clone(),
            _ => doc_type.label.clone(),
        };
        if let Some(code) = &self.code {
            out.push_str(&format!("Type : {type_label} (LOINC {code})\n"));
        }
        if let Some(t) = &self.effective_time {
            out.push_str(&format!("Date : {}\n", french_date(t)));
        }
        if let Some(ins) = &self.patient_ins {
            out.push_str(&format!("Patient : INS {ins}\n"));
        }
        out.push_str(&format!("Auteur : {}\n", self.author.display()));
        match &self.body {
            Body::Structured(sections) => {
                for s in sections {
                    out.push('\n');
                    if !s.title.is_empty() {
                        out.push_str(&format!("## {}\n", s.title));
                    }
                    if !s.text.is_empty() {
                        out.push_str(&s.text);
                        out.push('\n');
                    }
                }
            }
            Body::NonXml { media_type, .. } => {
                out.push_str(&format!(
                    "\nLe contenu de ce document est un fichier joint ({media_type}).\n"
                ));
            }
            Body::Empty => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rendered_the_french_way() {
        assert_eq!(french_date("20240115103000+0100"), "15/01/2024 10:30");
        assert_eq!(french_date("20240115"), "15/01/2024");
        assert_eq!(french_date("2024"), "2024");
    }

    #[test]
    fn times_with_an_offset_are_shown_in_paris_time_with_its_summer_time() {
        // 13:30 UTC is 14:30 in Paris in winter (UTC+1)…
        assert_eq!(french_date("20240312133000+0000"), "12/03/2024 14:30");
        assert_eq!(french_date("20240312143000+0100"), "12/03/2024 14:30");
        // …and 15:30 in summer (UTC+2), from 01:00 UTC on the last Sunday of March.
        assert_eq!(french_date("20240701133000+0000"), "01/07/2024 15:30");
        assert_eq!(french_date("20240331005959+0000"), "31/03/2024 01:59");
        assert_eq!(french_date("20240331010000+0000"), "31/03/2024 03:00");
        assert_eq!(french_date("20241027010000+0000"), "27/10/2024 02:00");
        // Another offset, and a day that changes on the way.
        assert_eq!(french_date("20241231203000-0500"), "01/01/2025 02:30");
        assert_eq!(french_date("202407011330+0000"), "01/07/2024 15:30");
        assert_eq!(french_date("2024070113+0000"), "01/07/2024 15:00");
        assert_eq!(french_date("20240701133000.1234+0000"), "01/07/2024 15:30");
        assert_eq!(hl7_unix("20240312133000+0000"), Some(1_710_250_200));
    }

    #[test]
    fn times_without_an_offset_are_local_already() {
        assert_eq!(french_date("20240701133000"), "01/07/2024 13:30");
        assert_eq!(french_date("202407011330"), "01/07/2024 13:30");
        assert_eq!(hl7_unix("20240701133000"), None);
        // A date with an offset is still that day.
        assert_eq!(french_date("20240701+0200"), "01/07/2024");
    }

    #[test]
    fn impossible_times_are_shown_as_given() {
        for ts in [
            "20241301120000+0100",
            "20240230120000",
            "20240101250000+0100",
            "20240101120000+9999",
            "20240101120000+01",
            "2024010112x",
            "",
        ] {
            assert_eq!(french_date(ts), ts);
            assert_eq!(hl7_unix(ts), None);
        }
    }

    #[test]
    fn the_rendering_shows_the_effective_time_in_paris_time() {
        let xml = "<ClinicalDocument><title>CR</title>\
            <effectiveTime value=\"20240701133000+0000\"/></ClinicalDocument>";
        let cda = parse_cda(xml.as_bytes(), "x.xml").unwrap();
        let text = cda.render(&DocumentTypes::builtin());
        assert!(text.contains("Date : 01/07/2024 15:30\n"), "{text}");
    }

    #[test]
    fn deeply_nested_narrative_does_not_exhaust_the_stack() {
        let depth = 200_000;
        let xml = format!(
            "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><component><structuredBody><component>\
             <section><title>T</title><text>{}deep{}</text></section>\
             </component></structuredBody></component></ClinicalDocument>",
            "<content>".repeat(depth),
            "</content>".repeat(depth)
        );
        let cda = parse_cda(xml.as_bytes(), "deep.xml").unwrap();
        let Body::Structured(sections) = &cda.body else {
            panic!("{:?}", cda.body)
        };
        assert_eq!(sections[0].text, "deep");
    }

    #[test]
    fn narrative_keeps_the_sources_spacing_and_lines() {
        let xml = "<ClinicalDocument><component><structuredBody><component><section>\
            <title>Résultats</title><text><paragraph>Bilan <content>normal</content>.</paragraph>\
            <table><tr><td>Hb</td><td>13,5</td></tr><tr><td>Na</td><td>140</td></tr></table>\
            </text></section></component></structuredBody></component></ClinicalDocument>";
        let cda = parse_cda(xml.as_bytes(), "x.xml").unwrap();
        let Body::Structured(sections) = &cda.body else {
            panic!("{:?}", cda.body)
        };
        assert_eq!(sections[0].text, "Bilan normal.\nHb 13,5\nNa 140");
    }

    #[test]
    fn a_non_cda_root_is_refused() {
        assert!(matches!(
            parse_cda(b"<html/>", "x.xml"),
            Err(Rejection::NotCda { .. })
        ));
    }
}
