use serde::{Deserialize, Serialize};

use mshub_directory::DirectoryError;
use mshub_store::StoreError;

use crate::DocumentId;

/// Why an attachment was not filed. Each reason is given in French (for the patient) and, but
/// for DICOM files, in English (for the sender's system and the logs); it is recorded per
/// attachment in the [`crate::Filing`] and never loses the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Rejection {
    #[error("archive illisible : {detail} — unreadable zip archive: {detail}")]
    ZipUnreadable { detail: String },
    #[error("archive trop volumineuse une fois décompressée (plus de {limit} octets) — archive larger than {limit} bytes once uncompressed")]
    ZipTooLarge { limit: u64 },
    #[error("taux de compression suspect pour {entry} (plus de {limit}:1, bombe zip ?) — compression ratio of {entry} above {limit}:1 (zip bomb?)")]
    ZipRatio { entry: String, limit: u64 },
    #[error("archive de {count} fichiers, plus que les {limit} admis — archive has {count} entries, more than the {limit} allowed")]
    ZipTooManyEntries { count: usize, limit: usize },
    #[error("chemin interdit dans l'archive : {entry:?} — path traversal or absolute path in archive: {entry:?}")]
    PathTraversal { entry: String },
    #[error("archive imbriquée refusée : {entry} — nested archive refused: {entry}")]
    NestedZip { entry: String },
    #[error("pas de fichier METADATA.XML dans IHE_XDM/ — no IHE_XDM/SUBSETnn/METADATA.XML in the archive")]
    MissingMetadata,
    #[error("XML refusé dans {file} (DTD ou entités interdites) : {detail} — XML refused in {file} (DTD or entities are not allowed): {detail}")]
    XmlDtd { file: String, detail: String },
    #[error("XML invalide dans {file} : {detail} — invalid XML in {file}: {detail}")]
    XmlInvalid { file: String, detail: String },
    #[error(
        "métadonnées incomplètes dans {file} : {detail} — incomplete metadata in {file}: {detail}"
    )]
    MetadataIncomplete { file: String, detail: String },
    #[error("document {uri} annoncé dans les métadonnées mais absent de l'archive — document {uri} listed in the metadata is missing from the archive")]
    MissingDocument { uri: String },
    #[error("empreinte SHA-1 de {uri} différente des métadonnées ({expected} attendue, {actual} calculée) — SHA-1 of {uri} does not match the metadata (expected {expected}, got {actual})")]
    HashMismatch {
        uri: String,
        expected: String,
        actual: String,
    },
    #[error("taille de {uri} différente des métadonnées ({expected} octets attendus, {actual} reçus) — size of {uri} does not match the metadata (expected {expected}, got {actual} bytes)")]
    SizeMismatch {
        uri: String,
        expected: u64,
        actual: u64,
    },
    #[error("identifiant patient non reconnu {id:?} : {detail} — unsupported patient identifier {id:?}: {detail}")]
    BadPatientId { id: String, detail: String },
    #[error("le document concerne l'INS {document}, pas le destinataire (INS {recipient}) — the document's patient INS {document} is not the recipient's INS {recipient}")]
    InsMismatch { recipient: String, document: String },
    #[error(
        "aucun patient d'INS {ins} sur cette messagerie — no patient with INS {ins} on this hub"
    )]
    UnknownPatient { ins: String },
    #[error(
        "document CDA invalide dans {file} : {detail} — invalid CDA document in {file}: {detail}"
    )]
    NotCda { file: String, detail: String },
    /// French only: the detail says what is wrong with the file in the patient's and the
    /// sender's words; the DICOM library's own English goes to the debug log.
    #[error("fichier DICOM refusé {file} : {detail}")]
    DicomRefused { file: String, detail: String },
    #[error("fichier DICOM refusé {file} : fichier trop volumineux (plus de {limit} octets)")]
    DicomTooLarge { file: String, limit: u64 },
    #[error(
        "erreur interne lors du classement : {detail} — internal error while filing: {detail}"
    )]
    Internal { detail: String },
}

/// Why a viewer may not see a document. Each reason in French (the professional's users and
/// the patient read it) and in English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum Denial {
    #[error("le patient a bloqué ce professionnel — the patient has blocked this professional")]
    Blocked,
    #[error("le patient a masqué ce document — the patient has masked this document")]
    Masked,
    #[error("le document n'est pas encore visible du patient — the document is not yet visible to the patient")]
    NotYetVisible,
    #[error("votre profession ou spécialité n'a pas accès à cette catégorie de document — this profession or specialty does not see this category of document")]
    Matrix,
    #[error("seuls les professionnels de santé (et le patient) voient les documents d'un patient — only health professionals (or the patient) see a patient's documents")]
    NotAProfessional,
    #[error("aucune relation de soin avec ce patient (désignation par le patient, échange de messages, accès accordé ou accès d'urgence) — no care relationship with this patient (named by the patient, correspondence, granted access or emergency access)")]
    NoRelationship,
    #[error("le patient a interdit l'accès d'urgence à son espace — the patient has forbidden emergency access to their space")]
    EmergencyForbidden,
    #[error("seul le patient peut faire cela — only the patient may do this")]
    NotThePatient,
    #[error("seul l'auteur du document peut faire cela — only the document's author may do this")]
    NotTheAuthor,
}

impl Denial {
    /// The kebab-case name recorded in the audit chain and given as the API's error code.
    pub fn code(self) -> &'static str {
        match self {
            Denial::Blocked => "blocked",
            Denial::Masked => "masked",
            Denial::NotYetVisible => "not-yet-visible",
            Denial::Matrix => "matrix",
            Denial::NotAProfessional => "not-a-professional",
            Denial::NoRelationship => "no-relationship",
            Denial::EmergencyForbidden => "emergency-forbidden",
            Denial::NotThePatient => "not-the-patient",
            Denial::NotTheAuthor => "not-the-author",
        }
    }
}

/// Everything the vault can fail with.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no document {0}")]
    NoSuchDocument(DocumentId),
    #[error("document {0} was deleted by the patient")]
    Deleted(DocumentId),
    #[error("access to document {document} refused: {denial}")]
    Denied {
        document: DocumentId,
        denial: Denial,
    },
    #[error("document {0} is not a DICOM study")]
    NotAStudy(DocumentId),
    #[error("no such image or file in the study of document {document}")]
    NoSuchImage { document: DocumentId },
    /// The reason is in French: the patient sees it.
    #[error("image not shown: {0}")]
    Undisplayable(String),
    #[error("unknown document type {0:?}: not in the table of document types")]
    UnknownDocumentType(String),
    #[error("{0} is not a patient account")]
    NotAPatient(String),
    #[error("{0} is not a health professional's account")]
    NotAProfessional(String),
    /// A refusal that concerns the patient's space rather than one document.
    #[error("refused: {0}")]
    Refused(Denial),
    #[error("le motif doit compter de {min} à {max} caractères — the reason must be {min} to {max} characters long")]
    InvalidReason { min: usize, max: usize },
    #[error("attachment refused: {0}")]
    Rejected(#[from] Rejection),
    /// A document the patient added, refused; the reason is in French: the patient sees it.
    #[error("{0}")]
    Upload(#[from] crate::upload::UploadRefusal),
    /// A change to the medical profile, refused; in French: the patient sees it.
    #[error("{0}")]
    Profile(#[from] crate::profile::ProfileRefusal),
    #[error("vault data file error: {0}")]
    Data(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

pub type Result<T, E = VaultError> = std::result::Result<T, E>;
