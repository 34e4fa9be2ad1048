//! Filing: from a message delivered to a patient to documents in the patient's vault.
//!
//! Per attachment: an IHE XDM zip (by name `IHE_XDM.ZIP` or by an `IHE_XDM/` folder inside),
//! a CDA R2 document (XML with a `ClinicalDocument` root), a PDF or an image. Each attachment
//! is filed whole or not at all, and its outcome is reported in the [`Filing`].
//!
//! DICOM files, attached or inside an XDM archive, are set aside while the attachments are
//! walked, then grouped by study ([`crate::dicom`]): one document per study of the message.
//! A DICOM file refused (truncated, hostile, over a limit) is reported on its own; the rest of
//! its study, and the other attachments, are still filed.
//!
//! Filing is idempotent per (patient, message): the delivery pipeline runs its filers again
//! after a crash, and the second run returns the first run's [`Filing`] without filing twice.
//! (A crash between filing documents and recording the filing can still file them twice.)

use std::collections::BTreeMap;

use mail_parser::{MessageParser, MimeHeaders};
use mshub_directory::{Account, AccountKind, Address, Ins};
use mshub_store::{AuditEvent, Batch, Tree};

use crate::cda::{self, Cda};
use crate::dicom::{self, NewStudy, StudyBuilder};
use crate::document::{open_record, seal_record, sha1_hex, Author, Document, DocumentId, Source};
use crate::notify::notify;
use crate::xdm::{self, XdmDocument};
use crate::{AttachmentFiling, AttachmentOutcome, Category, Filing, Rejection, Result, Vault};

/// patient ‖ SHA-1 of the raw message → sealed [`Filing`].
const FILED_MESSAGES: Tree = Tree("vault-filed-message");

/// The document type of a DICOM study (LOINC 18726-0, "Radiology studies (set)").
pub const STUDY_TYPE: &str = "18726-0";

/// A DICOM file set aside while the attachments are walked.
struct PendingDicom {
    /// Index of the attachment it came with in the [`Filing`].
    attachment: usize,
    /// The attachment's name, or `archive/entry` for a file of an XDM archive.
    name: String,
    bytes: Vec<u8>,
    /// Whether it is the attachment itself (else a file inside an archive).
    whole: bool,
    masked: bool,
    visible_to_patient: bool,
}

/// A DICOM file of an XDM archive: its URI, content, and whether its entry is masked / visible.
type XdmDicom = (String, Vec<u8>, bool, bool);

/// A header the sender may set to give the type (LOINC code) of attached PDFs and images.
pub const TYPE_HINT_HEADER: &str = "X-Mshub-Document-Type";

/// A document the hub itself made for a patient ([`Vault::file_generated`]).
pub struct GeneratedDocument {
    pub content: Vec<u8>,
    pub title: String,
    /// LOINC code of the document type (e.g. `57833-6`, a prescription).
    pub type_code: String,
    pub mime: String,
    pub file_name: String,
    pub author: Author,
}

/// A document ready to be stored.
pub(crate) struct NewDocument {
    pub(crate) content: Vec<u8>,
    pub(crate) rendering: Option<String>,
    pub(crate) type_code: Option<String>,
    pub(crate) class_code: Option<String>,
    pub(crate) format_code: Option<String>,
    pub(crate) confidentiality: Vec<String>,
    pub(crate) title: String,
    pub(crate) author: Author,
    pub(crate) created: Option<String>,
    pub(crate) service_start: Option<String>,
    pub(crate) service_stop: Option<String>,
    pub(crate) mime: String,
    pub(crate) file_name: Option<String>,
    pub(crate) source: Source,
    pub(crate) masked: bool,
    pub(crate) visible_to_patient: bool,
    pub(crate) study: Option<dicom::Study>,
}

/// A LOINC code's shape: up to 7 digits, a hyphen, a check digit (e.g. `11502-2`).
pub fn is_loinc(code: &str) -> bool {
    code.split_once('-').is_some_and(|(number, check)| {
        (1..=7).contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_digit())
            && check.len() == 1
            && check.bytes().all(|b| b.is_ascii_digit())
    })
}

/// What kind of attachment a MIME part is, if the vault files it.
enum Kind {
    Xdm,
    Dicom,
    Cda,
    Plain,
}

