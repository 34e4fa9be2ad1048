//! The patient's PDF copy of a prescription, written by hand with `pdf-writer`: A4 pages, the
//! standard Helvetica fonts in WinAnsiEncoding (French accents without embedding a font), and
//! the QR code drawn as vector squares, so that it stays sharp at any scale or print.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::model::day;
use crate::qr::{Matrix, QUIET_ZONE};
use crate::Record;

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const QR_SIZE: f32 = 170.0;
const REGULAR: Name = Name(b"F1");
const BOLD: Name = Name(b"F2");

/// Windows-1252 (the PDF's WinAnsiEncoding) for `s`; what it cannot encode becomes `?`.
pub fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '\u{202f}' => 0xa0,
            '€' => 0x80,
            '‚' => 0x82,
            'ƒ' => 0x83,
            '„' => 0x84,
            '…' => 0x85,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8a,
            '‹' => 0x8b,
            'Œ' => 0x8c,
            'Ž' => 0x8e,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9a,
            '›' => 0x9b,
            'œ' => 0x9c,
            'ž' => 0x9e,
            'Ÿ' => 0x9f,
            _ => b'?',
        })
        .collect()
}

/// Splits `text` into lines of at most `max` characters, at spaces where it can.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > max {
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            let head: String = word.chars().take(max).collect();
            word = word.chars().skip(max).collect();
            lines.push(head);
        }
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > max {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// Pages being laid out, top to bottom.
struct Layout {
    pages: Vec<Content>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Self {
            pages: vec![Content::new()],
            y: PAGE_H - MARGIN,
        }
    }

    fn page(&mut self) -> &mut Content {
        self.pages.last_mut().expect("a layout has a page")
    }

    fn ensure(&mut self, height: f32) {
        if self.y - height < MARGIN + 30.0 {
            self.pages.push(Content::new());
            self.y = PAGE_H - MARGIN;
        }
    }

    fn text_at(&mut self, x: f32, y: f32, font: Name, size: f32, text: &str) {
        self.page()
            .begin_text()
            .set_font(font, size)
            .next_line(x, y)
            .show(Str(&win_ansi(text)))
            .end_text();
    }

    /// Wrapped lines at `x`, up to `width` wide, from the cursor down.
    fn paragraph(&mut self, x: f32, width: f32, font: Name, size: f32, text: &str) {
        // Helvetica averages about half an em per character.
        let max = ((width / (size * 0.5)) as usize).max(10);
        for line in wrap(text, max) {
            self.ensure(size * 1.35);
            self.y -= size * 1.35;
            let y = self.y;
            self.text_at(x, y, font, size, &line);
        }
    }

    fn gap(&mut self, h: f32) {
        self.y -= h;
    }
}

fn draw_qr(content: &mut Content, matrix: &Matrix, x: f32, y_top: f32, size: f32) {
    let modules = (matrix.width + 2 * QUIET_ZONE) as f32;
    let m = size / modules;
    content.set_fill_gray(0.0);
    for (mx, my, len) in matrix.runs() {
        let left = x + (mx + QUIET_ZONE) as f32 * m;
        let top = y_top - (my + QUIET_ZONE) as f32 * m;
        content.rect(left, top - m, len as f32 * m, m);
    }
    content.fill_nonzero();
}

fn renewals_fr(n: u8) -> String {
    match n {
        0 => "non renouvelable".into(),
        1 => "à renouveler 1 fois".into(),
        n => format!("à renouveler {n} fois"),
    }
}

