//! Frames to PNG: rescale (slope, intercept), then window/level (DICOM PS3.3 C.11.2.1.2.1,
//! the linear VOI function) to 8 bits, MONOCHROME1 inverted; RGB shown as it is. Decoding goes
//! through dicom-pixeldata (native, RLE Lossless, JPEG baseline and lossless); the sizes it
//! works on were bounded when the file was read.

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;
use serde::{Deserialize, Serialize};

use super::{int, text, DicomLimits};

/// A window (centre and width, in the rescaled unit: Hounsfield units for CT).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowLevel {
    pub center: f64,
    pub width: f64,
}

/// How a frame is windowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// The file's own WindowCenter / WindowWidth, else the frame's range.
    Default,
    /// The frame's minimum to maximum.
    Auto,
    Bone,
    Lung,
    Brain,
    SoftTissue,
}

impl Preset {
    pub const ALL: [Preset; 6] = [
        Preset::Default,
        Preset::Auto,
        Preset::SoftTissue,
        Preset::Lung,
        Preset::Bone,
        Preset::Brain,
    ];

    /// Its name in URLs and cache keys.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Default => "defaut",
            Preset::Auto => "auto",
            Preset::Bone => "os",
            Preset::Lung => "poumon",
            Preset::Brain => "cerveau",
            Preset::SoftTissue => "tissus-mous",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Preset::Default => "Réglage du fichier",
            Preset::Auto => "Automatique (min–max)",
            Preset::Bone => "Os",
            Preset::Lung => "Poumon",
            Preset::Brain => "Cerveau",
            Preset::SoftTissue => "Tissus mous",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Presets in Hounsfield units: meaningful for CT only.
    pub fn hounsfield(self) -> Option<WindowLevel> {
        let (center, width) = match self {
            Preset::Bone => (500.0, 2000.0),
            Preset::Lung => (-600.0, 1500.0),
            Preset::Brain => (40.0, 80.0),
            Preset::SoftTissue => (40.0, 400.0),
            Preset::Default | Preset::Auto => return None,
        };
        Some(WindowLevel { center, width })
    }
}

/// The linear VOI function of PS3.3 C.11.2.1.2.1 to 0..=255.
pub fn window_value(x: f64, w: WindowLevel) -> u8 {
    let width = w.width.max(1.0);
    let low = w.center - 0.5 - (width - 1.0) / 2.0;
    let high = w.center - 0.5 + (width - 1.0) / 2.0;
    if x <= low {
        0
    } else if x > high {
        255
    } else {
        let y = ((x - (w.center - 0.5)) / (width - 1.0) + 0.5) * 255.0;
        y.round().clamp(0.0, 255.0) as u8
    }
}

/// A decoded frame: rescaled grey values, or RGB bytes.
pub(crate) enum Frame {
    Grey {
        values: Vec<f64>,
        inverted: bool,
        window: Option<WindowLevel>,
    },
    Rgb(Vec<u8>),
}

pub(crate) struct Decoded {
    pub rows: u32,
    pub columns: u32,
    pub frame: Frame,
}

