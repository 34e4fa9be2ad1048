//! Documents the patient adds to the vault themselves ("ajout de documents"): a PDF or a photo
//! (JPEG, PNG) from a computer or a phone's camera, with its type from the table, a title, a
//! date and, if the patient wants, masked at once.
//!
//! The bytes decide what a file is, not its name nor the browser's media type: a PDF starts
//! with `%PDF-` and ends with `%%EOF` (ISO 32000-1 §7.5.2, §7.5.5), a JPEG with the SOI marker
//! `FF D8 FF` (ITU-T T.81 §B.2.1), a PNG with its eight-byte signature and an `IHDR` chunk
//! (RFC 2083 §3.1). A HEIC photo (an iPhone's default) is refused with what to do, as is a
//! file whose bytes contradict its extension. The author is the patient; professionals see
//! "ajouté par le patient". Stored like any filed document: sealed to the patient, audited
//! (`document.file`, source `patient`), exported, deletable.

use mshub_agenda::NaiveDate;
use mshub_directory::{Account, AccountKind};

use crate::document::{Author, Document, Source};
use crate::filing::NewDocument;
use crate::{Result, Vault, VaultError};

/// The largest file a patient adds (a scanned multi-page PDF or a phone photo fits well).
pub const MAX_UPLOAD: usize = 20 * 1024 * 1024;
/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;

/// What the patient's form gives.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub bytes: Vec<u8>,
    /// The file's name on the patient's device ("IMG_2041.jpg", "compte-rendu.pdf").
    pub file_name: String,
    /// A code of the document-type table; empty for "à classer".
    pub type_code: String,
    /// Empty: the type's label.
    pub title: String,
    /// The document's own date (`YYYY-MM-DD`), empty when the patient does not give one.
    pub date: String,
    /// Masked from professionals at once (only the patient's referring doctor sees it).
    pub masked: bool,
}

/// Why an added document was refused: a French sentence that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefusal {
    #[error(
        "Aucun fichier n'a été choisi, ou le fichier est vide : choisissez un PDF ou une photo."
    )]
    Empty,
    #[error("Le fichier dépasse {max_mb} Mo : réduisez-le (moins de pages, photo moins grande) ou découpez-le.")]
    TooLarge { max_mb: usize },
    #[error("Les photos HEIC (format par défaut des iPhone) ne sont pas acceptées : sur l'iPhone, choisissez Réglages › Appareil photo › Formats › « Le plus compatible », ou enregistrez la photo en JPEG, puis ajoutez-la de nouveau.")]
    Heic,
    #[error("Le fichier « {name} » porte l'extension .{extension} mais son contenu est {found} : vérifiez que c'est le bon fichier, ou enregistrez-le de nouveau au bon format.")]
    Mismatch {
        name: String,
        extension: String,
        found: &'static str,
    },
    #[error("Le fichier « {name} » n'est ni un PDF ni une photo JPEG ou PNG : seuls ces formats peuvent être ajoutés.")]
    Unsupported { name: String },
    #[error("Le fichier « {name} » est un PDF incomplet (sa fin manque) : téléchargez-le ou numérisez-le de nouveau.")]
    TruncatedPdf { name: String },
    #[error("Le type de document choisi ne fait pas partie de la liste : choisissez-en un dans la liste proposée.")]
    UnknownType,
    #[error("Le titre compte plus de {MAX_TITLE} caractères : raccourcissez-le.")]
    TitleTooLong,
    #[error("Le titre contient des caractères de contrôle : retapez-le.")]
    TitleControl,
    #[error("La date « {0} » n'est pas une date valide : écrivez-la sous la forme JJ/MM/AAAA ou choisissez-la dans le calendrier.")]
    BadDate(String),
    #[error("La date du document ({0}) est dans le futur : indiquez la date à laquelle il a été établi.")]
    FutureDate(String),
    #[error("La date du document ({0}) est antérieure à 1900 : vérifiez l'année.")]
    AncientDate(String),
}

/// What the bytes are, when they are something a patient may add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pdf,
    Jpeg,
    Png,
}

impl Format {
    fn mime(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }

    /// How the refusal names it ("son contenu est …").
    fn described(self) -> &'static str {
        match self {
            Format::Pdf => "un PDF",
            Format::Jpeg => "une image JPEG",
            Format::Png => "une image PNG",
        }
    }

    fn by_extension(extension: &str) -> Option<Self> {
        match extension {
            "pdf" => Some(Format::Pdf),
            "jpg" | "jpeg" | "jpe" | "jfif" => Some(Format::Jpeg),
            "png" => Some(Format::Png),
            _ => None,
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// ISO/IEC 23008-12 (HEIF) brands of an `ftyp` box: HEIC and HEIF photos.
const HEIF_BRANDS: [&[u8]; 8] = [
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
];

fn is_heif(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[4..8] == b"ftyp" && HEIF_BRANDS.contains(&&bytes[8..12])
}

/// What `bytes` are, by their own signature.
fn sniff(bytes: &[u8]) -> Option<Format> {
    // ISO 32000-1 §7.5.2: the header is the first line; readers accept it within the first
    // 1024 bytes, and so do we (some scanners write a few bytes before it).
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Some(Format::Pdf);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Format::Jpeg);
    }
    if bytes.starts_with(PNG_SIGNATURE) && bytes.get(12..16) == Some(b"IHDR") {
        return Some(Format::Png);
    }
    None
}

/// ISO 32000-1 §7.5.5: the last line is `%%EOF`; a download cut short lacks it. Some writers
/// add a few bytes after it, so the end of the file is searched.
fn pdf_is_whole(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    tail.windows(5).any(|w| w == b"%%EOF")
}

/// The file's format, or why it is refused.
fn check_file(name: &str, bytes: &[u8]) -> std::result::Result<Format, UploadRefusal> {
    if bytes.is_empty() {
        return Err(UploadRefusal::Empty);
    }
    if bytes.len() > MAX_UPLOAD {
        return Err(UploadRefusal::TooLarge {
            max_mb: MAX_UPLOAD / (1024 * 1024),
        });
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if is_heif(bytes) || matches!(extension.as_str(), "heic" | "heif") {
        return Err(UploadRefusal::Heic);
    }
    let Some(format) = sniff(bytes) else {
        return Err(UploadRefusal::Unsupported {
            name: display_name(name),
        });
    };
    if let Some(named) = Format::by_extension(&extension) {
        if named != format {
            return Err(UploadRefusal::Mismatch {
                name: display_name(name),
                extension,
                found: format.described(),
            });
        }
    }
    if format == Format::Pdf && !pdf_is_whole(bytes) {
        return Err(UploadRefusal::TruncatedPdf {
            name: display_name(name),
        });
    }
    Ok(format)
}

/// The file's name as the refusal quotes it: its last path element, control characters
/// dropped, at most 80 characters.
fn display_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(80).collect();
    if clean.is_empty() {
        "sans nom".into()
    } else {
        clean
    }
}

/// The document's date as the HL7 TS the vault keeps (`YYYYMMDD`), checked against today in
/// Paris.
fn check_date(date: &str, today: NaiveDate) -> std::result::Result<Option<String>, UploadRefusal> {
    let date = date.trim();
    if date.is_empty() {
        return Ok(None);
    }
    let parsed = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(date, "%d/%m/%Y"))
        .map_err(|_| UploadRefusal::BadDate(display_name(date)))?;
    let shown = parsed.format("%d/%m/%Y").to_string();
    if parsed > today {
        return Err(UploadRefusal::FutureDate(shown));
    }
    if parsed < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
        return Err(UploadRefusal::AncientDate(shown));
    }
    Ok(Some(parsed.format("%Y%m%d").to_string()))
}

fn check_title(title: &str) -> std::result::Result<String, UploadRefusal> {
    let title = title.trim();
    if title.chars().count() > MAX_TITLE {
        return Err(UploadRefusal::TitleTooLong);
    }
    if title.chars().any(char::is_control) {
        return Err(UploadRefusal::TitleControl);
    }
    Ok(title.to_string())
}