/// The PDF copy of `record`, its QR code carrying `url`.
pub fn render(record: &Record, url: &str) -> Vec<u8> {
    let p = &record.prescription;
    let mut l = Layout::new();
    let text_width = PAGE_W - 2.0 * MARGIN - QR_SIZE - 20.0;

    // The QR code at the top right of the first page, its number under it.
    let qr_x = PAGE_W - MARGIN - QR_SIZE;
    let qr_top = PAGE_H - MARGIN + 10.0;
    if let Some(matrix) = Matrix::new(url) {
        draw_qr(l.page(), &matrix, qr_x, qr_top, QR_SIZE);
    }
    l.text_at(
        qr_x + 12.0,
        qr_top - QR_SIZE - 6.0,
        BOLD,
        8.0,
        &format!("Ordonnance n° {}", p.id),
    );
    l.text_at(
        qr_x + 12.0,
        qr_top - QR_SIZE - 16.0,
        REGULAR,
        7.0,
        "Pharmacien : scannez pour vérifier",
    );

    l.paragraph(MARGIN, text_width, BOLD, 13.0, &p.prescriber.name);
    let specialty = if p.prescriber.specialty.is_empty() {
        p.prescriber.profession.clone()
    } else {
        format!("{} — {}", p.prescriber.profession, p.prescriber.specialty)
    };
    l.paragraph(MARGIN, text_width, REGULAR, 10.0, &specialty);
    l.paragraph(
        MARGIN,
        text_width,
        REGULAR,
        10.0,
        &format!("RPPS : {}", p.prescriber.rpps),
    );
    l.paragraph(MARGIN, text_width, REGULAR, 10.0, &p.prescriber.address);
    l.gap(16.0);
    l.paragraph(
        MARGIN,
        text_width,
        REGULAR,
        10.0,
        &format!("Patient : {}", p.patient.name),
    );
    l.paragraph(
        MARGIN,
        text_width,
        REGULAR,
        10.0,
        &format!("Né(e) le {}", day::french(&p.patient.birth_date)),
    );
    l.paragraph(
        MARGIN,
        text_width,
        REGULAR,
        10.0,
        &format!("INS : {}", p.patient.ins),
    );

    // Below the QR code, full width.
    l.y = l.y.min(qr_top - QR_SIZE - 40.0);
    l.paragraph(MARGIN, PAGE_W - 2.0 * MARGIN, BOLD, 18.0, "ORDONNANCE");
    l.gap(4.0);
    l.paragraph(
        MARGIN,
        PAGE_W - 2.0 * MARGIN,
        REGULAR,
        10.0,
        &format!(
            "Fait le {} — valable jusqu'au {} inclus",
            day::french(&p.date),
            day::french(&p.valid_until)
        ),
    );
    l.gap(12.0);
    let width = PAGE_W - 2.0 * MARGIN - 16.0;
    for (n, line) in p.lines.iter().enumerate() {
        l.ensure(60.0);
        l.paragraph(
            MARGIN,
            width,
            BOLD,
            11.0,
            &format!("{}. {}", n + 1, line.drug),
        );
        l.paragraph(
            MARGIN + 16.0,
            width,
            REGULAR,
            10.0,
            &format!("Posologie : {}", line.dose),
        );
        l.paragraph(
            MARGIN + 16.0,
            width,
            REGULAR,
            10.0,
            &format!("Durée : {}", line.duration),
        );
        l.paragraph(
            MARGIN + 16.0,
            width,
            REGULAR,
            10.0,
            &format!(
                "Quantité : {} par délivrance — {}",
                line.quantity,
                renewals_fr(line.renewals)
            ),
        );
        l.gap(8.0);
    }
    l.gap(12.0);
    l.paragraph(
        MARGIN,
        PAGE_W - 2.0 * MARGIN,
        REGULAR,
        7.0,
        "Ordonnance sécurisée : le QR code porte son numéro et la signature électronique (Ed25519) \
         du service de messagerie santé. Le pharmacien le scanne pour vérifier l'ordonnance et \
         enregistrer la délivrance ; une ordonnance modifiée, expirée ou déjà délivrée est refusée. \
         Adresse de vérification :",
    );
    // A URL has no spaces and wide characters: cut it in fixed lengths that fit.
    let chunks: Vec<String> = wrap(url, 100);
    for chunk in chunks {
        l.paragraph(MARGIN, PAGE_W - 2.0 * MARGIN, REGULAR, 6.0, &chunk);
    }

    write(l.pages, &format!("Ordonnance n° {}", p.id))
}

fn write(pages: Vec<Content>, title: &str) -> Vec<u8> {
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first = 6;
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    let count = pages.len();
    let page_ids: Vec<Ref> = (0..count).map(|i| Ref::new(first + 2 * i as i32)).collect();
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(count as i32);
    for (i, content) in pages.into_iter().enumerate() {
        let page_id = page_ids[i];
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .parent(tree)
            .contents(content_id);
        let mut resources = page.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(TextStr(title))
        .producer(TextStr("mshub"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_text_is_win_ansi() {
        assert_eq!(win_ansi("é à ç Œ €"), b"\xe9 \xe0 \xe7 \x8c \x80");
        assert_eq!(win_ansi("日本"), b"??");
    }

    #[test]
    fn long_words_and_lines_wrap() {
        let lines = wrap("un deux trois quatre", 9);
        assert_eq!(lines, ["un deux", "trois", "quatre"]);
        let lines = wrap(&"x".repeat(25), 10);
        assert_eq!(lines.len(), 3);
    }
}
