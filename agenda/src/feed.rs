//! The patient's private ICS feed: a secret URL token (32 random bytes, base64url) that a
//! calendar application subscribes to. Only the SHA-256 of the token is a lookup key; the
//! token itself is kept sealed to the patient so that the webmail can show it again.
//!
//! Trees: `agenda-feed` sha256(token) → account id; `agenda-feed-owner` account → sealed token.

use calcard::icalendar::{
    ICalendarComponentType, ICalendarMethod, ICalendarParameter, ICalendarParameterName,
    ICalendarParameterValue, ICalendarParticipationStatus, ICalendarProperty, ICalendarStatus,
    ICalendarValue,
};
use sha2::{Digest, Sha256};

use mshub_store::{AccountId, Batch, Tree};

use crate::ics::{parse_calendar, Calendar};
use crate::{Agenda, AgendaError, Result};

const FEEDS: Tree = Tree("agenda-feed");
const FEED_OWNERS: Tree = Tree("agenda-feed-owner");

/// RFC 4648 §5 base64url without padding.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl Agenda {
    /// The patient's feed token, created on first use.
    pub fn feed_token(&self, patient: AccountId) -> Result<String> {
        if let Some(sealed) = self.store.kv().get(FEED_OWNERS, &patient.to_key())? {
            let plain = self.store.open_sealed(patient, &sealed)?;
            return String::from_utf8(plain).map_err(|e| AgendaError::Data(e.to_string()));
        }
        self.replace_feed(patient)
    }

    /// Revokes the patient's feed token (subscribed applications stop seeing the agenda) and
    /// returns a new one.
    pub fn revoke_feed(&self, patient: AccountId) -> Result<String> {
        self.replace_feed(patient)
    }

    fn replace_feed(&self, patient: AccountId) -> Result<String> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|e| AgendaError::Random(e.to_string()))?;
        let token = base64url(&secret);
        let sealed = self.store.seal(patient, token.as_bytes())?;
        self.store.retry(crate::appointments::lane(patient), || {
            let current = self.store.kv().get(FEED_OWNERS, &patient.to_key())?;
            let mut batch = Batch::new();
            if let Some(old) = &current {
                let old = self.store.open_sealed(patient, old)?;
                batch.remove(FEEDS, token_hash(&String::from_utf8_lossy(&old)));
            }
            batch.check(FEED_OWNERS, patient.to_key(), current);
            batch.put(FEED_OWNERS, patient.to_key(), sealed.clone());
            batch.put(FEEDS, token_hash(&token), patient.to_key());
            Ok((batch, ()))
        })?;
        Ok(token)
    }

    /// The `text/calendar` body of the feed of `token` (METHOD:PUBLISH, RFC 5546 §3.2.1), or
    /// `None` for an unknown or revoked token.
    pub fn feed(&self, token: &str) -> Result<Option<String>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some(owner) = self.store.kv().get(FEEDS, &token_hash(token))? else {
            return Ok(None);
        };
        let id = <[u8; 8]>::try_from(owner.as_slice())
            .map_err(|_| AgendaError::Data("feed owner is not an account id".into()))?;
        Ok(Some(self.calendar_of(AccountId(u64::from_be_bytes(id)))?))
    }

    /// All the patient's appointments as one VCALENDAR (the feed, and the export on closing).
    pub fn calendar_of(&self, patient: AccountId) -> Result<String> {
        let mut out = Calendar::new();
        out.root_property(
            ICalendarProperty::Method,
            ICalendarValue::Method(ICalendarMethod::Publish),
        );
        let me = self
            .directory
            .account(patient)?
            .map(|a| a.address.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        for record in self.records().all(patient)? {
            let Ok(mut cal) = parse_calendar(&record.ics) else {
                continue;
            };
            let a = &record.appointment;
            for comp in &mut cal.components {
                if comp.component_type != ICalendarComponentType::VEvent {
                    continue;
                }
                // The patient's answer as recorded (RFC 5545 §3.2.12), not as invited.
                for entry in comp
                    .entries
                    .iter_mut()
                    .filter(|e| e.name == ICalendarProperty::Attendee)
                {
                    let mine = entry
                        .calendar_address()
                        .is_some_and(|addr| addr.trim().eq_ignore_ascii_case(&me));
                    if mine {
                        entry
                            .params
                            .retain(|p| p.name != ICalendarParameterName::Partstat);
                        entry.params.push(ICalendarParameter {
                            name: ICalendarParameterName::Partstat,
                            value: ICalendarParameterValue::Partstat(match a.partstat {
                                crate::PartStat::NeedsAction => {
                                    ICalendarParticipationStatus::NeedsAction
                                }
                                crate::PartStat::Accepted => ICalendarParticipationStatus::Accepted,
                                crate::PartStat::Declined => ICalendarParticipationStatus::Declined,
                            }),
                        });
                    }
                }
                if a.status == crate::Status::Cancelled {
                    // RFC 5546 §3.2.5: a cancelled event stays, marked so, at the sequence of
                    // its cancellation.
                    comp.entries.retain(|e| {
                        e.name != ICalendarProperty::Status && e.name != ICalendarProperty::Sequence
                    });
                    comp.add_property(
                        ICalendarProperty::Status,
                        ICalendarValue::Status(ICalendarStatus::Cancelled),
                    );
                    comp.add_property(
                        ICalendarProperty::Sequence,
                        ICalendarValue::Integer(a.sequence),
                    );
                }
            }
            out.add_timezones_of(&cal);
            for &id in &cal.components[0].component_ids {
                if cal
                    .component_by_id(id)
                    .is_some_and(|c| c.component_type == ICalendarComponentType::VEvent)
                {
                    out.add(&cal, id);
                }
            }
        }
        Ok(out.to_ics())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_has_no_padding_and_url_safe_alphabet() {
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(&[0u8; 32]).len(), 43);
    }
}
