//! The trust-space rules of DESIGN §4, decided on typed values: who may send as whom, to whom,
//! through which door. Each refusal is a [`Refusal`] with its one reply.

use std::sync::Arc;

use mshub_directory::{
    Account, AccountKind, Address, Directory, Domain, DomainRole, Ins, TlsPolicy,
};

use crate::conversation::Conversations;
use crate::peer::{Authenticity, PeerCertificate};
use crate::refusal::Refusal;
use crate::MtaError;

/// Which door a session came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// Port 25: hospital systems and peer operators. STARTTLS required.
    Relay,
    /// Ports 587 (STARTTLS) and 465 (implicit TLS): mail clients. AUTH required.
    Submission,
}

/// What the session knows about its client when a policy question is asked.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub door: Door,
    pub tls: bool,
    /// The client certificate presented and verified against the trust space's CA, if any.
    pub peer_certificate: Option<&'a PeerCertificate>,
    pub account: Option<&'a Account>,
    /// The bench-only plaintext exception applies to this connection.
    pub plaintext_allowed: bool,
}

/// A recipient the policy accepted.
#[derive(Debug, Clone)]
pub enum Recipient {
    Local(Box<Account>),
    Remote { address: Address, domain: Domain },
}

impl Recipient {
    pub fn address(&self) -> &Address {
        match self {
            Recipient::Local(a) => &a.address,
            Recipient::Remote { address, .. } => address,
        }
    }
}

pub struct Policy {
    directory: Arc<Directory>,
    conversations: Arc<Conversations>,
}

impl Policy {
    pub fn new(directory: Arc<Directory>, conversations: Arc<Conversations>) -> Self {
        Self {
            directory,
            conversations,
        }
    }

    /// The addresses `account` may send as: its own and its organisations'.
    pub fn allowed_senders(&self, account: &Account) -> Result<Vec<Address>, MtaError> {
        let mut out = vec![account.address.clone()];
        out.extend(
            self.directory
                .organisations_of(&account.address)?
                .into_iter()
                .map(|o| o.address),
        );
        Ok(out)
    }

    /// MAIL FROM: `reverse_path` is `None` for the null sender `<>`. On success, how the hub
    /// knows the sender (what the filers may trust).
    pub fn check_sender(
        &self,
        client: Client<'_>,
        reverse_path: Option<&Address>,
    ) -> Result<Authenticity, Refusal> {
        if !client.tls && !client.plaintext_allowed {
            return Err(Refusal::TlsRequired);
        }
        match (client.door, client.account) {
            (Door::Submission, None) => Err(Refusal::AuthRequired),
            (door, Some(account)) => {
                let authenticated = Authenticity::Account { id: account.id };
                let Some(from) = reverse_path else {
                    // A system that logged in on the relay may return a delivery report; a
                    // mail client (submission) or a patient never has a reason to.
                    return if door == Door::Relay && !account.kind.is_patient() {
                        Ok(authenticated)
                    } else {
                        Err(Refusal::NotYourAddress("<>".into()))
                    };
                };
                if self
                    .allowed_senders(account)
                    .map_err(storage_failed)?
                    .contains(from)
                {
                    Ok(authenticated)
                } else {
                    Err(Refusal::NotYourAddress(from.to_string()))
                }
            }
            (Door::Relay, None) => {
                let Some(from) = reverse_path else {
                    // The null sender is how peers return delivery reports (RFC 5321 §4.5.5):
                    // only from a peer operator whose certificate names a trusted domain.
                    return match client.peer_certificate {
                        Some(cert)
                            if self.vouches_for_some_peer(cert).map_err(storage_failed)? =>
                        {
                            Ok(Authenticity::PeerCertificate)
                        }
                        _ => Err(Refusal::NullSenderNeedsPeer),
                    };
                };
                let domain = from.domain();
                let entry = self
                    .directory
                    .domain(&domain)
                    .map_err(storage_failed)?
                    .ok_or_else(|| Refusal::SenderOutsideTrustSpace(domain.to_string()))?;
                let vouched = client.peer_certificate.map(|c| c.vouches_for(&entry));
                match entry.role {
                    DomainRole::Local => Err(Refusal::SenderNeedsAuthentication(from.to_string())),
                    DomainRole::Trusted {
                        tls: TlsPolicy::MutualTls,
                        ..
                    } => match vouched {
                        Some(true) => Ok(Authenticity::PeerCertificate),
                        Some(false) => Err(Refusal::CertificateNotForDomain(domain.to_string())),
                        None => Err(Refusal::ClientCertificateRequired(domain.to_string())),
                    },
                    // Accepted and delivered; with no certificate naming the domain it is not
                    // authenticated, so nothing in it is filed.
                    DomainRole::Trusted { .. } if vouched == Some(true) => {
                        Ok(Authenticity::PeerCertificate)
                    }
                    DomainRole::Trusted { .. } => Ok(Authenticity::Unauthenticated),
                }
            }
        }
    }