fn kind_of(name: &str, mime: &str, bytes: &[u8]) -> Option<Kind> {
    let lower = name.to_ascii_lowercase();
    if lower == "ihe_xdm.zip" || xdm::looks_like_xdm(bytes) {
        return Some(Kind::Xdm);
    }
    if dicom::looks_like_dicom(name, mime, bytes) {
        return Some(Kind::Dicom);
    }
    let xml = matches!(
        mime,
        "application/xml" | "text/xml" | "application/hl7-v3+xml" | "application/hl7-cda+xml"
    ) || lower.ends_with(".xml");
    if xml && cda::looks_like_cda(bytes) {
        return Some(Kind::Cda);
    }
    if mime == "application/pdf"
        || mime.starts_with("image/")
        || (bytes.starts_with(b"%PDF-") && (lower.ends_with(".pdf") || mime.is_empty()))
    {
        return Some(Kind::Plain);
    }
    None
}

/// Which confidentiality codes hide a document: the French CI-SIS values (JDV_J07 /
/// TRE_A07-StatusVisibiliteDocument) `MASQUE_PS` (masked from professionals) and
/// `INVISIBLE_PATIENT` (not visible to the patient until released).
fn visibility(codes: &[String]) -> (bool, bool) {
    let masked = codes.iter().any(|c| c == "MASQUE_PS");
    let invisible = codes.iter().any(|c| c == "INVISIBLE_PATIENT");
    (masked, !invisible)
}

