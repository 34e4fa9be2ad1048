//! The fuzz targets' corpora (`fuzz/corpus/<target>/`) and crash reproducers
//! (`fuzz/artifacts/<target>/`), replayed through the same harnesses (`fuzz/harness/`) as
//! ordinary tests: a panic on any of them fails. See fuzz/README.md.

#[path = "../../fuzz/harness/prescription_order.rs"]
mod prescription_order;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn prescription_order_corpus() {
    replay::replay("prescription_order", prescription_order::run);
}

/// The MIME corpus, through the prescription's prefilter.
#[test]
fn mime_message_corpus() {
    replay::replay("mime_message", |data| {
        let _ = mshub_prescription::may_carry_order(data);
    });
}