impl Vault {
    /// Adds a document the patient gives (the author is the patient). Everything is checked
    /// before anything is stored: a refusal ([`VaultError::Upload`]) leaves the vault as it was.
    pub fn add_patient_document(&self, patient: &Account, upload: Upload) -> Result<Document> {
        if !matches!(patient.kind, AccountKind::Patient { .. }) {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        let format = check_file(&upload.file_name, &upload.bytes)?;
        let type_code = upload.type_code.trim();
        let type_code = if type_code.is_empty() {
            None
        } else {
            match self.types().get(type_code) {
                Some(t) => Some(t.code.clone()),
                None => return Err(UploadRefusal::UnknownType.into()),
            }
        };
        let today = mshub_agenda::day_of(mshub_store::now())
            .ok_or_else(|| VaultError::Data("today's date is out of range".into()))?;
        let created = check_date(&upload.date, today)?;
        let title = check_title(&upload.title)?;
        let file_name = display_name(&upload.file_name);
        let sender = patient.address.clone();
        self.store_document_inner(
            patient,
            Some(&sender),
            NewDocument {
                content: upload.bytes,
                rendering: None,
                type_code,
                class_code: None,
                format_code: None,
                confidentiality: Vec::new(),
                title,
                author: Author {
                    person: Some(patient.kind.display_name()),
                    address: Some(sender.clone()),
                    ..Author::default()
                },
                created,
                service_start: None,
                service_stop: None,
                mime: format.mime().into(),
                file_name: Some(file_name),
                source: Source::Patient,
                masked: upload.masked,
                visible_to_patient: true,
                study: None,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf() -> Vec<u8> {
        b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec()
    }

    #[test]
    fn the_bytes_decide_and_must_agree_with_the_extension() {
        assert_eq!(check_file("cr.pdf", &pdf()), Ok(Format::Pdf));
        assert_eq!(check_file("scan", &pdf()), Ok(Format::Pdf));
        assert_eq!(
            check_file("photo.JPG", &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Ok(Format::Jpeg)
        );
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend_from_slice(b"\0\0\0\x0dIHDR");
        assert_eq!(check_file("a.png", &png), Ok(Format::Png));
        assert!(matches!(
            check_file("photo.jpg", &pdf()),
            Err(UploadRefusal::Mismatch {
                found: "un PDF",
                ..
            })
        ));
        assert!(matches!(
            check_file("cr.pdf", b"<html>not a pdf</html>"),
            Err(UploadRefusal::Unsupported { .. })
        ));
        assert_eq!(
            check_file("cut.pdf", b"%PDF-1.7\n1 0 obj"),
            Err(UploadRefusal::TruncatedPdf {
                name: "cut.pdf".into()
            })
        );
        assert_eq!(check_file("x.pdf", b""), Err(UploadRefusal::Empty));
    }

    #[test]
    fn heic_photos_are_refused_with_what_to_do() {
        let mut heic = b"\0\0\0\x18ftypheic".to_vec();
        heic.extend_from_slice(&[0; 20]);
        let refusal = check_file("IMG_2041.HEIC", &heic).unwrap_err();
        assert_eq!(refusal, UploadRefusal::Heic);
        assert!(refusal.to_string().contains("Le plus compatible"));
        // Even renamed .jpg.
        assert_eq!(check_file("IMG.jpg", &heic), Err(UploadRefusal::Heic));
    }

    #[test]
    fn dates_are_past_and_after_1900() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(check_date("", today), Ok(None));
        assert_eq!(check_date("2020-03-04", today), Ok(Some("20200304".into())));
        assert_eq!(check_date("04/03/2020", today), Ok(Some("20200304".into())));
        assert_eq!(check_date("2026-12-07", today), Ok(Some("20261207".into())));
        assert!(matches!(
            check_date("2026-12-08", today),
            Err(UploadRefusal::FutureDate(_))
        ));
        assert!(matches!(
            check_date("1850-01-01", today),
            Err(UploadRefusal::AncientDate(_))
        ));
        assert!(matches!(
            check_date("2020-02-30", today),
            Err(UploadRefusal::BadDate(_))
        ));
    }
}
