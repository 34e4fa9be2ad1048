//! A structural check of a DICOM Part 10 file before dicom-rs reads it (DICOM PS3.5 §7).
//!
//! dicom-rs allocates a value's declared length before reading it, and builds nested sequences
//! by recursion: a hostile file could make it reserve gigabytes (a length of 0xFFFFFFF0 in a
//! 1 KiB file) or exhaust the stack (thousands of nested sequences). This walk, iterative and
//! allocation-free but for its depth stack, refuses both before the real parse: every defined
//! length must fit in what encloses it, nesting is bounded, and undefined lengths are allowed
//! only where the standard allows them (sequences, items, encapsulated pixel data, UN).

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

const UNDEFINED: u32 = 0xFFFF_FFFF;

const TRUNCATED_HEADER: &str = "fichier DICOM tronqué au milieu de l'en-tête d'un élément";

/// Where the data set of a file starts and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Offset of the first data set element, after the file meta group.
    pub data_set: usize,
    pub transfer_syntax: String,
    pub explicit: bool,
}

/// Transfer syntaxes whose data set is implicit VR little endian; explicit VR big endian
/// (retired) and deflated data sets are refused by [`check`].
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// VRs with a 4-byte length in explicit VR encoding (PS3.5 §7.1.2, table 7.1-1).
fn long_vr(vr: &[u8]) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"SV"
            | b"UV"
    )
}

/// The value representations of PS3.5 §6.2. Any other pair of bytes is refused: a reader that
/// took it for UN would read a 4-byte length where this walk read a 2-byte one, and the two
/// would disagree on every length after it.
fn known_vr(vr: &[u8]) -> bool {
    matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SQ"
            | b"SS"
            | b"ST"
            | b"SV"
            | b"TM"
            | b"UC"
            | b"UI"
            | b"UL"
            | b"UN"
            | b"UR"
            | b"US"
            | b"UT"
            | b"UV"
    )
}

