//! DICOM studies (imagerie): files attached to a message, or inside an IHE XDM archive, that
//! belong to one study become one vault document of category imagerie.
//!
//! The way of a file: [`looks_like_dicom`] recognises it (`application/dicom`, `.dcm`, or the
//! `DICM` magic after the 128-byte preamble, DICOM PS3.10 §7.1); [`read_instance`] checks its
//! structure ([`scan`], before any allocation a hostile length could ask for), reads it with
//! dicom-rs, and takes the study, series and image attributes; [`StudyBuilder`] groups the
//! files of one message by StudyInstanceUID. The document's content is a zip of the original
//! files (sealed like every document); its record carries the [`Study`]: series with modality,
//! description, body part and number of images. Frames are rendered on demand ([`render`])
//! and cached beside the content, thumbnails at filing time.
//!
//! Everything is bounded ([`DicomLimits`]): file and total size, files per message, frames,
//! rows × columns, sequence depth, and a time budget per message. A file that breaks a bound,
//! is truncated or hostile is refused with its reason; the other files are still filed. A file
//! whose pixel data is in a compressed transfer syntax the hub cannot decode (JPEG 2000,
//! JPEG-LS…) is kept, with the reason it is not shown.

pub mod render;
mod scan;
pub mod view;

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::time::{Duration, Instant};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use serde::{Deserialize, Serialize};

use crate::Rejection;

/// Bounds on what DICOM files may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomLimits {
    /// One file.
    pub max_file: u64,
    /// All the DICOM files of one message.
    pub max_total: u64,
    /// DICOM files in one message.
    pub max_files: usize,
    /// Frames of one file.
    pub max_frames: u32,
    /// Rows × columns of one frame.
    pub max_pixels: u64,
    /// Nesting of sequences.
    pub max_depth: usize,
    /// Reading all the DICOM files of one message; files past it are refused.
    pub time_budget: Duration,
    /// Largest side of a rendered frame (larger frames are scaled down).
    pub max_render_side: u32,
}

impl Default for DicomLimits {
    fn default() -> Self {
        Self {
            max_file: 64 * 1024 * 1024,
            max_total: 256 * 1024 * 1024,
            max_files: 2000,
            max_frames: 2000,
            max_pixels: 4096 * 4096,
            max_depth: 16,
            time_budget: Duration::from_secs(30),
            max_render_side: 1024,
        }
    }
}

/// The DICOMDIR of a medium (PS3.10 §7.2): an index, not an image; its files are read directly.
const MEDIA_DIRECTORY: &str = "1.2.840.10008.1.3.10";

/// A DICOM study as filed: what the pages show without opening the files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Study {
    pub study_uid: String,
    /// StudyDate, `YYYYMMDD`.
    pub date: Option<String>,
    /// StudyTime, `HHMMSS`.
    pub time: Option<String>,
    pub description: Option<String>,
    pub accession: Option<String>,
    pub institution: Option<String>,
    /// Series by SeriesNumber.
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    pub series_uid: String,
    pub number: Option<i32>,
    /// CT, MR, CR, DX, US, SR…
    pub modality: String,
    pub description: Option<String>,
    /// BodyPartExamined (CHEST, HEAD…).
    pub body_part: Option<String>,
    /// Files by InstanceNumber.
    pub instances: Vec<Instance>,
}

impl Series {
    /// Images of the series: the frames of its image files.
    pub fn images(&self) -> u32 {
        self.instances
            .iter()
            .filter(|i| i.is_image())
            .map(|i| i.frames)
            .sum()
    }

    /// The file and frame (both from 0) of the series' image `n` (from 0).
    pub fn locate(&self, n: u32) -> Option<(usize, u32)> {
        let mut left = n;
        for (index, i) in self.instances.iter().enumerate() {
            if !i.is_image() {
                continue;
            }
            if left < i.frames {
                return Some((index, left));
            }
            left -= i.frames;
        }
        None
    }

