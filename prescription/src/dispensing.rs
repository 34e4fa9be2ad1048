//! Dispensing (délivrance): what a pharmacist delivers of each line, renewals counted, written
//! with a compare-and-swap on the record's previous bytes. The form a pharmacist posts names
//! the version it was read at, so two pharmacies can never deliver the same renewal twice.

use serde::{Deserialize, Serialize};

use mshub_directory::Account;
use mshub_store::{AuditEvent, Batch};

use crate::records::{is_pharmacist, subject, RECORDS};
use crate::{Outcome, PrescriptionError, Prescriptions, Record, Refusal};

/// What one line got in one dispensing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispensedLine {
    /// Index of the line (0-based).
    pub line: usize,
    pub quantity: u32,
    /// Which dispensing of the line it was: 1 the first, 2 the first renewal…
    pub fill: u32,
    /// Whether this completed that dispensing.
    pub completed: bool,
}

/// One dispensing, by one pharmacist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispensing {
    /// Unix time.
    pub at: i64,
    pub pharmacist: String,
    pub pharmacist_name: String,
    pub lines: Vec<DispensedLine>,
}

/// What a pharmacist delivers of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Give {
    /// This many units of the dispensing under way.
    Units(u32),
    /// What remains of the dispensing under way.
    Rest,
}

impl Prescriptions {
    /// Records a dispensing by `pharmacist` of the prescription scanned as (`id`, `hash`,
    /// `signature`), read at `version`: what `gives` says for each line (by index). The link is
    /// checked again; the record is rewritten with a compare-and-swap. Audited
    /// (`prescription.dispense`).
    #[allow(clippy::too_many_arguments)]
    pub fn dispense(
        &self,
        pharmacist: &Account,
        id: &str,
        hash: &str,
        signature: &str,
        version: usize,
        gives: &[(usize, Give)],
        now: i64,
    ) -> std::result::Result<(Record, Dispensing), Outcome> {
        let result = self.dispense_checked(pharmacist, id, hash, signature, version, gives, now);
        let detail = match &result {
            Ok((_, d)) => format!(
                "outcome:ok lines:{}",
                d.lines
                    .iter()
                    .map(|l| format!(
                        "{}x{}{}",
                        l.line + 1,
                        l.quantity,
                        if l.completed { "" } else { "p" }
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Err(Outcome::Refused(r)) => format!("outcome:{}", r.code()),
            Err(Outcome::Failed(_)) => "outcome:error".into(),
        };
        self.store.audit(
            AuditEvent::new(
                pharmacist.address.as_str(),
                "prescription.dispense",
                subject(id),
            )
            .with_detail(detail),
        )?;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn dispense_checked(
        &self,
        pharmacist: &Account,
        id: &str,
        hash: &str,
        signature: &str,
        version: usize,
        gives: &[(usize, Give)],
        now: i64,
    ) -> std::result::Result<(Record, Dispensing), Outcome> {
        if !is_pharmacist(pharmacist) {
            return Err(Refusal::NotPharmacist.into());
        }
        let lane = id.bytes().fold(0x7278_0000_0000_0000u64, |h, b| {
            h.rotate_left(5) ^ u64::from(b)
        });
        let outcome = self.store.retry(lane, || {
            let (owner, record, raw) = match self.check(id, hash, signature, now) {
                Ok(found) => found,
                Err(Outcome::Refused(r)) => return Ok((Batch::new(), Err(Outcome::Refused(r)))),
                Err(Outcome::Failed(PrescriptionError::Store(e))) => return Err(e),
                Err(other) => return Ok((Batch::new(), Err(other))),
            };
            match apply(record, pharmacist, version, gives, now) {
                Ok((next, dispensing)) => {
                    let value = match self.encode(owner, &next) {
                        Ok(v) => v,
                        Err(PrescriptionError::Store(e)) => return Err(e),
                        Err(other) => return Ok((Batch::new(), Err(other.into()))),
                    };
                    let mut batch = Batch::new();
                    batch.check(RECORDS, id.as_bytes(), Some(raw));
                    batch.put(RECORDS, id.as_bytes(), value);
                    Ok((batch, Ok((next, dispensing))))
                }
                Err(refusal) => Ok((Batch::new(), Err(refusal.into()))),
            }
        })?;
        outcome
    }
}

/// The dispensing `gives` applied to `record`, read at `version` (pure: no store).
fn apply(
    mut record: Record,
    pharmacist: &Account,
    version: usize,
    gives: &[(usize, Give)],
    now: i64,
) -> std::result::Result<(Record, Dispensing), Refusal> {
    if record.fully_dispensed() {
        return Err(Refusal::FullyDispensed);
    }
    if record.version() != version {
        return Err(Refusal::Conflict);
    }
    let mut lines = Vec::new();
    for &(i, give) in gives {
        let Some(line) = record.prescription.lines.get(i) else {
            return Err(Refusal::Quantity(format!(
                "la ligne {} n'existe pas",
                i + 1
            )));
        };
        if lines.iter().any(|l: &DispensedLine| l.line == i) {
            return Err(Refusal::Quantity(format!(
                "la ligne {} est donnée deux fois",
                i + 1
            )));
        }
        let remaining = record.remaining_in_fill(i);
        let quantity = match give {
            Give::Units(0) => continue,
            Give::Units(n) => n,
            Give::Rest => remaining,
        };
        if record.line_exhausted(i) {
            return Err(Refusal::Quantity(format!(
                "la ligne {} ({}) a déjà été entièrement délivrée, renouvellements compris",
                i + 1,
                line.drug
            )));
        }
        if quantity > remaining {
            return Err(Refusal::Quantity(format!(
                "ligne {} ({}) : {quantity} demandé(s), il en reste {remaining} à délivrer pour cette délivrance",
                i + 1,
                line.drug
            )));
        }
        let state = &mut record.lines[i];
        let fill = state.fills_done + 1;
        state.current += quantity;
        let completed = state.current >= line.quantity;
        if completed {
            state.fills_done += 1;
            state.current = 0;
        }
        lines.push(DispensedLine {
            line: i,
            quantity,
            fill,
            completed,
        });
    }
    if lines.is_empty() {
        return Err(Refusal::Nothing);
    }
    let dispensing = Dispensing {
        at: now,
        pharmacist: pharmacist.address.to_string(),
        pharmacist_name: pharmacist.kind.display_name(),
        lines,
    };
    record.history.push(dispensing.clone());
    Ok((record, dispensing))
}
