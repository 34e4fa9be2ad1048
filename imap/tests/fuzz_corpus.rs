//! The fuzz targets' corpora (`fuzz/corpus/<target>/`) and crash reproducers
//! (`fuzz/artifacts/<target>/`), replayed through the same harnesses (`fuzz/harness/`) as
//! ordinary tests: a panic on any of them fails. See fuzz/README.md.

#[path = "../../fuzz/harness/imap_command.rs"]
mod imap_command;
#[path = "../../fuzz/harness/imap_string_to_bytes_and_back.rs"]
mod imap_string_to_bytes_and_back;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn imap_command_corpus() {
    replay::replay("imap_command", imap_command::run);
}

/// Known-answer inverse: the harness asserts the round trip on every input.
#[test]
fn imap_string_to_bytes_and_back_corpus() {
    replay::replay(
        "imap_string_to_bytes_and_back",
        imap_string_to_bytes_and_back::run,
    );
}
