//! The catalogue file (TOML) as the referencing authority writes it, and its checks. See
//! `data/demo-catalogue.toml` for an example:
//!
//! ```toml
//! authority = "Autorité de référencement"
//! issued = "2026-11-01"        # referencing dates are YYYY-MM-DD (UTC)
//! valid_until = "2027-11-01"   # after this day the file is refused
//!
//! [[app]]
//! id = "tabac-stop"            # also the OAuth client_id
//! name = "…"
//! publisher = "…"
//! category = "sevrage tabagique"
//! description = "…"
//! website = "https://…"
//! scopes = ["measurements:write"]
//! redirect_uris = ["https://…/callback", "http://127.0.0.1/callback"]
//! referenced_on = "2026-10-15"
//! ```

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{CatalogueError, Result, Scope};

/// Largest catalogue file accepted.
pub const MAX_FILE: usize = 1024 * 1024;
/// Most entries in one catalogue.
pub const MAX_APPS: usize = 1000;

/// A verified catalogue: the authority's list of referenced applications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueFile {
    /// The referencing authority's name, as it writes it.
    pub authority: String,
    /// Day of issue (YYYY-MM-DD): a catalogue older than the one in use is refused.
    pub issued: String,
    /// Last day (YYYY-MM-DD, UTC) the catalogue may be used.
    pub valid_until: String,
    #[serde(default, rename = "app")]
    pub apps: Vec<App>,
    /// Fingerprint of the key that signed it (set by verification, not read from the file).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signed_by: String,
}

/// A referenced application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Stable identifier, also its OAuth `client_id`: `[a-z0-9][a-z0-9._-]{0,63}`.
    pub id: String,
    pub name: String,
    pub publisher: String,
    /// e.g. "téléconsultation", "prise de rendez-vous", "sevrage tabagique", "objets connectés".
    pub category: String,
    pub description: String,
    /// https URL of the app's site.
    pub website: String,
    /// What the app may ask for; a patient grants all or part of it.
    pub scopes: Vec<Scope>,
    /// Where the patient's browser is sent back with the code (RFC 6749 §3.1.2): `https://…`,
    /// loopback `http://127.0.0.1/…` or `http://[::1]/…` (any port at request time, RFC 8252
    /// §7.3), or a private-use scheme such as `fr.example.app:/callback` (RFC 8252 §7.1).
    pub redirect_uris: Vec<String>,
    /// Day the app was referenced (YYYY-MM-DD).
    pub referenced_on: String,
}

impl App {
    /// Whether `uri` is one of the app's redirect URIs: an exact match, except the port of a
    /// loopback address (RFC 8252 §7.3).
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|registered| {
            registered == uri
                || matches!(
                    (loopback(registered), loopback(uri)),
                    (Some(a), Some(b)) if a == b
                )
        })
    }

    /// Whether the app is referenced for `scope`.
    pub fn offers(&self, scope: &Scope) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// (host, path and query) of a loopback redirect URI, without its port.
fn loopback(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let host = ["127.0.0.1", "[::1]"]
        .into_iter()
        .find(|h| rest.starts_with(h))?;
    let mut rest = &rest[host.len()..];
    if let Some(after) = rest.strip_prefix(':') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        // A port is 1 to 65535 (RFC 3986 §3.2.3 allows more digits; TCP does not).
        if !after[..digits].parse::<u16>().is_ok_and(|p| p > 0) {
            return None;
        }
        rest = &after[digits..];
    }
    (rest.is_empty() || rest.starts_with('/')).then_some((host, rest))
}

/// The demo catalogue shipped with the crate (fictitious apps), unsigned.
pub const DEMO: &str = include_str!("../data/demo-catalogue.toml");

