//! The fuzz targets' corpora (`fuzz/corpus/<target>/`) and crash reproducers
//! (`fuzz/artifacts/<target>/`), replayed through the same harnesses (`fuzz/harness/`) as
//! ordinary tests: a panic on any of them fails. See fuzz/README.md.

#[path = "../../fuzz/harness/agenda_ics.rs"]
mod agenda_ics;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn agenda_ics_corpus() {
    replay::replay("agenda_ics", agenda_ics::run);
}

/// The MIME corpus, through the agenda's prefilter.
#[test]
fn mime_message_corpus() {
    replay::replay("mime_message", |data| {
        let _ = mshub_agenda::may_carry_invitation(data);
    });
}
