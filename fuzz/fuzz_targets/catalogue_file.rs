//! The application catalogue file. In production its bytes are parsed only after the
//! signature has been verified, but the parser must not trust that.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mshub_catalogue::CatalogueFile;

fuzz_target!(|data: &[u8]| {
    let _ = CatalogueFile::parse(data);
});