    /// Whether the hub can show the series' images (at least one decodable image file).
    pub fn viewable(&self) -> bool {
        self.instances
            .iter()
            .any(|i| i.is_image() && i.undecodable.is_none())
    }

    /// French label of a modality code (DICOM PS3.3 C.7.3.1.1.1), or the code.
    pub fn modality_fr(&self) -> String {
        modality_fr(&self.modality)
    }
}

/// French label of a modality code, or the code itself.
pub fn modality_fr(code: &str) -> String {
    let label = match code {
        "CT" => "Scanner (tomodensitométrie)",
        "MR" => "IRM",
        "CR" | "DX" => "Radiographie",
        "MG" => "Mammographie",
        "US" => "Échographie",
        "NM" => "Médecine nucléaire",
        "PT" => "TEP",
        "XA" => "Angiographie",
        "RF" => "Radioscopie",
        "OT" => "Autre",
        "SR" => "Compte rendu structuré",
        "KO" => "Sélection d'images",
        "PR" => "État de présentation",
        "DOC" => "Document",
        "SC" => "Capture secondaire",
        "" => return "Modalité inconnue".into(),
        _ => return code.to_string(),
    };
    format!("{label} ({code})")
}

/// One file of the study.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Its name in the study's zip.
    pub file: String,
    pub sop_class: String,
    pub sop_instance_uid: String,
    pub number: Option<i32>,
    /// 0 for an object without pixel data (structured report, key object selection…).
    pub frames: u32,
    pub rows: u32,
    pub columns: u32,
    pub photometric: String,
    pub transfer_syntax: String,
    /// Why its images cannot be shown (a compressed transfer syntax the hub cannot decode).
    pub undecodable: Option<String>,
    pub size: u64,
}

impl Instance {
    pub fn is_image(&self) -> bool {
        self.frames > 0
    }
}

/// Is this attachment (or archive entry) a DICOM file?
pub fn looks_like_dicom(name: &str, mime: &str, bytes: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    mime == "application/dicom"
        || lower.ends_with(".dcm")
        || lower == "dicomdir"
        || bytes.get(128..132) == Some(b"DICM")
}

/// A file read, before grouping.
#[derive(Debug, Clone)]
pub struct ReadFile {
    pub study_uid: String,
    pub study: Study,
    pub series: Series,
    pub instance: Instance,
}

fn refused(file: &str, detail: impl Into<String>) -> Rejection {
    Rejection::DicomRefused {
        file: file.to_string(),
        detail: detail.into(),
    }
}

/// What dicom-rs refused, in French: its errors are English and name its own internals; the
/// reason a sender and a patient read says what is wrong with the file (the library's own
/// wording goes to the debug log).
fn library_error(e: &dicom_object::ReadError) -> String {
    use dicom_object::meta::Error as Meta;
    use dicom_object::ReadError as R;
    const HEADER: &str = "l'en-tête du fichier (informations de groupe 0002)";
    match e {
        R::ParseMetaDataSet { source } => match source {
            Meta::MissingElement { alias, .. } => {
                format!("information obligatoire absente de l'en-tête du fichier : {alias} (groupe 0002)")
            }
            Meta::InvalidUid { .. } => format!("identifiant (UID) invalide dans {HEADER}"),
            Meta::UnexpectedTag { tag, .. } => {
                format!("élément {tag} inattendu dans {HEADER} : une information obligatoire qui le précède manque, ou l'ordre des éléments n'est pas respecté")
            }
            Meta::UnexpectedDataValueLength { tag, length, .. } => {
                format!("longueur {length} inattendue pour l'élément {tag} de {HEADER}")
            }
            Meta::UndefinedValueLength { tag, .. } => {
                format!("longueur indéfinie sur l'élément {tag} de {HEADER}")
            }
            Meta::DecodeText { name, .. } => {
                format!("texte illisible dans l'élément {name} de {HEADER}")
            }
            Meta::NotDicom { .. } | Meta::ReadMagicCode { .. } => {
                "ce n'est pas un fichier DICOM (pas de marque « DICM »)".into()
            }
            Meta::AllocationSize { .. } => format!("{HEADER} annonce une taille impossible"),
            _ => format!("fichier DICOM tronqué ou mal formé : {HEADER} est illisible"),
        },
        R::ReadUnrecognizedTransferSyntax { uid, .. } => format!(
            "syntaxe de transfert inconnue ({}) : le codage du fichier n'est pas reconnu",
            uid.trim_end_matches('\0')
        ),
        R::ReadUnsupportedTransferSyntax { uid, name, .. }
        | R::ReadUnsupportedTransferSyntaxWithSuggestion { uid, name, .. } => {
            format!("syntaxe de transfert {name} ({uid}) non prise en charge")
        }
        R::PrematureEnd { .. } | R::MissingElementValue { .. } => {
            "fichier DICOM tronqué : les données s'arrêtent au milieu d'un élément".into()
        }
        R::ParseSopAttribute { .. } => {
            "identifiant de classe ou d'instance SOP illisible dans le fichier".into()
        }
        _ => "fichier DICOM mal formé : un élément de ses données ne peut pas être lu".into(),
    }
}

