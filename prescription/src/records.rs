//! Issued prescriptions at rest, their verification when a pharmacist scans the QR code, and
//! the patient's and the pharmacist's reading of them; dispensing itself is [`crate::dispensing`].
//!
//! A record is stored under its id as `patient id (8 bytes) ‖ sealed JSON`: the content and
//! the dispensing history are health data, sealed to the patient's key like the vault's
//! documents; only the ids that index them stay readable. Every dispensing rewrites the record
//! with a compare-and-swap on its previous bytes, and the form a pharmacist posts names the
//! version it was read at: two pharmacies can never deliver the same renewal twice.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use mshub_directory::{Account, AccountKind, Profession};
use mshub_store::{AccountId, AuditEvent, Batch, Commit, Store, Tree};

use crate::dispensing::Dispensing;
use crate::model::day;
use crate::order::{parse_order, DEFAULT_VALIDITY_DAYS};
use crate::signing::{Link, SigningKey};
use crate::{
    Line, Outcome, Patient, Prescriber, Prescription, PrescriptionConfig, PrescriptionError,
    PrescriptionId, Refusal, Result,
};

/// id → patient id ‖ sealed [`Record`].
pub(crate) const RECORDS: Tree = Tree("prescription");
/// patient ‖ issued at ‖ id → nothing: a patient's prescriptions in issuing order.
const BY_PATIENT: Tree = Tree("prescription-patient");
/// patient ‖ SHA-256 of the raw message → id: issuing is idempotent per delivered message.
const BY_MESSAGE: Tree = Tree("prescription-message");

/// Where one line stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineState {
    /// Dispensings completed (the first one and renewals).
    pub fills_done: u32,
    /// Units already delivered of the dispensing under way.
    pub current: u32,
}

/// An issued prescription with its signature and dispensing state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub prescription: Prescription,
    /// base64url SHA-256 of the canonical content, as signed.
    pub hash: String,
    /// base64url Ed25519 signature.
    pub signature: String,
    pub lines: Vec<LineState>,
    pub history: Vec<Dispensing>,
}

/// Where a prescription stands, for lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    ToDispense,
    Partial,
    Dispensed,
    Expired,
}

impl Status {
    pub fn label_fr(self) -> &'static str {
        match self {
            Status::ToDispense => "à délivrer",
            Status::Partial => "partiellement délivrée",
            Status::Dispensed => "entièrement délivrée",
            Status::Expired => "expirée",
        }
    }
}

impl Record {
    /// The number of dispensings recorded: what a dispensing form was read at.
    pub fn version(&self) -> usize {
        self.history.len()
    }

    pub fn link(&self) -> Result<Link> {
        Link::parse(self.prescription.id.as_str(), &self.hash, &self.signature).map_err(|_| {
            PrescriptionError::Corrupt {
                id: self.prescription.id.to_string(),
                reason: "stored hash or signature unreadable".into(),
            }
        })
    }

    pub fn line_exhausted(&self, i: usize) -> bool {
        match (self.prescription.lines.get(i), self.lines.get(i)) {
            (Some(line), Some(state)) => state.fills_done >= line.fills(),
            _ => true,
        }
    }

    /// Units still to deliver in the dispensing under way of line `i` (0 once exhausted).
    pub fn remaining_in_fill(&self, i: usize) -> u32 {
        if self.line_exhausted(i) {
            return 0;
        }
        match (self.prescription.lines.get(i), self.lines.get(i)) {
            (Some(line), Some(state)) => line.quantity.saturating_sub(state.current),
            _ => 0,
        }
    }

    /// Dispensings of line `i` not started yet (renewals to come), besides the one under way.
    pub fn fills_left(&self, i: usize) -> u32 {
        match (self.prescription.lines.get(i), self.lines.get(i)) {
            (Some(line), Some(state)) => line
                .fills()
                .saturating_sub(state.fills_done)
                .saturating_sub(1),
            _ => 0,
        }
    }

    pub fn fully_dispensed(&self) -> bool {
        (0..self.prescription.lines.len()).all(|i| self.line_exhausted(i))
    }

    pub fn expired(&self, now: i64) -> bool {
        day::parse(&self.prescription.valid_until).is_none_or(|last| day::of_unix(now) > last)
    }

    pub fn status(&self, now: i64) -> Status {
        if self.fully_dispensed() {
            Status::Dispensed
        } else if self.expired(now) {
            Status::Expired
        } else if self.history.is_empty() {
            Status::ToDispense
        } else {
            Status::Partial
        }
    }
}

