//! The files embedded in a PDF (ISO 32000-1 §7.11.4: a file specification whose `/EF`
//! dictionary names an embedded file stream, listed in the catalogue's `/Names
//! /EmbeddedFiles` tree or attached to a page): enough of the format to find them, and
//! nothing else.
//!
//! The file comes from the network: the reader is a single linear scan for `N G obj` headers
//! (no trust in the cross-reference table, which may be absent or wrong), a bounded parser of
//! the few objects near an `/EF` key, and FlateDecode through a size-limited inflate. Every
//! loop is bounded by the input's length or by a constant below; no recursion deeper than
//! [`MAX_DEPTH`]; nothing panics on any input.

use std::collections::HashMap;

/// Largest PDF looked into.
pub(crate) const MAX_PDF_BYTES: usize = 32 * 1024 * 1024;
/// Objects indexed in one PDF.
const MAX_OBJECTS: usize = 200_000;
/// Object streams (PDF 1.5, §7.5.7) inflated, and the most each may hold once inflated.
const MAX_OBJECT_STREAMS: usize = 64;
const MAX_OBJECT_STREAM_BYTES: usize = 4 * 1024 * 1024;
/// File specifications examined.
const MAX_FILE_SPECS: usize = 32;
/// `/EF` keys looked at.
const MAX_EF_KEYS: usize = 256;
/// Nesting of arrays and dictionaries in one object.
const MAX_DEPTH: usize = 16;
/// Tokens read in one PDF, all objects together.
const MAX_TOKENS: usize = 500_000;

/// An embedded file: its name as the file specification gives it, and its content (or why it
/// cannot be read).
#[derive(Debug)]
pub(crate) struct Embedded {
    pub name: Option<String>,
    pub content: Result<Vec<u8>, String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Null,
    Bool,
    Int(i64),
    Real,
    Str(Vec<u8>),
    Name(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Vec<(Vec<u8>, Obj)>),
    Ref(u32),
}

impl Obj {
    fn get(&self, key: &[u8]) -> Option<&Obj> {
        match self {
            Obj::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0')
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A bounded reader of PDF objects (ISO 32000-1 §7.3) over one buffer.
struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    tokens: &'a mut usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while let Some(&b) = self.src.get(self.pos) {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while self
                    .src
                    .get(self.pos)
                    .is_some_and(|c| *c != b'\n' && *c != b'\r')
                {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn regular(&mut self) -> &[u8] {
        let start = self.pos;
        while self
            .src
            .get(self.pos)
            .is_some_and(|b| !is_white(*b) && !is_delimiter(*b))
        {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    fn object(&mut self, depth: usize) -> Option<Obj> {
        *self.tokens += 1;
        if *self.tokens > MAX_TOKENS || depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        let b = *self.src.get(self.pos)?;
        match b {
            b'/' => {
                self.pos += 1;
                let raw = self.regular().to_vec();
                Some(Obj::Name(decode_name(&raw)))
            }
            b'(' => self.literal_string().map(Obj::Str),
            b'<' if self.src.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                let mut entries = Vec::new();
                loop {
                    self.skip_space();
                    if self.src.get(self.pos..self.pos + 2)? == b">>" {
                        self.pos += 2;
                        return Some(Obj::Dict(entries));
                    }
                    let Obj::Name(key) = self.object(depth + 1)? else {
                        return None;
                    };
                    let value = self.object(depth + 1)?;
                    entries.push((key, value));
                }
            }
            b'<' => {
                self.pos += 1;
                let end = find(self.src, b">", self.pos)?;
                let hex: Vec<u8> = self.src[self.pos..end]
                    .iter()
                    .copied()
                    .filter(|c| !is_white(*c))
                    .collect();
                self.pos = end + 1;
                let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
                let mut out = Vec::with_capacity(hex.len() / 2 + 1);
                for pair in hex.chunks(2) {
                    let hi = digit(pair[0])?;
                    let lo = pair.get(1).map_or(Some(0), |c| digit(*c))?;
                    out.push(hi << 4 | lo);
                }
                Some(Obj::Str(out))
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    if *self.src.get(self.pos)? == b']' {
                        self.pos += 1;
                        return Some(Obj::Array(items));
                    }
                    items.push(self.object(depth + 1)?);
                }
            }
            _ => {
                let word = self.regular();
                if word.is_empty() {
                    return None;
                }
                match word {
                    b"null" => Some(Obj::Null),
                    b"true" | b"false" => Some(Obj::Bool),
                    _ => {
                        let text = std::str::from_utf8(word).ok()?;
                        if let Ok(n) = text.parse::<i64>() {
                            // `N G R`: a reference.
                            let save = self.pos;
                            self.skip_space();
                            let generation = self.regular();
                            let is_generation =
                                !generation.is_empty() && generation.iter().all(u8::is_ascii_digit);
                            if is_generation {
                                self.skip_space();
                                if self.regular() == b"R" {
                                    return Some(Obj::Ref(u32::try_from(n).ok()?));
                                }
                            }
                            self.pos = save;
                            Some(Obj::Int(n))
                        } else if text.parse::<f64>().is_ok() {
                            Some(Obj::Real)
                        } else {
                            None
                        }
                    }
                }
            }
        }
    }

    /// `( … )` with balanced parentheses and backslash escapes (§7.3.4.2).
    fn literal_string(&mut self) -> Option<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut depth = 1usize;
        loop {
            let b = *self.src.get(self.pos)?;
            self.pos += 1;
            match b {
                b'(' => {
                    depth += 1;
                    out.push(b);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(out);
                    }
                    out.push(b);
                }
                b'\\' => {
                    let e = *self.src.get(self.pos)?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.src.get(self.pos) {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xFF) as u8);
                        }
                        b'\r' => {
                            if self.src.get(self.pos) == Some(&b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        other => out.push(other),
                    }
                }
                _ => out.push(b),
            }
        }
    }
}

