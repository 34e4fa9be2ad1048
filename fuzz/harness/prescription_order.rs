//! A prescriber's `ordonnance.json`, as an attachment of a message and on its own, and the
//! parts of a scanned QR link.

use mshub_prescription::order::{find_order, parse_order};
use mshub_prescription::Link;

pub fn run(data: &[u8]) {
    if let Some(Ok(order)) = find_order(data) {
        let _ = parse_order(&order);
    }
    let _ = parse_order(data);
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '&');
    let (id, h, s) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let _ = Link::parse(id, h, s);
}