/// The bytes from `DICM` on: a Part 10 file has a 128-byte preamble, some writers omit it.
fn after_preamble(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.get(128..132) == Some(b"DICM") {
        Some(&bytes[128..])
    } else if bytes.starts_with(b"DICM") {
        Some(bytes)
    } else {
        None
    }
}

/// Parses a file with dicom-rs after the structural check. A panic in the parser is caught
/// and reported as a refusal: one hostile file must not take the filing thread down.
pub(crate) fn parse(
    bytes: &[u8],
    name: &str,
    limits: &DicomLimits,
) -> Result<DefaultDicomObject, Rejection> {
    if bytes.len() as u64 > limits.max_file {
        return Err(Rejection::DicomTooLarge {
            file: name.to_string(),
            limit: limits.max_file,
        });
    }
    let body = after_preamble(bytes).ok_or_else(|| {
        refused(
            name,
            "ce n'est pas un fichier DICOM (pas de marque « DICM » après le préambule de 128 octets)",
        )
    })?;
    scan::check(body, limits.max_depth).map_err(|detail| refused(name, detail))?;
    let parsed = std::panic::catch_unwind(|| {
        OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .from_reader(Cursor::new(body))
    });
    match parsed {
        Ok(Ok(object)) => Ok(object),
        Ok(Err(e)) => {
            tracing::debug!(file = name, error = ?e, "vault: dicom-rs refused a DICOM file");
            Err(refused(name, library_error(&e)))
        }
        Err(_) => Err(refused(
            name,
            "fichier DICOM mal formé : sa lecture a échoué (structure incohérente)",
        )),
    }
}

pub(crate) fn text(obj: &DefaultDicomObject, tag: Tag) -> Option<String> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| {
            e.to_str()
                .ok()
                .map(|s| s.trim_matches(['\0', ' ']).to_string())
        })
        .filter(|s| !s.is_empty())
}

pub(crate) fn int(obj: &DefaultDicomObject, tag: Tag) -> Option<i64> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<i64>().ok())
}