    /// Whether `cert` speaks for at least one trusted peer domain.
    fn vouches_for_some_peer(&self, cert: &PeerCertificate) -> Result<bool, MtaError> {
        Ok(self
            .directory
            .domains()?
            .iter()
            .any(|entry| cert.vouches_for(entry)))
    }

    /// RCPT TO, for a transaction whose sender is known as `authenticity`.
    pub fn check_recipient(
        &self,
        client: Client<'_>,
        authenticity: Authenticity,
        raw: &str,
    ) -> Result<Recipient, Refusal> {
        let storage = |_| Refusal::StorageFailed;
        let (local_part, domain) = raw
            .rsplit_once('@')
            .ok_or_else(|| Refusal::InvalidAddress(format!("{raw} has no domain")))?;
        let domain =
            Domain::try_from(domain).map_err(|e| Refusal::InvalidAddress(e.to_string()))?;
        if domain == self.directory.patient_domain() {
            if let Err(e) = Ins::try_from(local_part) {
                let reason = match e {
                    mshub_directory::DirectoryError::InvalidIns { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Err(Refusal::InvalidIns {
                    address: raw.to_string(),
                    reason: format!("its INS is invalid: {reason}"),
                });
            }
        }
        let address = Address::try_from(raw).map_err(|e| Refusal::InvalidAddress(e.to_string()))?;
        let sender_patient = client.account.filter(|a| a.kind.is_patient());
        match self
            .directory
            .domain(&domain)
            .map_err(storage)?
            .map(|e| e.role)
        {
            Some(DomainRole::Local) => {
                let account = self
                    .directory
                    .account_by_address(&address)
                    .map_err(storage)?
                    .ok_or_else(|| Refusal::UnknownRecipient(address.to_string()))?;
                let why = match account.lifecycle {
                    mshub_directory::Lifecycle::Opposed { .. } => {
                        Some("the patient opposed the creation of this health space")
                    }
                    mshub_directory::Lifecycle::Closed { .. } => {
                        Some("the patient closed this health space")
                    }
                    mshub_directory::Lifecycle::Destroyed { .. } => {
                        Some("this health space was closed and no longer exists")
                    }
                    _ => None,
                };
                if why.is_some() && !authenticity.is_authenticated() {
                    // DESIGN §4: an unauthenticated client learns nothing about a patient
                    // address beyond "no such recipient" (not whether a space was refused or
                    // closed).
                    return Err(Refusal::UnknownRecipient(address.to_string()));
                }
                if let Some(why) = why {
                    return Err(Refusal::SpaceNotOpen {
                        address: address.to_string(),
                        why,
                    });
                }
                if let Some(patient) = sender_patient {
                    if account.kind.is_patient() {
                        return Err(Refusal::PatientCannotWriteToPatient);
                    }
                    self.check_patient_may_answer(patient, &address)?;
                }
                Ok(Recipient::Local(Box::new(account)))
            }
            Some(DomainRole::Trusted { .. }) => {
                if client.account.is_none() {
                    return Err(Refusal::RelayDenied(address.to_string()));
                }
                if let Some(patient) = sender_patient {
                    self.check_patient_may_answer(patient, &address)?;
                }
                Ok(Recipient::Remote { address, domain })
            }
            None => Err(Refusal::RecipientOutsideTrustSpace(domain.to_string())),
        }
    }

    fn check_patient_may_answer(&self, patient: &Account, to: &Address) -> Result<(), Refusal> {
        if self
            .conversations
            .has_written(patient.id, to)
            .map_err(|_| Refusal::StorageFailed)?
        {
            Ok(())
        } else {
            Err(Refusal::PatientCannotStart(to.to_string()))
        }
    }

    /// After DATA: the headers of an authenticated sender's message.
    pub fn check_message(
        &self,
        client: Client<'_>,
        null_sender: bool,
        headers: &MessageHeaders,
        recipients: &[Recipient],
    ) -> Result<(), Refusal> {
        // RFC 3464 §2: delivery reports are multipart/report; the null sender carries nothing
        // else here (it cannot be answered, so it must not carry a message a person wrote).
        if null_sender && !headers.is_report {
            return Err(Refusal::NullSenderNotAReport);
        }
        let Some(account) = client.account else {
            // Mail from outside may not wear a local identity (the webmail shows the directory's
            // name and profession for a local From:).
            for from in &headers.from {
                if let Ok(a) = Address::try_from(from.as_str()) {
                    if self
                        .directory
                        .is_local(&a.domain())
                        .map_err(|_| Refusal::StorageFailed)?
                    {
                        return Err(Refusal::LocalFromWithoutAuth(from.clone()));
                    }
                }
            }
            return Ok(());
        };
        if headers.from.is_empty() {
            return Err(Refusal::MissingFromHeader);
        }
        let allowed = self
            .allowed_senders(account)
            .map_err(|_| Refusal::StorageFailed)?;
        for from in &headers.from {
            match Address::try_from(from.as_str()) {
                Ok(a) if allowed.contains(&a) => {}
                _ => return Err(Refusal::FromHeaderNotYours(from.clone())),
            }
        }
        if let AccountKind::Patient { .. } = account.kind {
            for r in recipients {
                let answers = self
                    .conversations
                    .is_reply(account.id, r.address(), &headers.references)
                    .map_err(|_| Refusal::StorageFailed)?;
                if !answers {
                    return Err(Refusal::PatientNotAReply);
                }
            }
        }
        Ok(())
    }
}

/// A store or directory error while deciding: nothing is accepted, the client retries.
fn storage_failed<E>(_: E) -> Refusal {
    Refusal::StorageFailed
}

/// The few headers policy and delivery read, taken once from the message.
#[derive(Debug, Clone, Default)]
pub struct MessageHeaders {
    /// Addresses of the From: header.
    pub from: Vec<String>,
    pub message_id: Option<String>,
    /// In-Reply-To and References, together.
    pub references: Vec<String>,
    /// The top-level Content-Type is `multipart/report` (a delivery or disposition report).
    pub is_report: bool,
}

impl MessageHeaders {
    pub fn parse(raw: &[u8]) -> Self {
        use mail_parser::MimeHeaders as _;
        let Some(message) = mail_parser::MessageParser::default().parse_headers(raw) else {
            return Self::default();
        };
        let from = message
            .from()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.address())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut references: Vec<String> = Vec::new();
        for value in [message.in_reply_to(), message.references()] {
            if let Some(list) = value.as_text_list() {
                references.extend(list.iter().map(|s| s.to_string()));
            }
        }
        let is_report = message.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        });
        Self {
            from,
            message_id: message.message_id().map(str::to_string),
            references,
            is_report,
        }
    }
}
