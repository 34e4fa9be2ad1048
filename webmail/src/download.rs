//! How files leave the webmail: the `Content-Disposition` a download carries.

/// `Content-Disposition: attachment` with the name in RFC 6266 / RFC 8187 form.
pub fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_keeps_non_ascii_names_in_rfc_8187_form() {
        let d = disposition("attachment", "compte rendu é.pdf");
        assert!(d.starts_with("attachment; filename=\"compte rendu _.pdf\""));
        assert!(d.ends_with("filename*=UTF-8''compte%20rendu%20%C3%A9.pdf"));
    }
}