/// `#xx` escapes of a name (§7.3.5).
fn decode_name(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'#' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// A text string (§7.9.2.2): UTF-16BE with its byte order mark, UTF-8 with its own, else
/// PDFDocEncoding, read here as Latin-1 (the same for the characters of a file name).
fn text_string(bytes: &[u8]) -> String {
    if let Some(utf16) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = utf16
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else if let Some(utf8) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        String::from_utf8_lossy(utf8).into_owned()
    } else {
        bytes.iter().map(|b| char::from(*b)).collect()
    }
}

/// Where an object's value starts: in the file itself, or in an inflated object stream.
#[derive(Clone, Copy)]
enum Place {
    File(usize),
    Stream(usize, usize),
}

struct Pdf<'a> {
    file: &'a [u8],
    /// Inflated object streams.
    streams: Vec<Vec<u8>>,
    index: HashMap<u32, Place>,
    /// Start offsets of the objects in the file, in order: which object a byte is in.
    starts: Vec<(usize, u32)>,
    tokens: usize,
}

impl<'a> Pdf<'a> {
    /// Every `N G obj` of the file (the latest definition of a number wins, as with
    /// incremental updates).
    fn index(file: &'a [u8]) -> Self {
        let mut index = HashMap::new();
        let mut starts = Vec::new();
        let mut at = 0;
        while let Some(p) = find(file, b"obj", at) {
            at = p + 3;
            if starts.len() >= MAX_OBJECTS {
                break;
            }
            if file
                .get(p + 3)
                .is_some_and(|b| !is_white(*b) && !is_delimiter(*b))
            {
                continue;
            }
            if let Some(number) = object_number_before(file, p) {
                index.insert(number, Place::File(p + 3));
                starts.push((p + 3, number));
            }
        }
        Pdf {
            file,
            streams: Vec::new(),
            index,
            starts,
            tokens: 0,
        }
    }

    fn buffer(&self, place: Place) -> Option<(&[u8], usize)> {
        match place {
            Place::File(at) => Some((self.file, at)),
            Place::Stream(s, at) => Some((self.streams.get(s)?.as_slice(), at)),
        }
    }

    fn parse_at(&mut self, place: Place) -> Option<(Obj, usize)> {
        let mut tokens = self.tokens;
        let result = {
            let (src, pos) = self.buffer(place)?;
            let mut p = Parser {
                src,
                pos,
                tokens: &mut tokens,
            };
            p.object(0).map(|o| (o, p.pos))
        };
        self.tokens = tokens;
        result
    }

