//! An XDM archive (IHE ITI TF-3 §9, a zip) attached to a message, and the pieces of it that
//! the vault reads on its own: a METADATA.XML and a patientId (CX) value.

use mshub_vault::xdm::{parse_metadata, parse_patient_id, read_xdm};
use mshub_vault::XdmLimits;

pub fn run(data: &[u8]) {
    let _ = read_xdm(data, &XdmLimits::default());
    let _ = parse_metadata(data, "METADATA.XML");
    if let Ok(cx) = std::str::from_utf8(data) {
        let _ = parse_patient_id(cx);
    }
}
