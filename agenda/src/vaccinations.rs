//! What the patient recorded as done in the prevention calendar (a booster, a screening), by
//! the rule's key and date: what [`crate::prevention_reminders`] counts from. Sealed to the
//! patient's key, like the appointments: a vaccination date is health data.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use mshub_store::{AccountId, Batch, StoreError, Tree};

use crate::appointments::{lane, retry};
use crate::{Agenda, Result};

/// patient → sealed JSON list of [`Done`].
const VACCINATIONS: Tree = Tree("agenda-prevention-done");
/// patient → sealed JSON list of [`Done`]: the vaccinations of the patient's medical profile,
/// as the profile last set them ([`Agenda::set_profile_vaccinations`]).
const PROFILE_VACCINATIONS: Tree = Tree("agenda-profile-vaccinations");

/// Entries kept per patient at most (a lifetime of boosters and screenings fits many times).
const MAX_ENTRIES: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Done {
    key: String,
    /// ISO 8601 `YYYY-MM-DD`.
    date: String,
}

impl Agenda {
    /// What the patient recorded, as `(rule key, date)`: marked done in the prevention
    /// calendar, or listed in the medical profile.
    pub fn vaccinations(&self, patient: AccountId) -> Result<Vec<(String, NaiveDate)>> {
        let (mut done, _) = self.read_done(patient)?;
        done.extend(self.read_list(PROFILE_VACCINATIONS, patient)?.0);
        Ok(done
            .into_iter()
            .filter_map(|d| Some((d.key, d.date.parse().ok()?)))
            .collect())
    }

    /// The vaccinations of the patient's medical profile, `(vaccine, date)`, replacing those
    /// it set before: the profile is their record (it keeps their versions), the agenda counts
    /// the prevention calendar from them. Durable when it returns.
    pub fn set_profile_vaccinations(
        &self,
        patient: AccountId,
        list: &[(String, NaiveDate)],
    ) -> Result<()> {
        let list: Vec<Done> = list
            .iter()
            .take(MAX_ENTRIES)
            .map(|(key, date)| Done {
                key: key.chars().filter(|c| !c.is_control()).take(64).collect(),
                date: date.format("%Y-%m-%d").to_string(),
            })
            .collect();
        let plain = serde_json::to_vec(&list).map_err(|e| StoreError::Corrupt {
            what: "agenda prevention record".into(),
            reason: e.to_string(),
        })?;
        retry(&self.store, lane(patient), || {
            let (_, previous) = self.read_list(PROFILE_VACCINATIONS, patient)?;
            let mut batch = Batch::new();
            batch.check(PROFILE_VACCINATIONS, patient.to_key().to_vec(), previous);
            batch.put(
                PROFILE_VACCINATIONS,
                patient.to_key().to_vec(),
                self.store.seal(patient, &plain)?,
            );
            Ok((batch, ()))
        })
    }

    fn read_done(&self, patient: AccountId) -> Result<(Vec<Done>, Option<Vec<u8>>)> {
        self.read_list(VACCINATIONS, patient)
    }

    fn read_list(&self, tree: Tree, patient: AccountId) -> Result<(Vec<Done>, Option<Vec<u8>>)> {
        let Some(sealed) = self.store.kv().get(tree, &patient.to_key())? else {
            return Ok((Vec::new(), None));
        };
        let plain = self.store.open_sealed(patient, &sealed)?;
        let list = serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt {
            what: "agenda prevention record".into(),
            reason: e.to_string(),
        })?;
        Ok((list, Some(sealed)))
    }

    /// Records that the patient did `key` (a rule of `prevention.toml`) on `date`. Durable when
    /// it returns.
    pub fn record_vaccination(&self, patient: AccountId, key: &str, date: NaiveDate) -> Result<()> {
        let key: String = key.chars().filter(|c| !c.is_control()).take(64).collect();
        retry(&self.store, lane(patient), || {
            let (mut list, previous) = self.read_done(patient)?;
            list.push(Done {
                key: key.clone(),
                date: date.format("%Y-%m-%d").to_string(),
            });
            if list.len() > MAX_ENTRIES {
                list.drain(..list.len() - MAX_ENTRIES);
            }
            let plain = serde_json::to_vec(&list).map_err(|e| StoreError::Corrupt {
                what: "agenda prevention record".into(),
                reason: e.to_string(),
            })?;
            let mut batch = Batch::new();
            batch.check(VACCINATIONS, patient.to_key().to_vec(), previous);
            batch.put(
                VACCINATIONS,
                patient.to_key().to_vec(),
                self.store.seal(patient, &plain)?,
            );
            Ok((batch, ()))
        })
    }
}
