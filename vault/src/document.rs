//! Documents at rest. A document's content is a blob sealed to its patient's key; its record
//! (type, title, author, state) is sealed to the patient's key too, since a title alone can
//! reveal a diagnosis. Only the ids that index the records stay readable.

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use mshub_directory::Address;
use mshub_store::{AccountId, Batch, BlobId, Store, StoreError, Tree};

use crate::{Category, Result, VaultError};

/// document id → sealed [`Document`] (preceded by the patient's id, to know whose key opens it).
pub(crate) const DOCUMENTS: Tree = Tree("vault-document");
/// patient ‖ document id → nothing: a patient's documents in filing order.
pub(crate) const BY_PATIENT: Tree = Tree("vault-patient-document");

/// A document's number in the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocumentId(pub u64);

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who wrote a document, as the sender's metadata says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// Display name, e.g. "Dr Claire MARTIN".
    pub person: Option<String>,
    /// The person's identifier as given (an RPPS, often prefixed `8` as in the IdNat_PS).
    pub person_id: Option<String>,
    pub institution: Option<String>,
    /// The author's mail address: what the visibility rules recognise the author by.
    pub address: Option<Address>,
}

impl Author {
    /// "Dr Claire MARTIN, CHU X", or what is known of it.
    pub fn display(&self) -> String {
        let parts: Vec<&str> = [self.person.as_deref(), self.institution.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        match (parts.is_empty(), &self.address) {
            (false, _) => parts.join(", "),
            (true, Some(a)) => a.to_string(),
            (true, None) => "auteur inconnu".into(),
        }
    }
}

/// Where a document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A document of an IHE XDM archive.
    Xdm,
    /// A CDA R2 document attached on its own.
    Cda,
    /// A PDF or an image attached to a message.
    Attachment,
    /// DICOM files of one study (attached, or in an XDM archive), kept as a zip.
    Dicom,
}

/// A document of a patient's vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocumentId,
    pub patient: AccountId,
    /// The original bytes, sealed to the patient. `None` once the patient deleted it.
    pub blob: Option<BlobId>,
    /// A readable plain-text rendering (CDA header and narrative), sealed to the patient.
    pub rendering: Option<BlobId>,
    /// LOINC code; empty when unknown.
    pub type_code: String,
    pub type_label: String,
    pub category: Category,
    /// XDS classCode and formatCode as the sender gave them (XDM only).
    #[serde(default)]
    pub class_code: Option<String>,
    #[serde(default)]
    pub format_code: Option<String>,
    /// Confidentiality codes as given (N, R, V, MASQUE_PS, INVISIBLE_PATIENT…).
    #[serde(default)]
    pub confidentiality: Vec<String>,
    pub title: String,
    pub author: Author,
    /// HL7 DTM as the sender gave it.
    pub created: Option<String>,
    pub service_start: Option<String>,
    pub service_stop: Option<String>,
    /// Unix time of filing.
    pub filed_at: i64,
    pub mime: String,
    pub file_name: Option<String>,
    pub size: u64,
    /// Hex SHA-1 of the original bytes (what IHE XDM metadata carries).
    pub sha1: String,
    pub source: Source,
    /// Masked by the patient: hidden from professionals but its author and the referring doctor.
    pub masked: bool,
    /// `false` until its author releases it (e.g. after an announcement consultation).
    pub visible_to_patient: bool,
    pub deleted: bool,
    /// A DICOM study: its series and files. The content is then a zip of the original files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<crate::dicom::Study>,
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn patient_key(patient: AccountId, id: DocumentId) -> Vec<u8> {
    let mut k = patient.to_key().to_vec();
    k.extend_from_slice(&id.0.to_be_bytes());
    k
}

/// Encodes a record: the patient's id, then the record sealed to the patient.
pub(crate) fn seal_record<T: Serialize>(
    store: &Store,
    owner: AccountId,
    value: &T,
) -> mshub_store::Result<Vec<u8>> {
    let json = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        what: "vault record".into(),
        reason: e.to_string(),
    })?;
    let mut out = owner.to_key().to_vec();
    out.extend(store.seal(owner, &json)?);
    Ok(out)
}

pub(crate) fn open_record<T: serde::de::DeserializeOwned>(
    store: &Store,
    what: &str,
    raw: &[u8],
) -> mshub_store::Result<T> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: what.to_string(),
        reason,
    };
    let (owner, sealed) = raw
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("shorter than an account id".into()))?;
    let plain = store.open_sealed(AccountId(u64::from_be_bytes(*owner)), sealed)?;
    serde_json::from_slice(&plain).map_err(|e| corrupt(e.to_string()))
}

/// Reads and writes document records.
pub(crate) struct Records<'a> {
    pub store: &'a Store,
}

impl Records<'_> {
    pub fn get(&self, id: DocumentId) -> Result<Option<(Document, Vec<u8>)>> {
        match self.store.kv().get(DOCUMENTS, &id.0.to_be_bytes())? {
            Some(raw) => Ok(Some((open_record(self.store, "document", &raw)?, raw))),
            None => Ok(None),
        }
    }

    pub fn required(&self, id: DocumentId) -> Result<(Document, Vec<u8>)> {
        self.get(id)?.ok_or(VaultError::NoSuchDocument(id))
    }

    /// Adds the writes of a new document to `batch`.
    pub fn insert(&self, doc: &Document, batch: &mut Batch) -> Result<()> {
        batch.check(DOCUMENTS, doc.id.0.to_be_bytes(), None);
        batch.put(
            DOCUMENTS,
            doc.id.0.to_be_bytes(),
            seal_record(self.store, doc.patient, doc)?,
        );
        batch.put(BY_PATIENT, patient_key(doc.patient, doc.id), Vec::new());
        Ok(())
    }

    /// Read-modify-write of one record under compare-and-swap; returns the record after.
    pub fn update(&self, id: DocumentId, change: impl Fn(&mut Document)) -> Result<Document> {
        Ok(self.store.retry(id.0, || {
            let raw = self
                .store
                .kv()
                .get(DOCUMENTS, &id.0.to_be_bytes())?
                .ok_or_else(|| StoreError::Corrupt {
                    what: format!("document {id}"),
                    reason: "disappeared during an update".into(),
                })?;
            let mut doc: Document = open_record(self.store, "document", &raw)?;
            change(&mut doc);
            let mut batch = Batch::new();
            batch.check(DOCUMENTS, id.0.to_be_bytes(), Some(raw));
            batch.put(
                DOCUMENTS,
                id.0.to_be_bytes(),
                seal_record(self.store, doc.patient, &doc)?,
            );
            Ok((batch, doc))
        })?)
    }

    /// A patient's documents, in filing order, deleted ones included.
    pub fn of_patient(&self, patient: AccountId) -> Result<Vec<Document>> {
        let mut out = Vec::new();
        for (key, _) in self
            .store
            .kv()
            .scan(BY_PATIENT, &patient.to_key(), None, None)?
        {
            let id = key
                .get(8..16)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt {
                    what: "vault patient index".into(),
                    reason: "malformed key".into(),
                })?;
            if let Some((doc, _)) = self.get(DocumentId(id))? {
                out.push(doc);
            }
        }
        Ok(out)
    }
}
