//! The application catalogue file. In production its bytes are parsed only after the
//! signature has been verified, but the parser must not trust that.

use mshub_catalogue::CatalogueFile;

pub fn run(data: &[u8]) {
    let _ = CatalogueFile::parse(data);
}
