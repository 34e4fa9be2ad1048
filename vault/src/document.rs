//! Documents at rest. A document's content is a blob sealed to its patient's key; its record
//! (type, title, author, state) is sealed to the patient's key too, since a title alone can
//! reveal a diagnosis. Only the ids that index the records stay readable.
//!
//! Outside the hub a document is never named by its number (a counter: 1, 2, 3…, which would
//! let anyone walk every patient's vault) but by its [`DocumentRef`].

use std::sync::OnceLock;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use mshub_directory::Address;
use mshub_store::{AccountId, Batch, BlobId, Commit, Store, StoreError, Tree, SYSTEM_ACCOUNT};

use crate::{Category, Result, VaultError};

/// document id → sealed [`Document`] (preceded by the patient's id, to know whose key opens it).
pub(crate) const DOCUMENTS: Tree = Tree("vault-document");
/// patient ‖ document id → nothing: a patient's documents in filing order.
pub(crate) const BY_PATIENT: Tree = Tree("vault-patient-document");

/// A document's number in the vault: what indexes its record, the audit chain and the filing
/// reports. Internal only: URLs, API answers and messages show its [`DocumentRef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocumentId(pub u64);

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The public name of a document: 32 characters of lower-case base32 (RFC 4648 alphabet, no
/// padding), e.g. `q3v7…`, in every URL, API answer and message that points to a document.
///
/// It is the document's number sealed under a secret of the hub, a deterministic
/// authenticated encryption in the SIV manner: `tag = HMAC-SHA256(k, "tag" ‖ id)` cut to 96
/// bits, `pad = HMAC-SHA256(k, "pad" ‖ tag)` cut to 64 bits, and the reference is
/// `base32((id XOR pad) ‖ tag)`. So:
/// - it cannot be guessed: a reference not issued by the hub matches its tag with a chance of
///   2⁻⁹⁶; it cannot be derived from another one, and shows neither the number nor the order
///   of filing (two consecutive documents have unrelated references);
/// - it needs nothing stored per document: documents filed before references existed have one
///   already, and no index maps references to numbers (the number is decrypted, then the tag
///   checked).
///
/// The alternative, a random id stored with each document and indexed, would have needed a
/// migration of every record filed before and one more write per filing, for no more secrecy.
/// The key ([`RefKey`]) is made at random on first use and kept sealed to the hub's own key,
/// so a copy of the store without the master key cannot compute references either.
///
/// [`DocumentRef::try_from`] only checks the form (from a URL: never trusted); whether the
/// hub issued it is [`crate::Vault::resolve`]'s question.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentRef(String);

/// Bytes behind a reference: the masked number, then the tag.
const REF_BYTES: usize = 8 + TAG_BYTES;
const TAG_BYTES: usize = 12;
/// 160 bits in base32.
const REF_CHARS: usize = REF_BYTES * 8 / 5;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl DocumentRef {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn encode(bytes: &[u8; REF_BYTES]) -> Self {
        let mut out = String::with_capacity(REF_CHARS);
        // 160 bits: four groups of 40 bits, eight characters each.
        for group in bytes.chunks(5) {
            let n = group.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
            for i in (0..8).rev() {
                out.push(char::from(BASE32[((n >> (5 * i)) & 31) as usize]));
            }
        }
        Self(out)
    }

    fn decode(&self) -> Option<[u8; REF_BYTES]> {
        let mut out = [0u8; REF_BYTES];
        for (group, chars) in out.chunks_mut(5).zip(self.0.as_bytes().chunks(8)) {
            let mut n = 0u64;
            for c in chars {
                let v = BASE32.iter().position(|b| b == c)?;
                n = (n << 5) | v as u64;
            }
            for (i, b) in group.iter_mut().enumerate() {
                *b = (n >> (8 * (4 - i))) as u8;
            }
        }
        Some(out)
    }
}

impl TryFrom<&str> for DocumentRef {
    type Error = InvalidDocumentRef;

    /// Exactly the form the hub writes: lower case only, so that one document has one name.
    fn try_from(text: &str) -> std::result::Result<Self, Self::Error> {
        if text.len() == REF_CHARS && text.bytes().all(|b| BASE32.contains(&b)) {
            Ok(Self(text.to_string()))
        } else {
            Err(InvalidDocumentRef)
        }
    }
}

impl std::fmt::Display for DocumentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for DocumentRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Text that is not a document reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a document reference")]
pub struct InvalidDocumentRef;

/// The key of document references, sealed to the hub's own key.
const VAULT_KEYS: Tree = Tree("vault-key");
const REF_KEY: &[u8] = b"document-ref-v1";

/// The secret behind [`DocumentRef`]s: read (or made) on first use, then kept in memory.
#[derive(Default)]
pub(crate) struct RefKey(OnceLock<hmac::Key>);

impl RefKey {
    fn key(&self, store: &Store) -> Result<&hmac::Key> {
        if let Some(key) = self.0.get() {
            return Ok(key);
        }
        let key = load_ref_key(store)?;
        Ok(self.0.get_or_init(|| key))
    }

    fn tag(key: &hmac::Key, id: DocumentId) -> [u8; TAG_BYTES] {
        let mut input = b"tag".to_vec();
        input.extend_from_slice(&id.0.to_be_bytes());
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&hmac::sign(key, &input).as_ref()[..TAG_BYTES]);
        tag
    }

    fn pad(key: &hmac::Key, tag: &[u8]) -> [u8; 8] {
        let mut input = b"pad".to_vec();
        input.extend_from_slice(tag);
        let mut pad = [0u8; 8];
        pad.copy_from_slice(&hmac::sign(key, &input).as_ref()[..8]);
        pad
    }

    /// The reference of document `id`.
    pub fn reference(&self, store: &Store, id: DocumentId) -> Result<DocumentRef> {
        let key = self.key(store)?;
        let tag = Self::tag(key, id);
        let pad = Self::pad(key, &tag);
        let mut bytes = [0u8; REF_BYTES];
        for (i, (n, p)) in id.0.to_be_bytes().iter().zip(pad).enumerate() {
            bytes[i] = n ^ p;
        }
        bytes[8..].copy_from_slice(&tag);
        Ok(DocumentRef::encode(&bytes))
    }

    /// The number behind `reference`, if the hub issued it; `None` for anything else, without
    /// telling why.
    pub fn resolve(&self, store: &Store, reference: &DocumentRef) -> Result<Option<DocumentId>> {
        let key = self.key(store)?;
        let Some(bytes) = reference.decode() else {
            return Ok(None);
        };
        let (masked, tag) = bytes.split_at(8);
        let pad = Self::pad(key, tag);
        let mut number = [0u8; 8];
        for (i, (m, p)) in masked.iter().zip(pad).enumerate() {
            number[i] = m ^ p;
        }
        let id = DocumentId(u64::from_be_bytes(number));
        let expected = Self::tag(key, id);
        // Compared in constant time: how far a forged tag matches must not show in the timing.
        let differ = expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        Ok((std::hint::black_box(differ) == 0).then_some(id))
    }
}

