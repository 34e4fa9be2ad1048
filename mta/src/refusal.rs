//! Every reason the MTA refuses something, each mapped to exactly one reply. The text says
//! why, in words a hospital's IT team or a mail client's user can act on.

use std::borrow::Cow;

use crate::codec::Reply;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    // ----- session and syntax -----
    /// RFC 3207 §4: the relay port needs TLS before a transaction.
    TlsRequired,
    /// RFC 4954 §4: no plaintext authentication without TLS.
    AuthNeedsTls,
    AuthRequired,
    AuthFailed,
    AuthThrottled {
        retry_after_secs: u64,
    },
    /// Too many password checks at once: nothing was checked (RFC 4954 §6, 454 4.7.0).
    AuthBusy,
    AuthAccountDisabled,
    AuthAlreadyDone,
    AuthMechanismUnsupported,
    AuthMalformed,
    AuthCancelled,
    HeloFirst,
    NestedMail,
    NeedMail,
    NeedRcpt,
    Syntax(&'static str),
    UnknownCommand,
    LineTooLong,
    TooManyCommands,
    TooManyRecipients(usize),
    MessageTooBig(usize),
    BareLineFeed,
    BadBdatSequence,
    AlreadyTls,
    NotImplemented(&'static str),
    TooManyConnections,
    // ----- trust space (DESIGN §4) -----
    SenderOutsideTrustSpace(String),
    RecipientOutsideTrustSpace(String),
    SenderNeedsAuthentication(String),
    ClientCertificateRequired(String),
    /// A certificate of the trust space's CA that does not name the sender's domain (nor is
    /// configured for it): it proves another operator's identity, not this domain's.
    CertificateNotForDomain(String),
    /// `MAIL FROM:<>` from a client that no certificate or login vouches for.
    NullSenderNeedsPeer,
    /// The null sender with something other than a delivery report.
    NullSenderNotAReport,
    NotYourAddress(String),
    FromHeaderNotYours(String),
    /// An unauthenticated client (a peer operator, a system without AUTH) wrote a From: in one
    /// of this hub's own domains: the recipient would see a local identity it never sent.
    LocalFromWithoutAuth(String),
    MissingFromHeader,
    RelayDenied(String),
    UnknownRecipient(String),
    /// The patient refused the space, or closed it: its mailbox takes no mail.
    SpaceNotOpen {
        address: String,
        why: &'static str,
    },
    InvalidIns {
        address: String,
        reason: String,
    },
    InvalidAddress(String),
    PatientCannotWriteToPatient,
    PatientCannotStart(String),
    PatientNotAReply,
    // ----- the hub itself -----
    Unavailable,
    StorageFailed,
}

impl Refusal {
    pub fn reply(&self) -> Reply {
        let r = |code, enhanced, text: Cow<'static, str>| Reply::new(code, enhanced, text);
        match self {
            Refusal::TlsRequired => r(530, "5.7.0", "Must issue a STARTTLS command first: this hub only accepts mail over TLS".into()),
            Refusal::AuthNeedsTls => r(538, "5.7.11", "Encryption required for requested authentication mechanism: use STARTTLS first".into()),
            Refusal::AuthRequired => r(530, "5.7.0", "Authentication required: log in with AUTH before sending".into()),
            Refusal::AuthFailed => r(535, "5.7.8", "Authentication credentials invalid".into()),
            Refusal::AuthThrottled { retry_after_secs } => r(454, "4.7.0", format!("Too many failed logins: try again in {retry_after_secs} s").into()),
            Refusal::AuthBusy => r(454, "4.7.0", "Temporary authentication failure: too many logins at once, try again in a few seconds".into()),
            Refusal::AuthAccountDisabled => r(535, "5.7.8", "This account is disabled: contact the hub's operator".into()),
            Refusal::AuthAlreadyDone => r(503, "5.5.1", "Already authenticated".into()),
            Refusal::AuthMechanismUnsupported => r(504, "5.5.4", "Unsupported authentication mechanism: use PLAIN or LOGIN".into()),
            Refusal::AuthMalformed => r(501, "5.5.2", "Malformed authentication data (invalid base64 or SASL message)".into()),
            Refusal::AuthCancelled => r(501, "5.7.0", "Authentication cancelled".into()),
            Refusal::HeloFirst => r(503, "5.5.1", "Send EHLO (or HELO) first".into()),
            Refusal::NestedMail => r(503, "5.5.1", "A transaction is already in progress: RSET first".into()),
            Refusal::NeedMail => r(503, "5.5.1", "Send MAIL FROM first".into()),
            Refusal::NeedRcpt => r(503, "5.5.1", "No valid recipient: send RCPT TO first".into()),
            Refusal::Syntax(expected) => r(501, "5.5.2", format!("Syntax error, expected: {expected}").into()),
            Refusal::UnknownCommand => r(500, "5.5.1", "Command not recognised".into()),
            Refusal::LineTooLong => r(500, "5.5.6", "Line too long (RFC 5321 §4.5.3.1.4)".into()),
            Refusal::TooManyCommands => r(421, "4.7.0", "Too many commands in one connection, closing".into()),
            Refusal::TooManyRecipients(max) => r(452, "4.5.3", format!("Too many recipients: at most {max} per message").into()),
            Refusal::MessageTooBig(max) => r(552, "5.3.4", format!("Message too big: the limit is {max} bytes").into()),
            Refusal::BareLineFeed => r(550, "5.6.11", "Message refused: it contains a bare LF; lines must end with CRLF (RFC 5321 §2.3.8)".into()),
            Refusal::BadBdatSequence => r(503, "5.5.1", "BDAT cannot be mixed with DATA, and needs MAIL and RCPT first".into()),
            Refusal::AlreadyTls => r(503, "5.5.1", "TLS is already active".into()),
            Refusal::NotImplemented(what) => r(502, "5.5.1", format!("{what} is not implemented").into()),
            Refusal::TooManyConnections => r(421, "4.7.0", "Too many connections from your address, try again later".into()),
            Refusal::SenderOutsideTrustSpace(d) => r(550, "5.7.1", format!("Sender domain {d} is not in the health messaging trust space").into()),
            Refusal::RecipientOutsideTrustSpace(d) => r(550, "5.7.1", format!("Recipient domain {d} is not in the health messaging trust space").into()),
            Refusal::SenderNeedsAuthentication(a) => r(530, "5.7.0", format!("Authentication required to send as {a}, a local address").into()),
            Refusal::ClientCertificateRequired(d) => r(550, "5.7.1", format!("Mail from {d} must come with a client certificate of the trust space").into()),
            Refusal::CertificateNotForDomain(d) => r(550, "5.7.1", format!("Your client certificate does not name {d}: it cannot send for that domain").into()),
            Refusal::NullSenderNeedsPeer => r(550, "5.7.1", "The null sender is accepted only from an authenticated peer operator (client certificate of the trust space) or a logged-in system".into()),
            Refusal::NullSenderNotAReport => r(550, "5.7.1", "The null sender may only carry a delivery report (multipart/report, RFC 3464)".into()),
            Refusal::NotYourAddress(a) => r(550, "5.7.1", format!("You may not send as {a}: use your own address or an organisation mailbox you belong to").into()),
            Refusal::FromHeaderNotYours(a) => r(550, "5.7.1", format!("The From: header {a} is not an address you may send as").into()),
            Refusal::LocalFromWithoutAuth(a) => r(550, "5.7.1", format!("The From: header {a} is an address of this hub: authenticate to send as it").into()),
            Refusal::MissingFromHeader => r(550, "5.7.1", "The message has no From: header".into()),
            Refusal::RelayDenied(a) => r(550, "5.7.1", format!("Relaying to {a} denied: authenticate to send outside this hub").into()),
            Refusal::UnknownRecipient(a) => r(550, "5.1.1", format!("No such recipient here: {a}").into()),
            Refusal::SpaceNotOpen { address, why } => r(550, "5.1.1", format!("{address} does not receive mail: {why}").into()),
            Refusal::InvalidIns { address, reason } => r(553, "5.1.3", format!("{address} is not a valid patient address: {reason}").into()),
            Refusal::InvalidAddress(reason) => r(553, "5.1.3", format!("Invalid address: {reason}").into()),
            Refusal::PatientCannotWriteToPatient => r(550, "5.7.1", "A patient cannot write to another patient".into()),
            Refusal::PatientCannotStart(a) => r(550, "5.7.1", format!("A patient can only answer a professional who wrote first; {a} has not written to you").into()),
            Refusal::PatientNotAReply => r(550, "5.7.1", "A patient can only answer a message: this one does not reply to a message the professional sent you".into()),
            Refusal::Unavailable => r(421, "4.3.2", "Service shutting down, try again later".into()),
            Refusal::StorageFailed => r(451, "4.3.0", "Temporary storage failure, nothing was accepted: try again later".into()),
        }
    }

    /// Replies after which the server closes the connection.
    pub fn closes(&self) -> bool {
        self.reply().code == 421
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.reply().fmt(f)
    }
}