    fn resolve(&mut self, obj: &Obj) -> Option<Obj> {
        match obj {
            Obj::Ref(n) => {
                let place = *self.index.get(n)?;
                self.parse_at(place).map(|(o, _)| o)
            }
            other => Some(other.clone()),
        }
    }

    /// The stream whose dictionary was read at `place` (streams are in the file, never in
    /// object streams), decoded within `limit` bytes.
    fn stream(&mut self, n: u32, limit: usize) -> Result<Vec<u8>, String> {
        let Some(Place::File(at)) = self.index.get(&n).copied() else {
            return Err(format!("l'objet {n} du PDF est introuvable"));
        };
        let Some((dict, end)) = self.parse_at(Place::File(at)) else {
            return Err(format!("l'objet {n} du PDF est illisible"));
        };
        let file = self.file;
        let mut pos = end;
        while file.get(pos).is_some_and(|b| is_white(*b)) {
            pos += 1;
        }
        if file.get(pos..pos + 6) != Some(b"stream") {
            return Err(format!("l'objet {n} du PDF n'est pas un flux de données"));
        }
        pos += 6;
        if file.get(pos) == Some(&b'\r') {
            pos += 1;
        }
        if file.get(pos) == Some(&b'\n') {
            pos += 1;
        }
        let declared = match dict.get(b"Length") {
            Some(l) => match self.resolve(l) {
                Some(Obj::Int(n)) => usize::try_from(n).ok(),
                _ => None,
            },
            None => None,
        };
        let data = match declared.and_then(|len| file.get(pos..pos.checked_add(len)?)) {
            Some(data) => data,
            // A wrong or missing /Length: up to `endstream`.
            None => {
                let end = find(file, b"endstream", pos)
                    .ok_or_else(|| format!("le flux de l'objet {n} du PDF est tronqué"))?;
                let mut data = &file[pos..end];
                if let Some(d) = data.strip_suffix(b"\n") {
                    data = d;
                }
                if let Some(d) = data.strip_suffix(b"\r") {
                    data = d;
                }
                data
            }
        };
        decode(&dict, data, limit)
    }

    /// Inflates the object streams and indexes the objects they hold.
    fn open_object_streams(&mut self) {
        let candidates: Vec<u32> = {
            let mut found = Vec::new();
            let mut at = 0;
            while let Some(p) = find(self.file, b"/ObjStm", at) {
                at = p + 7;
                if found.len() >= MAX_OBJECT_STREAMS {
                    break;
                }
                if let Some(n) = self.object_containing(p) {
                    if !found.contains(&n) {
                        found.push(n);
                    }
                }
            }
            found
        };
        for n in candidates {
            let Some(Place::File(at)) = self.index.get(&n).copied() else {
                continue;
            };
            let Some((dict, _)) = self.parse_at(Place::File(at)) else {
                continue;
            };
            if dict.get(b"Type") != Some(&Obj::Name(b"ObjStm".to_vec())) {
                continue;
            }
            let (Some(Obj::Int(count)), Some(Obj::Int(first))) =
                (dict.get(b"N").cloned(), dict.get(b"First").cloned())
            else {
                continue;
            };
            let Ok(data) = self.stream(n, MAX_OBJECT_STREAM_BYTES) else {
                continue;
            };
            let (Ok(count), Ok(first)) = (usize::try_from(count), usize::try_from(first)) else {
                continue;
            };
            let slot = self.streams.len();
            let mut header = Vec::new();
            {
                let mut tokens = self.tokens;
                let mut p = Parser {
                    src: &data[..first.min(data.len())],
                    pos: 0,
                    tokens: &mut tokens,
                };
                for _ in 0..count.min(MAX_OBJECTS) {
                    let (Some(Obj::Int(num)), Some(Obj::Int(off))) = (p.object(0), p.object(0))
                    else {
                        break;
                    };
                    header.push((num, off));
                }
                self.tokens = tokens;
            }
            for (num, off) in header {
                let (Ok(num), Some(at)) = (
                    u32::try_from(num),
                    usize::try_from(off).ok().and_then(|o| o.checked_add(first)),
                ) else {
                    continue;
                };
                if at < data.len() && self.index.len() < MAX_OBJECTS {
                    self.index.entry(num).or_insert(Place::Stream(slot, at));
                }
            }
            self.streams.push(data);
        }
    }

