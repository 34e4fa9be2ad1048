//! The prevention calendar announced by mail: once a booster or a screening is due for a
//! patient, one notice in the patient's INBOX says so (the Agenda page shows it as well). Each
//! (rule, due date) is announced once; the record of what was announced holds only hashes
//! beside the patient's id, since "a breast screening is due" is health data.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use mail_builder::MessageBuilder;
use sha2::{Digest, Sha256};

use mshub_directory::AccountKind;
use mshub_store::{AccountId, SpecialUse, Tree};

use crate::{prevention_reminders, Agenda, AgendaError, PreventionReminder, Result};

/// patient ‖ SHA-256(rule key ‖ due date)[..16] → nothing.
const ANNOUNCED: Tree = Tree("agenda-prevention-announced");

/// The UTC calendar day of a Unix time.
pub fn day_of(unix: i64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(unix.div_euclid(86_400) + 719_163).ok()?)
}

fn announced_key(patient: AccountId, r: &PreventionReminder) -> Vec<u8> {
    let mut k = patient.to_key().to_vec();
    let digest = Sha256::digest(format!("{}|{}", r.key, r.due).as_bytes());
    k.extend_from_slice(&digest[..16]);
    k
}

impl Agenda {
    /// Announces to every patient, once each, the prevention steps due on or before `today`.
    /// Returns how many notices were sent. The binary calls it once a day.
    pub fn announce_prevention(&self, today: NaiveDate, now_unix: i64) -> Result<usize> {
        let mut sent = 0;
        for account in self.directory.accounts()? {
            let AccountKind::Patient {
                birth_date, sex, ..
            } = &account.kind
            else {
                continue;
            };
            if account.disabled {
                continue;
            }
            let done = self.vaccinations(account.id)?;
            let mut fresh = Vec::new();
            for r in prevention_reminders(*birth_date, *sex, &done, today) {
                if r.due <= today
                    && self
                        .store
                        .kv()
                        .get(ANNOUNCED, &announced_key(account.id, &r))?
                        .is_none()
                {
                    fresh.push(r);
                }
            }
            if fresh.is_empty() {
                continue;
            }
            let message = notice(
                &fresh,
                account.address.as_str(),
                self.directory.hub_domain().as_str(),
                today,
            )?;
            let keys: Vec<Vec<u8>> = fresh.iter().map(|r| announced_key(account.id, r)).collect();
            let inbox = self.store.special_mailbox(account.id, SpecialUse::Inbox)?;
            // The notice and the record that it was sent commit together: never twice, never lost.
            self.store.append_with(
                inbox.id,
                &message,
                BTreeSet::new(),
                now_unix,
                &|_, batch| {
                    for k in &keys {
                        batch.put(ANNOUNCED, k.clone(), Vec::new());
                    }
                },
            )?;
            sent += 1;
        }
        Ok(sent)
    }
}

fn notice(
    due: &[PreventionReminder],
    to: &str,
    hub_domain: &str,
    today: NaiveDate,
) -> Result<Vec<u8>> {
    let mut body = String::from(
        "Bonjour,\r\n\r\nSelon le calendrier de prévention, il est temps de penser à :\r\n\r\n",
    );
    for r in due {
        body.push_str(&format!(
            "- {} (à faire depuis le {})\r\n",
            r.label,
            r.due.format("%d/%m/%Y")
        ));
    }
    body.push_str(
        "\r\nParlez-en à votre médecin ou à votre pharmacien. Quand c'est fait, indiquez-le sur \
         la page Agenda de votre espace santé.\r\n\r\nCe message est envoyé automatiquement ; \
         merci de ne pas y répondre.\r\n",
    );
    MessageBuilder::new()
        .from((
            "Votre agenda santé".to_string(),
            format!("ne-pas-repondre@{hub_domain}"),
        ))
        .to(to.to_string())
        .subject("Rappel de prévention : vaccination ou dépistage")
        .date(mshub_store::now())
        .message_id(format!(
            "agenda-prevention-{}-{}@{hub_domain}",
            today.format("%Y%m%d"),
            crate::reminders::hex(&Sha256::digest(to.as_bytes())[..6])
        ))
        .text_body(body)
        .write_to_vec()
        .map_err(|e| AgendaError::Mail(e.to_string()))
}
