//! An IMAP command line as the server frames it (without its final CRLF, literals inline),
//! and the helpers the server runs on a line before parsing it.

use mshub_imap::codec::{literal_at_end, mutf7, parse_command, tag_of};

pub fn run(data: &[u8]) {
    let _ = parse_command(data);
    let _ = tag_of(data);
    let _ = literal_at_end(data);
    if let Ok(name) = std::str::from_utf8(data) {
        let _ = mutf7::decode(name);
    }
}