impl Vault {
    /// Files the attachments of a message delivered to `recipient`. Never fails as a whole:
    /// each attachment's outcome is in the returned [`Filing`]; a message to anyone but a
    /// patient, or without anything to file, gives an empty one.
    pub fn file_message(
        &self,
        recipient: &Account,
        sender: Option<&Address>,
        raw_message: &[u8],
    ) -> Filing {
        let AccountKind::Patient { ins, .. } = &recipient.kind else {
            return Filing::default();
        };
        if !may_carry_documents(raw_message) {
            return Filing::default();
        }
        let mut key = recipient.id.to_key().to_vec();
        key.extend_from_slice(sha1_hex(raw_message).as_bytes());
        match self.store.kv().get(FILED_MESSAGES, &key) {
            Ok(Some(raw)) => {
                if let Ok(previous) = open_record::<Filing>(&self.store, "filing", &raw) {
                    return previous;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "vault: cannot check whether a message was filed");
            }
        }
        let Some(message) = MessageParser::default().parse(raw_message) else {
            return Filing::default();
        };
        let hint = message
            .header_raw(TYPE_HINT_HEADER)
            .map(|h| h.trim().to_string())
            .filter(|h| is_loinc(h));
        let mut filing = Filing::default();
        let mut filed = Vec::new();
        let mut pending = Vec::new();
        for (n, part) in message.attachments().enumerate() {
            if part.is_message() {
                continue;
            }
            let bytes = part.contents();
            let mime = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                    None => ct.ctype().to_ascii_lowercase(),
                })
                .unwrap_or_default();
            let name = part
                .attachment_name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("pièce jointe {}", n + 1));
            let Some(kind) = kind_of(&name, &mime, bytes) else {
                continue;
            };
            let attachment = filing.attachments.len();
            let result = match kind {
                Kind::Dicom => {
                    pending.push(PendingDicom {
                        attachment,
                        name: name.clone(),
                        bytes: bytes.to_vec(),
                        whole: true,
                        masked: false,
                        visible_to_patient: true,
                    });
                    Ok(Vec::new())
                }
                Kind::Xdm => self
                    .file_xdm(recipient, ins, sender, bytes)
                    .map(|(docs, dicoms)| {
                        pending.extend(dicoms.into_iter().map(|(uri, bytes, masked, visible)| {
                            PendingDicom {
                                attachment,
                                name: format!("{name}/{uri}"),
                                bytes,
                                whole: false,
                                masked,
                                visible_to_patient: visible,
                            }
                        }));
                        docs
                    }),
                Kind::Cda => self.file_cda(recipient, ins, sender, bytes, &name),
                Kind::Plain => self
                    .store_document(
                        recipient,
                        sender,
                        NewDocument {
                            content: bytes.to_vec(),
                            rendering: None,
                            type_code: hint.clone(),
                            class_code: None,
                            format_code: None,
                            confidentiality: Vec::new(),
                            title: name.clone(),
                            author: Author {
                                address: sender.cloned(),
                                ..Author::default()
                            },
                            created: None,
                            service_start: None,
                            service_stop: None,
                            mime: if mime.is_empty() {
                                "application/pdf".into()
                            } else {
                                mime.clone()
                            },
                            file_name: part.attachment_name().map(str::to_string),
                            source: Source::Attachment,
                            masked: false,
                            visible_to_patient: true,
                            study: None,
                        },
                    )
                    .map(|d| vec![d]),
            };
            let outcome = match result {
                Ok(docs) => {
                    let ids = docs.iter().map(|d| d.id).collect();
                    filed.extend(docs);
                    AttachmentOutcome::Filed { documents: ids }
                }
                Err(rejection) => {
                    tracing::info!(attachment = %name, %rejection, "vault: attachment refused");
                    AttachmentOutcome::Failed { rejection }
                }
            };
            filing.attachments.push(AttachmentFiling { name, outcome });
        }
        if !pending.is_empty() {
            self.file_dicom(recipient, sender, pending, &mut filing, &mut filed);
        }
        if filing.attachments.is_empty() {
            return filing;
        }
        if let Err(e) = self.notify_filed(recipient, &filed, &filing) {
            tracing::warn!(error = %e, "vault: the patient could not be notified of new documents");
        }
        match seal_record(&self.store, recipient.id, &filing) {
            Ok(sealed) => {
                let mut batch = Batch::new();
                batch.put(FILED_MESSAGES, key, sealed);
                if let Err(e) = self.store.kv().commit(&batch) {
                    tracing::warn!(error = %e, "vault: cannot record the filing");
                }
            }
            Err(e) => tracing::warn!(error = %e, "vault: cannot record the filing"),
        }
        filing
    }

    /// The recipient must be the patient the document is about; a document about another
    /// patient is never filed through someone else's message.
    fn check_patient(&self, recipient_ins: &Ins, document_ins: &Ins) -> Result<(), Rejection> {
        if document_ins == recipient_ins {
            return Ok(());
        }
        let address = self.directory.patient_address(document_ins);
        match self.directory.account_by_address(&address) {
            Ok(None) => Err(Rejection::UnknownPatient {
                ins: document_ins.to_string(),
            }),
            Ok(Some(_)) => Err(Rejection::InsMismatch {
                recipient: recipient_ins.to_string(),
                document: document_ins.to_string(),
            }),
            Err(e) => Err(Rejection::Internal {
                detail: e.to_string(),
            }),
        }
    }

    fn file_xdm(
        &self,
        recipient: &Account,
        ins: &Ins,
        sender: Option<&Address>,
        bytes: &[u8],
    ) -> Result<(Vec<Document>, Vec<XdmDicom>), Rejection> {
        let documents = xdm::read_xdm(bytes, &self.limits)?;
        for d in &documents {
            let document_ins = xdm::parse_patient_id(&d.entry.patient_id)?;
            self.check_patient(ins, &document_ins)?;
            // A CDA inside names its patient too: it must be the same one.
            if cda::looks_like_cda(&d.content) {
                if let Ok(Cda {
                    patient_ins: Some(cda_ins),
                    ..
                }) = cda::parse_cda(&d.content, &d.entry.uri)
                {
                    self.check_patient(ins, &cda_ins)?;
                }
            }
        }
        let mut filed = Vec::new();
        let mut dicoms = Vec::new();
        for XdmDocument { entry, content, .. } in documents {
            if dicom::looks_like_dicom(&entry.uri, &entry.mime, &content) {
                let codes: Vec<String> = entry
                    .confidentiality
                    .iter()
                    .map(|c| c.code.clone())
                    .collect();
                let (masked, visible) = visibility(&codes);
                dicoms.push((entry.uri.clone(), content, masked, visible));
                continue;
            }
            let cda = (entry.mime.contains("xml") && cda::looks_like_cda(&content))
                .then(|| cda::parse_cda(&content, &entry.uri).ok())
                .flatten();
            let mut codes: Vec<String> = entry
                .confidentiality
                .iter()
                .map(|c| c.code.clone())
                .collect();
            if let Some(c) = &cda {
                codes.extend(c.confidentiality.iter().cloned());
            }
            let (masked, visible_to_patient) = visibility(&codes);
            let mut author = entry.author.clone();
            if author.address.is_none() {
                author.address = cda
                    .as_ref()
                    .and_then(|c| c.author.address.clone())
                    .or_else(|| sender.cloned());
            }
            let title = if !entry.title.is_empty() {
                entry.title.clone()
            } else {
                cda.as_ref().map(|c| c.title.clone()).unwrap_or_default()
            };
            filed.push(
                self.store_document(
                    recipient,
                    sender,
                    NewDocument {
                        content,
                        rendering: cda.as_ref().map(|c| c.render(&self.types)),
                        type_code: entry
                            .type_code
                            .as_ref()
                            .map(|c| c.code.clone())
                            .or_else(|| cda.as_ref().and_then(|c| c.code.clone())),
                        class_code: entry.class_code.as_ref().map(|c| c.code.clone()),
                        format_code: entry.format_code.as_ref().map(|c| c.code.clone()),
                        confidentiality: codes,
                        title,
                        author,
                        created: entry.creation_time.clone(),
                        service_start: entry.service_start.clone(),
                        service_stop: entry.service_stop.clone(),
                        mime: entry.mime.clone(),
                        file_name: Some(entry.uri.clone()),
                        source: Source::Xdm,
                        masked,
                        visible_to_patient,
                        study: None,
                    },
                )?,
            );
        }
        Ok((filed, dicoms))
    }

    /// Groups the message's DICOM files by study and files each study; patches the outcome
    /// of the attachments they came with.
    fn file_dicom(
        &self,
        recipient: &Account,
        sender: Option<&Address>,
        pending: Vec<PendingDicom>,
        filing: &mut Filing,
        filed: &mut Vec<Document>,
    ) {
        let mut builder = StudyBuilder::new(&self.dicom_limits);
        // study UID → (attachments, masked, visible)
        let mut members: BTreeMap<String, (Vec<usize>, bool, bool)> = BTreeMap::new();
        let mut refused_files = Vec::new();
        for p in pending {
            match builder.add(&p.name, &p.bytes) {
                Ok(Some(uid)) => {
                    let m = members.entry(uid).or_insert((Vec::new(), false, true));
                    if !m.0.contains(&p.attachment) {
                        m.0.push(p.attachment);
                    }
                    m.1 |= p.masked;
                    m.2 &= p.visible_to_patient;
                }
                Ok(None) => {}
                Err(rejection) => {
                    tracing::info!(attachment = %p.name, %rejection, "vault: DICOM file refused");
                    if p.whole {
                        filing.attachments[p.attachment].outcome =
                            AttachmentOutcome::Failed { rejection };
                    } else {
                        refused_files.push(AttachmentFiling {
                            name: p.name,
                            outcome: AttachmentOutcome::Failed { rejection },
                        });
                    }
                }
            }
        }
        for (uid, new) in builder.finish() {
            let Some((attachments, masked, visible)) = members.remove(&uid) else {
                continue;
            };
            let outcome = self.store_study(recipient, sender, new, masked, visible);
            for a in attachments {
                let entry = &mut filing.attachments[a].outcome;
                match (&outcome, entry) {
                    (Ok(doc), AttachmentOutcome::Filed { documents }) => {
                        if !documents.contains(&doc.id) {
                            documents.push(doc.id);
                        }
                    }
                    (Err(rejection), entry) => {
                        *entry = AttachmentOutcome::Failed {
                            rejection: rejection.clone(),
                        };
                    }
                    (Ok(_), AttachmentOutcome::Failed { .. }) => {}
                }
            }
            if let Ok(doc) = outcome {
                filed.push(doc);
            }
        }
        filing.attachments.extend(refused_files);
        // A DICOMDIR alone files nothing and refuses nothing: it is not reported.
        filing.attachments.retain(
            |a| !matches!(&a.outcome, AttachmentOutcome::Filed { documents } if documents.is_empty()),
        );
    }

    fn store_study(
        &self,
        recipient: &Account,
        sender: Option<&Address>,
        new: NewStudy,
        masked: bool,
        visible_to_patient: bool,
    ) -> Result<Document, Rejection> {
        let NewStudy { study, files } = new;
        let content = dicom::zip_files(&files).map_err(|e| Rejection::Internal {
            detail: format!("study archive: {e}"),
        })?;
        let mut modalities: Vec<&str> = Vec::new();
        for s in &study.series {
            if !s.modality.is_empty() && !modalities.contains(&s.modality.as_str()) {
                modalities.push(&s.modality);
            }
        }
        let title = study.description.clone().unwrap_or_else(|| {
            if modalities.is_empty() {
                "Examen d'imagerie".to_string()
            } else {
                format!("Examen d'imagerie ({})", modalities.join(", "))
            }
        });
        let created = study.date.as_ref().map(|d| {
            let time: String = study
                .time
                .as_deref()
                .unwrap_or("")
                .chars()
                .take_while(char::is_ascii_digit)
                .take(6)
                .collect();
            format!("{d}{time}")
        });
        let file_name = format!("imagerie-{}.zip", study.date.as_deref().unwrap_or("etude"));
        let doc = self.store_document(
            recipient,
            sender,
            NewDocument {
                content,
                rendering: None,
                type_code: Some(STUDY_TYPE.to_string()),
                class_code: None,
                format_code: None,
                confidentiality: Vec::new(),
                title,
                author: Author {
                    institution: study.institution.clone(),
                    address: sender.cloned(),
                    ..Author::default()
                },
                created,
                service_start: None,
                service_stop: None,
                mime: "application/zip".into(),
                file_name: Some(file_name),
                source: Source::Dicom,
                masked,
                visible_to_patient,
                study: Some(study),
            },
        )?;
        // Thumbnails now, while the files are at hand: the study page then decodes nothing.
        self.cache_thumbnails(&doc, &files);
        Ok(doc)
    }

    fn file_cda(
        &self,
        recipient: &Account,
        ins: &Ins,
        sender: Option<&Address>,
        bytes: &[u8],
        name: &str,
    ) -> Result<Vec<Document>, Rejection> {
        let cda: Cda = cda::parse_cda(bytes, name)?;
        if let Some(raw) = &cda.patient_id_raw {
            return Err(Rejection::BadPatientId {
                id: raw.clone(),
                detail: "recordTarget/patientRole/id is not a valid INS".into(),
            });
        }
        if let Some(document_ins) = &cda.patient_ins {
            self.check_patient(ins, document_ins)?;
        }
        let (masked, visible_to_patient) = visibility(&cda.confidentiality);
        let mut author = cda.author.clone();
        if author.address.is_none() {
            author.address = sender.cloned();
        }
        let doc = self.store_document(
            recipient,
            sender,
            NewDocument {
                content: bytes.to_vec(),
                rendering: Some(cda.render(&self.types)),
                type_code: cda.code.clone(),
                class_code: None,
                format_code: None,
                confidentiality: cda.confidentiality.clone(),
                title: cda.title.clone(),
                author,
                created: cda.effective_time.clone(),
                service_start: None,
                service_stop: None,
                mime: "text/xml".into(),
                file_name: Some(name.to_string()),
                source: Source::Cda,
                masked,
                visible_to_patient,
                study: None,
            },
        )?;
        Ok(vec![doc])
    }

    /// Files a document the hub made for a patient from a delivered message (the PDF copy of
    /// an e-prescription): sealed, typed by `type_code`, audited like any filed document.
    pub fn file_generated(
        &self,
        patient: &Account,
        sender: Option<&Address>,
        generated: GeneratedDocument,
    ) -> Result<Document> {
        self.store_document_inner(
            patient,
            sender,
            NewDocument {
                content: generated.content,
                rendering: None,
                type_code: Some(generated.type_code),
                class_code: None,
                format_code: None,
                confidentiality: Vec::new(),
                title: generated.title,
                author: generated.author,
                created: None,
                service_start: None,
                service_stop: None,
                mime: generated.mime,
                file_name: Some(generated.file_name),
                source: Source::Attachment,
                masked: false,
                visible_to_patient: true,
                study: None,
            },
        )
    }

    /// Seals the content (and rendering) to the patient, commits the record, audits it.
    fn store_document(
        &self,
        patient: &Account,
        sender: Option<&Address>,
        new: NewDocument,
    ) -> Result<Document, Rejection> {
        self.store_document_inner(patient, sender, new)
            .map_err(|e| Rejection::Internal {
                detail: e.to_string(),
            })
    }

    pub(crate) fn store_document_inner(
        &self,
        patient: &Account,
        sender: Option<&Address>,
        new: NewDocument,
    ) -> Result<Document> {
        let doc_type = self.types.classify(new.type_code.as_deref());
        let sender_account = match sender {
            Some(a) => self.directory.account_by_address(a)?,
            None => None,
        };
        let (author, declared_author) =
            authorship(sender, sender_account.as_ref(), new.author, |org| {
                self.directory.account_by_address(org).ok().flatten()
            });
        // DESIGN §4: who may keep a document from the patient follows the access table — a
        // professional of this hub whose profession sees the document's category — never the
        // document alone (its confidentiality codes are kept as given).
        let visible_to_patient = new.visible_to_patient
            || !sender_account.as_ref().is_some_and(|a| match &a.kind {
                AccountKind::Professional { profession, .. } => {
                    self.access.allows(*profession, doc_type.category)
                }
                _ => false,
            });
        // The number stays internal (a counter); the reference is what anyone outside sees.
        let id = DocumentId(self.store.next_counter("vault-document", 1)?);
        let reference = self.reference(id)?;
        // The sealed content and rendering commit in the record's own batch.
        let mut batch = Batch::new();
        let blob = self
            .store
            .put_blob_in(patient.id, &new.content, &mut batch)?;
        let rendering = match &new.rendering {
            Some(text) => Some(
                self.store
                    .put_blob_in(patient.id, text.as_bytes(), &mut batch)?,
            ),
            None => None,
        };
        let title = if new.title.trim().is_empty() {
            doc_type.label.clone()
        } else {
            new.title.trim().to_string()
        };
        let doc = Document {
            id,
            reference,
            patient: patient.id,
            blob: Some(blob),
            rendering,
            type_code: doc_type.code,
            type_label: doc_type.label,
            category: doc_type.category,
            class_code: new.class_code,
            format_code: new.format_code,
            confidentiality: new.confidentiality,
            title,
            author,
            declared_author,
            created: new.created,
            service_start: new.service_start,
            service_stop: new.service_stop,
            filed_at: mshub_store::now(),
            mime: new.mime,
            file_name: new.file_name,
            size: new.content.len() as u64,
            sha1: sha1_hex(&new.content),
            source: new.source,
            masked: new.masked,
            visible_to_patient,
            deleted: false,
            study: new.study,
        };
        self.records().insert(&doc, &mut batch)?;
        if self.store.kv().commit(&batch)? != mshub_store::Commit::Done {
            return Err(crate::VaultError::Data(format!(
                "document id {id} was already taken"
            )));
        }
        let source = match doc.source {
            Source::Xdm => "xdm",
            Source::Cda => "cda",
            Source::Attachment => "attachment",
            Source::Dicom => "dicom",
            Source::Patient => "patient",
        };
        self.store.audit(
            AuditEvent::new(
                sender.map_or("mta".to_string(), |s| s.to_string()),
                "document.file",
                format!("document:{id}"),
            )
            .with_detail(format!(
                "patient:{} type:{} source:{source}",
                patient.id,
                // Only codes of the table: a sender's free text never reaches the audit chain.
                if doc.category == Category::AClasser {
                    "unknown"
                } else {
                    &doc.type_code
                }
            )),
        )?;
        Ok(doc)
    }

    fn notify_filed(&self, patient: &Account, filed: &[Document], filing: &Filing) -> Result<()> {
        let wanted = self.patient_settings(patient.id)?.notices.new_document;
        let visible: Vec<&Document> = filed
            .iter()
            .filter(|d| wanted && d.visible_to_patient)
            .collect();
        let failures: Vec<(&str, &Rejection)> = filing.failures().collect();
        if visible.is_empty() && failures.is_empty() {
            return Ok(());
        }
        let mut body = String::from("Bonjour,\n\n");
        if !visible.is_empty() {
            body.push_str(if visible.len() == 1 {
                "Un nouveau document a été ajouté à votre coffre-fort de documents de santé :\n\n"
            } else {
                "De nouveaux documents ont été ajoutés à votre coffre-fort de documents de santé :\n\n"
            });
            for d in &visible {
                body.push_str(&document_line(d));
            }
            body.push('\n');
        }
        if !failures.is_empty() {
            body.push_str(
                "Certaines pièces jointes n'ont pas pu être classées (le message reste dans votre boîte) :\n\n",
            );
            for (name, rejection) in &failures {
                body.push_str(&format!("- {name} : {rejection}\n"));
            }
            body.push('\n');
        }
        body.push_str(
            "Vous pouvez consulter vos documents dans la rubrique Documents de votre messagerie.\n",
        );
        let subject = if visible.is_empty() {
            "Des documents n'ont pas pu être classés"
        } else if visible.len() == 1 {
            "Nouveau document dans votre espace santé"
        } else {
            "Nouveaux documents dans votre espace santé"
        };
        notify(
            &self.store,
            self.directory.hub_domain().as_str(),
            patient,
            subject,
            &body,
        )
    }
}