/// Reads one file: its study, series and instance attributes. `Ok(None)` for a DICOMDIR.
pub fn read_instance(
    bytes: &[u8],
    name: &str,
    limits: &DicomLimits,
) -> Result<Option<ReadFile>, Rejection> {
    let obj = parse(bytes, name, limits)?;
    if obj
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches('\0')
        == MEDIA_DIRECTORY
    {
        return Ok(None);
    }
    let study_uid = text(&obj, tags::STUDY_INSTANCE_UID)
        .ok_or_else(|| {
            refused(
                name,
                "pas d'identifiant d'examen (StudyInstanceUID, 0020,000D) : le fichier ne dit pas à quel examen il appartient",
            )
        })?;
    let series_uid = text(&obj, tags::SERIES_INSTANCE_UID)
        .ok_or_else(|| {
            refused(
                name,
                "pas d'identifiant de série (SeriesInstanceUID, 0020,000E) : le fichier ne dit pas à quelle série il appartient",
            )
        })?;
    let transfer_syntax = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    let mut instance = Instance {
        file: name.to_string(),
        sop_class: text(&obj, tags::SOP_CLASS_UID).unwrap_or_default(),
        sop_instance_uid: text(&obj, tags::SOP_INSTANCE_UID).unwrap_or_default(),
        number: int(&obj, tags::INSTANCE_NUMBER).and_then(|n| i32::try_from(n).ok()),
        photometric: text(&obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default(),
        transfer_syntax: transfer_syntax.clone(),
        size: bytes.len() as u64,
        ..Instance::default()
    };
    if let Some(pixels) = obj.element_opt(tags::PIXEL_DATA).ok().flatten() {
        let rows = int(&obj, tags::ROWS).unwrap_or(0);
        let columns = int(&obj, tags::COLUMNS).unwrap_or(0);
        let frames = int(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1);
        if rows <= 0 || columns <= 0 {
            return Err(refused(
                name,
                format!(
                    "dimensions d'image impossibles : {rows} × {columns} pixels (Rows × Columns)"
                ),
            ));
        }
        // Rows and Columns are US, but a hostile file may give any integer: no overflow here.
        if rows.saturating_mul(columns) as u64 > limits.max_pixels {
            return Err(refused(
                name,
                format!(
                    "image de {rows} × {columns} pixels, plus que les {} admis",
                    limits.max_pixels
                ),
            ));
        }
        if frames <= 0 || frames > i64::from(limits.max_frames) {
            return Err(refused(
                name,
                format!(
                    "{frames} images annoncées (NumberOfFrames), au plus {}",
                    limits.max_frames
                ),
            ));
        }
        instance.rows = rows as u32;
        instance.columns = columns as u32;
        instance.frames = frames as u32;
        let samples = int(&obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
        let bits = int(&obj, tags::BITS_ALLOCATED).unwrap_or(0);
        if !matches!(samples, 1 | 3) || !matches!(bits, 8 | 16) {
            instance.undecodable = Some(format!(
                "{samples} échantillon(s) par pixel sur {bits} bits : format de pixels non pris en charge"
            ));
        }
        match pixels.value() {
            dicom_core::DicomValue::Primitive(p) => {
                // Only for the sample formats decoded here: rows × columns and frames are
                // bounded above, so nothing overflows.
                let expected = || (rows * columns * samples * bits / 8) as u64 * frames as u64;
                let actual = p.calculate_byte_len() as u64;
                if instance.undecodable.is_none() && actual < expected() {
                    let expected = expected();
                    return Err(refused(
                        name,
                        format!("fichier DICOM tronqué : les pixels (7FE0,0010) font {actual} octets, il en faut {expected} pour {frames} image(s) de {rows} × {columns}"),
                    ));
                }
            }
            dicom_core::DicomValue::PixelSequence(_) => {
                let decodable = TransferSyntaxRegistry
                    .get(&transfer_syntax)
                    .is_some_and(|ts| ts.can_decode_all());
                if !decodable {
                    instance.undecodable = Some(format!(
                        "images compressées en {} : ce format n'est pas affichable ici, le fichier d'origine reste téléchargeable",
                        transfer_syntax_name(&transfer_syntax)
                    ));
                }
            }
            dicom_core::DicomValue::Sequence(_) => {
                return Err(refused(
                    name,
                    "les pixels (7FE0,0010) sont une séquence, pas des données d'image",
                ));
            }
        }
        if instance.undecodable.is_none() {
            // The first frame is decoded now: a corrupt compressed stream is refused at filing,
            // not discovered by the patient.
            render::decode_frame(&obj, 0, limits).map_err(|e| refused(name, e))?;
        }
    }
    let study = Study {
        study_uid: study_uid.clone(),
        date: text(&obj, tags::STUDY_DATE),
        time: text(&obj, tags::STUDY_TIME),
        description: text(&obj, tags::STUDY_DESCRIPTION),
        accession: text(&obj, tags::ACCESSION_NUMBER),
        institution: text(&obj, tags::INSTITUTION_NAME),
        series: Vec::new(),
    };
    let series = Series {
        series_uid,
        number: int(&obj, tags::SERIES_NUMBER).and_then(|n| i32::try_from(n).ok()),
        modality: text(&obj, tags::MODALITY).unwrap_or_default(),
        description: text(&obj, tags::SERIES_DESCRIPTION),
        body_part: text(&obj, tags::BODY_PART_EXAMINED),
        instances: Vec::new(),
    };
    Ok(Some(ReadFile {
        study_uid,
        study,
        series,
        instance,
    }))
}

/// A readable name of a transfer syntax the hub does not decode.
fn transfer_syntax_name(uid: &str) -> String {
    match uid {
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "JPEG 2000".into(),
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "JPEG-LS".into(),
        "1.2.840.10008.1.2.4.100" | "1.2.840.10008.1.2.4.101" | "1.2.840.10008.1.2.4.102" => {
            "MPEG-2".into()
        }
        "1.2.840.10008.1.2.4.102.1" | "1.2.840.10008.1.2.4.103" => "MPEG-4".into(),
        _ => TransferSyntaxRegistry
            .get(uid)
            .map(|ts| ts.name().to_string())
            .unwrap_or_else(|| format!("syntaxe de transfert {uid}")),
    }
}

/// A file of a study: its name in the zip and its bytes.
pub type StudyFile = (String, Vec<u8>);

/// Groups the DICOM files of one message into studies, within the limits.
pub struct StudyBuilder<'l> {
    limits: &'l DicomLimits,
    started: Instant,
    total: u64,
    files: usize,
    studies: BTreeMap<String, (Study, Vec<StudyFile>)>,
}

/// A study ready to be filed: its record and its files (name, bytes).
pub struct NewStudy {
    pub study: Study,
    pub files: Vec<(String, Vec<u8>)>,
}

impl<'l> StudyBuilder<'l> {
    pub fn new(limits: &'l DicomLimits) -> Self {
        Self {
            limits,
            started: Instant::now(),
            total: 0,
            files: 0,
            studies: BTreeMap::new(),
        }
    }

    /// Reads a file and adds it to its study; the key of the study it joined, or `None` for a
    /// DICOMDIR (nothing to file).
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<Option<String>, Rejection> {
        if self.started.elapsed() > self.limits.time_budget {
            return Err(refused(
                name,
                format!(
                    "temps de lecture des fichiers DICOM du message épuisé ({} s) : ce fichier n'a pas été lu, envoyez-le dans un autre message",
                    self.limits.time_budget.as_secs()
                ),
            ));
        }
        if self.files >= self.limits.max_files {
            return Err(refused(
                name,
                format!(
                    "plus de {} fichiers DICOM dans un même message : envoyez les autres dans un autre message",
                    self.limits.max_files
                ),
            ));
        }
        if self.total + bytes.len() as u64 > self.limits.max_total {
            return Err(refused(
                name,
                format!(
                    "les fichiers DICOM du message dépassent ensemble {} octets : envoyez celui-ci dans un autre message",
                    self.limits.max_total
                ),
            ));
        }
        let Some(read) = read_instance(bytes, name, self.limits)? else {
            return Ok(None);
        };
        self.files += 1;
        self.total += bytes.len() as u64;
        let (study, files) = self
            .studies
            .entry(read.study_uid.clone())
            .or_insert_with(|| (read.study.clone(), Vec::new()));
        // The same instance sent twice (as a plain attachment and in an archive) is kept once.
        if study.series.iter().any(|s| {
            s.instances.iter().any(|i| {
                i.sop_instance_uid == read.instance.sop_instance_uid
                    && !i.sop_instance_uid.is_empty()
            })
        }) {
            return Ok(Some(read.study_uid));
        }
        let file = unique_name(name, files);
        let mut instance = read.instance;
        instance.file = file.clone();
        files.push((file, bytes.to_vec()));
        match study
            .series
            .iter_mut()
            .find(|s| s.series_uid == read.series.series_uid)
        {
            Some(series) => series.instances.push(instance),
            None => {
                let mut series = read.series;
                series.instances.push(instance);
                study.series.push(series);
            }
        }
        Ok(Some(read.study_uid))
    }

    /// The studies, series and files in order.
    pub fn finish(self) -> Vec<(String, NewStudy)> {
        self.studies
            .into_iter()
            .map(|(uid, (mut study, files))| {
                study
                    .series
                    .sort_by_key(|s| (s.number.unwrap_or(i32::MAX), s.series_uid.clone()));
                for s in &mut study.series {
                    s.instances
                        .sort_by_key(|i| (i.number.unwrap_or(i32::MAX), i.file.clone()));
                }
                (uid, NewStudy { study, files })
            })
            .collect()
    }
}

/// A safe, unique name for a file in the study's zip.
fn unique_name(name: &str, taken: &[(String, Vec<u8>)]) -> String {
    let base: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = if base.trim_matches(['.', '_']).is_empty() {
        "image.dcm".to_string()
    } else {
        base
    };
    let mut candidate = base.clone();
    let mut n = 1;
    while taken
        .iter()
        .any(|(t, _)| t.eq_ignore_ascii_case(&candidate))
    {
        n += 1;
        candidate = match base.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}-{n}.{ext}"),
            None => format!("{base}-{n}"),
        };
    }
    candidate
}

