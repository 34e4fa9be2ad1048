//! A DICOM file attached to a message (or inside an XDM archive): the structural check, the
//! read of its study, series and image attributes, and the rendering of its first frame.

use mshub_vault::dicom::read_instance;
use mshub_vault::dicom::render::{render_png, Preset};
use mshub_vault::DicomLimits;

pub fn run(data: &[u8]) {
    let limits = DicomLimits::default();
    if let Ok(Some(_)) = read_instance(data, "fuzz.dcm", &limits) {
        let _ = render_png(data, "fuzz.dcm", 0, Preset::Default, 256, &limits);
    }
}
