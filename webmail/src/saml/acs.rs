//! The Assertion Consumer Service (SAML Profiles §4.1.4.3 and §4.1.4.5): the checks of a
//! posted `SAMLResponse`, and who it says logged in.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use samael::schema::{Assertion, Response, SubjectConfirmation};

use mshub_directory::Ins;

use super::replay::Refusal;
use super::{secs_to_ms, SamlError, SamlIdentity, SamlSp, MAX_RESPONSE_AGE_SECS, NAME_ID};

/// SAML Core §3.2.2.2: the only top-level status that authenticates.
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// SAML Profiles §4.1.4.2: the confirmation method of Web Browser SSO assertions.
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// A SAMLResponse larger than this (base64) is refused unread; real ones are a few KiB.
const MAX_RESPONSE_B64: usize = 256 * 1024;

impl SamlSp {
    /// Checks a `SAMLResponse` form field (SAML Bindings §3.5.4: base64, not deflated) posted to
    /// the ACS and returns who logged in. `outstanding_request_ids` are the ids this browser's
    /// [`login_redirect`](Self::login_redirect) calls returned and not yet answered; `now` is
    /// the time every check uses (samael also checks with the system clock).
    pub fn consume(
        &self,
        saml_response_b64: &str,
        outstanding_request_ids: &[String],
        now: SystemTime,
    ) -> Result<SamlIdentity, SamlError> {
        let now_ms = unix_ms(now);
        let xml = decode_response(saml_response_b64)?;

        // 1. The unverified document: refusals only, never a source of identity.
        let raw: Response = xml.parse().map_err(|_| SamlError::Unreadable)?;
        self.check_response_envelope(&raw, outstanding_request_ids, now_ms)?;

        // 2. samael: signature against the metadata's certificates, then its own checks, on the
        //    signed part only. The assertion it returns is what was signed.
        //    samael has an `expect` on a path of its parser: a panic there is a refusal, not a
        //    dead request handler.
        let ids: Vec<&str> = outstanding_request_ids.iter().map(String::as_str).collect();
        let verified = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.sp.parse_xml_response(&xml, Some(&ids))
        }));
        let assertion = verified
            .map_err(|_| SamlError::Unreadable)?
            .map_err(SamlError::from)?;

        // 3. Our checks on the signed assertion, against `now`.
        let checked = self.check_assertion(&assertion, outstanding_request_ids, now_ms)?;
        if let Some(to) = &raw.in_response_to {
            // SAML Profiles §4.1.4.3: the Response and its bearer confirmation answer one request.
            if *to != checked.in_response_to {
                return Err(SamlError::UnknownRequest);
            }
        }
        let identity = self.identity(&assertion, checked.in_response_to)?;

        // 4. SAML Profiles §4.1.4.5: one use per assertion; and one answer per request.
        let keys = [
            format!("assertion:{}", assertion.id),
            format!("request:{}", identity.in_response_to),
        ];
        // A panic elsewhere cannot leave the cache half-written: its entries stay usable.
        let mut cache = self
            .replay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .consume(&keys, checked.valid_until_ms, now_ms)
            .map_err(|r| match r {
                Refusal::Replayed => SamlError::Replayed,
                Refusal::Full => SamlError::Busy,
            })?;
        Ok(identity)
    }

    /// The Response element around the assertion, whether or not it is signed itself.
    fn check_response_envelope(
        &self,
        raw: &Response,
        outstanding: &[String],
        now_ms: i64,
    ) -> Result<(), SamlError> {
        if raw.encrypted_assertion.is_some() {
            return Err(SamlError::Encrypted);
        }
        // SAML Profiles §4.1.4.5: over HTTP-POST the assertion must be signed, itself or through
        // the Response around it.
        let assertion_signed = raw
            .assertion
            .as_ref()
            .is_some_and(|a| a.signature.is_some());
        if raw.signature.is_none() && !assertion_signed {
            return Err(SamlError::NotSigned);
        }
        // SAML Core §3.2.2.2: only a top-level Success status authenticates.
        let status = raw
            .status
            .as_ref()
            .and_then(|s| s.status_code.value.as_deref());
        if status != Some(STATUS_SUCCESS) {
            return Err(SamlError::IdpRefused);
        }
        // SAML Bindings §3.5.5.2: Destination must be the URL the response was posted to.
        if raw.destination.as_deref() != Some(self.acs_url.as_str()) {
            return Err(SamlError::WrongDestination);
        }
        // SAML Profiles §4.1.4.2: an Issuer on the Response must be the IdP.
        if let Some(issuer) = &raw.issuer {
            if issuer.value.as_deref() != Some(self.idp_entity_id.as_str()) {
                return Err(SamlError::WrongIssuer);
            }
        }
        // SAML Core §3.2.2: InResponseTo, when present, names a request we sent.
        if let Some(to) = &raw.in_response_to {
            if !outstanding.contains(to) {
                return Err(SamlError::UnknownRequest);
            }
        }
        self.check_issue_instant(raw.issue_instant.timestamp_millis(), now_ms)
    }

    fn check_issue_instant(&self, issued_ms: i64, now_ms: i64) -> Result<(), SamlError> {
        if issued_ms > now_ms.saturating_add(self.skew_ms) {
            return Err(SamlError::NotYetValid);
        }
        let max_age_ms = secs_to_ms(MAX_RESPONSE_AGE_SECS).saturating_add(self.skew_ms);
        if issued_ms.saturating_add(max_age_ms) < now_ms {
            return Err(SamlError::Expired);
        }
        Ok(())
    }

    fn check_assertion(
        &self,
        assertion: &Assertion,
        outstanding: &[String],
        now_ms: i64,
    ) -> Result<CheckedAssertion, SamlError> {
        // SAML Profiles §4.1.4.2: the assertion's Issuer is the IdP.
        if assertion.issuer.value.as_deref() != Some(self.idp_entity_id.as_str()) {
            return Err(SamlError::WrongIssuer);
        }
        self.check_issue_instant(assertion.issue_instant.timestamp_millis(), now_ms)?;

        // SAML Profiles §4.1.4.2: an AudienceRestriction naming the SP is mandatory; SAML Core
        // §2.5.1.4: with several, the SP must be in each.
        let conditions = assertion.conditions.as_ref().ok_or(SamlError::Incomplete)?;
        let restrictions = conditions
            .audience_restrictions
            .as_deref()
            .filter(|r| !r.is_empty())
            .ok_or(SamlError::Incomplete)?;
        if !restrictions
            .iter()
            .all(|r| r.audience.contains(&self.sp_entity_id))
        {
            return Err(SamlError::WrongAudience);
        }
        // SAML Core §2.5.1.2: NotBefore <= now < NotOnOrAfter, here with the clock skew.
        let mut valid_until_ms = i64::MAX;
        if let Some(not_before) = conditions.not_before {
            if now_ms.saturating_add(self.skew_ms) < not_before.timestamp_millis() {
                return Err(SamlError::NotYetValid);
            }
        }
        if let Some(not_on_or_after) = conditions.not_on_or_after {
            let until = not_on_or_after
                .timestamp_millis()
                .saturating_add(self.skew_ms);
            if now_ms >= until {
                return Err(SamlError::Expired);
            }
            valid_until_ms = valid_until_ms.min(until);
        }

        // SAML Profiles §4.1.4.3: a bearer SubjectConfirmationData with our ACS as Recipient,
        // NotOnOrAfter in the future and InResponseTo one of our requests. The first one that
        // passes wins; otherwise the first refusal is reported.
        let subject = assertion.subject.as_ref().ok_or(SamlError::Incomplete)?;
        let mut first_refusal = None;
        let mut answered = None;
        for confirmation in subject.subject_confirmations.iter().flatten() {
            if confirmation.method.as_deref() != Some(BEARER) {
                continue;
            }
            match self.check_bearer(confirmation, outstanding, now_ms) {
                Ok(found) => {
                    answered = Some(found);
                    break;
                }
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        let (in_response_to, bearer_until_ms) =
            answered.ok_or(first_refusal.unwrap_or(SamlError::Incomplete))?;
        valid_until_ms = valid_until_ms.min(bearer_until_ms);

        // SAML Profiles §4.1.4.2: at least one AuthnStatement.
        if assertion
            .authn_statements
            .as_ref()
            .is_none_or(Vec::is_empty)
        {
            return Err(SamlError::Incomplete);
        }
        Ok(CheckedAssertion {
            in_response_to,
            valid_until_ms,
        })
    }

    /// One bearer confirmation: the request it answers and until when it is valid.
    fn check_bearer(
        &self,
        confirmation: &SubjectConfirmation,
        outstanding: &[String],
        now_ms: i64,
    ) -> Result<(String, i64), SamlError> {
        let data = confirmation
            .subject_confirmation_data
            .as_ref()
            .ok_or(SamlError::Incomplete)?;
        if data.recipient.as_deref() != Some(self.acs_url.as_str()) {
            return Err(SamlError::WrongRecipient);
        }
        if let Some(not_before) = data.not_before {
            if now_ms.saturating_add(self.skew_ms) < not_before.timestamp_millis() {
                return Err(SamlError::NotYetValid);
            }
        }
        let until = data
            .not_on_or_after
            .ok_or(SamlError::Incomplete)?
            .timestamp_millis()
            .saturating_add(self.skew_ms);
        if now_ms >= until {
            return Err(SamlError::Expired);
        }
        // No IdP-initiated login: every response answers a request of ours.
        let to = data
            .in_response_to
            .as_ref()
            .filter(|to| outstanding.contains(to))
            .ok_or(SamlError::UnknownRequest)?;
        Ok((to.clone(), until))
    }

    fn identity(
        &self,
        assertion: &Assertion,
        in_response_to: String,
    ) -> Result<SamlIdentity, SamlError> {
        let name_id = assertion
            .subject
            .as_ref()
            .and_then(|s| s.name_id.as_ref())
            .map(|n| n.value.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or(SamlError::Incomplete)?;

        // SAML Core §2.7.3: attributes, possibly split over several statements.
        let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut ins_values: Vec<String> = Vec::new();
        for attribute in assertion
            .attribute_statements
            .iter()
            .flatten()
            .flat_map(|s| &s.attributes)
        {
            let values: Vec<String> = attribute
                .values
                .iter()
                .filter_map(|v| v.value.as_deref())
                .map(|v| v.trim().to_string())
                .collect();
            let is_identity = [&attribute.name, &attribute.friendly_name]
                .into_iter()
                .any(|n| n.as_deref() == Some(self.identity_attribute.as_str()));
            if is_identity {
                ins_values.extend(values.iter().cloned());
            }
            let Some(key) = attribute.name.clone().or(attribute.friendly_name.clone()) else {
                continue;
            };
            attributes.entry(key).or_default().extend(values);
        }
        if self.identity_attribute == NAME_ID {
            ins_values = vec![name_id.clone()];
        }
        ins_values.sort();
        ins_values.dedup();
        let ins = match ins_values.as_slice() {
            [] => None,
            [one] => Some(Ins::try_from(one.as_str()).map_err(|_| SamlError::InvalidIns)?),
            _ => return Err(SamlError::AmbiguousIns),
        };
        let session_not_on_or_after = assertion
            .authn_statements
            .iter()
            .flatten()
            .filter_map(|s| s.session_not_on_or_after)
            .map(|t| t.timestamp())
            .min();
        Ok(SamlIdentity {
            name_id,
            ins,
            attributes,
            session_not_on_or_after,
            in_response_to,
        })
    }
}

struct CheckedAssertion {
    in_response_to: String,
    valid_until_ms: i64,
}

/// SAML Bindings §3.5.4: the form field is the base64 of the XML (some IdPs wrap the lines).
fn decode_response(b64: &str) -> Result<String, SamlError> {
    if b64.len() > MAX_RESPONSE_B64 {
        return Err(SamlError::Unreadable);
    }
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| SamlError::Unreadable)?;
    let xml = String::from_utf8(bytes).map_err(|_| SamlError::Unreadable)?;
    // A SAML message has no use for a DTD, and a DTD is the door to entity expansion.
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(SamlError::Unreadable);
    }
    Ok(xml)
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_with_a_dtd_is_refused_unread() {
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(r#"<!DOCTYPE x [<!ENTITY a "b">]><samlp:Response/>"#);
        assert_eq!(decode_response(&b64), Err(SamlError::Unreadable));
    }
}
