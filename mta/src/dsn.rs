//! Delivery status notifications (RFC 3464): a `multipart/report` with a human-readable part
//! (French, then English), the `message/delivery-status` part, and the returned headers or
//! message (RFC 3461 RET).

use serde::{Deserialize, Serialize};

use mshub_directory::Address;

use crate::date;

/// DSN requests of one recipient (RFC 3461 §4.1, §4.2), as the RCPT command gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnRequest {
    /// NOTIFY flags as smtp-proto encodes them (SUCCESS, FAILURE, DELAY, NEVER).
    pub notify: u64,
    /// ORCPT, as given.
    pub orcpt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    /// Delivered to the recipient's mailbox (asked for with NOTIFY=SUCCESS).
    Delivered,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DsnRecipient {
    pub address: Address,
    pub orcpt: Option<String>,
    pub action: Action,
    /// RFC 3463 status, e.g. `5.1.1` or `4.4.1`.
    pub status: String,
    /// What the remote server said, or why no server could be reached.
    pub diagnostic: String,
}

pub struct Report<'a> {
    pub reporting_mta: &'a str,
    pub postmaster: &'a Address,
    pub to: &'a Address,
    pub env_id: Option<&'a str>,
    pub arrival: i64,
    pub recipients: &'a [DsnRecipient],
    pub original: &'a [u8],
    pub ret_full: bool,
}

/// The end of the original's header section (the blank line), or all of it.
fn headers_of(message: &[u8]) -> &[u8] {
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| &message[..p + 2])
        .unwrap_or(message)
}

/// RFC 3461 §4.2: ORCPT is `addr-type;xtext`; anything else is written as rfc822 of the address.
fn original_recipient(r: &DsnRecipient) -> String {
    match &r.orcpt {
        Some(o) if o.contains(';') => o.clone(),
        _ => format!("rfc822;{}", r.address),
    }
}

/// A remote server's words on one line: they must not start new header lines or parts.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub fn build(report: &Report<'_>) -> Vec<u8> {
    let now = mshub_store::now();
    let boundary = format!("mshub-dsn-{}", mshub_store::BlobId::random());
    let has = |a: Action| report.recipients.iter().any(|r| r.action == a);
    let (subject, intro_fr, intro_en) = if has(Action::Failed) {
        (
            "Non distribué / Undelivered Mail Returned to Sender",
            "Votre message n'a pas pu être distribué aux destinataires suivants.",
            "Your message could not be delivered to the following recipients.",
        )
    } else if has(Action::Delayed) {
        (
            "Distribution retardée / Delayed Mail (still being retried)",
            "Votre message n'a pas encore pu être distribué ; de nouvelles tentatives auront lieu.",
            "Your message has not been delivered yet; delivery will be retried.",
        )
    } else {
        (
            "Distribué / Delivery Notification",
            "Votre message a été distribué aux destinataires suivants.",
            "Your message was delivered to the following recipients.",
        )
    };
    let mut human = format!("{intro_fr}\r\n{intro_en}\r\n\r\n");
    for r in report.recipients {
        human.push_str(&format!(
            "  <{}>: {}\r\n",
            r.address,
            one_line(&r.diagnostic)
        ));
    }

    let mut status = format!("Reporting-MTA: dns;{}\r\n", report.reporting_mta);
    if let Some(id) = report.env_id {
        status.push_str(&format!("Original-Envelope-Id: {id}\r\n"));
    }
    status.push_str(&format!(
        "Arrival-Date: {}\r\n",
        date::rfc5322(report.arrival)
    ));
    for r in report.recipients {
        status.push_str("\r\n");
        status.push_str(&format!(
            "Original-Recipient: {}\r\n",
            original_recipient(r)
        ));
        status.push_str(&format!("Final-Recipient: rfc822;{}\r\n", r.address));
        status.push_str(&format!("Action: {}\r\n", r.action.as_str()));
        status.push_str(&format!("Status: {}\r\n", r.status));
        status.push_str(&format!(
            "Diagnostic-Code: smtp;{}\r\n",
            one_line(&r.diagnostic)
        ));
    }

    let (returned_type, returned) = if report.ret_full {
        ("message/rfc822", report.original)
    } else {
        ("text/rfc822-headers", headers_of(report.original))
    };

    let mut out = Vec::with_capacity(returned.len() + 2048);
    out.extend_from_slice(
        format!(
            "From: Mail Delivery System <{postmaster}>\r\n\
             To: <{to}>\r\n\
             Subject: {subject}\r\n\
             Date: {date}\r\n\
             Message-ID: <dsn.{boundary}@{mta}>\r\n\
             Auto-Submitted: auto-replied\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status;\r\n\
             \tboundary=\"{boundary}\"\r\n\
             \r\n\
             --{boundary}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\
             \r\n\
             {human}\r\n\
             --{boundary}\r\n\
             Content-Type: message/delivery-status\r\n\
             \r\n\
             {status}\r\n\
             --{boundary}\r\n\
             Content-Type: {returned_type}\r\n\
             \r\n",
            postmaster = report.postmaster,
            to = report.to,
            date = date::rfc5322(now),
            mta = report.reporting_mta,
        )
        .as_bytes(),
    );
    out.extend_from_slice(returned);
    if !returned.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// A filing report (DESIGN §3): the message was delivered, but what it carried could not be