/// Decodes frame `n` (from 0) of a parsed file, within the limits.
pub(crate) fn decode_frame(
    obj: &DefaultDicomObject,
    n: u32,
    limits: &DicomLimits,
) -> Result<Decoded, String> {
    let rows = int(obj, tags::ROWS).unwrap_or(0);
    let columns = int(obj, tags::COLUMNS).unwrap_or(0);
    let frames = int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1);
    if rows <= 0 || columns <= 0 || rows.saturating_mul(columns) as u64 > limits.max_pixels {
        return Err(format!(
            "dimensions d'image impossibles : {rows} × {columns} pixels"
        ));
    }
    if i64::from(n) >= frames || frames > i64::from(limits.max_frames) {
        return Err(format!(
            "pas d'image n° {} : le fichier en compte {frames}",
            n + 1
        ));
    }
    // What the decoders allocate follows these: only the formats shown here get that far.
    let samples = int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let bits = int(obj, tags::BITS_ALLOCATED).unwrap_or(0);
    if !matches!(samples, 1 | 3) || !matches!(bits, 8 | 16) {
        return Err(format!(
            "{samples} échantillon(s) par pixel sur {bits} bits : format de pixels non pris en charge"
        ));
    }
    if let Some(dicom_core::DicomValue::PixelSequence(seq)) = obj
        .element_opt(tags::PIXEL_DATA)
        .ok()
        .flatten()
        .map(|e| e.value())
    {
        for fragment in seq.fragments() {
            if let Some((height, width, components)) = jpeg_size(fragment) {
                if i64::from(height) > rows
                    || i64::from(width) > columns
                    || i64::from(components) > samples
                {
                    return Err(format!(
                        "image JPEG incohérente : le flux compressé annonce {width} × {height} pixels et {components} composante(s), le fichier {columns} × {rows} et {samples}"
                    ));
                }
            }
        }
    }
    let decoded = std::panic::catch_unwind(|| obj.decode_pixel_data_frame(n))
        .map_err(|_| "les pixels de l'image sont corrompus : leur décodage a échoué".to_string())?
        .map_err(|e| {
            tracing::debug!(error = ?e, "vault: DICOM pixel data not decoded");
            let syntax = obj.meta().transfer_syntax().trim_end_matches('\0').to_string();
            format!(
                "les pixels de l'image sont corrompus ou incomplets : ils ne peuvent pas être décodés (syntaxe de transfert {syntax})"
            )
        })?;
    let pixels = (rows * columns) as usize;
    let samples = decoded.samples_per_pixel() as usize;
    let bits = decoded.bits_allocated();
    let data = decoded.data();
    let need = pixels * samples * usize::from(bits.div_ceil(8));
    if data.len() < need {
        return Err(format!(
            "fichier DICOM tronqué : les pixels décodés font {} octets, il en faut {need} pour une image",
            data.len()
        ));
    }
    let (rows, columns) = (rows as u32, columns as u32);
    if samples == 3 {
        if bits != 8 {
            return Err(format!(
                "image en couleurs sur {bits} bits : format de pixels non pris en charge"
            ));
        }
        let planar = int(obj, tags::PLANAR_CONFIGURATION).unwrap_or(0) == 1
            && !obj.meta().transfer_syntax().contains("1.2.840.10008.1.2.5")
            && decoded.planar_configuration() == dicom_pixeldata::PlanarConfiguration::PixelFirst;
        let rgb = if planar {
            (0..pixels)
                .flat_map(|p| [data[p], data[pixels + p], data[2 * pixels + p]])
                .collect()
        } else {
            data[..pixels * 3].to_vec()
        };
        let photometric = text(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
        if photometric.starts_with("YBR")
            && decoded
                .photometric_interpretation()
                .as_str()
                .starts_with("YBR")
        {
            return Ok(Decoded {
                rows,
                columns,
                frame: Frame::Rgb(ybr_to_rgb(&rgb)),
            });
        }
        return Ok(Decoded {
            rows,
            columns,
            frame: Frame::Rgb(rgb),
        });
    }
    if samples != 1 {
        return Err(format!(
            "{samples} échantillons par pixel : format de pixels non pris en charge"
        ));
    }
    let stored = decoded.bits_stored().clamp(1, bits.max(1));
    let signed = decoded.pixel_representation() == dicom_pixeldata::PixelRepresentation::Signed;
    let slope = obj
        .element_opt(tags::RESCALE_SLOPE)
        .ok()
        .flatten()
        .and_then(|e| e.to_float64().ok())
        .filter(|s| s.is_finite() && *s != 0.0)
        .unwrap_or(1.0);
    let intercept = obj
        .element_opt(tags::RESCALE_INTERCEPT)
        .ok()
        .flatten()
        .and_then(|e| e.to_float64().ok())
        .filter(|i| i.is_finite())
        .unwrap_or(0.0);
    let raw = |i: usize| -> i64 {
        let v: u32 = match bits {
            8 => u32::from(data[i]),
            16 => u32::from(u16::from_le_bytes([data[2 * i], data[2 * i + 1]])),
            _ => u32::from_le_bytes([
                data[4 * i],
                data[4 * i + 1],
                data[4 * i + 2],
                data[4 * i + 3],
            ]),
        };
        let mask = if stored >= 32 {
            u32::MAX
        } else {
            (1u32 << stored) - 1
        };
        let v = v & mask;
        if signed && stored < 32 && v & (1 << (stored - 1)) != 0 {
            i64::from(v) - (1i64 << stored)
        } else if signed && stored >= 32 {
            i64::from(v as i32)
        } else {
            i64::from(v)
        }
    };
    if !matches!(bits, 8 | 16 | 32) {
        return Err(format!(
            "{bits} bits par échantillon : format de pixels non pris en charge"
        ));
    }
    let values: Vec<f64> = (0..pixels)
        .map(|i| raw(i) as f64 * slope + intercept)
        .collect();
    let window = match (
        obj.element_opt(tags::WINDOW_CENTER)
            .ok()
            .flatten()
            .and_then(|e| e.to_multi_float64().ok())
            .and_then(|v| v.first().copied()),
        obj.element_opt(tags::WINDOW_WIDTH)
            .ok()
            .flatten()
            .and_then(|e| e.to_multi_float64().ok())
            .and_then(|v| v.first().copied()),
    ) {
        (Some(center), Some(width)) if center.is_finite() && width.is_finite() && width >= 1.0 => {
            Some(WindowLevel { center, width })
        }
        _ => None,
    };
    let inverted = decoded.photometric_interpretation().as_str() == "MONOCHROME1";
    Ok(Decoded {
        rows,
        columns,
        frame: Frame::Grey {
            values,
            inverted,
            window,
        },
    })
}

