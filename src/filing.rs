//! The filers the delivery pipeline runs after a message is in a recipient's INBOX
//! (DESIGN §3): the MTA defines the trait and knows no filer; the binary plugs them in.

use std::sync::Arc;

use mshub_agenda::Agenda;
use mshub_directory::Directory;
use mshub_mta::{Delivered, Filer, FilingOutcome};
use mshub_prescription::{Outcome, Prescriptions};
use mshub_vault::{Author, GeneratedDocument, Vault};

use crate::hub::Hub;

/// Attachments to a patient (IHE XDM, CDA, PDF, images) into the patient's document vault.
struct VaultFiler(Vault);

impl Filer for VaultFiler {
    fn name(&self) -> &'static str {
        "vault"
    }

    fn may_apply(&self, message: &[u8]) -> bool {
        mshub_vault::may_carry_documents(message)
    }

    fn file(&self, d: &Delivered<'_>) -> FilingOutcome {
        self.0
            .file_message(d.recipient, Some(d.sender), d.message)
            .outcome()
    }
}

/// Invitations (text/calendar, .ics) to a patient into the patient's agenda.
struct AgendaFiler(Agenda);

impl Filer for AgendaFiler {
    fn name(&self) -> &'static str {
        "agenda"
    }

    fn may_apply(&self, message: &[u8]) -> bool {
        mshub_agenda::may_carry_invitation(message)
    }

    fn file(&self, d: &Delivered<'_>) -> FilingOutcome {
        self.0
            .file_message(d.recipient, Some(d.sender), d.message)
            .outcome()
    }
}

/// A prescription (`ordonnance.json`, or a file recognised as one by its content, also inside a
/// PDF: [`mshub_prescription::order::find_order_file`]) from a prescriber to a patient: the hub issues the signed prescription
/// and files the patient's PDF copy (with its QR code) into the vault, category prescriptions.
/// A refusal is the filing outcome; the message is delivered all the same.
struct PrescriptionFiler {
    prescriptions: Arc<Prescriptions>,
    vault: Vault,
    directory: Arc<Directory>,
}

/// LOINC "Prescription for medication": the vault's category prescriptions.
const PRESCRIPTION_TYPE: &str = "57833-6";

impl Filer for PrescriptionFiler {
    fn name(&self) -> &'static str {
        "prescription"
    }

    fn may_apply(&self, message: &[u8]) -> bool {
        mshub_prescription::may_carry_order(message)
    }

    fn file(&self, d: &Delivered<'_>) -> FilingOutcome {
        if !d.recipient.kind.is_patient() {
            return FilingOutcome::NotApplicable;
        }
        let order = match mshub_prescription::order::find_order_file(d.message) {
            None => return FilingOutcome::NotApplicable,
            Some(Err(refusal)) => {
                tracing::info!(code = refusal.code(), "prescription refused");
                return FilingOutcome::Failed {
                    reason: refusal.to_string(),
                };
            }
            Some(Ok(order)) => order,
        };
        // Said when the prescription was not in the usual `ordonnance.json` attachment: the
        // sender sees which file was read.
        let from = if order
            .name
            .eq_ignore_ascii_case(mshub_prescription::ORDER_FILE)
        {
            String::new()
        } else {
            format!(" (lue dans « {} »)", order.name)
        };
        let sender = match self.directory.account_by_address(d.sender) {
            Ok(Some(account)) => account,
            Err(e) => {
                tracing::warn!(error = %e, "prescription: cannot read the sender's account");
                return FilingOutcome::Failed {
                    reason: "erreur interne : l'ordonnance n'a pas été émise".into(),
                };
            }
            _ => {
                return FilingOutcome::Failed {
                    reason: "prescripteur refusé : l'expéditeur n'est pas un professionnel \
                             inscrit sur ce service"
                        .into(),
                }
            }
        };
        let issued = match self.prescriptions.issue(
            &sender,
            d.recipient,
            &order.bytes,
            d.message,
            mshub_store::now(),
        ) {
            Ok(issued) => issued,
            Err(Outcome::Refused(refusal)) => {
                tracing::info!(code = refusal.code(), "prescription refused");
                return FilingOutcome::Failed {
                    reason: format!("{refusal}{from}"),
                };
            }
            Err(Outcome::Failed(e)) => {
                tracing::warn!(error = %e, "prescription: issuing failed");
                return FilingOutcome::Failed {
                    reason: "erreur interne : l'ordonnance n'a pas été émise".into(),
                };
            }
        };
        let id = issued.record.prescription.id.clone();
        if issued.again {
            return FilingOutcome::Filed {
                summary: format!("ordonnance sécurisée n° {id} émise{from}"),
            };
        }
        let copy = GeneratedDocument {
            content: issued.pdf,
            title: format!(
                "Ordonnance du {}",
                mshub_prescription::model::day::french(&issued.record.prescription.date)
            ),
            type_code: PRESCRIPTION_TYPE.into(),
            mime: "application/pdf".into(),
            file_name: format!("ordonnance-{id}.pdf"),
            author: Author {
                person: Some(issued.record.prescription.prescriber.name.clone()),
                person_id: Some(issued.record.prescription.prescriber.rpps.clone()),
                institution: None,
                address: Some(sender.address.clone()),
            },
        };
        match self.vault.file_generated(d.recipient, Some(d.sender), copy) {
            Ok(doc) => FilingOutcome::Filed {
                summary: format!(
                    "ordonnance sécurisée n° {id} émise{from} ; sa copie PDF avec QR code est classée \
                     dans le coffre-fort (document {})",
                    doc.reference
                ),
            },
            Err(e) => {
                tracing::warn!(error = %e, "prescription: the PDF copy was not filed");
                FilingOutcome::Filed {
                    summary: format!(
                        "ordonnance sécurisée n° {id} émise{from} (consultable dans la rubrique \
                         Ordonnances) ; sa copie PDF n'a pas pu être classée dans le coffre-fort"
                    ),
                }
            }
        }
    }
}

/// Every filer of the hub, in the order they run.
pub fn filers(hub: &Hub) -> Vec<Arc<dyn Filer>> {
    vec![
        Arc::new(VaultFiler(Vault::new(
            hub.store.clone(),
            hub.directory.clone(),
        ))),
        Arc::new(AgendaFiler(Agenda::with_limits(
            hub.store.clone(),
            hub.directory.clone(),
            (&hub.config.agenda).into(),
        ))),
        Arc::new(PrescriptionFiler {
            prescriptions: hub.prescriptions.clone(),
            vault: Vault::new(hub.store.clone(), hub.directory.clone()),
            directory: hub.directory.clone(),
        }),
    ]
}