    /// The number of the file's object that byte `at` is in.
    fn object_containing(&self, at: usize) -> Option<u32> {
        let i = self.starts.partition_point(|(start, _)| *start <= at);
        i.checked_sub(1).map(|i| self.starts[i].1)
    }

    /// The file specifications: the objects holding an `/EF` key.
    fn file_specs(&mut self) -> Vec<Obj> {
        let mut places = Vec::new();
        let mut at = 0;
        while let Some(p) = find(self.file, b"/EF", at) {
            at = p + 3;
            if places.len() >= MAX_EF_KEYS {
                break;
            }
            if self
                .file
                .get(p + 3)
                .is_some_and(|b| !is_white(*b) && !is_delimiter(*b))
            {
                continue;
            }
            if let Some(n) = self.object_containing(p) {
                if let Some(place) = self.index.get(&n) {
                    places.push(*place);
                }
            }
        }
        for (s, data) in self.streams.iter().enumerate() {
            let mut at = 0;
            while let Some(p) = find(data, b"/EF", at) {
                at = p + 3;
                if places.len() >= MAX_EF_KEYS {
                    break;
                }
                if data
                    .get(p + 3)
                    .is_some_and(|b| !is_white(*b) && !is_delimiter(*b))
                {
                    continue;
                }
                // The object of the stream that starts last before the key.
                let start = self
                    .index
                    .values()
                    .filter_map(|place| match place {
                        Place::Stream(slot, o) if *slot == s && *o <= p => Some(*o),
                        _ => None,
                    })
                    .max();
                if let Some(o) = start {
                    places.push(Place::Stream(s, o));
                }
            }
        }
        let mut specs = Vec::new();
        for place in places {
            if specs.len() >= MAX_FILE_SPECS {
                break;
            }
            let Some((obj, _)) = self.parse_at(place) else {
                continue;
            };
            // The key may be in a dictionary nested in the object (an annotation's /FS).
            let mut stack = vec![obj];
            while let Some(o) = stack.pop() {
                match o {
                    Obj::Dict(_)
                        if o.get(b"EF").is_some()
                            && !specs.contains(&o)
                            && specs.len() < MAX_FILE_SPECS =>
                    {
                        specs.push(o);
                    }
                    Obj::Dict(entries) => stack.extend(entries.into_iter().map(|(_, v)| v)),
                    Obj::Array(items) => stack.extend(items),
                    _ => {}
                }
            }
        }
        specs
    }
}

/// `N G` before the `obj` keyword at `p`.
fn object_number_before(file: &[u8], p: usize) -> Option<u32> {
    let mut i = p;
    let digits_back = |i: &mut usize| -> Option<(usize, usize)> {
        let end = *i;
        while *i > 0 && file[*i - 1].is_ascii_digit() && end - *i < 10 {
            *i -= 1;
        }
        (*i < end).then_some((*i, end))
    };
    let spaces_back = |i: &mut usize| -> bool {
        let end = *i;
        while *i > 0 && is_white(file[*i - 1]) && end - *i < 64 {
            *i -= 1;
        }
        *i < end
    };
    if !spaces_back(&mut i) {
        return None;
    }
    digits_back(&mut i)?;
    if !spaces_back(&mut i) {
        return None;
    }
    let (start, end) = digits_back(&mut i)?;
    if start > 0 && !is_white(file[start - 1]) && !is_delimiter(file[start - 1]) {
        return None;
    }
    std::str::from_utf8(&file[start..end]).ok()?.parse().ok()
}

