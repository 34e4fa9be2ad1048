//! The fuzz targets' corpora (`fuzz/corpus/<target>/`) and crash reproducers
//! (`fuzz/artifacts/<target>/`), replayed through the same harnesses (`fuzz/harness/`) as
//! ordinary tests: a panic on any of them fails. See fuzz/README.md.

#[path = "../../fuzz/harness/directory_ids.rs"]
mod directory_ids;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn directory_ids_corpus() {
    replay::replay("directory_ids", directory_ids::run);
}
