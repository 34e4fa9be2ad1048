//! The notice sent to each patient whose space was created from the roster: a one-page PDF
//! letter (for the post) and the same text by e-mail. It gives the activation code, the end
//! of the opposition period, and how to activate or oppose.
//!
//! The PDF is written by hand (PDF 1.4, ISO 32000-1): one page, the standard Helvetica fonts
//! with WinAnsiEncoding, which covers French (é, è, à, ç, œ…), so no font is embedded.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use mail_builder::MessageBuilder;

use mshub_directory::{Account, Address};

/// What a notice says.
pub struct Notice<'a> {
    pub account: &'a Account,
    pub code: &'a str,
    pub deadline: i64,
    /// The web inbox's public address, without a final `/`.
    pub url: &'a str,
}

/// The letter's lines; `None` is a blank line, a leading `#` a bold line.
fn text(n: &Notice<'_>) -> Vec<String> {
    let (given, family) = crate::roster::names(n.account);
    let ins = n.account.address.local_part();
    let deadline = mshub_agenda::french::date(n.deadline);
    let mut lines = vec![
        format!("#{given} {family}"),
        String::new(),
        "#Objet : votre espace de messagerie santé".to_string(),
        String::new(),
        "Madame, Monsieur,".to_string(),
        String::new(),
        "Un espace de messagerie santé sécurisée a été créé pour vous. Les professionnels".into(),
        "de santé qui vous soignent pourront y déposer vos résultats, comptes rendus et".into(),
        "documents, et vous écrire ; vous pourrez leur répondre.".into(),
        format!("Votre adresse : {}", n.account.address),
        String::new(),
        format!("Sans opposition de votre part, cet espace s'ouvrira le {deadline}."),
        String::new(),
        "#Activer votre espace dès maintenant".to_string(),
        format!(
            "Rendez-vous sur {}/activation et saisissez votre INS ({ins}),",
            n.url
        ),
        "votre date de naissance et le code d'activation ci-dessous, puis choisissez".into(),
        "votre mot de passe (12 caractères au moins).".into(),
        String::new(),
        format!("#Votre code d'activation (à usage unique) : {}", n.code),
        String::new(),
        "#Vous opposer à la création de cet espace".to_string(),
        format!(
            "Jusqu'au {deadline}, rendez-vous sur {}/opposition avec les",
            n.url
        ),
        "mêmes informations, ou écrivez à votre caisse d'assurance maladie. Un espace".into(),
        "refusé n'est jamais ouvert et les documents qui y auraient été déposés sont".into(),
        "détruits.".into(),
        String::new(),
        "Conservez ce courrier : le code ne vous sera pas redonné.".into(),
    ];
    lines.shrink_to_fit();
    lines
}

/// WinAnsiEncoding (PDF 32000-1 Annex D.2): Latin-1 above U+00A0 maps to itself; a few
/// typographic characters have their own codes; anything else becomes `?`.
fn win_ansi(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        '€' => 0x80,
        '’' => 0x92,
        '‘' => 0x91,
        '“' => 0x93,
        '”' => 0x94,
        '–' => 0x96,
        '—' => 0x97,
        'œ' => 0x9c,
        'Œ' => 0x8c,
        _ => b'?',
    }
}

/// A PDF string literal: `(`, `)` and `\` escaped, other bytes as they are.
fn pdf_string(text: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for c in text.chars() {
        let b = win_ansi(c);
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
    out
}

/// The letter as a PDF document.
pub fn pdf(n: &Notice<'_>) -> Vec<u8> {
    let mut content = Vec::new();
    content.extend_from_slice(b"BT\n/F2 14 Tf\n56 790 Td\n");
    content.extend(pdf_string(
        "Messagerie santé — avis de création de votre espace",
    ));
    content.extend_from_slice(b" Tj\n0 -36 Td\n15 TL\n");
    for line in text(n) {
        let (font, body) = match line.strip_prefix('#') {
            Some(bold) => ("/F2 11 Tf ", bold.to_string()),
            None => ("/F1 11 Tf ", line),
        };
        content.extend_from_slice(font.as_bytes());
        content.extend(pdf_string(&body));
        content.extend_from_slice(b" Tj T*\n");
    }
    content.extend_from_slice(b"ET\n");

    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
          /Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> /Contents 4 0 R >>"
            .to_vec(),
        {
            let mut s = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
            s.extend_from_slice(&content);
            s.extend_from_slice(b"endstream");
            s
        },
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        let _ = writeln!(table, "{o:010} 00000 n ");
    }
    let _ = write!(
        table,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(table.as_bytes());
    out
}

/// Writes `<department>/<INS>.pdf` in `dir`: a national roster makes millions of letters,
/// which a printer takes by department, and no directory holds them all.
pub fn write_letter(dir: &Path, n: &Notice<'_>) -> anyhow::Result<()> {
    let ins = n.account.address.local_part();
    let sub = dir.join(ins.get(5..7).unwrap_or("00"));
    std::fs::create_dir_all(&sub).with_context(|| format!("cannot create {}", sub.display()))?;
    let path = sub.join(format!("{ins}.pdf"));
    std::fs::write(&path, pdf(n)).with_context(|| format!("cannot write {}", path.display()))
}

/// The notice as an e-mail (text/plain, UTF-8).
pub fn email(n: &Notice<'_>, from: &Address, to: &Address) -> Vec<u8> {
    let body: String = text(n)
        .into_iter()
        .map(|l| l.trim_start_matches('#').to_string() + "\n")
        .collect();
    MessageBuilder::new()
        .from(("Messagerie santé", from.as_str()))
        .to(to.as_str())
        .subject("Votre espace de messagerie santé a été créé")
        .text_body(body)
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_letters_are_win_ansi() {
        assert_eq!(pdf_string("é (à)"), b"(\xe9 \\(\xe0\\))".to_vec());
        assert_eq!(win_ansi('ç'), 0xe7);
        assert_eq!(win_ansi('œ'), 0x9c);
        assert_eq!(win_ansi('→'), b'?');
    }
}