/// The zip of a study's original files (stored as they came: DICOM pixel data is often
/// compressed already, and the archive is sealed anyway).
pub fn zip_files(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(files.iter().map(|(_, b)| b.len() as u64).sum::<u64>() > u32::MAX as u64 / 2);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options)
            .map_err(std::io::Error::other)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}

/// One file of a study's zip, read within `max` bytes.
pub fn file_from_zip(archive: &[u8], name: &str, max: u64) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).map_err(|e| e.to_string())?;
    let file = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let mut out = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{name}: {e}"))?;
    if out.len() as u64 > max {
        return Err(format!("{name} is larger than {max} bytes"));
    }
    Ok(out)
}

/// "12 mars 2024" style date of a DICOM DA value, left to the pages; here `YYYY-MM-DD`.
pub fn iso_date(da: &str) -> Option<String> {
    let d = da.trim();
    (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dicom_parts_are_recognised() {
        let mut bytes = vec![0u8; 132];
        bytes[128..].copy_from_slice(b"DICM");
        assert!(looks_like_dicom(
            "x.bin",
            "application/octet-stream",
            &bytes
        ));
        assert!(looks_like_dicom("IMG.DCM", "", b""));
        assert!(looks_like_dicom("x", "application/dicom", b""));
        assert!(!looks_like_dicom("x.pdf", "application/pdf", b"%PDF"));
    }

    #[test]
    fn names_in_the_zip_are_safe_and_unique() {
        let taken = vec![("IMG.dcm".to_string(), Vec::new())];
        assert_eq!(unique_name("../IMG.dcm", &taken), "IMG-2.dcm");
        assert_eq!(unique_name("a b/c d.dcm", &[]), "c_d.dcm");
        assert_eq!(unique_name("..", &[]), "image.dcm");
    }

    #[test]
    fn a_series_locates_its_images_across_files() {
        let image = |frames| Instance {
            frames,
            ..Instance::default()
        };
        let s = Series {
            instances: vec![image(2), image(0), image(3)],
            ..Series::default()
        };
        assert_eq!(s.images(), 5);
        assert_eq!(s.locate(0), Some((0, 0)));
        assert_eq!(s.locate(2), Some((2, 0)));
        assert_eq!(s.locate(4), Some((2, 2)));
        assert_eq!(s.locate(5), None);
    }
}
