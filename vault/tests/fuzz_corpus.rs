//! The fuzz targets' corpora (`fuzz/corpus/<target>/`) and crash reproducers
//! (`fuzz/artifacts/<target>/`), replayed through the same harnesses (`fuzz/harness/`) as
//! ordinary tests: a panic on any of them fails. See fuzz/README.md.

#[path = "../../fuzz/harness/mime_message.rs"]
mod mime_message;
#[path = "../../fuzz/harness/replay.rs"]
mod replay;
#[path = "../../fuzz/harness/vault_cda.rs"]
mod vault_cda;
#[path = "../../fuzz/harness/vault_dicom.rs"]
mod vault_dicom;
#[path = "../../fuzz/harness/vault_xdm.rs"]
mod vault_xdm;

#[test]
fn vault_xdm_corpus() {
    replay::replay("vault_xdm", vault_xdm::run);
}

#[test]
fn vault_cda_corpus() {
    replay::replay("vault_cda", vault_cda::run);
}

/// `artifacts/vault_dicom/rle-short.dcm` panics inside dicom-rs; the hub catches that panic
/// and refuses the file, which is what this replay checks.
#[test]
fn vault_dicom_corpus() {
    replay::replay("vault_dicom", vault_dicom::run);
}

/// The MIME corpus, through the vault's part walk and its prefilter.
#[test]
fn mime_message_corpus() {
    replay::replay("mime_message", |data| {
        mime_message::walk_parts(data);
        let _ = mshub_vault::may_carry_documents(data);
    });
}
