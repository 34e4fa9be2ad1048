//! The check of an `ordonnance.json` as the prescriber reads its outcome: the whole document is
//! walked and every problem listed (up to [`MAX_PROBLEMS`]), each in French and naming the
//! field by its path in the document (`patient.ins`, `lines[1].quantity`), so that one reply
//! is enough to correct it.

use serde_json::{Map, Value};

use super::{MAX_LINES, MAX_QUANTITY, MAX_RENEWALS, MAX_VALIDITY_DAYS};

/// Most problems named in one refusal; the others are counted.
pub const MAX_PROBLEMS: usize = 20;

/// The problems found, in document order.
#[derive(Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, problem: String) {
        self.0.push(problem);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// "2 problèmes : … ; …", the first [`MAX_PROBLEMS`] named.
    pub(super) fn sentence(&self) -> String {
        let shown = self
            .0
            .iter()
            .take(MAX_PROBLEMS)
            .cloned()
            .collect::<Vec<_>>();
        let mut out = match self.0.len() {
            1 => shown.join(""),
            n => format!("{n} problèmes : {}", shown.join(" ; ")),
        };
        let hidden = self.0.len().saturating_sub(MAX_PROBLEMS);
        if hidden > 0 {
            out.push_str(&format!(
                " ; et {hidden} autre{s} problème{s}",
                s = if hidden > 1 { "s" } else { "" }
            ));
        }
        out
    }
}

/// A value as the refusal quotes it: a short excerpt, never a whole document.
fn found(value: &Value) -> String {
    let quote = |s: &str| {
        let mut short: String = s.chars().take(40).filter(|c| !c.is_control()).collect();
        if s.chars().count() > 40 {
            short.push('…');
        }
        short
    };
    match value {
        Value::Null => "« null »".into(),
        Value::Bool(b) => format!("« {b} »"),
        Value::Number(n) => format!("« {n} »"),
        Value::String(s) => format!("« {} »", quote(s)),
        Value::Array(_) => "un tableau".into(),
        Value::Object(_) => "un objet".into(),
    }
}

/// The same, with its kind when the kind is the problem.
fn found_kind(value: &Value) -> String {
    match value {
        Value::Number(_) => format!("le nombre {}", found(value)),
        Value::String(_) => format!("le texte {}", found(value)),
        Value::Bool(_) => format!("le booléen {}", found(value)),
        _ => found(value),
    }
}

/// How a field is named: its path, and for a line its number as the prescription shows it.
struct Field<'a> {
    path: &'a str,
    line: Option<usize>,
}

impl std::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "« {} »", self.path)?;
        if let Some(n) = self.line {
            write!(f, " (ligne {n})")?;
        }
        Ok(())
    }
}

/// Reports the keys of `object` that the schema does not have.
fn unknown_fields(object: &Map<String, Value>, known: &[&str], prefix: &str, out: &mut Problems) {
    for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
        let key: String = key.chars().take(40).filter(|c| !c.is_control()).collect();
        out.push(format!("champ « {prefix}{key} » inconnu"));
    }
}

/// A required object member; reports it missing.
fn required<'v>(
    object: &'v Map<String, Value>,
    key: &str,
    path: &str,
    out: &mut Problems,
) -> Option<&'v Value> {
    let value = object.get(key);
    if value.is_none() {
        out.push(format!("champ « {path} » manquant"));
    }
    value
}

fn object<'v>(
    value: &'v Value,
    field: &Field<'_>,
    out: &mut Problems,
) -> Option<&'v Map<String, Value>> {
    match value {
        Value::Object(o) => Some(o),
        other => {
            out.push(format!(
                "{field} doit être un objet {{ … }}, trouvé {}",
                found_kind(other)
            ));
            None
        }
    }
}