/// filed (e.g. a refused IHE XDM archive). Sent to the sender so that the lab or hospital
/// system learns why.
pub struct FilingReport<'a> {
    pub reporting_mta: &'a str,
    pub postmaster: &'a Address,
    pub to: &'a Address,
    pub recipient: &'a Address,
    pub message_id: Option<&'a str>,
    pub filer: &'a str,
    pub reason: &'a str,
}

pub fn filing_report(r: &FilingReport<'_>) -> Vec<u8> {
    let about = r
        .message_id
        .map(|id| format!(" <{}>", crate::conversation::normalise_message_id(id)))
        .unwrap_or_default();
    let reason = one_line(r.reason);
    format!(
        "From: Mail Delivery System <{postmaster}>\r\n\
         To: <{to}>\r\n\
         Subject: Rapport de dépôt / Filing report\r\n\
         Date: {date}\r\n\
         Message-ID: <filing.{id}@{mta}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         Votre message{about} a été distribué à <{recipient}>, mais son contenu n'a pas pu être\r\n\
         entièrement déposé ({filer}) :\r\n\
         \r\n  {reason}\r\n\r\n\
         Your message{about} was delivered to <{recipient}>, but what it carries could not all be\r\n\
         filed ({filer}):\r\n\
         \r\n  {reason}\r\n",
        postmaster = r.postmaster,
        to = r.to,
        date = date::rfc5322(mshub_store::now()),
        id = mshub_store::BlobId::random(),
        mta = r.reporting_mta,
        recipient = r.recipient,
        filer = r.filer,
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_report_has_the_three_parts_and_parses() {
        let to = Address::try_from("dr.martin@hopital.mshub.test").unwrap();
        let pm = Address::try_from("postmaster@mshub.test").unwrap();
        let original =
            b"From: dr.martin@hopital.mshub.test\r\nSubject: secret-subject\r\n\r\nsecret body\r\n";
        let recipients = [DsnRecipient {
            address: Address::try_from("dr.x@autre.test").unwrap(),
            orcpt: None,
            action: Action::Failed,
            status: "5.1.1".into(),
            diagnostic: "550 5.1.1 no such user\r\ninjected: header".into(),
        }];
        let bytes = build(&Report {
            reporting_mta: "mx.mshub.test",
            postmaster: &pm,
            to: &to,
            env_id: Some("ENV42"),
            arrival: 0,
            recipients: &recipients,
            original,
            ret_full: false,
        });
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("report-type=delivery-status"));
        assert!(text.contains("Final-Recipient: rfc822;dr.x@autre.test"));
        assert!(text.contains("Action: failed\r\nStatus: 5.1.1"));
        assert!(text.contains("Original-Envelope-Id: ENV42"));
        assert!(text.contains("Subject: secret-subject"), "headers returned");
        assert!(
            !text.contains("secret body"),
            "RET=HDRS returns headers only"
        );
        assert!(!text.contains("\r\ninjected: header"), "diagnostic folded");
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(parsed.parts.len(), 4, "multipart + three parts");
    }
}
