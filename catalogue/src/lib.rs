//! # mshub-catalogue
//!
//! The referenced health applications a patient may connect to their space. Start with
//! [`Catalogue::import`]: the referencing authority's catalogue file ([`file`], TOML) is
//! accepted only with a valid detached OpenPGP signature by a configured authority
//! ([`signature`]), then kept as the current catalogue ([`Catalogue::apps`]).
//!
//! Then the OAuth 2.0 authorization-code flow with PKCE ([`oauth`]): the webmail shows the
//! consent page and calls [`Catalogue::authorize`] with the scopes the patient granted; the app
//! trades the code for a bearer token with [`Catalogue::exchange`]; each API call is checked by
//! [`Catalogue::authenticate`], which fails at once after [`Catalogue::revoke`]. With
//! `measurements:write` an app adds [`measurement`]s, sealed to the patient at rest.
//!
//! Every grant, token, revocation and measurement is in the audit chain, with the detail
//! `patient:<id> app:<app id>` ([`audit_detail`], [`Catalogue::activity`]).

pub mod authority;
mod error;
pub mod file;
pub mod measurement;
pub mod oauth;
mod scope;
pub mod signature;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use mshub_directory::Directory;
use mshub_store::{AccountId, AuditEvent, AuditRecord, Batch, Store, StoreError, Tree};

pub use chrono::NaiveDate;
pub use error::{CatalogueError, Result};
pub use file::{App, CatalogueFile};
pub use measurement::{Measurement, MeasurementKind, NewMeasurement};
pub use oauth::{AppGrant, Connection, IssuedToken};
pub use scope::{Scope, DOCUMENT_CATEGORIES};

const CATALOGUE: Tree = Tree("catalogue");
const CURRENT: &[u8] = b"current";
const VERSION: &[u8] = b"version";
const LANE: u64 = 0x6361_7461_6c6f_6775;

/// The catalogue in use, as imported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Imported {
    /// Increases with each import.
    pub version: u64,
    pub file: CatalogueFile,
    /// The signed bytes and the signature, kept so the import can be checked again.
    pub data_b64: String,
    pub signature_b64: String,
    pub imported_at: i64,
    pub imported_by: String,
}

impl Imported {
    /// Verifies the stored catalogue again, e.g. against the authorities configured now.
    pub fn reverify(&self, authorities: &[u8], now: SystemTime) -> Result<CatalogueFile> {
        let decode = |s: &str| b64().decode(s).map_err(|e| corrupt("catalogue", e));
        Catalogue::verify(
            &decode(&self.data_b64)?,
            &decode(&self.signature_b64)?,
            authorities,
            now,
        )
    }
}

/// The catalogue, consents, app tokens and measurements, over the hub's store. Cheap to make:
/// everything lives in the store, so several instances (the webmail's, an operator command's)
/// see the same state.
pub struct Catalogue {
    store: Arc<Store>,
    directory: Arc<Directory>,
    cache: Mutex<Option<Arc<Imported>>>,
}

/// The audit detail of every event between a patient and an app.
pub fn audit_detail(patient: AccountId, app_id: &str) -> String {
    format!("patient:{patient} app:{app_id}")
}