pub(crate) fn document_line(d: &Document) -> String {
    let category = if d.category == Category::AClasser {
        "à classer".to_string()
    } else {
        d.category.label_fr().to_string()
    };
    format!(
        "- {} : {} ({}) — {}\n",
        d.type_label,
        d.title,
        d.author_display(),
        category
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loinc_codes_are_recognised() {
        for good in ["11502-2", "1-8", "1234567-0"] {
            assert!(is_loinc(good), "{good}");
        }
        for bad in [
            "",
            "11502",
            "11502-22",
            "-2",
            "12345678-9",
            "a1502-2",
            "<script>",
        ] {
            assert!(!is_loinc(bad), "{bad}");
        }
    }

    #[test]
    fn attachments_are_recognised_by_name_type_and_content() {
        let kind = |name: &str, mime: &str, bytes: &[u8]| match kind_of(name, mime, bytes) {
            Some(Kind::Xdm) => "xdm",
            Some(Kind::Dicom) => "dicom",
            Some(Kind::Cda) => "cda",
            Some(Kind::Plain) => "plain",
            None => "none",
        };
        assert_eq!(kind("IHE_XDM.ZIP", "application/octet-stream", b"x"), "xdm");
        assert_eq!(
            kind("a.zip", "application/zip", b"PK\x03\x04..IHE_XDM/SUBSET01/"),
            "xdm"
        );
        assert_eq!(
            kind("a.zip", "application/zip", b"PK\x03\x04..other/"),
            "none"
        );
        assert_eq!(kind("cr.xml", "text/xml", b"<ClinicalDocument/>"), "cda");
        assert_eq!(kind("x.xml", "application/xml", b"<html/>"), "none");
        assert_eq!(kind("cr.pdf", "application/pdf", b"%PDF-1.4"), "plain");
        assert_eq!(
            kind("cr.pdf", "application/octet-stream", b"%PDF-1.4"),
            "plain"
        );
        assert_eq!(kind("photo.png", "image/png", b"\x89PNG"), "plain");
        assert_eq!(kind("note.txt", "text/plain", b"bonjour"), "none");
        assert_eq!(kind("IM0001", "application/dicom", b""), "dicom");
        assert_eq!(kind("scan.DCM", "application/octet-stream", b""), "dicom");
        let mut part10 = vec![0u8; 140];
        part10[128..132].copy_from_slice(b"DICM");
        assert_eq!(kind("image", "application/octet-stream", &part10), "dicom");
    }
}

/// Whether the message's own Content-Type allows a document at all: most mail to a patient is
/// plain text (no Content-Type, or `text/*`), and is then answered without hashing or parsing
/// the message. Multipart, `application/*`, `image/*` and XML bodies go on to the full parse.
pub fn may_carry_documents(raw: &[u8]) -> bool {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let header = &raw[..end];
    let mut lines = header.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if line.len() < 13 || !line[..13].eq_ignore_ascii_case(b"content-type:") {
            continue;
        }
        // The value, with its folded continuation lines (RFC 5322 §2.2.3).
        let mut value = line[13..].to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                value.extend_from_slice(next);
                lines.next();
            } else {
                break;
            }
        }
        let value = String::from_utf8_lossy(&value).trim().to_ascii_lowercase();
        return ["multipart/", "application/", "image/", "text/xml"]
            .iter()
            .any(|t| value.starts_with(t));
    }
    false
}

