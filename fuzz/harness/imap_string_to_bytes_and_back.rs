//! Known-answer inverse (like imap-codec's `*_to_bytes_and_back`): what the IMAP writers
//! produce, the parser reads back unchanged.
//! - `write::string` (quoted or literal, RFC 9051 §4.3) of two strings put in a LOGIN command
//!   parses back to the same user and password;
//! - `mutf7::decode(mutf7::encode(name)) == Some(name)` (RFC 9051 §5.1.3 mailbox names).
//!
//! The input is split at its first 0xFF byte (never in UTF-8) into user and password.

use mshub_imap::codec::{mutf7, parse_command, write, Command};

pub fn run(data: &[u8]) {
    let (user, password) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password))
    else {
        return;
    };

    for name in [user, password] {
        let encoded = mutf7::encode(name);
        assert_eq!(
            mutf7::decode(&encoded).as_deref(),
            Some(name),
            "mUTF-7 of {name:?}: {encoded:?}"
        );
    }

    // RFC 9051 §4.3: a string (quoted or literal) must not contain NUL.
    if user.contains('\0') || password.contains('\0') {
        return;
    }
    let mut line = b"a LOGIN ".to_vec();
    write::string(&mut line, user.as_bytes());
    line.push(b' ');
    write::string(&mut line, password.as_bytes());
    let parsed = parse_command(&line);
    let expected = Command::Login {
        user: user.to_string(),
        password: password.to_string(),
    };
    match parsed {
        Ok(t) => assert_eq!(
            t.command,
            expected,
            "line {:?}",
            String::from_utf8_lossy(&line)
        ),
        Err(e) => panic!(
            "written line {:?} does not parse: {e:?}",
            String::from_utf8_lossy(&line)
        ),
    }
}