pub(crate) fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> CatalogueError {
    CatalogueError::Store(StoreError::Corrupt {
        what: what.into(),
        reason: e.to_string(),
    })
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn day_of(unix_secs: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

impl Catalogue {
    pub fn new(store: Arc<Store>, directory: Arc<Directory>) -> Self {
        Self {
            store,
            directory,
            cache: Mutex::new(None),
        }
    }

    /// Verifies `data` (the catalogue file) against the detached OpenPGP `signature` (armored
    /// or binary) by one of `authorities` (OpenPGP certificates, armored or binary,
    /// concatenated) at `now`, then parses and checks the file. Refuses an unsigned, tampered
    /// or wrongly signed file, an expired signature, an authority key expired or revoked at
    /// `now`, and a catalogue past its `valid_until`.
    pub fn verify(
        data: &[u8],
        signature: &[u8],
        authorities: &[u8],
        now: SystemTime,
    ) -> Result<CatalogueFile> {
        let certs = signature::authorities(authorities)?;
        let signed_by = signature::verify(data, signature, certs, now)?;
        let mut file = CatalogueFile::parse(data)?;
        let today = day_of(unix(now));
        if !file.valid_on(today) {
            return Err(CatalogueError::CatalogueExpired(file.valid_until));
        }
        // A day of tolerance for the authority's time zone. Later would block every import
        // until then (an older catalogue never replaces a newer one).
        if file::parse_date("issued", &file.issued)? > today + chrono::Days::new(1) {
            return Err(CatalogueError::InvalidFile(format!(
                "issued {} is in the future",
                file.issued
            )));
        }
        file.signed_by = signed_by;
        Ok(file)
    }

    /// [`Catalogue::verify`] now, then stores the file durably as the current catalogue
    /// (replacing the previous one, unless it is older: `issued` may not go back). Audited
    /// `catalogue.import`. Returns the number of apps.
    pub fn import(
        &self,
        data: &[u8],
        signature: &[u8],
        authorities: &[u8],
        actor: &str,
    ) -> Result<usize> {
        let now = SystemTime::now();
        let file = Self::verify(data, signature, authorities, now)?;
        let count = file.apps.len();
        let imported = self.store_import(file, data, signature, actor, unix(now))?;
        self.store.audit(
            AuditEvent::new(
                actor,
                "catalogue.import",
                format!("catalogue:{}", imported.version),
            )
            .with_detail(format!(
                "{count} apps, issued {}, valid until {}, signed by {}",
                imported.file.issued, imported.file.valid_until, imported.file.signed_by
            )),
        )?;
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(imported));
        Ok(count)
    }

    fn store_import(
        &self,
        file: CatalogueFile,
        data: &[u8],
        signature: &[u8],
        actor: &str,
        now: i64,
    ) -> Result<Imported> {
        retry(&self.store, LANE, || {
            let current_raw = self.store.kv().get(CATALOGUE, CURRENT)?;
            let version_raw = self.store.kv().get(CATALOGUE, VERSION)?;
            let mut version = 1;
            if let Some(raw) = &current_raw {
                let current: Imported =
                    serde_json::from_slice(raw).map_err(|e| corrupt("catalogue", e))?;
                // Replaying an older signed catalogue would bring back apps since delisted.
                // Dates are checked YYYY-MM-DD: they compare as strings.
                if file.issued < current.file.issued {
                    return Err(CatalogueError::Older {
                        new: file.issued.clone(),
                        current: current.file.issued.clone(),
                    });
                }
                version = current.version + 1;
            }
            let imported = Imported {
                version,
                file: file.clone(),
                data_b64: b64().encode(data),
                signature_b64: b64().encode(signature),
                imported_at: now,
                imported_by: actor.to_string(),
            };
            let json = serde_json::to_vec(&imported).map_err(|e| corrupt("catalogue", e))?;
            let mut batch = Batch::new();
            batch.check(CATALOGUE, CURRENT, current_raw);
            batch.check(CATALOGUE, VERSION, version_raw);
            batch.put(CATALOGUE, CURRENT, json);
            batch.put(CATALOGUE, VERSION, version.to_be_bytes().to_vec());
            Ok((batch, imported))
        })
    }

    /// The current catalogue, if one was imported (cached; an import by another instance is
    /// seen at the next call).
    pub fn current(&self) -> Result<Option<Arc<Imported>>> {
        let version = match self.store.kv().get(CATALOGUE, VERSION)? {
            Some(raw) => u64::from_be_bytes(
                raw.as_slice()
                    .try_into()
                    .map_err(|_| corrupt("catalogue version", "not 8 bytes"))?,
            ),
            None => return Ok(None),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cached) = cache.as_ref().filter(|c| c.version == version) {
            return Ok(Some(cached.clone()));
        }
        let Some(raw) = self.store.kv().get(CATALOGUE, CURRENT)? else {
            return Ok(None);
        };
        let imported: Arc<Imported> =
            Arc::new(serde_json::from_slice(&raw).map_err(|e| corrupt("catalogue", e))?);
        *cache = Some(imported.clone());
        Ok(Some(imported))
    }

    /// The apps of the current catalogue, by name (empty before any import).
    pub fn apps(&self) -> Result<Vec<App>> {
        let mut apps = self
            .current()?
            .map(|c| c.file.apps.clone())
            .unwrap_or_default();
        apps.sort_by(|a, b| (a.name.to_lowercase(), &a.id).cmp(&(b.name.to_lowercase(), &b.id)));
        Ok(apps)
    }

    pub fn app(&self, id: &str) -> Result<Option<App>> {
        Ok(self
            .current()?
            .and_then(|c| c.file.apps.iter().find(|a| a.id == id).cloned()))
    }

    /// What happened between `patient` and `app_id` (consents, tokens, measurements,
    /// revocations), oldest first, from the audit chain. Reads the whole chain: for a page, not
    /// for a hot path.
    pub fn activity(&self, patient: AccountId, app_id: Option<&str>) -> Result<Vec<AuditRecord>> {
        let exact = app_id.map(|a| audit_detail(patient, a));
        let prefix = format!("patient:{patient} app:");
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.audit_records(after, 1000)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(page.into_iter().filter(|r| match &exact {
                Some(d) => &r.event.detail == d,
                None => r.event.detail.starts_with(&prefix),
            }));
        }
        Ok(out)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn directory(&self) -> &Directory {
        &self.directory
    }

    pub(crate) fn audit(&self, event: AuditEvent) -> Result<()> {
        self.store.audit(event)?;
        Ok(())
    }
}

/// [`Store::retry`] for attempts that may fail with the catalogue's own errors: such a failure
/// stops the retries and is returned as is.
pub(crate) fn retry<T>(
    store: &Store,
    lane: u64,
    mut attempt: impl FnMut() -> Result<(Batch, T)>,
) -> Result<T> {
    let mut failure = None;
    let outcome = store.retry(lane, || match attempt() {
        Ok(done) => Ok(done),
        Err(CatalogueError::Store(e)) => Err(e),
        Err(other) => {
            failure = Some(other);
            Err(StoreError::Backend("catalogue attempt failed".into()))
        }
    });
    match failure {
        Some(failure) => Err(failure),
        None => Ok(outcome?),
    }
}