#[cfg(test)]
mod content_type_tests {
    use super::may_carry_documents;

    #[test]
    fn only_bodies_that_can_hold_a_document_go_to_the_parser() {
        assert!(!may_carry_documents(b"Subject: hi\r\n\r\nbody\r\n"));
        assert!(!may_carry_documents(
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
        ));
        assert!(may_carry_documents(
            b"Subject: x\r\nCONTENT-TYPE: Multipart/Mixed;\r\n boundary=\"b\"\r\n\r\n--b\r\n"
        ));
        assert!(may_carry_documents(
            b"Content-Type:\r\n application/pdf\r\n\r\n%PDF"
        ));
        assert!(may_carry_documents(
            b"Content-Type: text/xml\r\n\r\n<ClinicalDocument/>"
        ));
        // A "Content-Type:" in the body is not the message's.
        assert!(!may_carry_documents(
            b"Subject: x\r\n\r\nContent-Type: multipart/mixed\r\n"
        ));
    }
}

/// A filed document's author (DESIGN §4 "Only authenticated content is filed"): the
/// authenticated sender's identity from the directory (a peer operator's sender, unknown to the
/// directory, by its address). What the document declares completes it when it names that
/// sender (same address or RPPS) or an organisation the sender belongs to; anyone else is kept
/// apart as declared. Without a sender nothing is vouched for: everything is declared.
fn authorship(
    sender: Option<&Address>,
    account: Option<&Account>,
    declared: Author,
    organisation: impl Fn(&Address) -> Option<Account>,
) -> (Author, Option<Author>) {
    let declared = Some(declared).filter(|d| *d != Author::default());
    let Some(sender) = sender else {
        return (Author::default(), declared);
    };
    let mut identity = Author {
        address: Some(sender.clone()),
        ..Author::default()
    };
    if let Some(account) = account {
        match &account.kind {
            AccountKind::Professional { rpps, .. } => {
                identity.person = Some(account.kind.display_name());
                identity.person_id = Some(rpps.as_str().to_string());
            }
            AccountKind::Organisation { name, .. } | AccountKind::Application { name } => {
                identity.institution = Some(name.clone());
            }
            AccountKind::Patient { .. } => identity.person = Some(account.kind.display_name()),
        }
    }
    let Some(declared) = declared else {
        return (identity, None);
    };
    let same_address = declared.address.as_ref() == Some(sender);
    let its_organisation = declared.address.as_ref().is_some_and(|a| {
        organisation(a).is_some_and(|org| {
            matches!(&org.kind, AccountKind::Organisation { members, .. } if members.contains(sender))
        })
    });
    // IdNat_PS: an RPPS is given as "8" followed by the 11-digit number.
    let same_rpps = match (&declared.person_id, account.map(|a| &a.kind)) {
        (Some(id), Some(AccountKind::Professional { rpps, .. })) => {
            id == rpps.as_str() || id.strip_prefix('8') == Some(rpps.as_str())
        }
        _ => false,
    };
    if !(same_address || its_organisation || same_rpps) {
        return (identity, Some(declared));
    }
    // An organisation's mailbox vouches for the organisation, not for the person a document
    // names: that person stays declared. A peer operator's sender (not in the directory) is
    // known by its certified address, and what the document says of it completes it.
    let person_vouched = identity.person.is_some() || account.is_none();
    let author = Author {
        person: identity
            .person
            .or(declared.person.clone().filter(|_| person_vouched)),
        person_id: identity
            .person_id
            .or(declared.person_id.clone().filter(|_| person_vouched)),
        institution: identity.institution.or(declared.institution.clone()),
        address: identity.address,
    };
    // Whatever the document says that the author does not confirm stays declared.
    let differs = |claim: &Option<String>, known: &Option<String>| {
        claim.is_some() && claim.as_deref().map(str::trim) != known.as_deref().map(str::trim)
    };
    // A claim naming the sender itself (same address or RPPS) is that person, however the
    // document spells the name.
    let person_confirmed = person_vouched && (same_address || same_rpps);
    let still_declared = (!person_confirmed
        && (differs(&declared.person, &author.person)
            || differs(&declared.person_id, &author.person_id))
        || differs(&declared.institution, &author.institution))
    .then_some(declared);
    (author, still_declared)
}