/// `text` with its top-level `issued` and `valid_until` lines set to the given days (how the
/// demo makes its example catalogue current before signing it).
pub fn with_dates(text: &str, issued: NaiveDate, valid_until: NaiveDate) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_header = true;
    for line in text.lines() {
        if line.starts_with('[') {
            in_header = false;
        }
        if in_header && line.starts_with("issued =") {
            out.push_str(&format!("issued = \"{}\"", issued.format("%Y-%m-%d")));
        } else if in_header && line.starts_with("valid_until =") {
            out.push_str(&format!(
                "valid_until = \"{}\"",
                valid_until.format("%Y-%m-%d")
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The demo catalogue issued on the day of `now` (Unix seconds), valid a year.
pub fn demo_issued_at(now: i64) -> String {
    let today = crate::day_of(now);
    with_dates(DEMO, today, today + chrono::Days::new(365))
}

pub(crate) fn parse_date(what: &str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| CatalogueError::InvalidFile(format!("{what} {s:?} is not a YYYY-MM-DD date")))
}

impl CatalogueFile {
    /// Parses and checks the (verified) bytes of a catalogue.
    pub fn parse(data: &[u8]) -> Result<Self> {
        if data.len() > MAX_FILE {
            return Err(CatalogueError::InvalidFile(format!(
                "{} bytes, more than {MAX_FILE}",
                data.len()
            )));
        }
        let text = std::str::from_utf8(data)
            .map_err(|_| CatalogueError::InvalidFile("not UTF-8 text".into()))?;
        let file: CatalogueFile =
            toml::from_str(text).map_err(|e| CatalogueError::InvalidFile(e.to_string()))?;
        file.check()?;
        Ok(file)
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(CatalogueError::InvalidFile(m));
        if self.authority.trim().is_empty() {
            return bad("authority is empty".into());
        }
        let issued = parse_date("issued", &self.issued)?;
        let until = parse_date("valid_until", &self.valid_until)?;
        if until < issued {
            return bad("valid_until is before issued".into());
        }
        if self.apps.len() > MAX_APPS {
            return bad(format!("{} apps, at most {MAX_APPS}", self.apps.len()));
        }
        let mut ids = BTreeSet::new();
        for app in &self.apps {
            app.check()
                .map_err(|m| CatalogueError::InvalidFile(format!("app {:?}: {m}", app.id)))?;
            if !ids.insert(app.id.as_str()) {
                return bad(format!("app id {:?} appears twice", app.id));
            }
        }
        Ok(())
    }

    /// Whether the catalogue may still be used on `day` (UTC).
    pub fn valid_on(&self, day: NaiveDate) -> bool {
        parse_date("valid_until", &self.valid_until).is_ok_and(|until| day <= until)
    }
}

impl App {
    fn check(&self) -> std::result::Result<(), String> {
        let id_ok = (1..=64).contains(&self.id.len())
            && self
                .id
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !id_ok {
            return Err(
                "id must be 1 to 64 of a-z 0-9 . _ - (starting with a letter or digit)".into(),
            );
        }
        for (field, value, max) in [
            ("name", &self.name, 200),
            ("publisher", &self.publisher, 200),
            ("category", &self.category, 100),
            ("description", &self.description, 4000),
        ] {
            if value.trim().is_empty() || value.chars().count() > max {
                return Err(format!("{field} must be 1 to {max} characters"));
            }
        }
        if !self.website.starts_with("https://") || !plain_uri(&self.website) {
            return Err(format!("website {:?} is not an https URL", self.website));
        }
        if self.scopes.is_empty() {
            return Err("no scopes".into());
        }
        if self.redirect_uris.is_empty() {
            return Err("no redirect_uris".into());
        }
        for uri in &self.redirect_uris {
            if !redirect_uri_allowed(uri) {
                return Err(format!(
                    "redirect URI {uri:?} must be https://…, http://127.0.0.1/… or \
                     http://[::1]/…, or a private-use scheme with a dot, without fragment"
                ));
            }
        }
        parse_date("referenced_on", &self.referenced_on).map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn plain_uri(uri: &str) -> bool {
    uri.len() <= 512 && !uri.contains('#') && uri.chars().all(|c| c.is_ascii_graphic())
}

/// RFC 6749 §3.1.2 (absolute, no fragment) and RFC 8252 §7 (native apps).
fn redirect_uri_allowed(uri: &str) -> bool {
    if !plain_uri(uri) {
        return false;
    }
    if let Some(rest) = uri.strip_prefix("https://") {
        return rest
            .split(['/', '?'])
            .next()
            .is_some_and(|host| !host.is_empty() && !host.contains('@'));
    }
    if uri.starts_with("http://") {
        return loopback(uri).is_some();
    }
    // RFC 8252 §7.1: a private-use scheme is a reverse domain name.
    match uri.split_once(':') {
        Some((scheme, _)) => {
            scheme.contains('.')
                && scheme
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(uris: &[&str]) -> App {
        App {
            id: "x".into(),
            name: "X".into(),
            publisher: "P".into(),
            category: "c".into(),
            description: "d".into(),
            website: "https://x.example".into(),
            scopes: vec![Scope::MeasurementsWrite],
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            referenced_on: "2026-01-01".into(),
        }
    }

    #[test]
    fn a_loopback_redirect_takes_any_real_port_only() {
        let a = app(&["http://127.0.0.1/callback"]);
        assert!(a.accepts_redirect("http://127.0.0.1:5555/callback"));
        assert!(a.accepts_redirect("http://127.0.0.1:65535/callback"));
        assert!(!a.accepts_redirect("http://127.0.0.1:99999/callback"));
        assert!(!a.accepts_redirect("http://127.0.0.1:0/callback"));
        assert!(!a.accepts_redirect("http://127.0.0.1:5555/other"));
    }

    #[test]
    fn the_demo_catalogue_parses_and_its_dates_can_be_moved() {
        let file = CatalogueFile::parse(DEMO.as_bytes()).unwrap();
        assert_eq!(file.apps.len(), 5);
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let moved = with_dates(DEMO, day("2030-01-02"), day("2031-01-02"));
        let file = CatalogueFile::parse(moved.as_bytes()).unwrap();
        assert_eq!(
            (file.issued.as_str(), file.valid_until.as_str()),
            ("2030-01-02", "2031-01-02")
        );
        assert_eq!(file.apps[0].referenced_on, "2026-03-12");
    }

    #[test]
    fn loopback_redirects_match_on_any_port_others_exactly() {
        let a = app(&["http://127.0.0.1/callback", "https://x.example/cb"]);
        assert!(a.accepts_redirect("http://127.0.0.1:51234/callback"));
        assert!(a.accepts_redirect("http://127.0.0.1/callback"));
        assert!(!a.accepts_redirect("http://127.0.0.1:51234/other"));
        assert!(!a.accepts_redirect("http://127.0.0.2/callback"));
        assert!(a.accepts_redirect("https://x.example/cb"));
        assert!(!a.accepts_redirect("https://x.example/cb?x=1"));
        assert!(!a.accepts_redirect("https://x.example:444/cb"));
    }

    #[test]
    fn redirect_uris_of_the_file_are_checked() {
        for ok in [
            "https://x.example/cb",
            "http://127.0.0.1/callback",
            "http://[::1]:8080/cb",
            "fr.example.app:/oauth",
        ] {
            assert!(redirect_uri_allowed(ok), "{ok}");
        }
        for bad in [
            "http://x.example/cb",
            "http://localhost/cb",
            "https://x.example/cb#frag",
            "https:///cb",
            "javascript:alert(1)",
            "myapp:/cb",
            "https://x.example/a b",
        ] {
            assert!(!redirect_uri_allowed(bad), "{bad}");
        }
    }
}