/// An issued prescription, as the filer needs it.
#[derive(Debug)]
pub struct Issued {
    pub record: Record,
    /// The QR code's URL.
    pub url: String,
    /// The patient's PDF copy.
    pub pdf: Vec<u8>,
    /// `true` when this message had already been issued (a filer run again after a crash).
    pub again: bool,
}

/// The hub's prescriptions: issuing, verification, dispensing.
pub struct Prescriptions {
    pub(crate) store: Arc<Store>,
    key: Option<SigningKey>,
    public_url: String,
}

fn prescriber_of(sender: &Account) -> std::result::Result<Prescriber, Refusal> {
    let AccountKind::Professional {
        rpps,
        given_name,
        family_name,
        profession,
        specialty,
        ..
    } = &sender.kind
    else {
        return Err(Refusal::Prescriber(format!(
            "{} n'est pas un professionnel de santé",
            sender.address
        )));
    };
    let title = match profession {
        Profession::Physician | Profession::Dentist => "Dr ",
        Profession::Midwife => "",
        other => {
            return Err(Refusal::Prescriber(format!(
                "la profession {} ne prescrit pas de médicaments ici",
                other.label_fr()
            )))
        }
    };
    Ok(Prescriber {
        rpps: rpps.to_string(),
        name: format!("{title}{given_name} {family_name}"),
        profession: profession.label_fr().to_string(),
        specialty: specialty.clone(),
        address: sender.address.to_string(),
    })
}

pub(crate) fn is_pharmacist(account: &Account) -> bool {
    !account.disabled
        && matches!(
            account.kind,
            AccountKind::Professional {
                profession: Profession::Pharmacist,
                ..
            }
        )
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut h = [0u8; 32];
    h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    h
}

