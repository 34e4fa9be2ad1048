//! The QR code of a prescription's link: the module matrix (qrcode crate, error correction M),
//! drawn as SVG for the web page and as vector squares in the PDF.

use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the symbol (ISO/IEC 18004 §6.3.8 asks for 4).
pub const QUIET_ZONE: usize = 4;

/// Dark modules of a QR code, row by row.
pub struct Matrix {
    pub width: usize,
    dark: Vec<bool>,
}

impl Matrix {
    /// The QR code of `text`; `None` only when it is too long for any QR version.
    pub fn new(text: &str) -> Option<Self> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
        Some(Self {
            width: code.width(),
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect(),
        })
    }

    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.width + x]
    }

    /// Runs of dark modules per row, `(x, y, length)`, so that drawings stay small.
    pub fn runs(&self) -> Vec<(usize, usize, usize)> {
        let mut runs = Vec::new();
        for y in 0..self.width {
            let mut x = 0;
            while x < self.width {
                if self.is_dark(x, y) {
                    let start = x;
                    while x < self.width && self.is_dark(x, y) {
                        x += 1;
                    }
                    runs.push((start, y, x - start));
                } else {
                    x += 1;
                }
            }
        }
        runs
    }

    /// An SVG drawing (one path, crisp edges, quiet zone included) that scales to its box.
    /// Presentation attributes only: nothing a strict style-src CSP would block.
    pub fn svg(&self, label: &str) -> String {
        let size = self.width + 2 * QUIET_ZONE;
        let mut d = String::new();
        for (x, y, len) in self.runs() {
            d.push_str(&format!(
                "M{} {}h{}v1h-{}z",
                x + QUIET_ZONE,
                y + QUIET_ZONE,
                len,
                len
            ));
        }
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
             shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"{}\" class=\"qr\">\
             <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
             <path fill=\"#000\" d=\"{d}\"/></svg>",
            escape(label)
        )
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_fits_a_small_qr_code() {
        let url = format!(
            "https://localhost:8443/ordonnance/0123456789ABCDEF?h={}&s={}",
            "A".repeat(43),
            "B".repeat(86)
        );
        let m = Matrix::new(&url).unwrap();
        // Version 9 or less (53 modules) for ~170 bytes at level M.
        assert!(m.width <= 53, "{} modules", m.width);
        let svg = m.svg("QR \"code\"");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("&quot;code&quot;"));
        assert!(
            !svg.contains("style"),
            "no style attribute under a strict CSP"
        );
        // The three finder patterns: the top-left module is dark.
        assert!(m.is_dark(0, 0) && m.is_dark(m.width - 1, 0) && m.is_dark(0, m.width - 1));
    }
}
