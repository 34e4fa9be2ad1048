//! SMTP commands as the session reads them (mta/src/session/mod.rs): bytes fed to the
//! re-exported smtp-proto `RequestReceiver` in chunks, so that commands split across reads are
//! exercised; after DATA or BDAT, the rest goes to the data receivers.
//!
//! The first input byte sets the chunk size (1..=256), the rest is the client's stream.

use mshub_mta::codec::{BdatReceiver, DataReceiver, Request, RequestReceiver, SyntaxError};

enum State {
    Command,
    Data(DataReceiver),
    Bdat(BdatReceiver),
}

pub fn run(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk) + 1;
    let mut receiver = RequestReceiver::default();
    let mut state = State::Command;
    let mut message = Vec::new();
    for piece in stream.chunks(chunk) {
        let mut bytes = piece.iter();
        while !bytes.as_slice().is_empty() {
            match &mut state {
                State::Command => match receiver.ingest(&mut bytes).map(Request::into_owned) {
                    Ok(Request::Data) => state = State::Data(DataReceiver::new()),
                    // The session refuses chunks over its size limit; a fuzzer's BDAT must not
                    // make the harness allocate gigabytes either.
                    Ok(Request::Bdat {
                        chunk_size,
                        is_last,
                    }) => state = State::Bdat(BdatReceiver::new(chunk_size.min(1 << 20), is_last)),
                    Ok(_) => {}
                    Err(SyntaxError::NeedsMoreData { .. }) => break,
                    Err(_) => {}
                },
                State::Data(rx) => {
                    if rx.ingest(&mut bytes, &mut message) {
                        message.clear();
                        state = State::Command;
                    }
                }
                State::Bdat(rx) => {
                    if rx.ingest(&mut bytes, &mut message) {
                        message.clear();
                        state = State::Command;
                    }
                }
            }
        }
    }
}
