//! Care relationships (DESIGN §4 "Vault visibility"): beyond the documents it authored, a
//! professional reads a patient's documents only within a relationship the patient's care
//! calls for, and the patient decides.
//!
//! A relationship holds when one of these does, each with its origin and date:
//! - the patient named the professional: médecin traitant (in the patient's settings), or
//!   "professionnel qui me suit" ([`Relationship::Follows`]);
//! - the professional wrote to the patient (the MTA's conversation index, read through
//!   [`Correspondence`]): a doctor who wrote reads the space. An organisation's mailbox that
//!   wrote (a lab's system) gives its members no more than the author ground: they read what
//!   the organisation filed, nothing else;
//! - the patient granted access, for a time or until revoked ([`Relationship::Grant`]);
//! - emergency access ("bris de glace", [`Relationship::Emergency`]): asked by the professional
//!   with a stated reason, for a limited time, told to the patient at once, every read audited
//!   with the reason; the patient may forbid it, and it never opens a masked document.
//!
//! Records: `vault-care`: patient ‖ professional ‖ relationship code → [`Link`] sealed to the
//! patient. One key per (professional, origin): a check reads one short prefix, and a write
//! never reads another professional's record. Conversations are not copied here: the MTA's
//! index is their one record, and existing spaces keep working without a migration.

use serde::{Deserialize, Serialize};

use mshub_directory::{Account, AccountKind, Address};
use mshub_store::{AccountId, AuditEvent, Batch, Tree};

use crate::document::{open_record, seal_record};
use crate::notify::notify;
use crate::rules::PatientSettings;
use crate::{Denial, Result, Vault, VaultError};

/// patient ‖ professional ‖ [`Relationship::code`] → since (i64 BE) ‖ until (i64 BE,
/// `i64::MAX` for none) ‖ [`Link`] sealed to the patient. The dates are in clear beside the
/// sealed record so that the check on every read needs no decryption (a link's existence is
/// already in its key); the record proper — who recorded it, an emergency's reason — is opened
/// only to show it.
const CARE: Tree = Tree("vault-care");
/// One-time derivations done on existing stores: name → unix time done.
const CARE_DERIVED: Tree = Tree("vault-care-derived");
const REFERRING_SINCE: &[u8] = b"referring-since";

/// The shortest reason an emergency access takes, in characters.
pub const MIN_EMERGENCY_REASON: usize = 10;
/// The longest, in characters (it is shown to the patient and kept in the audit chain).
pub const MAX_EMERGENCY_REASON: usize = 500;
/// How long an emergency access lasts unless configured otherwise.
pub const DEFAULT_EMERGENCY_SECS: i64 = 24 * 3600;

/// Why a professional may read a patient's space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relationship {
    /// Named médecin traitant by the patient.
    ReferringDoctor,
    /// Named by the patient among "les professionnels qui me suivent".
    Follows,
    /// Granted access by the patient, for a time or until revoked.
    Grant,
    /// Wrote to the patient.
    Correspondent,
    /// Emergency access, with a reason, for a limited time.
    Emergency,
}

impl Relationship {
    fn from_code(code: u8) -> Option<Self> {
        [
            Relationship::ReferringDoctor,
            Relationship::Follows,
            Relationship::Grant,
            Relationship::Correspondent,
            Relationship::Emergency,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }

    fn code(self) -> u8 {
        match self {
            Relationship::ReferringDoctor => 1,
            Relationship::Follows => 2,
            Relationship::Grant => 3,
            Relationship::Correspondent => 4,
            Relationship::Emergency => 5,
        }
    }

    /// The name used in the audit chain and the API.
    pub fn name(self) -> &'static str {
        match self {
            Relationship::ReferringDoctor => "referring-doctor",
            Relationship::Follows => "follows",
            Relationship::Grant => "grant",
            Relationship::Correspondent => "correspondent",
            Relationship::Emergency => "emergency",
        }
    }

    /// As the patient reads it.
    pub fn label_fr(self) -> &'static str {
        match self {
            Relationship::ReferringDoctor => "médecin traitant",
            Relationship::Follows => "professionnel qui vous suit",
            Relationship::Grant => "accès accordé par vous",
            Relationship::Correspondent => "vous a écrit",
            Relationship::Emergency => "accès d'urgence",
        }
    }
}

