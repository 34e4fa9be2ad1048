//! Who sees what (DESIGN §4 "Vault visibility"), and the patient's and author's actions.
//!
//! For a viewer other than the patient, in this order:
//! 1. a professional the patient blocked sees nothing;
//! 2. the document's author sees it (recognised by address, or by RPPS in the author id, or
//!    as a member of the organisation whose mailbox filed it);
//! 3. non-professionals (organisation mailboxes, applications, other patients) see nothing
//!    else;
//! 4. a professional without a care relationship with the patient ([`crate::care`]) sees
//!    nothing else;
//! 5. the [`crate::AccessMatrix`] must allow its profession and specialty the document's
//!    category;
//! 6. a masked document is seen by no one else but the patient's referring doctor (an
//!    emergency access does not open it).
//!
//! The patient sees its documents once released (`visible_to_patient`). Every read by anyone
//! but the patient, and every refused read, is written to the audit chain with its ground.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use mshub_directory::{Account, AccountKind, Address, Profession};
use mshub_store::{AccountId, AuditEvent, AuditRecord, Batch, Commit, Tree};

use crate::care::{professional_line, Relationship, Standing};
use crate::document::{open_record, seal_record};
use crate::filing::document_line;
use crate::notify::notify;
use crate::{Category, Denial, Document, DocumentId, Result, Vault, VaultError};

/// patient id → sealed [`PatientSettings`].
pub(crate) const SETTINGS: Tree = Tree("vault-patient-settings");
/// patient ‖ professional id → unix time of the professional's first read.
const FIRST_ACCESS: Tree = Tree("vault-first-access");

/// A patient's choices about its vault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientSettings {
    /// Médecin traitant: sees masked documents.
    pub referring_doctor: Option<Address>,
    /// Since when (unix time); `None` for a choice recorded before dates were kept and not
    /// found in the audit chain.
    #[serde(default)]
    pub referring_since: Option<i64>,
    /// The patient forbids emergency access ("bris de glace") to the space.
    #[serde(default)]
    pub emergency_forbidden: bool,
    /// Professionals who see none of the patient's documents.
    pub blocked: BTreeSet<Address>,
    /// Which notices the patient receives in its inbox.
    #[serde(default)]
    pub notices: Notices,
}

/// The patient's notification preferences. A failure to file is always announced: it is the
/// only way the patient learns that a document it expects is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notices {
    /// A new document was filed or released.
    pub new_document: bool,
    /// A professional read one of the patient's documents for the first time.
    pub first_access: bool,
}

impl Default for Notices {
    fn default() -> Self {
        Self {
            new_document: true,
            first_access: true,
        }
    }
}

/// Why a viewer may see a document (recorded in the audit chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ground {
    Patient,
    Author,
    ReferringDoctor,
    /// A care relationship, within what the profession and specialty see.
    Care {
        relationship: Relationship,
        profession: Profession,
        category: Category,
    },
}

impl std::fmt::Display for Ground {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ground::Patient => write!(f, "patient"),
            Ground::Author => write!(f, "author"),
            Ground::ReferringDoctor => write!(f, "referring-doctor"),
            Ground::Care {
                relationship,
                profession,
                category,
            } => write!(
                f,
                "care:{} matrix:{}×{}",
                relationship.name(),
                profession.name(),
                category.name()
            ),
        }
    }
}

fn is_author(viewer: &Account, doc: &Document) -> bool {
    if doc.author.address.as_ref() == Some(&viewer.address) {
        return true;
    }
    // IdNat_PS: an RPPS is given as "8" followed by the 11-digit number.
    match (&viewer.kind, &doc.author.person_id) {
        (AccountKind::Professional { rpps, .. }, Some(id)) => {
            id == rpps.as_str() || id.strip_prefix('8') == Some(rpps.as_str())
        }
        _ => false,
    }
}