/// A stream's data through its filters: none, or FlateDecode without predictor.
fn decode(dict: &Obj, data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let filters: Vec<Vec<u8>> = match dict.get(b"Filter") {
        None | Some(Obj::Null) => Vec::new(),
        Some(Obj::Name(n)) => vec![n.clone()],
        Some(Obj::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Obj::Name(n) => Some(n.clone()),
                _ => None,
            })
            .collect(),
        Some(_) => return Err("filtre de flux illisible".into()),
    };
    let predictor = |params: Option<&Obj>| match params {
        Some(Obj::Array(a)) => a
            .iter()
            .any(|p| matches!(p.get(b"Predictor"), Some(Obj::Int(n)) if *n > 1)),
        Some(p) => matches!(p.get(b"Predictor"), Some(Obj::Int(n)) if *n > 1),
        None => false,
    };
    if predictor(dict.get(b"DecodeParms")) {
        return Err("flux compressé avec prédicteur, non pris en charge".into());
    }
    match filters.as_slice() {
        [] if data.len() <= limit => Ok(data.to_vec()),
        [] => Err(format!("fichier de plus de {limit} octets")),
        [f] if f == b"FlateDecode" || f == b"Fl" => {
            miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, limit).map_err(|e| {
                if e.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput {
                    format!("fichier de plus de {limit} octets une fois décompressé")
                } else {
                    "données compressées (FlateDecode) corrompues".into()
                }
            })
        }
        [f] => Err(format!(
            "filtre /{} non pris en charge",
            String::from_utf8_lossy(f)
        )),
        _ => Err("plusieurs filtres enchaînés, non pris en charge".into()),
    }
}

