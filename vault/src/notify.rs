//! Notifications to the patient: a plain-text message (RFC 5322, UTF-8) appended to the
//! patient's INBOX; the append publishes the change event the webmail waits on.

use std::collections::BTreeSet;

use mshub_directory::Account;
use mshub_store::{SpecialUse, Store};

use crate::Result;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 2047 encoded-word for a header holding non-ASCII text.
fn encoded_word(text: &str) -> String {
    if text.is_ascii() {
        text.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", base64(text.as_bytes()))
    }
}

/// RFC 5322 §3.3 date-time, in UTC.
fn rfc5322_date(unix: i64) -> String {
    // Civil date from days since the epoch (H. Hinnant's algorithm).
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Appends a notification to the patient's INBOX.
pub(crate) fn notify(
    store: &Store,
    hub_domain: &str,
    patient: &Account,
    subject: &str,
    body: &str,
) -> Result<()> {
    let now = mshub_store::now();
    let n = store.next_counter("vault-notification", 1)?;
    let body = body.replace("\r\n", "\n").replace('\n', "\r\n");
    let message = format!(
        "From: =?UTF-8?B?{}?= <ne-pas-repondre@{hub_domain}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <vault-{n}@{hub_domain}>\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         {body}",
        base64("Vos documents de santé".as_bytes()),
        to = patient.address,
        subject = encoded_word(subject),
        date = rfc5322_date(now),
    );
    let inbox = store.special_mailbox(patient.id, SpecialUse::Inbox)?;
    store.append(inbox.id, message.as_bytes(), BTreeSet::new(), now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_709_210_096),
            "Thu, 29 Feb 2024 12:34:56 +0000"
        );
    }
}
