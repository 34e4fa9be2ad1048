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

/// "20240115103000+0100" → "15/01/2024 10:30".
pub fn french_date(ts: &str) -> String {
    let d: String = ts.chars().take_while(char::is_ascii_digit).collect();
    match d.len() {
        n if n >= 12 => format!(
            "{}/{}/{} {}:{}",
            &d[6..8],
            &d[4..6],
            &d[0..4],
            &d[8..10],
            &d[10..12]
        ),
        n if n >= 8 => format!("{}/{}/{}", &d[6..8], &d[4..6], &d[0..4]),
        _ => ts.to_string(),
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