/// Checks a file (starting at `DICM`, after the preamble) and gives its layout.
pub(crate) fn check(file: &[u8], max_depth: usize) -> Result<Layout, String> {
    if file.get(..4) != Some(b"DICM") {
        return Err("ce n'est pas un fichier DICOM (pas de marque « DICM »)".into());
    }
    // The file meta group: explicit VR little endian, group 0002 only (PS3.10 §7.1).
    let mut pos = 4;
    let mut transfer_syntax = None;
    // dicom-rs reads the meta group for as many bytes as (0002,0000) says, whatever their group
    // (off-group elements included), and the data set from there: where the group length and
    // the group-0002 elements disagree, dicom-rs would read a data set this walk never checked.
    let mut group_end = None;
    loop {
        let (Some(group), Some(element)) = (u16_at(file, pos), u16_at(file, pos + 2)) else {
            return Err(format!(
                "fichier DICOM tronqué : l'en-tête du fichier (groupe 0002) s'arrête à l'octet {pos}"
            ));
        };
        if group != 0x0002 {
            break;
        }
        let vr = file
            .get(pos + 4..pos + 6)
            .ok_or_else(|| {
                format!("fichier DICOM tronqué : l'en-tête du fichier (groupe 0002) s'arrête à l'octet {pos}")
            })?;
        if !known_vr(vr) {
            return Err(format!(
                "type de valeur (VR) invalide dans l'en-tête du fichier (groupe 0002), à l'octet {pos}"
            ));
        }
        let (len, header) = if long_vr(vr) {
            (u32_at(file, pos + 8), 12)
        } else {
            (u16_at(file, pos + 6).map(u32::from), 8)
        };
        let len = len.ok_or_else(|| {
            format!("fichier DICOM tronqué : l'en-tête du fichier (groupe 0002) s'arrête à l'octet {pos}")
        })?;
        let start = pos + header;
        let end = start
            .checked_add(len as usize)
            .filter(|end| len != UNDEFINED && *end <= file.len())
            .ok_or_else(|| {
                if len == UNDEFINED {
                    format!("longueur indéfinie sur l'élément (0002,{element:04X}) de l'en-tête du fichier, qui doit en avoir une")
                } else {
                    format!(
                        "fichier DICOM tronqué : l'élément (0002,{element:04X}) annonce {len} octets, il en reste {}",
                        file.len().saturating_sub(start)
                    )
                }
            })?;
        if element == 0x0000 && pos == 4 && len == 4 {
            group_end = u32_at(file, start).and_then(|n| end.checked_add(n as usize));
        }
        if element == 0x0010 {
            let uid = String::from_utf8_lossy(&file[start..end])
                .trim_end_matches(['\0', ' '])
                .to_string();
            transfer_syntax = Some(uid);
        }
        pos = end;
        if pos == file.len() {
            break;
        }
    }
    if group_end.is_some_and(|end| end != pos) {
        return Err(format!(
            "la longueur de l'en-tête du fichier (0002,0000) ne correspond pas à ses éléments, qui finissent à l'octet {pos}"
        ));
    }
    let transfer_syntax =
        transfer_syntax.ok_or("pas de syntaxe de transfert (0002,0010) dans l'en-tête du fichier : son codage est inconnu")?;
    if transfer_syntax == DEFLATED {
        return Err(
            "syntaxe de transfert « deflate » (1.2.840.10008.1.2.1.99) non prise en charge".into(),
        );
    }
    if transfer_syntax == EXPLICIT_BE {
        return Err(
            "syntaxe de transfert « big endian » (1.2.840.10008.1.2.2, retirée du standard) non prise en charge"
                .into(),
        );
    }
    let layout = Layout {
        data_set: pos,
        explicit: transfer_syntax != IMPLICIT_LE,
        transfer_syntax,
    };
    walk(&file[pos..], layout.explicit, max_depth)
        .map_err(|(at, why)| format!("{why} (octet {})", at + pos))?;
    Ok(layout)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A sequence whose items hold data sets.
    Sequence,
    /// Encapsulated pixel data: items hold raw fragments.
    Fragments,
    Item,
}

#[derive(Clone, Copy)]
struct Open {
    kind: Kind,
    /// Offset just past the container, for a defined length.
    end: Option<usize>,
    explicit: bool,
}

fn is_sequence(tag: Tag) -> bool {
    StandardDataDictionary
        .by_tag(tag)
        .is_some_and(|e| e.vr() == VirtualVr::Exact(VR::SQ))
}