/// A text field: a string, not blank, at most `max` characters, no control character.
fn text(value: &Value, field: &Field<'_>, max: usize, out: &mut Problems) {
    let Value::String(s) = value else {
        out.push(format!(
            "{field} doit être un texte, trouvé {}",
            found_kind(value)
        ));
        return;
    };
    let trimmed = s.trim();
    if trimmed.is_empty() {
        out.push(format!("{field} est vide"));
    } else if trimmed.chars().count() > max {
        out.push(format!(
            "{field} dépasse {max} caractères ({} reçus)",
            trimmed.chars().count()
        ));
    } else if trimmed.chars().any(char::is_control) {
        out.push(format!(
            "{field} contient des caractères de contrôle (retour à la ligne, tabulation…)"
        ));
    }
}

/// An integer field within `range`.
fn integer(
    value: &Value,
    field: &Field<'_>,
    range: std::ops::RangeInclusive<u64>,
    out: &mut Problems,
) {
    let ok = value.as_u64().is_some_and(|n| range.contains(&n));
    if !ok {
        let shown = if value.is_number() {
            found(value)
        } else {
            found_kind(value)
        };
        out.push(format!(
            "{field} doit être un nombre entier de {} à {}, trouvé {shown}",
            range.start(),
            range.end()
        ));
    }
}

/// Checks a parsed document against the schema of version 1 (the crate's documentation).
/// An unknown version is the only problem reported: the rest would be read against a schema
/// the document does not follow.
pub(super) fn check(document: &Value) -> Problems {
    let mut out = Problems::default();
    let Value::Object(root) = document else {
        out.push(format!(
            "le document doit être un objet JSON {{ … }}, trouvé {}",
            found_kind(document)
        ));
        return out;
    };
    match root.get("version") {
        None => out.push("champ « version » manquant".into()),
        Some(v) if v.as_u64() == Some(1) => {}
        Some(v @ Value::Number(_)) => {
            out.push(format!(
                "version {} de l'ordonnance inconnue (seule la version 1 est lue)",
                found(v).trim_matches(['«', '»', ' '])
            ));
            return out;
        }
        Some(other) => out.push(format!(
            "« version » doit être le nombre 1, trouvé {}",
            found_kind(other)
        )),
    }
    unknown_fields(
        root,
        &[
            "version",
            "prescriber",
            "patient",
            "date",
            "validity_days",
            "lines",
        ],
        "",
        &mut out,
    );
    let top = |path| Field { path, line: None };
    if let Some(p) = required(root, "prescriber", "prescriber", &mut out) {
        if let Some(p) = object(p, &top("prescriber"), &mut out) {
            unknown_fields(p, &["rpps"], "prescriber.", &mut out);
            if let Some(rpps) = required(p, "rpps", "prescriber.rpps", &mut out) {
                text(rpps, &top("prescriber.rpps"), 40, &mut out);
            }
        }
    }
    if let Some(p) = required(root, "patient", "patient", &mut out) {
        if let Some(p) = object(p, &top("patient"), &mut out) {
            unknown_fields(p, &["ins"], "patient.", &mut out);
            if let Some(ins) = required(p, "ins", "patient.ins", &mut out) {
                text(ins, &top("patient.ins"), 40, &mut out);
            }
        }
    }
    if let Some(date) = required(root, "date", "date", &mut out) {
        match date {
            Value::String(s) if crate::model::day::parse(s).is_some() => {}
            Value::String(_) => out.push(format!(
                "« date » n'est pas une date réelle au format AAAA-MM-JJ, trouvé {}",
                found(date)
            )),
            other => out.push(format!(
                "« date » doit être un texte AAAA-MM-JJ, trouvé {}",
                found_kind(other)
            )),
        }
    }
    match root.get("validity_days") {
        None | Some(Value::Null) => {}
        Some(v) => integer(
            v,
            &top("validity_days"),
            1..=u64::from(MAX_VALIDITY_DAYS),
            &mut out,
        ),
    }
    if let Some(lines) = required(root, "lines", "lines", &mut out) {
        match lines {
            Value::Array(lines) if lines.is_empty() => {
                out.push("« lines » est vide : l'ordonnance ne porte aucune ligne".into())
            }
            Value::Array(lines) => {
                if lines.len() > MAX_LINES {
                    out.push(format!(
                        "« lines » porte {} lignes (au plus {MAX_LINES})",
                        lines.len()
                    ));
                }
                for (i, line) in lines.iter().enumerate().take(MAX_LINES) {
                    check_line(line, i, &mut out);
                }
            }
            other => out.push(format!(
                "« lines » doit être un tableau [ … ] de lignes, trouvé {}",
                found_kind(other)
            )),
        }
    }
    out
}