/// One recorded relationship of a professional with a patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub relationship: Relationship,
    pub professional: AccountId,
    /// Unix time it began.
    pub since: i64,
    /// Unix time it ends, if it does.
    pub until: Option<i64>,
    /// Who recorded it (the patient's or the professional's address).
    pub by: String,
    /// The reason stated for an emergency access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Link {
    pub fn is_active(&self, now: i64) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// The conversations the hub's MTA records ("a patient answers, never starts"): who wrote to
/// which patient, and when first. The binary hands the vault the MTA's index.
pub trait Correspondence: Send + Sync {
    /// When `correspondent` first wrote to `patient`, if ever.
    fn first_written(
        &self,
        patient: AccountId,
        correspondent: &Address,
    ) -> std::result::Result<Option<i64>, String>;
    /// Everyone who wrote to `patient`, with when each first did.
    fn correspondents(
        &self,
        patient: AccountId,
    ) -> std::result::Result<Vec<(Address, i64)>, String>;
}

/// Why a professional may read the patient's space, as the check found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub relationship: Relationship,
    pub since: i64,
    /// The emergency's reason, when that is the ground.
    pub reason: Option<String>,
}

/// One professional of the page "Accès des professionnels": everything that lets them read.
#[derive(Debug, Clone)]
pub struct CareEntry {
    pub professional: Account,
    /// Active and ended recorded relationships, plus the médecin traitant and correspondence.
    pub links: Vec<Link>,
    /// The professional (or the organisation mailbox) authored documents of the patient: the
    /// professional reads those.
    pub authored: bool,
    /// The organisation that filed documents of the patient, of which the professional is a
    /// member: it reads those.
    pub via: Option<String>,
    pub blocked: bool,
    /// Unix time of its last read, from the audit chain.
    pub last_access: Option<i64>,
}

impl CareEntry {
    /// Whether the entry reads the whole space now (what `links` holds that is active).
    pub fn reads_the_space(&self, now: i64) -> bool {
        !self.blocked && self.links.iter().any(|l| l.is_active(now))
    }
}

/// A stored link read without opening it: (relationship, since, until, stored value).
type DatedLink = (Relationship, i64, Option<i64>, Vec<u8>);

/// since ‖ until in clear, then the sealed record.
fn encode_link(store: &mshub_store::Store, patient: AccountId, link: &Link) -> Result<Vec<u8>> {
    let mut out = link.since.to_be_bytes().to_vec();
    out.extend_from_slice(&link.until.unwrap_or(i64::MAX).to_be_bytes());
    out.extend(seal_record(store, patient, link)?);
    Ok(out)
}

/// The clear dates of a stored link: (since, until).
fn dates(value: &[u8]) -> Option<(i64, Option<i64>)> {
    let since = i64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let until = i64::from_be_bytes(value.get(8..16)?.try_into().ok()?);
    Some((since, (until != i64::MAX).then_some(until)))
}

fn open_link(store: &mshub_store::Store, value: &[u8]) -> Result<Link> {
    let sealed = value.get(16..).ok_or_else(|| {
        VaultError::Store(mshub_store::StoreError::Corrupt {
            what: "care link".into(),
            reason: "shorter than its dates".into(),
        })
    })?;
    Ok(open_record(store, "care link", sealed)?)
}

fn prefix(patient: AccountId, professional: AccountId) -> Vec<u8> {
    let mut k = patient.to_key().to_vec();
    k.extend_from_slice(&professional.to_key());
    k
}

fn key(patient: AccountId, professional: AccountId, relationship: Relationship) -> Vec<u8> {
    let mut k = prefix(patient, professional);
    k.push(relationship.code());
    k
}

fn professional_only(account: &Account) -> Result<()> {
    match account.kind {
        AccountKind::Professional { .. } => Ok(()),
        _ => Err(VaultError::NotAProfessional(account.address.to_string())),
    }
}

impl Vault {
    /// The hub's conversation index, through which "wrote to the patient" is known. Without
    /// it no one has that relationship.
    pub fn with_correspondence(mut self, c: std::sync::Arc<dyn Correspondence>) -> Self {
        self.correspondence = Some(c);
        self
    }

    /// How long an emergency access lasts (24 h by default).
    pub fn with_emergency_duration(mut self, secs: i64) -> Self {
        self.emergency_secs = secs.max(60);
        self
    }

