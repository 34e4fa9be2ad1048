//! A CDA R2 document (HL7), alone or inside an XDM archive.

use mshub_vault::cda::parse_cda;

pub fn run(data: &[u8]) {
    let _ = parse_cda(data, "doc.xml");
}