impl Vault {
    /// The viewer wrote the document: it is its author (the authenticated sender that filed
    /// it), or a member of the organisation whose mailbox filed it (a lab reads the results
    /// its system sent).
    fn is_author(&self, viewer: &Account, doc: &Document) -> bool {
        // Only people author: an organisation's mailbox (a system) or a patient reads through
        // no author ground.
        if !matches!(viewer.kind, AccountKind::Professional { .. }) {
            return false;
        }
        is_author(viewer, doc)
            || doc.author.address.as_ref().is_some_and(|a| {
                matches!(
                    self.directory.account_by_address(a),
                    Ok(Some(Account {
                        kind: AccountKind::Organisation { ref members, .. },
                        ..
                    })) if members.contains(&viewer.address)
                )
            })
    }

    pub fn patient_settings(&self, patient: AccountId) -> Result<PatientSettings> {
        match self.store.kv().get(SETTINGS, &patient.to_key())? {
            Some(raw) => Ok(open_record(&self.store, "vault settings", &raw)?),
            None => Ok(PatientSettings::default()),
        }
    }

    pub(crate) fn update_settings(
        &self,
        patient: &Account,
        action: &str,
        subject: &str,
        change: impl Fn(&mut PatientSettings),
    ) -> Result<()> {
        if !patient.kind.is_patient() {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        let key = patient.id.to_key();
        self.store.retry(patient.id.0, || {
            let raw = self.store.kv().get(SETTINGS, &key)?;
            let mut settings: PatientSettings = match &raw {
                Some(r) => open_record(&self.store, "vault settings", r)?,
                None => PatientSettings::default(),
            };
            change(&mut settings);
            let mut batch = Batch::new();
            batch.check(SETTINGS, key, raw);
            batch.put(
                SETTINGS,
                key,
                seal_record(&self.store, patient.id, &settings)?,
            );
            Ok((batch, ()))
        })?;
        self.store.audit(
            AuditEvent::new(patient.address.as_str(), action, subject)
                .with_detail(format!("patient:{}", patient.id)),
        )?;
        Ok(())
    }

    /// Sets (or clears) the patient's referring doctor (médecin traitant).
    pub fn set_referring_doctor(&self, patient: &Account, doctor: Option<&Address>) -> Result<()> {
        let subject = doctor.map_or("none".to_string(), |d| d.to_string());
        let now = mshub_store::now();
        self.update_settings(patient, "vault.referring-doctor", &subject, |s| {
            if s.referring_doctor.as_ref() != doctor {
                s.referring_since = doctor.map(|_| now);
            }
            s.referring_doctor = doctor.cloned();
        })
    }

    /// Sets which notices the patient receives.
    pub fn set_notices(&self, patient: &Account, notices: Notices) -> Result<()> {
        let subject = format!(
            "new-document:{} first-access:{}",
            notices.new_document, notices.first_access
        );
        self.update_settings(patient, "vault.notices", &subject, |s| {
            s.notices = notices;
        })
    }

    pub fn block_professional(&self, patient: &Account, professional: &Address) -> Result<()> {
        self.update_settings(patient, "vault.block", professional.as_str(), |s| {
            s.blocked.insert(professional.clone());
        })
    }

    pub fn unblock_professional(&self, patient: &Account, professional: &Address) -> Result<()> {
        self.update_settings(patient, "vault.unblock", professional.as_str(), |s| {
            s.blocked.remove(professional);
        })
    }

    /// Whether `viewer` may see `doc`, and on what ground, given the patient's settings and the
    /// viewer's standing with the patient ([`Vault::standing`]). Deleted documents are seen by
    /// no one.
    pub fn access(
        &self,
        viewer: &Account,
        doc: &Document,
        settings: &PatientSettings,
        standing: Option<&Standing>,
    ) -> Result<Ground, Denial> {
        if viewer.id == doc.patient {
            return if doc.visible_to_patient {
                Ok(Ground::Patient)
            } else {
                Err(Denial::NotYetVisible)
            };
        }
        if settings.blocked.contains(&viewer.address) {
            return Err(Denial::Blocked);
        }
        if self.is_author(viewer, doc) {
            return Ok(Ground::Author);
        }
        let AccountKind::Professional {
            profession,
            specialty,
            ..
        } = &viewer.kind
        else {
            return Err(Denial::NotAProfessional);
        };
        let Some(standing) = standing else {
            return Err(Denial::NoRelationship);
        };
        // Masking narrows what the table allows, never widens it: a médecin traitant whose
        // specialty does not see a category does not see it masked either.
        if !self
            .access
            .allows_with(*profession, specialty, doc.category)
        {
            return Err(Denial::Matrix);
        }
        if doc.masked {
            return if standing.relationship == Relationship::ReferringDoctor {
                Ok(Ground::ReferringDoctor)
            } else {
                Err(Denial::Masked)
            };
        }
        Ok(Ground::Care {
            relationship: standing.relationship,
            profession: *profession,
            category: doc.category,
        })
    }

    /// The settings of `patient` and the standing of `viewer` with them, for [`Vault::access`].
    fn viewing(
        &self,
        patient: AccountId,
        viewer: &Account,
    ) -> Result<(PatientSettings, Option<Standing>)> {
        let settings = self.patient_settings(patient)?;
        let standing = if viewer.id == patient || settings.blocked.contains(&viewer.address) {
            None
        } else {
            self.standing(patient, viewer, &settings, mshub_store::now())?
        };
        Ok((settings, standing))
    }

    /// The patient's own documents: released and not deleted, in filing order.
    pub fn documents_for_patient(&self, patient: &Account) -> Result<Vec<Document>> {
        if !patient.kind.is_patient() {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        Ok(self
            .records()
            .of_patient(patient.id)?
            .into_iter()
            .filter(|d| !d.deleted && d.visible_to_patient)
            .collect())
    }

    /// The documents of `patient` that `professional` may see. Listing is not a read: only
    /// [`Vault::read_document`] is audited. A professional the patient blocked, or with neither
    /// a care relationship nor a document of its own to see, is refused (and that is audited).
    pub fn documents_for_professional(
        &self,
        patient: &Account,
        professional: &Account,
    ) -> Result<Vec<Document>> {
        if !patient.kind.is_patient() {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        let (settings, standing) = self.viewing(patient.id, professional)?;
        let refuse = |denial: Denial| -> Result<Vec<Document>> {
            self.store.audit(
                AuditEvent::new(
                    professional.address.as_str(),
                    "document.list.denied",
                    "documents",
                )
                .with_detail(format!(
                    "patient:{} ground:{}",
                    patient.id,
                    denial.code()
                )),
            )?;
            Err(VaultError::Refused(denial))
        };
        if settings.blocked.contains(&professional.address) {
            return refuse(Denial::Blocked);
        }
        let all = self.records().of_patient(patient.id)?;
        let seen: Vec<Document> = all
            .into_iter()
            .filter(|d| !d.deleted)
            .filter(|d| {
                self.access(professional, d, &settings, standing.as_ref())
                    .is_ok()
            })
            .collect();
        if standing.is_none() && seen.is_empty() {
            return refuse(
                if matches!(professional.kind, AccountKind::Professional { .. }) {
                    Denial::NoRelationship
                } else {
                    Denial::NotAProfessional
                },
            );
        }
        Ok(seen)
    }

    /// The original bytes of a document, if `viewer` may see them. Audited for everyone but
    /// the patient, refusals included; the patient is notified of each professional's first
    /// read.
    pub fn read_document(&self, viewer: &Account, id: DocumentId) -> Result<Vec<u8>> {
        let doc = self.checked_read(viewer, id, "original")?;
        let blob = doc.blob.ok_or(VaultError::Deleted(id))?;
        Ok(self.store.read_blob(doc.patient, blob)?)
    }

    /// The readable rendering of a document (CDA header and narrative), with the same rules
    /// and audit as [`Vault::read_document`]. `None` for documents without one (PDF, images).
    pub fn read_rendering(&self, viewer: &Account, id: DocumentId) -> Result<Option<String>> {
        let doc = self.checked_read(viewer, id, "rendering")?;
        match doc.rendering {
            Some(blob) => {
                let bytes = self.store.read_blob(doc.patient, blob)?;
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            None => Ok(None),
        }
    }

    pub(crate) fn checked_read(
        &self,
        viewer: &Account,
        id: DocumentId,
        what: &str,
    ) -> Result<Document> {
        let doc = self.document(id)?;
        let audit = |action: &str, detail: String| {
            self.store.audit(
                AuditEvent::new(viewer.address.as_str(), action, format!("document:{id}"))
                    .with_detail(format!("patient:{} {detail}", doc.patient)),
            )
        };
        if doc.deleted {
            if viewer.id != doc.patient {
                audit("document.read.denied", "ground:deleted".into())?;
            }
            return Err(VaultError::Deleted(id));
        }
        let (settings, standing) = self.viewing(doc.patient, viewer)?;
        match self.access(viewer, &doc, &settings, standing.as_ref()) {
            Ok(Ground::Patient) => Ok(doc),
            Ok(ground) => {
                let reason = match (&ground, standing.as_ref().and_then(|s| s.reason.as_ref())) {
                    (
                        Ground::Care {
                            relationship: Relationship::Emergency,
                            ..
                        },
                        Some(reason),
                    ) => format!(" reason:{reason}"),
                    _ => String::new(),
                };
                audit(
                    "document.read",
                    format!("ground:{ground} part:{what}{reason}"),
                )?;
                // The read is audited; a notice that cannot be written must not refuse it.
                if let Err(e) = self.first_access(viewer, &doc) {
                    tracing::warn!(error = %e, document = %id, "vault: first-access notice failed");
                }
                Ok(doc)
            }
            Err(denial) => {
                if viewer.id != doc.patient {
                    audit("document.read.denied", format!("ground:{}", denial.code()))?;
                }
                Err(VaultError::Denied {
                    document: id,
                    denial,
                })
            }
        }
    }

    /// Notifies the patient the first time a professional reads one of its documents.
    fn first_access(&self, viewer: &Account, doc: &Document) -> Result<()> {
        let mut key = doc.patient.to_key().to_vec();
        key.extend_from_slice(&viewer.id.to_key());
        let mut batch = Batch::new();
        batch.check(FIRST_ACCESS, key.clone(), None);
        batch.put(FIRST_ACCESS, key, mshub_store::now().to_be_bytes());
        if self.store.kv().commit(&batch)? == Commit::Conflict {
            return Ok(());
        }
        let Some(patient) = self.directory.account(doc.patient)? else {
            return Ok(());
        };
        if !self.patient_settings(patient.id)?.notices.first_access {
            return Ok(());
        }
        let who = professional_line(viewer);
        let body = format!(
            "Bonjour,\n\n{who} a consulté pour la première fois un document de votre coffre-fort :\n\n{}\n\
             Vous retrouvez chaque consultation dans l'historique des accès de votre espace. \
             Vous pouvez masquer un document ou bloquer un professionnel à tout moment.\n",
            document_line(doc)
        );
        notify(
            &self.store,
            self.directory.hub_domain().as_str(),
            &patient,
            "Un professionnel a consulté vos documents",
            &body,
        )
    }

    fn patient_action(&self, patient: &Account, id: DocumentId) -> Result<Document> {
        let doc = self.document(id)?;
        if doc.patient != patient.id {
            self.store.audit(
                AuditEvent::new(
                    patient.address.as_str(),
                    "document.denied",
                    format!("document:{id}"),
                )
                .with_detail(format!("patient:{} ground:not-the-patient", doc.patient)),
            )?;
            return Err(VaultError::Denied {
                document: id,
                denial: Denial::NotThePatient,
            });
        }
        if doc.deleted {
            return Err(VaultError::Deleted(id));
        }
        Ok(doc)
    }

    fn audit_action(&self, actor: &Account, action: &str, doc: &Document) -> Result<()> {
        self.store.audit(
            AuditEvent::new(
                actor.address.as_str(),
                action,
                format!("document:{}", doc.id),
            )
            .with_detail(format!("patient:{}", doc.patient)),
        )?;
        Ok(())
    }

    /// The patient hides a document from professionals (but its author and the referring
    /// doctor).
    pub fn mask(&self, patient: &Account, id: DocumentId) -> Result<()> {
        let doc = self.patient_action(patient, id)?;
        self.records().update(id, |d| d.masked = true)?;
        self.audit_action(patient, "document.mask", &doc)
    }

    pub fn unmask(&self, patient: &Account, id: DocumentId) -> Result<()> {
        let doc = self.patient_action(patient, id)?;
        self.records().update(id, |d| d.masked = false)?;
        self.audit_action(patient, "document.unmask", &doc)
    }

    /// The patient sets the type of a document (typically one "à classer"): a code of the
    /// table only.
    pub fn reclassify(&self, patient: &Account, id: DocumentId, code: &str) -> Result<Document> {
        let doc = self.patient_action(patient, id)?;
        let new_type = self
            .types
            .get(code)
            .cloned()
            .ok_or_else(|| VaultError::UnknownDocumentType(code.to_string()))?;
        let updated = self.records().update(id, |d| {
            d.type_code = new_type.code.clone();
            d.type_label = new_type.label.clone();
            d.category = new_type.category;
        })?;
        self.store.audit(
            AuditEvent::new(
                patient.address.as_str(),
                "document.reclassify",
                format!("document:{id}"),
            )
            .with_detail(format!("patient:{} type:{}", doc.patient, new_type.code)),
        )?;
        Ok(updated)
    }

    /// The author makes a document visible to the patient; the patient is notified.
    pub fn release(&self, author: &Account, id: DocumentId) -> Result<()> {
        let doc = self.document(id)?;
        if doc.deleted {
            return Err(VaultError::Deleted(id));
        }
        if !self.is_author(author, &doc) {
            self.store.audit(
                AuditEvent::new(
                    author.address.as_str(),
                    "document.denied",
                    format!("document:{id}"),
                )
                .with_detail(format!("patient:{} ground:not-the-author", doc.patient)),
            )?;
            return Err(VaultError::Denied {
                document: id,
                denial: Denial::NotTheAuthor,
            });
        }
        if doc.visible_to_patient {
            return Ok(());
        }
        let doc = self.records().update(id, |d| d.visible_to_patient = true)?;
        self.audit_action(author, "document.release", &doc)?;
        if let Some(patient) = self.directory.account(doc.patient)?.filter(|p| {
            self.patient_settings(p.id)
                .is_ok_and(|s| s.notices.new_document)
        }) {
            let body = format!(
                "Bonjour,\n\nUn nouveau document est disponible dans votre coffre-fort de documents de santé :\n\n{}\n",
                document_line(&doc)
            );
            notify(
                &self.store,
                self.directory.hub_domain().as_str(),
                &patient,
                "Nouveau document dans votre espace santé",
                &body,
            )?;
        }
        Ok(())
    }

    /// The patient deletes a document: its content is removed for good; the record stays,
    /// marked deleted, and the deletion is in the audit chain.
    pub fn delete(&self, patient: &Account, id: DocumentId) -> Result<()> {
        let doc = self.patient_action(patient, id)?;
        self.records().update(id, |d| {
            d.deleted = true;
            d.blob = None;
            d.rendering = None;
        })?;
        for blob in [doc.blob, doc.rendering].into_iter().flatten() {
            self.store.delete_blob(blob)?;
        }
        self.audit_action(patient, "document.delete", &doc)
    }

    /// The audit records about a patient's vault (filings, reads, refusals, changes), oldest
    /// first: the patient's access history. Walks the whole chain (an index per patient is
    /// future work).
    pub fn access_history(&self, patient: AccountId) -> Result<Vec<AuditRecord>> {
        let tag = format!("patient:{patient}");
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.audit_records(after, 1024)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(
                page.into_iter()
                    .filter(|r| {
                        r.event.action.starts_with("document.")
                            || r.event.action.starts_with("vault.")
                    })
                    .filter(|r| {
                        r.event.detail == tag || r.event.detail.starts_with(&format!("{tag} "))
                    }),
            );
        }
        Ok(out)
    }
}
