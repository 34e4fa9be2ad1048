//! # mshub-vault
//!
//! The patient's document vault (like the DMP of "Mon espace santé"). Start with
//! [`Vault::file_message`]: the delivery pipeline hands it a message durably in a patient's
//! INBOX; every IHE XDM archive ([`xdm`]), CDA R2 document ([`cda`]), PDF or image attached
//! becomes a [`Document`] of that patient — content sealed to the patient's key, typed by the
//! [`DocumentTypes`] table, audited (`document.file`) — and the patient gets a notification
//! in the INBOX. DICOM files, attached or in an XDM archive, are grouped by study into one
//! imaging document each ([`dicom`]), shown through [`Vault::read_study`] and
//! [`Vault::study_image`]. What cannot be filed is reported per attachment with a precise
//! [`Rejection`]; the message itself is never touched.
//!
//! Then the rules ([`rules`]): [`Vault::documents_for_patient`],
//! [`Vault::documents_for_professional`] and [`Vault::read_document`] apply DESIGN §4 "Vault
//! visibility" — professionals blocked by the patient, the care relationship a professional
//! needs beyond what it authored ([`care`]: named by the patient, wrote to the patient,
//! granted, or emergency access), masking by the patient, documents not yet released to the
//! patient, the profession and specialty × category [`AccessMatrix`] — and write every read by
//! anyone but the patient (and every refusal) to the store's audit chain.
//!
//! The crate does not know the MTA (DESIGN §2): the binary adapts [`Vault::file_message`] to
//! the MTA's `Filer` trait, with [`Filing::outcome`] giving the [`FilingOutcome`] it records
//! (one type for every filer, defined in the store):
//!
//! ```text
//! struct VaultFiler(Arc<Vault>);
//! impl Filer for VaultFiler {
//!     fn name(&self) -> &'static str { "vault" }
//!     fn file(&self, d: &Delivered<'_>) -> FilingOutcome {
//!         self.0.file_message(d.recipient, Some(d.sender), d.message).outcome()
//!     }
//! }
//! ```
//!
//! The sender it is given is the one the hub authenticated: a filed document's author is that
//! sender's identity from the directory; an author written inside the document that differs is
//! kept as declared, not trusted.
//!
//! Data files: `data/document-types.toml` (LOINC → label → category) and `data/access.toml`
//! (the matrix), both compiled in.

pub mod access;
pub mod care;
pub mod cda;
pub mod dicom;
mod document;
mod error;
pub mod filing;
mod notify;
pub mod profile;
pub mod report;
pub mod rules;
pub mod types;
pub mod upload;
pub mod xdm;

use std::sync::Arc;

use mshub_directory::Directory;
use mshub_store::Store;

pub use access::AccessMatrix;
pub use care::{CareEntry, Correspondence, Link, Relationship, Standing};
pub use dicom::DicomLimits;
pub use document::{
    sha1_hex, Author, Document, DocumentId, DocumentRef, InvalidDocumentRef, Source,
};
pub use error::{Denial, Rejection, Result, VaultError};
pub use filing::{may_carry_documents, GeneratedDocument};
pub use mshub_store::FilingOutcome;
pub use profile::{MedicalProfile, ProfileChange, ProfileRead, ProfileRefusal, ProfileVersion};
pub use report::{AttachmentFiling, AttachmentOutcome, Filing};
pub use rules::{Ground, Notices, PatientSettings};
pub use types::{Category, DocumentType, DocumentTypes};
pub use upload::{Upload, UploadRefusal};
pub use xdm::XdmLimits;

/// The vault over the hub's store and directory.
pub struct Vault {
    store: Arc<Store>,
    directory: Arc<Directory>,
    types: DocumentTypes,
    access: AccessMatrix,
    limits: XdmLimits,
    dicom_limits: DicomLimits,
    /// The key of the documents' public references.
    refs: document::RefKey,
    /// Who wrote to which patient (the MTA's conversation index), for the care relationships.
    correspondence: Option<Arc<dyn care::Correspondence>>,
    /// How long an emergency access lasts, in seconds.
    emergency_secs: i64,
}

impl Vault {
    /// A vault with the built-in document types, access matrix and XDM limits.
    pub fn new(store: Arc<Store>, directory: Arc<Directory>) -> Self {
        Self::with_tables(
            store,
            directory,
            DocumentTypes::builtin(),
            AccessMatrix::builtin(),
            XdmLimits::default(),
        )
    }

    pub fn with_tables(
        store: Arc<Store>,
        directory: Arc<Directory>,
        types: DocumentTypes,
        access: AccessMatrix,
        limits: XdmLimits,
    ) -> Self {
        Self {
            store,
            directory,
            types,
            access,
            limits,
            dicom_limits: DicomLimits::default(),
            refs: document::RefKey::default(),
            correspondence: None,
            emergency_secs: care::DEFAULT_EMERGENCY_SECS,
        }
    }

    /// The same vault with other bounds on DICOM files.
    pub fn with_dicom_limits(mut self, limits: DicomLimits) -> Self {
        self.dicom_limits = limits;
        self
    }

    pub fn dicom_limits(&self) -> &DicomLimits {
        &self.dicom_limits
    }

    pub fn types(&self) -> &DocumentTypes {
        &self.types
    }

    pub fn access_matrix(&self) -> &AccessMatrix {
        &self.access
    }

    /// A document's record, without any rule applied: for the operator and for callers that
    /// have already decided (the webmail after [`Vault::documents_for_patient`]).
    pub fn document(&self, id: DocumentId) -> Result<Document> {
        Ok(self.records().required(id)?.0)
    }

    /// The document a public reference names, if the hub issued that reference. Anything
    /// else — a number, a reference altered or made up — is `None`, for callers to answer
    /// "not found" whoever asks: no answer tells a made-up reference from a real one.
    pub fn resolve(&self, reference: &DocumentRef) -> Result<Option<DocumentId>> {
        self.refs.resolve(&self.store, reference)
    }

    /// The public reference of document `id` (a [`Document`] read from the vault carries it
    /// already).
    pub fn reference(&self, id: DocumentId) -> Result<DocumentRef> {
        self.refs.reference(&self.store, id)
    }

    fn records(&self) -> document::Records<'_> {
        document::Records {
            store: &self.store,
            refs: &self.refs,
        }
    }
}