fn check_line(line: &Value, i: usize, out: &mut Problems) {
    let base = format!("lines[{i}]");
    let at = |name: &str| format!("{base}.{name}");
    let field = |path: &str| -> String { path.to_string() };
    let Some(line) = object(
        line,
        &Field {
            path: &base,
            line: Some(i + 1),
        },
        out,
    ) else {
        return;
    };
    unknown_fields(
        line,
        &["drug", "dose", "duration", "quantity", "renewals"],
        &format!("{base}."),
        out,
    );
    for (name, max) in [("drug", 200), ("dose", 300), ("duration", 100)] {
        let path = field(&at(name));
        if let Some(v) = required(line, name, &path, out) {
            let f = Field {
                path: &path,
                line: Some(i + 1),
            };
            text(v, &f, max, out);
        }
    }
    for (name, range) in [
        ("quantity", 1..=u64::from(MAX_QUANTITY)),
        ("renewals", 0..=u64::from(MAX_RENEWALS)),
    ] {
        if let Some(v) = line.get(name) {
            let path = at(name);
            let f = Field {
                path: &path,
                line: Some(i + 1),
            };
            integer(v, &f, range, out);
        }
    }
}

/// A JSON syntax error in French, with its line and column (serde_json's own words are
/// English: its message is mapped by its fixed wording, else named generically).
pub(super) fn syntax_error(e: &serde_json::Error) -> String {
    let english = e.to_string();
    let what = [
        (
            "EOF while parsing",
            "le document se termine avant la fin (accolade, crochet ou guillemet non fermé ?)",
        ),
        ("trailing comma", "virgule en trop"),
        (
            "trailing characters",
            "caractères en trop après la fin du document",
        ),
        ("expected `,` or `}`", "« , » ou « } » attendu"),
        ("expected `,` or `]`", "« , » ou « ] » attendu"),
        ("expected `:`", "« : » attendu après le nom du champ"),
        ("expected value", "valeur attendue"),
        (
            "expected ident",
            "mot inconnu (seuls true, false et null s'écrivent sans guillemets)",
        ),
        (
            "key must be a string",
            "le nom d'un champ doit être entre guillemets",
        ),
        (
            "control character",
            "caractère de contrôle dans un texte (écrire \\n, \\t…)",
        ),
        (
            "invalid escape",
            "séquence d'échappement invalide dans un texte",
        ),
        (
            "invalid unicode code point",
            "caractère invalide (le fichier doit être en UTF-8)",
        ),
        (
            "lone leading surrogate",
            "caractère Unicode invalide dans un texte",
        ),
        (
            "unexpected end of hex escape",
            "séquence \\u incomplète dans un texte",
        ),
        ("invalid number", "nombre invalide"),
        ("number out of range", "nombre trop grand"),
        (
            "recursion limit exceeded",
            "objets ou tableaux imbriqués trop profondément",
        ),
    ]
    .iter()
    .find(|(en, _)| english.starts_with(en))
    .map_or("syntaxe JSON invalide", |(_, fr)| fr);
    format!(
        "JSON illisible ligne {}, colonne {} : {what}",
        e.line(),
        e.column()
    )
}
