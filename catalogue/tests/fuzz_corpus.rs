//! The fuzz targets' corpora (`fuzz/corpus/<target>/`) and crash reproducers
//! (`fuzz/artifacts/<target>/`), replayed through the same harnesses (`fuzz/harness/`) as
//! ordinary tests: a panic on any of them fails. See fuzz/README.md.

#[path = "../../fuzz/harness/catalogue_file.rs"]
mod catalogue_file;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;

#[test]
fn catalogue_file_corpus() {
    replay::replay("catalogue_file", catalogue_file::run);
}