fn by_patient_key(patient: AccountId, issued_at: i64, id: &PrescriptionId) -> Vec<u8> {
    let mut k = patient.to_key().to_vec();
    k.extend_from_slice(&issued_at.to_be_bytes());
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

/// The audit subject of a scanned id: the id when it has an id's shape, never raw input.
pub(crate) fn subject(id: &str) -> String {
    match PrescriptionId::try_from(id) {
        Ok(id) => format!("prescription:{id}"),
        Err(_) => "prescription:malformed".into(),
    }
}

impl Prescriptions {
    /// Loads the signing key when `[prescription] signing_key` is set; without it the hub
    /// issues nothing and every scan is refused as [`Refusal::Disabled`].
    pub fn new(store: Arc<Store>, config: &PrescriptionConfig) -> Result<Self> {
        let key = config
            .signing_key
            .as_deref()
            .map(SigningKey::load)
            .transpose()?;
        Ok(Self::with_key(store, key, &config.public_url))
    }

    pub fn with_key(store: Arc<Store>, key: Option<SigningKey>, public_url: &str) -> Self {
        Self {
            store,
            key,
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }

    fn key(&self) -> std::result::Result<&SigningKey, Refusal> {
        self.key.as_ref().ok_or(Refusal::Disabled)
    }

    /// The QR code's URL of a record.
    pub fn url(&self, record: &Record) -> Result<String> {
        Ok(record.link()?.url(&self.public_url))
    }

    fn decode(&self, id: &str, raw: &[u8]) -> Result<(AccountId, Record)> {
        let corrupt = |reason: &str| PrescriptionError::Corrupt {
            id: id.to_string(),
            reason: reason.to_string(),
        };
        if raw.len() < 8 {
            return Err(corrupt("shorter than its owner's id"));
        }
        let mut owner = [0u8; 8];
        owner.copy_from_slice(&raw[..8]);
        let owner = AccountId(u64::from_be_bytes(owner));
        let plain = self.store.open_sealed(owner, &raw[8..])?;
        let record = serde_json::from_slice(&plain).map_err(|e| corrupt(&e.to_string()))?;
        Ok((owner, record))
    }

    pub(crate) fn encode(&self, owner: AccountId, record: &Record) -> Result<Vec<u8>> {
        let json =
            serde_json::to_vec(record).map_err(|e| PrescriptionError::Internal(e.to_string()))?;
        let mut value = owner.to_key().to_vec();
        value.extend_from_slice(&self.store.seal(owner, &json)?);
        Ok(value)
    }

    fn load(&self, id: &PrescriptionId) -> Result<Option<(AccountId, Record, Vec<u8>)>> {
        match self.store.kv().get(RECORDS, id.as_str().as_bytes())? {
            Some(raw) => {
                let (owner, record) = self.decode(id.as_str(), &raw)?;
                Ok(Some((owner, record, raw)))
            }
            None => Ok(None),
        }
    }

    /// Issues the prescription of `order` (the bytes of `ordonnance.json`) sent by `sender` to
    /// `recipient` in `raw_message`: checks it, gives it an id, signs it, stores it sealed to
    /// the patient, audits `prescription.issue`. Idempotent per (patient, message).
    pub fn issue(
        &self,
        sender: &Account,
        recipient: &Account,
        order: &[u8],
        raw_message: &[u8],
        now: i64,
    ) -> std::result::Result<Issued, Outcome> {
        let key = self.key()?;
        let AccountKind::Patient {
            ins,
            given_name,
            family_name,
            birth_date,
            ..
        } = &recipient.kind
        else {
            return Err(
                Refusal::Patient(format!("{} n'est pas un patient", recipient.address)).into(),
            );
        };
        let mut message_key = recipient.id.to_key().to_vec();
        message_key.extend_from_slice(&sha256(raw_message));
        if let Some(id) = self.store.kv().get(BY_MESSAGE, &message_key)? {
            let id = PrescriptionId::try_from(String::from_utf8_lossy(&id).as_ref())?;
            if let Some((_, record, _)) = self.load(&id)? {
                return Ok(Issued {
                    url: self.url(&record)?,
                    pdf: crate::pdf::render(&record, &self.url(&record)?),
                    record,
                    again: true,
                });
            }
        }
        let order = parse_order(order)?;
        let prescriber = prescriber_of(sender)?;
        if order.prescriber.rpps.trim() != prescriber.rpps {
            return Err(Refusal::Prescriber(format!(
                "le RPPS de l'ordonnance ({}) n'est pas celui de l'expéditeur authentifié",
                order.prescriber.rpps.trim()
            ))
            .into());
        }
        if order.patient.ins.trim() != ins.as_str() {
            return Err(Refusal::Patient(
                "l'INS de l'ordonnance n'est pas celui du destinataire".into(),
            )
            .into());
        }
        let date = day::parse(&order.date).ok_or_else(|| Refusal::invalid("date invalide"))?;
        let today = day::of_unix(now);
        if date > today + 1 {
            return Err(Refusal::invalid(format!(
                "l'ordonnance est datée du {}, dans le futur",
                order.date
            ))
            .into());
        }
        let valid_until = date + i64::from(order.validity_days.unwrap_or(DEFAULT_VALIDITY_DAYS));
        if valid_until < today {
            return Err(Refusal::invalid(format!(
                "l'ordonnance du {} était valable jusqu'au {} : elle a déjà expiré",
                order.date,
                day::format(valid_until)
            ))
            .into());
        }
        let prescription = Prescription {
            id: PrescriptionId::random()?,
            issued_at: now,
            prescriber,
            patient: Patient {
                ins: ins.to_string(),
                name: format!("{given_name} {family_name}"),
                birth_date: birth_date.to_string(),
            },
            date: order.date.clone(),
            valid_until: day::format(valid_until),
            lines: order
                .lines
                .iter()
                .map(|l| Line {
                    drug: l.drug.trim().to_string(),
                    dose: l.dose.trim().to_string(),
                    duration: l.duration.trim().to_string(),
                    quantity: l.quantity,
                    renewals: l.renewals,
                })
                .collect(),
        };
        let hash = prescription.content_hash();
        let signature = key.sign(&prescription.id, &hash);
        let record = Record {
            lines: vec![LineState::default(); prescription.lines.len()],
            hash: URL_SAFE_NO_PAD.encode(hash),
            signature: URL_SAFE_NO_PAD.encode(signature),
            history: Vec::new(),
            prescription,
        };
        let id = record.prescription.id.clone();
        let mut batch = Batch::new();
        batch.check(RECORDS, id.as_str().as_bytes(), None);
        batch.put(
            RECORDS,
            id.as_str().as_bytes(),
            self.encode(recipient.id, &record)?,
        );
        batch.put(
            BY_PATIENT,
            by_patient_key(recipient.id, now, &id),
            Vec::new(),
        );
        batch.check(BY_MESSAGE, message_key.clone(), None);
        batch.put(BY_MESSAGE, message_key, id.as_str().as_bytes().to_vec());
        if self.store.kv().commit(&batch)? != Commit::Done {
            return Err(PrescriptionError::Internal(format!(
                "prescription {id} issued twice at once"
            ))
            .into());
        }
        self.store.audit(
            AuditEvent::new(
                sender.address.as_str(),
                "prescription.issue",
                format!("prescription:{id}"),
            )
            .with_detail(format!(
                "patient:{} lines:{}",
                recipient.id,
                record.prescription.lines.len()
            )),
        )?;
        let url = self.url(&record)?;
        Ok(Issued {
            pdf: crate::pdf::render(&record, &url),
            url,
            record,
            again: false,
        })
    }

    /// Removes every prescription of `patient` (the space is destroyed): its records and
    /// indexes. A later scan of one of its QR codes finds an unknown prescription. Returns how
    /// many were removed.
    pub fn purge_patient(store: &Store, patient: AccountId) -> Result<usize> {
        let mut removed = 0;
        let mut batch = Batch::new();
        for (k, _) in store.kv().scan(BY_PATIENT, &patient.to_key(), None, None)? {
            if let Some(id) = k.get(16..) {
                batch.remove(RECORDS, id.to_vec());
                removed += 1;
            }
            batch.remove(BY_PATIENT, k);
        }
        for (k, _) in store.kv().scan(BY_MESSAGE, &patient.to_key(), None, None)? {
            batch.remove(BY_MESSAGE, k);
        }
        let _ = store.kv().commit(&batch)?;
        Ok(removed)
    }

    /// The prescriptions of a patient, newest first.
    pub fn of_patient(&self, patient: AccountId) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for (k, _) in self
            .store
            .kv()
            .scan(BY_PATIENT, &patient.to_key(), None, None)?
        {
            let Some(id) = k.get(16..).and_then(|b| std::str::from_utf8(b).ok()) else {
                continue;
            };
            let id = PrescriptionId::try_from(id)?;
            if let Some((owner, record, _)) = self.load(&id)? {
                if owner == patient {
                    out.push(record);
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// One prescription of `patient`, `None` if it is not theirs.
    pub fn of_patient_by_id(&self, patient: AccountId, id: &str) -> Result<Option<Record>> {
        let Ok(id) = PrescriptionId::try_from(id) else {
            return Ok(None);
        };
        Ok(self
            .load(&id)?
            .filter(|(owner, _, _)| *owner == patient)
            .map(|(_, record, _)| record))
    }

    /// Checks a scanned link: signature, id, content, validity. Fully dispensed is reported by
    /// the caller ([`Record::fully_dispensed`]) since the history is still worth showing.
    pub(crate) fn check(
        &self,
        id: &str,
        hash: &str,
        signature: &str,
        now: i64,
    ) -> std::result::Result<(AccountId, Record, Vec<u8>), Outcome> {
        let key = self.key()?;
        let link = Link::parse(id, hash, signature)?;
        if !key.verify(&link) {
            return Err(Refusal::Forged.into());
        }
        let Some((owner, record, raw)) = self.load(&link.id)? else {
            return Err(Refusal::UnknownId.into());
        };
        if record.hash != URL_SAFE_NO_PAD.encode(link.hash)
            || record.prescription.content_hash() != link.hash
            || record.prescription.id != link.id
        {
            return Err(Refusal::Altered.into());
        }
        if record.expired(now) {
            return Err(Refusal::Expired {
                valid_until: day::french(&record.prescription.valid_until),
            }
            .into());
        }
        Ok((owner, record, raw))
    }

    fn audit_scan(&self, who: &Account, id: &str, action: &str, result: &str) -> Result<()> {
        self.store.audit(
            AuditEvent::new(who.address.as_str(), action, subject(id))
                .with_detail(format!("outcome:{result}")),
        )?;
        Ok(())
    }

    /// A pharmacist scans the QR code: the prescription if it may be dispensed, or why not.
    /// Every scan is audited (`prescription.scan`, with its outcome).
    pub fn scan(
        &self,
        pharmacist: &Account,
        id: &str,
        hash: &str,
        signature: &str,
        now: i64,
    ) -> std::result::Result<Record, Outcome> {
        let result = if is_pharmacist(pharmacist) {
            self.check(id, hash, signature, now)
                .and_then(|(_, record, _)| {
                    if record.fully_dispensed() {
                        Err(Refusal::FullyDispensed.into())
                    } else {
                        Ok(record)
                    }
                })
        } else {
            Err(Refusal::NotPharmacist.into())
        };
        let code = match &result {
            Ok(_) => "ok",
            Err(Outcome::Refused(r)) => r.code(),
            Err(Outcome::Failed(_)) => "error",
        };
        self.audit_scan(pharmacist, id, "prescription.scan", code)?;
        result
    }
}

#[cfg(test)]
mod tests;