    pub fn emergency_duration(&self) -> i64 {
        self.emergency_secs
    }

    /// The recorded links of `professional` with `patient`, as (relationship, since, until,
    /// the stored value), without opening them.
    fn dated_links(&self, patient: AccountId, professional: AccountId) -> Result<Vec<DatedLink>> {
        Ok(self
            .store
            .kv()
            .scan(CARE, &prefix(patient, professional), None, None)?
            .into_iter()
            .filter_map(|(k, v)| {
                let relationship = Relationship::from_code(*k.last()?)?;
                let (since, until) = dates(&v)?;
                Some((relationship, since, until, v))
            })
            .collect())
    }

    /// Whether, and why, `viewer` may read `patient`'s space now. Blocking is not looked at
    /// here (the caller checks it first); the author ground is per document.
    pub fn standing(
        &self,
        patient: AccountId,
        viewer: &Account,
        settings: &PatientSettings,
        now: i64,
    ) -> Result<Option<Standing>> {
        if !matches!(viewer.kind, AccountKind::Professional { .. }) {
            return Ok(None);
        }
        if settings.referring_doctor.as_ref() == Some(&viewer.address) {
            return Ok(Some(Standing {
                relationship: Relationship::ReferringDoctor,
                since: settings.referring_since.unwrap_or(0),
                reason: None,
            }));
        }
        let mut best: Option<(Relationship, i64, Vec<u8>)> = None;
        for (relationship, since, until, value) in self.dated_links(patient, viewer.id)? {
            if until.is_none_or(|u| now < u) && best.as_ref().is_none_or(|b| relationship < b.0) {
                best = Some((relationship, since, value));
            }
        }
        if let Some((relationship, since, _)) =
            best.as_ref().filter(|b| b.0 < Relationship::Correspondent)
        {
            return Ok(Some(Standing {
                relationship: *relationship,
                since: *since,
                reason: None,
            }));
        }
        if let Some(c) = &self.correspondence {
            if let Some(since) = c
                .first_written(patient, &viewer.address)
                .map_err(VaultError::Data)?
            {
                return Ok(Some(Standing {
                    relationship: Relationship::Correspondent,
                    since,
                    reason: None,
                }));
            }
        }
        // Emergency access: the one ground whose record is opened, for its reason (every read
        // under it is audited with it).
        match best {
            Some((relationship, since, value)) => Ok(Some(Standing {
                relationship,
                since,
                reason: open_link(&self.store, &value)?.reason,
            })),
            None => Ok(None),
        }
    }

    fn put_link(&self, patient: &Account, link: &Link) -> Result<()> {
        let mut batch = Batch::new();
        batch.put(
            CARE,
            key(patient.id, link.professional, link.relationship),
            encode_link(&self.store, patient.id, link)?,
        );
        let _ = self.store.kv().commit(&batch)?;
        Ok(())
    }

    fn audit_care(
        &self,
        actor: &Address,
        action: &str,
        patient: &Account,
        detail: &str,
    ) -> Result<()> {
        let detail = if detail.is_empty() {
            format!("patient:{}", patient.id)
        } else {
            format!("patient:{} {detail}", patient.id)
        };
        self.store
            .audit(AuditEvent::new(actor.as_str(), action, "care").with_detail(detail))?;
        Ok(())
    }