/// The height, width and number of components a JPEG stream declares in its frame header
/// (ITU T.81 §B.2.2), if the fragment starts one: the JPEG decoder allocates for them, whatever
/// the DICOM header says.
fn jpeg_size(fragment: &[u8]) -> Option<(u16, u16, u8)> {
    if !fragment.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut pos = 2;
    while pos + 4 <= fragment.len() {
        if fragment[pos] != 0xFF {
            return None;
        }
        let marker = fragment[pos + 1];
        if marker == 0xFF {
            pos += 1;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([fragment[pos + 2], fragment[pos + 3]]));
        // SOF0–SOF15 but DHT (C4), JPG (C8) and DAC (CC); also SOF55 of JPEG-LS (F7).
        if matches!(marker, 0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC)) || marker == 0xF7
        {
            let h = fragment.get(pos + 5..pos + 7)?;
            let w = fragment.get(pos + 7..pos + 9)?;
            let components = *fragment.get(pos + 9)?;
            return Some((
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([w[0], w[1]]),
                components,
            ));
        }
        if marker == 0xDA {
            return None;
        }
        pos += 2 + length;
    }
    None
}

fn ybr_to_rgb(ybr: &[u8]) -> Vec<u8> {
    ybr.chunks_exact(3)
        .flat_map(|p| {
            let (y, cb, cr) = (
                f64::from(p[0]),
                f64::from(p[1]) - 128.0,
                f64::from(p[2]) - 128.0,
            );
            let c = |v: f64| v.round().clamp(0.0, 255.0) as u8;
            [
                c(y + 1.402 * cr),
                c(y - 0.344_136 * cb - 0.714_136 * cr),
                c(y + 1.772 * cb),
            ]
        })
        .collect()
}

/// The window a preset gives for a frame.
pub(crate) fn window_for(preset: Preset, values: &[f64], own: Option<WindowLevel>) -> WindowLevel {
    let range = || {
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        if min.is_finite() && max.is_finite() {
            WindowLevel {
                center: (min + max) / 2.0 + 0.5,
                width: (max - min + 1.0).max(1.0),
            }
        } else {
            WindowLevel {
                center: 128.0,
                width: 256.0,
            }
        }
    };
    match preset {
        Preset::Default => own.unwrap_or_else(range),
        Preset::Auto => range(),
        p => p.hounsfield().unwrap_or_else(range),
    }
}

/// An 8-bit picture, grey or RGB.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgb: bool,
    pub pixels: Vec<u8>,
}

impl Picture {
    /// Scaled down (box average) so that neither side exceeds `max_side`.
    pub fn fit(self, max_side: u32) -> Picture {
        let longest = self.width.max(self.height);
        if longest <= max_side || max_side == 0 {
            return self;
        }
        let factor = longest.div_ceil(max_side);
        let (w, h) = (self.width.div_ceil(factor), self.height.div_ceil(factor));
        let channels = if self.rgb { 3 } else { 1 };
        let mut out = Vec::with_capacity((w * h) as usize * channels);
        for y in 0..h {
            for x in 0..w {
                for c in 0..channels {
                    let (mut sum, mut n) = (0u32, 0u32);
                    for sy in y * factor..((y + 1) * factor).min(self.height) {
                        for sx in x * factor..((x + 1) * factor).min(self.width) {
                            sum += u32::from(
                                self.pixels[((sy * self.width + sx) as usize) * channels + c],
                            );
                            n += 1;
                        }
                    }
                    out.push((sum / n.max(1)) as u8);
                }
            }
        }
        Picture {
            width: w,
            height: h,
            rgb: self.rgb,
            pixels: out,
        }
    }

