//! Reading a study through the vault's rules: its record, one original file, a rendered image
//! or a thumbnail. Each goes through the same check and audit as any document read
//! ([`Vault::read_document`]); rendered images are kept as derived data of the study's blob
//! (sealed to the patient, removed with it), so an image is decoded once.

use std::sync::{Condvar, Mutex};

use mshub_directory::Account;

use super::render::{self, Preset};
use super::{Instance, Study};
use crate::{Document, DocumentId, Result, Vault, VaultError};

/// Side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 160;

/// Renders running at once: each holds a study's archive and one decoded file in memory.
const PARALLEL_RENDERS: usize = 2;

static RENDERS: Mutex<usize> = Mutex::new(0);
static RENDER_DONE: Condvar = Condvar::new();

/// A slot among [`PARALLEL_RENDERS`], released on drop.
struct RenderSlot;

impl RenderSlot {
    fn take() -> Self {
        let mut running = RENDERS.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= PARALLEL_RENDERS {
            running = RENDER_DONE.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        RenderSlot
    }
}

impl Drop for RenderSlot {
    fn drop(&mut self) {
        let mut running = RENDERS.lock().unwrap_or_else(|p| p.into_inner());
        *running = running.saturating_sub(1);
        RENDER_DONE.notify_one();
    }
}

fn thumbnail_kind(series: usize) -> String {
    format!("dicom-thumb:{series}")
}

fn image_kind(series: usize, image: u32, preset: Preset) -> String {
    format!("dicom-image:{series}:{image}:{}", preset.name())
}

impl Vault {
    /// The study of a document, if `viewer` may see it (audited as a read of part `study`).
    pub fn read_study(&self, viewer: &Account, id: DocumentId) -> Result<(Document, Study)> {
        let doc = self.checked_read(viewer, id, "study")?;
        let study = doc.study.clone().ok_or(VaultError::NotAStudy(id))?;
        Ok((doc, study))
    }

    /// One original file of a study: its description and bytes (audited, part `dicom-file`).
    pub fn read_study_file(
        &self,
        viewer: &Account,
        id: DocumentId,
        series: usize,
        file: usize,
    ) -> Result<(Instance, Vec<u8>)> {
        let doc = self.checked_read(viewer, id, "dicom-file")?;
        let instance = doc
            .study
            .as_ref()
            .ok_or(VaultError::NotAStudy(id))?
            .series
            .get(series)
            .and_then(|s| s.instances.get(file))
            .cloned()
            .ok_or(VaultError::NoSuchImage { document: id })?;
        let archive = self.study_archive(&doc)?;
        let bytes = super::file_from_zip(&archive, &instance.file, self.dicom_limits.max_file)
            .map_err(|e| VaultError::Data(format!("study archive of document {id}: {e}")))?;
        Ok((instance, bytes))
    }

    /// Image `image` (from 0) of series `series` as a PNG windowed by `preset` (audited, part
    /// `image`).
    pub fn study_image(
        &self,
        viewer: &Account,
        id: DocumentId,
        series: usize,
        image: u32,
        preset: Preset,
    ) -> Result<Vec<u8>> {
        let doc = self.checked_read(viewer, id, "image")?;
        let kind = image_kind(series, image, preset);
        self.rendered(
            &doc,
            series,
            image,
            preset,
            &kind,
            self.dicom_limits.max_render_side,
        )
    }

    /// The thumbnail of a series (its middle image, the file's own window), made at filing.
    pub fn study_thumbnail(
        &self,
        viewer: &Account,
        id: DocumentId,
        series: usize,
    ) -> Result<Vec<u8>> {
        let doc = self.checked_read(viewer, id, "thumbnail")?;
        let middle = doc
            .study
            .as_ref()
            .and_then(|s| s.series.get(series))
            .map_or(0, |s| s.images() / 2);
        self.rendered(
            &doc,
            series,
            middle,
            Preset::Default,
            &thumbnail_kind(series),
            THUMBNAIL_SIDE,
        )
    }

    fn study_archive(&self, doc: &Document) -> Result<Vec<u8>> {
        let blob = doc.blob.ok_or(VaultError::Deleted(doc.id))?;
        Ok(self.store.read_blob(doc.patient, blob)?)
    }

    fn rendered(
        &self,
        doc: &Document,
        series: usize,
        image: u32,
        preset: Preset,
        kind: &str,
        side: u32,
    ) -> Result<Vec<u8>> {
        let blob = doc.blob.ok_or(VaultError::Deleted(doc.id))?;
        if let Some(png) = self.store.derived(doc.patient, blob, kind)? {
            return Ok(png);
        }
        let study = doc.study.as_ref().ok_or(VaultError::NotAStudy(doc.id))?;
        let s = study
            .series
            .get(series)
            .ok_or(VaultError::NoSuchImage { document: doc.id })?;
        let (file, frame) = s
            .locate(image)
            .ok_or(VaultError::NoSuchImage { document: doc.id })?;
        let instance = &s.instances[file];
        if let Some(reason) = &instance.undecodable {
            return Err(VaultError::Undisplayable(reason.clone()));
        }
        let _slot = RenderSlot::take();
        let archive = self.study_archive(doc)?;
        let bytes = super::file_from_zip(&archive, &instance.file, self.dicom_limits.max_file)
            .map_err(|e| VaultError::Data(format!("study archive of document {}: {e}", doc.id)))?;
        drop(archive);
        let png = render::render_png(
            &bytes,
            &instance.file,
            frame,
            preset,
            side,
            &self.dicom_limits,
        )
        .map_err(VaultError::Undisplayable)?;
        if let Err(e) = self.store.put_derived(doc.patient, blob, kind, &png) {
            tracing::warn!(error = %e, document = %doc.id, "vault: rendered image not cached");
        }
        Ok(png)
    }

    /// Thumbnails of a study just filed, from the files still in memory. A failure only means
    /// the thumbnail is made on first view.
    pub(crate) fn cache_thumbnails(&self, doc: &Document, files: &[(String, Vec<u8>)]) {
        let (Some(study), Some(blob)) = (&doc.study, doc.blob) else {
            return;
        };
        for (index, series) in study.series.iter().enumerate() {
            if !series.viewable() {
                continue;
            }
            let Some((file, frame)) = series.locate(series.images() / 2) else {
                continue;
            };
            let instance = &series.instances[file];
            let Some((_, bytes)) = files.iter().find(|(name, _)| *name == instance.file) else {
                continue;
            };
            let rendered = render::render_png(
                bytes,
                &instance.file,
                frame,
                Preset::Default,
                THUMBNAIL_SIDE,
                &self.dicom_limits,
            );
            match rendered {
                Ok(png) => {
                    if let Err(e) =
                        self.store
                            .put_derived(doc.patient, blob, &thumbnail_kind(index), &png)
                    {
                        tracing::warn!(error = %e, document = %doc.id, "vault: thumbnail not cached");
                    }
                }
                Err(e) => tracing::info!(document = %doc.id, error = %e, "vault: no thumbnail"),
            }
        }
    }
}