/// The reference key: made at random on first use, kept sealed to the hub's own key (as the
/// directory keeps its identity key). Several nodes opening at once agree on one by
/// compare-and-swap.
fn load_ref_key(store: &Store) -> Result<hmac::Key> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        what: "document reference key".into(),
        reason: reason.into(),
    };
    let raw = loop {
        if let Some(sealed) = store.kv().get(VAULT_KEYS, REF_KEY)? {
            break store.open_sealed(SYSTEM_ACCOUNT, &sealed)?;
        }
        store.provision_account(SYSTEM_ACCOUNT)?;
        let mut key = vec![0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| corrupt("the system random generator failed"))?;
        let mut batch = Batch::new();
        batch.check(VAULT_KEYS, REF_KEY, None);
        batch.put(VAULT_KEYS, REF_KEY, store.seal(SYSTEM_ACCOUNT, &key)?);
        if store.kv().commit(&batch)? == Commit::Done {
            break key;
        }
    };
    if raw.len() != 32 {
        return Err(corrupt("not 32 bytes").into());
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &raw))
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
    fn is_empty(&self) -> bool {
        self.person.is_none()
            && self.person_id.is_none()
            && self.institution.is_none()
            && self.address.is_none()
    }

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

impl Document {
    /// The author as shown to people: the sender's identity, then what the document declares
    /// when that differs ("… — auteur déclaré : …").
    pub fn author_display(&self) -> String {
        if self.source == Source::Patient {
            return format!("{} — ajouté par le patient", self.author.display());
        }
        match self.declared_author.as_ref().filter(|d| !d.is_empty()) {
            Some(declared) => format!(
                "{} — auteur déclaré : {}",
                self.author.display(),
                declared.display()
            ),
            None => self.author.display(),
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
    /// Added by the patient from the documents page ([`crate::upload`]).
    Patient,
}

/// A document of a patient's vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocumentId,
    /// The name to show outside the hub; not stored, computed from `id` by the vault on every
    /// read (never empty in a document the vault hands out).
    #[serde(skip)]
    pub reference: DocumentRef,
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
    /// Who filed it: the authenticated sender's identity from the directory (DESIGN §4).
    pub author: Author,
    /// The author the document itself names, kept when it is not the sender (nor its
    /// organisation): shown as declared, never trusted (not for the visibility rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_author: Option<Author>,
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
    pub refs: &'a RefKey,
}

impl Records<'_> {
    pub fn get(&self, id: DocumentId) -> Result<Option<(Document, Vec<u8>)>> {
        match self.store.kv().get(DOCUMENTS, &id.0.to_be_bytes())? {
            Some(raw) => {
                let mut doc: Document = open_record(self.store, "document", &raw)?;
                doc.reference = self.refs.reference(self.store, doc.id)?;
                Ok(Some((doc, raw)))
            }
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
        let mut doc = self.store.retry(id.0, || {
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
        })?;
        doc.reference = self.refs.reference(self.store, doc.id)?;
        Ok(doc)
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
