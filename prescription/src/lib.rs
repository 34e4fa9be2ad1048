//! # mshub-prescription
//!
//! Electronic prescriptions (ordonnances) authenticated by a signed QR code. Start with
//! [`Prescriptions::issue`]: a prescriber (a professional account: physician, dentist or
//! midwife) sends a patient a message with an `ordonnance.json` attachment; the binary's filer
//! hands it here after delivery. The hub checks it ([`order`]), gives it a random
//! [`PrescriptionId`], signs SHA-256 of its canonical content with its Ed25519 key
//! ([`signing`]), stores it sealed to the patient ([`records`]), and returns the patient's PDF
//! copy ([`pdf`]) whose QR code ([`qr`]) carries `https://<hub>/ordonnance/<id>?h=…&s=…`.
//!
//! A pharmacist who scans it signs in on the hub's web pages; [`Prescriptions::scan`] checks
//! the signature, the id, the content, the validity and what is left to deliver, and
//! [`Prescriptions::dispense`] records a dispensing per line (complete or partial, renewals
//! counted) with a compare-and-swap. Issuing, every scan and every dispensing are in the
//! store's audit chain (`prescription.issue`, `prescription.scan`, `prescription.dispense`).
//!
//! ## `ordonnance.json` (version 1)
//!
//! ```json
//! {
//!   "version": 1,
//!   "prescriber": { "rpps": "10003456786" },
//!   "patient": { "ins": "284057511204339" },
//!   "date": "2026-11-26",
//!   "validity_days": 90,
//!   "lines": [
//!     { "drug": "Amoxicilline 1 g, comprimé", "dose": "1 comprimé matin et soir",
//!       "duration": "7 jours", "quantity": 2, "renewals": 0 }
//!   ]
//! }
//! ```
//!
//! - `prescriber.rpps` must be the RPPS of the authenticated sender, `patient.ins` the INS of
//!   the recipient; unknown fields are refused.
//! - `date`: `AAAA-MM-JJ`, at most one day ahead; `validity_days`: 1 to 365, default 90 (three
//!   months); the last valid day is `date + validity_days`.
//! - `lines`: 1 to 20; `drug` (≤ 200 characters), `dose` (≤ 300), `duration` (≤ 100), no
//!   control characters; `quantity`: units per dispensing, 1 to 99 (default 1); `renewals`:
//!   dispensings after the first one, 0 to 12 (default 0).
//!
//! The file need not be named exactly `ordonnance.json` ([`order::find_order_file`]): any
//! JSON attachment named `ordonnance….json`, any JSON whose content has the prescription's
//! shape (at least two of `prescriber`, `patient`, `lines`), and such a file embedded in a
//! PDF attachment (`/EmbeddedFiles`) are read; one message carries one prescription.
//!
//! Refusals ([`Refusal`]) say why in French; the message itself is always delivered. A
//! malformed document is refused with all its problems (at most [`order::MAX_PROBLEMS`]), each
//! naming the field by its path (`patient.ins`, `lines[1].quantity`); a JSON syntax error with
//! its line and column.

pub mod dispensing;
pub mod error;
pub mod model;
pub mod order;
pub mod pdf;
pub mod qr;
pub mod records;
pub mod signing;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use dispensing::{DispensedLine, Dispensing, Give};
pub use error::{Outcome, PrescriptionError, Refusal, Result};
pub use model::{Line, Patient, Prescriber, Prescription, PrescriptionId};
pub use order::{find_order, may_carry_order, ORDER_FILE};
pub use records::{Issued, LineState, Prescriptions, Record, Status};
pub use signing::{Link, SigningKey};

/// `[prescription]` in `mshub.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrescriptionConfig {
    /// PEM file of the hub's Ed25519 signing key (PKCS#8, e.g. `openssl genpkey -algorithm
    /// ed25519`). Unset: the hub issues no prescription. `mshub demo` generates one.
    pub signing_key: Option<PathBuf>,
    /// The hub's public HTTPS address, the start of the URL in the QR code.
    pub public_url: String,
}

impl Default for PrescriptionConfig {
    fn default() -> Self {
        Self {
            signing_key: None,
            public_url: "https://localhost:8443".into(),
        }
    }
}