    /// The patient names `professional` among those who follow them (or grants access until
    /// `until`, for [`Relationship::Grant`]). Only [`Relationship::Follows`] and
    /// [`Relationship::Grant`] are recorded this way.
    pub fn add_relationship(
        &self,
        patient: &Account,
        professional: &Account,
        relationship: Relationship,
        until: Option<i64>,
    ) -> Result<Link> {
        if !patient.kind.is_patient() {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        professional_only(professional)?;
        if !matches!(relationship, Relationship::Follows | Relationship::Grant) {
            return Err(VaultError::Data(format!(
                "{} is not a relationship the patient records",
                relationship.name()
            )));
        }
        let now = mshub_store::now();
        if until.is_some_and(|u| u <= now) {
            return Err(VaultError::Data(
                "an access granted until a past time".into(),
            ));
        }
        let link = Link {
            relationship,
            professional: professional.id,
            since: now,
            until: if relationship == Relationship::Grant {
                until
            } else {
                None
            },
            by: patient.address.to_string(),
            reason: None,
        };
        self.put_link(patient, &link)?;
        let until = link.until.map_or(String::new(), |u| format!(" until:{u}"));
        self.audit_care(
            &patient.address,
            &format!("vault.care.{}", relationship.name()),
            patient,
            &format!("professional:{}{until}", professional.address),
        )?;
        Ok(link)
    }

    /// The patient ends a recorded relationship (a grant, "me suit", or an emergency access
    /// under way). Effective at the next read.
    pub fn end_relationship(
        &self,
        patient: &Account,
        professional: &Account,
        relationship: Relationship,
    ) -> Result<()> {
        if !patient.kind.is_patient() {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        let mut batch = Batch::new();
        batch.remove(CARE, key(patient.id, professional.id, relationship));
        let _ = self.store.kv().commit(&batch)?;
        self.audit_care(
            &patient.address,
            &format!("vault.care.end.{}", relationship.name()),
            patient,
            &format!("professional:{}", professional.address),
        )
    }

    /// The patient allows or forbids emergency access to their space.
    /// Forbidding also ends the emergency accesses under way.
    pub fn set_emergency_allowed(&self, patient: &Account, allowed: bool) -> Result<()> {
        let subject = if allowed { "allowed" } else { "forbidden" };
        self.update_settings(patient, "vault.emergency-access", subject, |s| {
            s.emergency_forbidden = !allowed;
        })?;
        if allowed {
            return Ok(());
        }
        let mut batch = Batch::new();
        for (k, _) in self
            .store
            .kv()
            .scan(CARE, &patient.id.to_key(), None, None)?
        {
            if k.last() == Some(&Relationship::Emergency.code()) {
                batch.remove(CARE, k);
            }
        }
        let _ = self.store.kv().commit(&batch)?;
        Ok(())
    }

    /// Emergency access ("bris de glace"): `professional` states `reason` and reads `patient`'s
    /// space for the configured time. Refused when the patient forbade it or blocked the
    /// professional. Audited with the reason; the patient is told at once.
    pub fn emergency_access(
        &self,
        professional: &Account,
        patient: &Account,
        reason: &str,
    ) -> Result<Link> {
        if !patient.kind.is_patient() {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        professional_only(professional)?;
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        let length = reason.chars().count();
        if !(MIN_EMERGENCY_REASON..=MAX_EMERGENCY_REASON).contains(&length)
            || reason.chars().any(char::is_control)
        {
            return Err(VaultError::InvalidReason {
                min: MIN_EMERGENCY_REASON,
                max: MAX_EMERGENCY_REASON,
            });
        }
        let settings = self.patient_settings(patient.id)?;
        let refuse = |denial: Denial| -> Result<Link> {
            self.audit_care(
                &professional.address,
                "vault.emergency.denied",
                patient,
                &format!("ground:{}", denial.code()),
            )?;
            Err(VaultError::Refused(denial))
        };
        if settings.blocked.contains(&professional.address) {
            return refuse(Denial::Blocked);
        }
        if settings.emergency_forbidden {
            return refuse(Denial::EmergencyForbidden);
        }
        let now = mshub_store::now();
        let link = Link {
            relationship: Relationship::Emergency,
            professional: professional.id,
            since: now,
            until: Some(now + self.emergency_secs),
            by: professional.address.to_string(),
            reason: Some(reason.clone()),
        };
        self.put_link(patient, &link)?;
        self.audit_care(
            &professional.address,
            "vault.emergency",
            patient,
            &format!("until:{} reason:{reason}", now + self.emergency_secs),
        )?;
        let body = format!(
            "Bonjour,\n\n{who} a ouvert un accès d'urgence (« bris de glace ») à votre espace santé \
             le {at}, pour {hours}.\n\nMotif donné : {reason}\n\n\
             Chaque document consulté pendant cet accès figure dans l'historique des accès, à part. \
             Vous pouvez y mettre fin, bloquer ce professionnel ou interdire l'accès d'urgence \
             depuis la page « Accès des professionnels » de votre espace.\n",
            who = professional_line(professional),
            at = mshub_agenda::french::datetime(now),
            hours = duration_fr(self.emergency_secs),
        );
        notify(
            &self.store,
            self.directory.hub_domain().as_str(),
            patient,
            "Accès d'urgence à votre espace santé",
            &body,
        )?;
        Ok(link)
    }

    /// Everyone who may read some of `patient`'s documents and why, for the patient's page:
    /// recorded relationships (ended grants included, until removed), the médecin traitant,
    /// correspondents, authors, and those blocked. Last access from the audit chain.
    pub fn care_team(&self, patient: &Account) -> Result<Vec<CareEntry>> {
        if !patient.kind.is_patient() {
            return Err(VaultError::NotAPatient(patient.address.to_string()));
        }
        let settings = self.patient_settings(patient.id)?;
        let mut by_address: std::collections::BTreeMap<Address, (Vec<Link>, bool)> =
            Default::default();
        let mut ids = std::collections::BTreeMap::new();
        for (_, v) in self
            .store
            .kv()
            .scan(CARE, &patient.id.to_key(), None, None)?
        {
            let link = open_link(&self.store, &v)?;
            ids.entry(link.professional)
                .or_insert_with(Vec::new)
                .push(link);
        }
        for (id, links) in ids {
            if let Some(account) = self.directory.account(id)? {
                by_address
                    .entry(account.address)
                    .or_default()
                    .0
                    .extend(links);
            }
        }
        if let Some(doctor) = &settings.referring_doctor {
            by_address.entry(doctor.clone()).or_default().0.push(Link {
                relationship: Relationship::ReferringDoctor,
                professional: AccountId(0),
                since: settings.referring_since.unwrap_or(0),
                until: None,
                by: patient.address.to_string(),
                reason: None,
            });
        }
        if let Some(c) = &self.correspondence {
            for (address, since) in c.correspondents(patient.id).map_err(VaultError::Data)? {
                by_address.entry(address).or_default().0.push(Link {
                    relationship: Relationship::Correspondent,
                    professional: AccountId(0),
                    since,
                    until: None,
                    by: String::new(),
                    reason: None,
                });
            }
        }
        for doc in self.records().of_patient(patient.id)? {
            if doc.deleted {
                continue;
            }
            if let Some(a) = doc.author.address {
                by_address.entry(a).or_default().1 = true;
            }
        }
        for blocked in &settings.blocked {
            by_address.entry(blocked.clone()).or_default();
        }
        let last = self.last_accesses(patient.id)?;
        let addresses: Vec<Address> = by_address.keys().cloned().collect();
        let mut accounts = self.directory.accounts_by_addresses(&addresses)?;
        // The members of an organisation that filed documents read those: they are listed
        // (and can be blocked) like the others.
        let mut via = std::collections::BTreeMap::new();
        for account in accounts.iter().flatten() {
            if let AccountKind::Organisation { name, members } = &account.kind {
                if by_address.get(&account.address).is_some_and(|e| e.1) {
                    for member in members {
                        via.entry(member.clone()).or_insert_with(|| name.clone());
                    }
                }
            }
        }
        let members: Vec<Address> = via
            .keys()
            .filter(|m| !by_address.contains_key(*m))
            .cloned()
            .collect();
        accounts.extend(self.directory.accounts_by_addresses(&members)?);
        let entries = by_address
            .into_iter()
            .chain(members.into_iter().map(|m| (m, (Vec::new(), false))));
        let mut out = Vec::new();
        for (account, (address, (mut links, authored))) in accounts.into_iter().zip(entries) {
            let Some(account) = account else { continue };
            if account.kind.is_patient() {
                continue;
            }
            // An organisation's mailbox reads nothing itself; its members read what it filed.
            if !matches!(account.kind, AccountKind::Professional { .. }) {
                links.retain(|l| !matches!(l.relationship, Relationship::Correspondent));
            }
            for l in &mut links {
                l.professional = account.id;
            }
            links.sort_by_key(|l| (l.relationship, l.since));
            out.push(CareEntry {
                last_access: last.get(address.as_str()).copied(),
                blocked: settings.blocked.contains(&address),
                via: via.get(&address).cloned(),
                professional: account,
                links,
                authored,
            });
        }
        out.sort_by_key(|e| e.professional.kind.display_name());
        Ok(out)
    }

    /// Once per store: dates the médecin traitant of spaces that named one before dates were
    /// kept, from the latest `vault.referring-doctor` event of the audit chain (one walk of the
    /// chain). Relationships by correspondence and authorship need nothing: they are read from
    /// the conversation index and the documents themselves. Returns how many were dated.
    pub fn derive_care_dates(&self) -> Result<usize> {
        if self
            .store
            .kv()
            .get(CARE_DERIVED, REFERRING_SINCE)?
            .is_some()
        {
            return Ok(0);
        }
        let undated: Vec<AccountId> = self
            .store
            .kv()
            .scan(crate::rules::SETTINGS, &[], None, None)?
            .into_iter()
            .filter_map(|(k, v)| {
                let settings: PatientSettings =
                    open_record(&self.store, "vault settings", &v).ok()?;
                let id = AccountId(u64::from_be_bytes(k.as_slice().try_into().ok()?));
                (settings.referring_doctor.is_some() && settings.referring_since.is_none())
                    .then_some(id)
            })
            .collect();
        let mut dated = 0;
        if !undated.is_empty() {
            let mut when = std::collections::HashMap::new();
            let mut after = 0;
            loop {
                let page = self.store.audit_records(after, 1024)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in page {
                    if r.event.action != "vault.referring-doctor" {
                        continue;
                    }
                    let Some(id) = r
                        .event
                        .detail
                        .strip_prefix("patient:")
                        .and_then(|d| d.split(' ').next())
                        .and_then(|d| d.parse::<u64>().ok())
                    else {
                        continue;
                    };
                    when.insert(id, r.at);
                }
            }
            for id in undated {
                let Some(at) = when.get(&id.0).copied() else {
                    continue;
                };
                let Some(patient) = self.directory.account(id)? else {
                    continue;
                };
                self.update_settings(&patient, "vault.referring-doctor.dated", "derived", |s| {
                    if s.referring_since.is_none() {
                        s.referring_since = Some(at);
                    }
                })?;
                dated += 1;
            }
        }
        let mut batch = Batch::new();
        batch.put(
            CARE_DERIVED,
            REFERRING_SINCE,
            mshub_store::now().to_be_bytes(),
        );
        let _ = self.store.kv().commit(&batch)?;
        Ok(dated)
    }

    /// Actor address → time of its last read of the patient's documents.
    fn last_accesses(&self, patient: AccountId) -> Result<std::collections::HashMap<String, i64>> {
        let mut last = std::collections::HashMap::new();
        for r in self.access_history(patient)? {
            if r.event.action == "document.read" {
                last.insert(r.event.actor, r.at);
            }
        }
        Ok(last)
    }
}

/// "24 heures", "1 heure", "1 heure 30 minutes", "45 minutes".
fn duration_fr(secs: i64) -> String {
    let (hours, minutes) = (secs / 3600, (secs % 3600) / 60);
    let plural = |n: i64, word: &str| format!("{n} {word}{}", if n > 1 { "s" } else { "" });
    match (hours, minutes) {
        (0, m) => plural(m, "minute"),
        (h, 0) => plural(h, "heure"),
        (h, m) => format!("{} {}", plural(h, "heure"), plural(m, "minute")),
    }
}

/// "Dr Claire Martin (Médecin, médecine générale, claire.martin@…)".
pub(crate) fn professional_line(viewer: &Account) -> String {
    match &viewer.kind {
        AccountKind::Professional {
            profession,
            specialty,
            ..
        } if !specialty.is_empty() => format!(
            "{} ({}, {}, {})",
            viewer.kind.display_name(),
            profession.label_fr(),
            specialty,
            viewer.address
        ),
        AccountKind::Professional { profession, .. } => format!(
            "{} ({}, {})",
            viewer.kind.display_name(),
            profession.label_fr(),
            viewer.address
        ),
        _ => format!("{} ({})", viewer.kind.display_name(), viewer.address),
    }
}

#[cfg(test)]
mod tests {
    use super::duration_fr;

    #[test]
    fn durations_read_as_french() {
        assert_eq!(duration_fr(24 * 3600), "24 heures");
        assert_eq!(duration_fr(3600), "1 heure");
        assert_eq!(duration_fr(5400), "1 heure 30 minutes");
        assert_eq!(duration_fr(60), "1 minute");
        assert_eq!(duration_fr(2 * 3600 + 60), "2 heures 1 minute");
    }
}