    pub fn png(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(if self.rgb {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        encoder.set_depth(png::BitDepth::Eight);
        // Only an internal fault can fail here: the patient reads a French sentence, the
        // encoder's own words go to the log.
        let failed = |e: png::EncodingError| {
            tracing::warn!(error = %e, "vault: PNG encoding of a DICOM frame failed");
            "erreur interne : l'image n'a pas pu être préparée pour l'affichage".to_string()
        };
        let mut writer = encoder.write_header().map_err(failed)?;
        writer.write_image_data(&self.pixels).map_err(failed)?;
        writer.finish().map_err(failed)?;
        Ok(out)
    }
}

/// Frame `n` of a parsed file as a picture, windowed by `preset`.
pub(crate) fn picture(
    obj: &DefaultDicomObject,
    n: u32,
    preset: Preset,
    limits: &DicomLimits,
) -> Result<Picture, String> {
    let decoded = decode_frame(obj, n, limits)?;
    let (rgb, pixels) = match decoded.frame {
        Frame::Rgb(p) => (true, p),
        Frame::Grey {
            values,
            inverted,
            window,
        } => {
            let w = window_for(preset, &values, window);
            (
                false,
                values
                    .iter()
                    .map(|v| {
                        let y = window_value(*v, w);
                        if inverted {
                            255 - y
                        } else {
                            y
                        }
                    })
                    .collect(),
            )
        }
    };
    Ok(Picture {
        width: decoded.columns,
        height: decoded.rows,
        rgb,
        pixels,
    })
}

/// Frame `n` (from 0) of a DICOM file as a PNG at most `max_side` pixels wide and high.
pub fn render_png(
    file: &[u8],
    name: &str,
    n: u32,
    preset: Preset,
    max_side: u32,
    limits: &DicomLimits,
) -> Result<Vec<u8>, String> {
    let obj = super::parse(file, name, limits).map_err(|r| match r {
        crate::Rejection::DicomRefused { detail, .. } => detail,
        crate::Rejection::DicomTooLarge { limit, .. } => {
            format!("fichier trop volumineux (plus de {limit} octets)")
        }
        other => other.to_string(),
    })?;
    picture(&obj, n, preset, limits)?.fit(max_side).png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linear_window_follows_the_standard() {
        let w = WindowLevel {
            center: 40.0,
            width: 400.0,
        };
        assert_eq!(window_value(-1000.0, w), 0);
        assert_eq!(window_value(1000.0, w), 255);
        // x = c - 0.5 maps to the middle of the output range.
        assert_eq!(window_value(39.5, w), 128);
        // (140 - 39.5) / 399 + 0.5 = 0.7519 → 191.7
        assert_eq!(window_value(140.0, w), 192);
    }

    #[test]
    fn the_size_a_jpeg_stream_declares_is_read() {
        // SOI, APP0 (length 4), SOF0: precision 8, height 0x0200, width 0x0300.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x02,
            0x00, 0x03, 0x00, 0x01,
        ];
        assert_eq!(jpeg_size(&jpeg), Some((0x200, 0x300, 1)));
        assert_eq!(jpeg_size(b"not a jpeg"), None);
        assert_eq!(jpeg_size(&jpeg[..10]), None);
    }

    #[test]
    fn presets_round_trip_by_name() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
        assert_eq!(Preset::from_name("x"), None);
    }

    #[test]
    fn pictures_are_scaled_down_by_box_average() {
        let p = Picture {
            width: 4,
            height: 2,
            rgb: false,
            pixels: vec![0, 100, 200, 255, 0, 100, 200, 255],
        }
        .fit(2);
        assert_eq!((p.width, p.height), (2, 1));
        assert_eq!(p.pixels, vec![50, 227]);
    }
}