/// The embedded files of a PDF, each read within `limit` bytes. A file that is not a PDF, or
/// has none, gives none.
pub(crate) fn embedded_files(file: &[u8], limit: usize) -> Vec<Embedded> {
    if file.len() > MAX_PDF_BYTES || find(&file[..file.len().min(1024)], b"%PDF-", 0).is_none() {
        return Vec::new();
    }
    if find(file, b"/EF", 0).is_none() && find(file, b"/ObjStm", 0).is_none() {
        return Vec::new();
    }
    let mut pdf = Pdf::index(file);
    pdf.open_object_streams();
    let encrypted = find(file, b"/Encrypt", 0).is_some();
    let mut out = Vec::new();
    for spec in pdf.file_specs() {
        let name = [b"UF".as_slice(), b"F"]
            .iter()
            .find_map(|k| match spec.get(k).and_then(|v| pdf.resolve(v)) {
                Some(Obj::Str(s)) => Some(text_string(&s)),
                _ => None,
            })
            .map(|n| {
                n.trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect()
            });
        let ef = spec.get(b"EF").cloned().and_then(|ef| pdf.resolve(&ef));
        let stream = ef
            .as_ref()
            .and_then(|ef| ef.get(b"UF").or_else(|| ef.get(b"F")).cloned());
        let content = match stream {
            _ if encrypted => Err("le PDF est chiffré".into()),
            Some(Obj::Ref(n)) => pdf.stream(n, limit),
            _ => Err("la spécification de fichier ne désigne aucun flux".into()),
        };
        out.push(Embedded { name, content });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PDF with `objects` (number, body) and a cross-reference table (offsets right).
    pub(crate) fn pdf(objects: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::new();
        for (n, body) in objects {
            offsets.push((*n, out.len()));
            out.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n", objects.len() + 1).as_bytes());
        out.extend_from_slice(b"0000000000 65535 f \n");
        for (_, o) in &offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut s = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        s.extend_from_slice(data);
        s.extend_from_slice(b"\nendstream");
        s
    }

    fn catalogue() -> (u32, Vec<u8>) {
        (
            1,
            b"<< /Type /Catalog /Names << /EmbeddedFiles << /Names [(a.json) 2 0 R] >> >> >>"
                .to_vec(),
        )
    }

    #[test]
    fn a_plain_embedded_file_is_read_with_its_name() {
        let file = pdf(&[
            catalogue(),
            (
                2,
                b"<< /Type /Filespec /F (ordonnance.json) /UF <feff006f00720064006f002e006a0073006f006e> /EF << /F 3 0 R >> >>".to_vec(),
            ),
            (3, stream("/Type /EmbeddedFile /Subtype /application#2Fjson", b"{\"a\":1}")),
        ]);
        let files = embedded_files(&file, 1000);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].name.as_deref(), Some("ordo.json"));
        assert_eq!(files[0].content.as_deref().unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn a_compressed_file_in_an_object_stream_is_read_within_its_limit() {
        let json = vec![b' '; 5000];
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&json, 6);
        // The file specification is object 2 inside object stream 5.
        let spec = b"<< /Type /Filespec /F (x.json) /EF << /F 3 0 R >> >>";
        let header = b"2 0 ";
        let mut objstm = header.to_vec();
        objstm.extend_from_slice(spec);
        let objstm = miniz_oxide::deflate::compress_to_vec_zlib(&objstm, 6);
        let file = pdf(&[
            catalogue(),
            (
                3,
                stream("/Type /EmbeddedFile /Filter /FlateDecode", &packed),
            ),
            (
                5,
                stream(
                    &format!(
                        "/Type /ObjStm /N 1 /First {} /Filter [/FlateDecode]",
                        header.len()
                    ),
                    &objstm,
                ),
            ),
        ]);
        let files = embedded_files(&file, 6000);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].name.as_deref(), Some("x.json"));
        assert_eq!(files[0].content.as_ref().unwrap().len(), 5000);
        let files = embedded_files(&file, 4000);
        let err = files[0].content.as_ref().unwrap_err();
        assert!(err.contains("plus de 4000 octets"), "{err}");
    }

    #[test]
    fn a_wrong_length_is_read_up_to_endstream() {
        let mut body = b"<< /Length 99999 >>\nstream\n{}\nendstream".to_vec();
        let file = pdf(&[
            catalogue(),
            (2, b"<< /EF << /F 3 0 R >> /F (a.json) >>".to_vec()),
            (3, std::mem::take(&mut body)),
        ]);
        let files = embedded_files(&file, 100);
        assert_eq!(files[0].content.as_deref().unwrap(), b"{}");
    }

    #[test]
    fn hostile_pdfs_end_without_panic() {
        let deep = format!("<< /EF {}1{} >>", "[".repeat(100_000), "]".repeat(100_000));
        let loop_ref = b"<< /EF 2 0 R /F 2 0 R >>".to_vec();
        let inputs: Vec<Vec<u8>> = vec![
            pdf(&[(2, deep.into_bytes())]),
            pdf(&[(2, loop_ref)]),
            pdf(&[
                (2, b"<< /EF << /F 3 0 R >> >>".to_vec()),
                (3, b"<< /Length -5 >> stream".to_vec()),
            ]),
            pdf(&[
                (2, b"<< /EF << /F 3 0 R >> >>".to_vec()),
                (3, stream("/Filter /FlateDecode", b"garbage")),
            ]),
            pdf(&[
                (2, b"<< /EF << /F 3 0 R >> >>".to_vec()),
                (3, stream("/Filter /LZWDecode", b"x")),
            ]),
            pdf(&[(
                5,
                stream("/Type /ObjStm /N 99999999 /First 999999999999", b"1 2 3"),
            )]),
            b"%PDF-1.4 /EF 1 0 obj << /EF (".to_vec(),
            b"%PDF-1.4 /EF obj obj 0 obj 99999999999 0 obj <".to_vec(),
            [
                b"%PDF-1.4\n".as_slice(),
                &b"1 0 obj << /EF << /F 1 0 R >> >> endobj\n".repeat(10_000),
            ]
            .concat(),
        ];
        for input in inputs {
            for f in embedded_files(&input, 1000) {
                let _ = f.content;
            }
        }
    }

    #[test]
    fn an_encrypted_pdf_says_so() {
        let mut file = pdf(&[
            catalogue(),
            (2, b"<< /EF << /F 3 0 R >> /F (ordonnance.json) >>".to_vec()),
            (3, stream("", b"xx")),
        ]);
        file.extend_from_slice(b"trailer << /Encrypt 9 0 R >>");
        let files = embedded_files(&file, 100);
        assert_eq!(files[0].name.as_deref(), Some("ordonnance.json"));
        assert!(files[0].content.as_ref().unwrap_err().contains("chiffré"));
    }
}