/// Walks a data set; an error gives the offset and the reason.
fn walk(data: &[u8], explicit: bool, max_depth: usize) -> Result<(), (usize, String)> {
    let mut stack: Vec<Open> = Vec::new();
    let mut pos = 0usize;
    loop {
        while let Some(top) = stack.last() {
            match top.end {
                Some(end) if end == pos => {
                    stack.pop();
                }
                Some(end) if end < pos => {
                    return Err((
                        pos,
                        "un élément déborde de l'item ou de la séquence qui le contient".into(),
                    ))
                }
                _ => break,
            }
        }
        let limit = stack.iter().rev().find_map(|o| o.end).unwrap_or(data.len());
        if pos == data.len() {
            if !stack.is_empty() {
                return Err((
                    pos,
                    "fichier DICOM tronqué : une séquence ou un item n'est pas refermé".into(),
                ));
            }
            return Ok(());
        }
        let explicit_here = stack.last().map_or(explicit, |o| o.explicit);
        let (Some(group), Some(element)) = (u16_at(data, pos), u16_at(data, pos + 2)) else {
            return Err((
                pos,
                "fichier DICOM tronqué au milieu de l'en-tête d'un élément".into(),
            ));
        };
        if group == 0xFFFE {
            let len = u32_at(data, pos + 4).ok_or((
                pos,
                "fichier DICOM tronqué au milieu de l'en-tête d'un item".to_string(),
            ))?;
            pos += 8;
            let parent = stack.last().map(|o| o.kind);
            match element {
                0xE000 if parent == Some(Kind::Fragments) => {
                    if len == UNDEFINED {
                        return Err((pos, "fragment de pixels de longueur indéfinie".to_string()));
                    }
                    if pos + len as usize > limit {
                        return Err((
                            pos,
                            format!(
                                "fichier DICOM tronqué : un fragment de pixels annonce {len} octets, il en reste {}",
                                limit.saturating_sub(pos)
                            ),
                        ));
                    }
                    pos += len as usize;
                }
                0xE000 if parent == Some(Kind::Sequence) => {
                    let end = if len == UNDEFINED {
                        None
                    } else if pos + len as usize > limit {
                        return Err((
                            pos,
                            format!(
                                "fichier DICOM tronqué : un item de séquence annonce {len} octets, il en reste {}",
                                limit.saturating_sub(pos)
                            ),
                        ));
                    } else {
                        Some(pos + len as usize)
                    };
                    stack.push(Open {
                        kind: Kind::Item,
                        end,
                        explicit: explicit_here,
                    });
                }
                0xE00D
                    if matches!(
                        stack.last(),
                        Some(Open {
                            kind: Kind::Item,
                            end: None,
                            ..
                        })
                    ) =>
                {
                    stack.pop();
                }
                0xE0DD
                    if matches!(
                        stack.last(),
                        Some(Open {
                            kind: Kind::Sequence | Kind::Fragments,
                            end: None,
                            ..
                        })
                    ) =>
                {
                    stack.pop();
                }
                _ => {
                    return Err((
                        pos - 8,
                        format!("marque d'item (FFFE,{element:04X}) inattendue à cet endroit"),
                    ))
                }
            }
        } else {
            let tag = Tag(group, element);
            let (vr, len, header): (Option<[u8; 2]>, u32, usize) = if explicit_here {
                let vr: [u8; 2] = data
                    .get(pos + 4..pos + 6)
                    .and_then(|v| v.try_into().ok())
                    .ok_or((pos, TRUNCATED_HEADER.to_string()))?;
                if !known_vr(&vr) {
                    return Err((
                        pos,
                        format!(
                            "type de valeur (VR) invalide pour l'élément ({group:04X},{element:04X})"
                        ),
                    ));
                }
                if long_vr(&vr) {
                    let len = u32_at(data, pos + 8).ok_or((pos, TRUNCATED_HEADER.to_string()))?;
                    (Some(vr), len, 12)
                } else {
                    let len = u16_at(data, pos + 6).ok_or((pos, TRUNCATED_HEADER.to_string()))?;
                    (Some(vr), u32::from(len), 8)
                }
            } else {
                let len = u32_at(data, pos + 4).ok_or((pos, TRUNCATED_HEADER.to_string()))?;
                (None, len, 8)
            };
            let at = pos;
            pos += header;
            let sequence = match vr {
                Some(v) => &v == b"SQ",
                None => is_sequence(tag),
            };
            if len == UNDEFINED {
                let (kind, explicit) = match vr.as_ref().map(|v| &v[..]) {
                    _ if sequence => (Kind::Sequence, explicit_here),
                    Some(b"UN") => (Kind::Sequence, false),
                    Some(b"OB" | b"OW") | None if tag == Tag(0x7FE0, 0x0010) => {
                        (Kind::Fragments, explicit_here)
                    }
                    _ => {
                        return Err((at, format!("longueur indéfinie sur l'élément ({group:04X},{element:04X}), qui n'est pas une séquence")))
                    }
                };
                stack.push(Open {
                    kind,
                    end: None,
                    explicit,
                });
            } else {
                let end = pos
                    .checked_add(len as usize)
                    .filter(|e| *e <= limit)
                    .ok_or_else(|| {
                        (
                            at,
                            format!(
                                "fichier DICOM tronqué : l'élément ({group:04X},{element:04X}) annonce {len} octets, il en reste {}",
                                limit.saturating_sub(pos)
                            ),
                        )
                    })?;
                if sequence {
                    stack.push(Open {
                        kind: Kind::Sequence,
                        end: Some(end),
                        explicit: explicit_here,
                    });
                } else {
                    pos = end;
                }
            }
        }
        if stack.len() > max_depth * 2 {
            return Err((
                pos,
                format!("séquences imbriquées sur plus de {max_depth} niveaux"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ts: &str) -> Vec<u8> {
        let mut out = b"DICM".to_vec();
        let mut uid = ts.as_bytes().to_vec();
        if uid.len() % 2 == 1 {
            uid.push(0);
        }
        out.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I']);
        out.extend_from_slice(&(uid.len() as u16).to_le_bytes());
        out.extend_from_slice(&uid);
        out
    }

    fn element(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&tag.0.to_le_bytes());
        out.extend_from_slice(&tag.1.to_le_bytes());
        out.extend_from_slice(vr);
        if long_vr(vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn a_plain_file_passes() {
        let mut f = meta("1.2.840.10008.1.2.1");
        f.extend(element((0x0010, 0x0010), b"PN", b"DOE^J "));
        f.extend(element((0x7FE0, 0x0010), b"OW", &[0; 8]));
        let layout = check(&f, 8).unwrap();
        assert!(layout.explicit);
        assert_eq!(layout.transfer_syntax, "1.2.840.10008.1.2.1");
    }

    #[test]
    fn a_length_beyond_the_end_is_refused() {
        let mut f = meta("1.2.840.10008.1.2.1");
        f.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0]);
        f.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        f.extend_from_slice(&[0; 16]);
        let err = check(&f, 8).unwrap_err();
        assert!(
            err.contains("l'élément (7FE0,0010) annonce 4294967280 octets, il en reste 16"),
            "{err}"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut f = meta("1.2.840.10008.1.2.1");
        for _ in 0..100 {
            // (0008,1115) SQ, undefined length, then an item of undefined length.
            f.extend_from_slice(&[
                0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
            f.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let err = check(&f, 16).unwrap_err();
        assert!(err.contains("imbriquées sur plus de 16 niveaux"), "{err}");
    }

    #[test]
    fn an_unknown_value_representation_is_refused() {
        let mut f = meta("1.2.840.10008.1.2.1");
        f.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
        let err = check(&f, 8).unwrap_err();
        assert!(err.contains("type de valeur (VR) invalide"), "{err}");
    }

    /// Found by fuzzing: a group length longer than the group made dicom-rs read explicit-VR
    /// bytes as file meta and start the data set where an unchecked length of 2 GiB was.
    #[test]
    fn a_group_length_beyond_the_meta_group_is_refused() {
        let group = meta("1.2.840.10008.1.2");
        let mut f = b"DICM".to_vec();
        for extra in [0u32, 16] {
            f.truncate(4);
            f.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
            f.extend_from_slice(&(group.len() as u32 - 4 + extra).to_le_bytes());
            f.extend_from_slice(&group[4..]);
            f.extend_from_slice(&[0x08, 0x00, 0x16, 0x00, 2, 0, 0, 0, b'1', 0]);
            f.extend_from_slice(&[0; 16]);
            let result = check(&f, 8);
            if extra == 0 {
                assert!(result.is_ok(), "{result:?}");
            } else {
                let err = result.unwrap_err();
                assert!(
                    err.contains("longueur de l'en-tête du fichier (0002,0000)"),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn an_unclosed_sequence_is_truncated() {
        let mut f = meta("1.2.840.10008.1.2.1");
        f.extend_from_slice(&[
            0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        let err = check(&f, 16).unwrap_err();
        assert!(err.contains("tronqué"), "{err}");
    }
}
