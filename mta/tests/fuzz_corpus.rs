//! The fuzz targets' corpora (`fuzz/corpus/<target>/`) and crash reproducers
//! (`fuzz/artifacts/<target>/`), replayed through the same harnesses (`fuzz/harness/`) as
//! ordinary tests: a panic on any of them fails. See fuzz/README.md.

#[path = "../../fuzz/harness/replay.rs"]
mod replay;
#[path = "../../fuzz/harness/smtp_command.rs"]
mod smtp_command;

#[test]
fn smtp_command_corpus() {
    replay::replay("smtp_command", smtp_command::run);
}

/// The MIME corpus, through the headers the policy reads.
#[test]
fn mime_message_corpus() {
    replay::replay("mime_message", |data| {
        let _ = mshub_mta::policy::MessageHeaders::parse(data);
    });
}
