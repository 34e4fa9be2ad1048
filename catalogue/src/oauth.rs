//! OAuth 2.0 authorization code grant (RFC 6749 §4.1) for public clients with PKCE, method
//! S256 only (RFC 7636), bearer tokens (RFC 6750) and refresh tokens with rotation.
//!
//! An app's `client_id` is its catalogue id; its redirect URIs are those of its signed entry.
//! Codes and tokens are 32 random bytes, base64url, and are stored only as their SHA-256.
//!
//! Trees (keys hold no patient data in clear beyond the account id):
//! - `catalogue-consent`: patient ‖ sha256(app id) → sealed JSON consent (scopes granted);
//! - `catalogue-grant`: patient ‖ sha256(app id) → generation of the consent (8 bytes): a token
//!   or code is alive only while this still holds its generation, so revoking or changing the
//!   consent kills them at once, without unsealing anything on the hot path;
//! - `catalogue-code`: sha256(code) → JSON [`CodeRecord`];
//! - `catalogue-token`: sha256(token) → JSON [`TokenRecord`];
//! - `catalogue-token-of`: patient ‖ sha256(app id) ‖ sha256(token) → (), to remove them all.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use mshub_store::{AccountId, AuditEvent, Batch, Tree};

use crate::{audit_detail, corrupt, day_of, retry, App, Catalogue, CatalogueError, Result, Scope};

const CONSENTS: Tree = Tree("catalogue-consent");
const GRANTS: Tree = Tree("catalogue-grant");
const CODES: Tree = Tree("catalogue-code");
const TOKENS: Tree = Tree("catalogue-token");
const TOKENS_OF: Tree = Tree("catalogue-token-of");

/// An authorization code lives 10 minutes (RFC 6749 §4.1.2: "a maximum lifetime of 10 minutes
/// is RECOMMENDED").
pub const CODE_LIFETIME: i64 = 600;
/// An access token lives one hour.
pub const ACCESS_LIFETIME: i64 = 3600;
/// A refresh token lives 30 days; each use gives a new one (rotation).
pub const REFRESH_LIFETIME: i64 = 30 * 24 * 3600;
/// The only PKCE method accepted (RFC 7636 §4.2).
pub const CODE_CHALLENGE_METHOD: &str = "S256";

/// What the patient granted an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub app_id: String,
    pub scopes: Vec<Scope>,
    /// First consent, Unix seconds.
    pub since: i64,
    /// Last change of the scopes granted, Unix seconds.
    pub updated: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Consent {
    connection: Connection,
    generation: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CodeRecord {
    app_id: String,
    patient: AccountId,
    scopes: Vec<Scope>,
    redirect_uri: String,
    challenge: String,
    expires: i64,
    generation: u64,
    used: bool,
    /// Hex SHA-256 of the tokens it gave, to revoke them if the code comes back.
    tokens: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    kind: TokenKind,
    app_id: String,
    patient: AccountId,
    scopes: Vec<Scope>,
    generation: u64,
    expires: i64,
}

/// The token response (RFC 6749 §5.1): serialise it as the JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    pub refresh_token: String,
}

/// What a valid bearer token allows: who, for whom, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppGrant {
    pub app_id: String,
    pub patient: AccountId,
    /// Granted by the patient and still offered by the app's catalogue entry.
    pub scopes: Vec<Scope>,
    /// Unix seconds.
    pub expires: i64,
}

impl AppGrant {
    /// The audit actor of the app's calls.
    pub fn actor(&self) -> String {
        format!("app:{}", self.app_id)
    }

    pub fn allows(&self, needed: &Scope) -> bool {
        self.scopes.iter().any(|s| s.covers(needed))
    }

    /// `Ok` if the grant allows `needed`, else the refusal to answer with (HTTP 403,
    /// `insufficient_scope`).
    pub fn require(&self, needed: &Scope) -> Result<()> {
        if self.allows(needed) {
            Ok(())
        } else {
            Err(CatalogueError::InsufficientScope(needed.to_string()))
        }
    }
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (s.len() % 2 == 0)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

fn pair_key(patient: AccountId, app_id: &str) -> Vec<u8> {
    let mut key = patient.to_key().to_vec();
    key.extend_from_slice(&sha256(app_id));
    key
}

fn lane(patient: AccountId) -> u64 {
    0x6361_742d_6f61_7574 ^ patient.0
}

fn random_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| corrupt("random generator", e))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn random_generation() -> Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).map_err(|e| corrupt("random generator", e))?;
    Ok(u64::from_be_bytes(bytes))
}

fn unreserved(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// RFC 7636 §4.2: the S256 challenge is BASE64URL(SHA256(verifier)), 43 characters.
fn check_challenge(challenge: &str) -> Result<()> {
    let ok = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(()).ok_or(CatalogueError::BadChallenge)
}

/// BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn sorted(scopes: &[Scope]) -> Vec<Scope> {
    let mut s = scopes.to_vec();
    s.sort();
    s.dedup();
    s
}

fn json<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| corrupt(what, e))
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| corrupt(what, e))
}

fn generation_of(raw: Option<Vec<u8>>) -> Option<u64> {
    raw.and_then(|r| <[u8; 8]>::try_from(r.as_slice()).ok())
        .map(u64::from_be_bytes)
}

impl Catalogue {
    /// Checks an authorization request before the consent page is shown (RFC 6749 §4.1.1):
    /// the app is referenced, `redirect_uri` is one of its own (if not, the error must be
    /// shown to the patient, never redirected to: §4.1.2.1), every scope is offered, the PKCE
    /// challenge is S256-shaped. Returns the app, for the page.
    pub fn check_request(
        &self,
        app_id: &str,
        scopes: &[Scope],
        redirect_uri: &str,
        code_challenge: &str,
        now: i64,
    ) -> Result<App> {
        let current = self.current()?.ok_or(CatalogueError::NoCatalogue)?;
        let app = current
            .file
            .apps
            .iter()
            .find(|a| a.id == app_id)
            .ok_or_else(|| CatalogueError::UnknownApp(app_id.chars().take(80).collect()))?;
        if !app.accepts_redirect(redirect_uri) {
            return Err(CatalogueError::RedirectUri(
                redirect_uri.chars().take(200).collect(),
            ));
        }
        if !current.file.valid_on(day_of(now)) {
            return Err(CatalogueError::CatalogueExpired(
                current.file.valid_until.clone(),
            ));
        }
        if scopes.is_empty() {
            return Err(CatalogueError::NoScope);
        }
        if let Some(s) = scopes.iter().find(|s| !app.offers(s)) {
            return Err(CatalogueError::ScopeNotOffered(s.to_string()));
        }
        check_challenge(code_challenge)?;
        Ok(app.clone())
    }

    /// The patient consented to `scopes` for `app_id`: records the consent durably (audited
    /// `app.consent`) and returns a one-time authorization code, valid [`CODE_LIFETIME`].
    /// A consent with other scopes than the previous one replaces it and kills the app's
    /// earlier tokens.
    pub fn authorize(
        &self,
        patient: AccountId,
        app_id: &str,
        scopes: &[Scope],
        redirect_uri: &str,
        code_challenge: &str,
        now: i64,
    ) -> Result<String> {
        self.check_request(app_id, scopes, redirect_uri, code_challenge, now)?;
        let account = self
            .directory()
            .account(patient)?
            .filter(|a| a.kind.is_patient() && !a.disabled)
            .ok_or(CatalogueError::NotAPatient(patient))?;
        let scopes = sorted(scopes);
        let code = random_secret()?;
        let key = pair_key(patient, app_id);
        let fresh = random_generation()?;
        let store = self.store();
        let changed = retry(store, lane(patient), || {
            let sealed = store.kv().get(CONSENTS, &key)?;
            let grant_raw = store.kv().get(GRANTS, &key)?;
            let previous: Option<Consent> = match &sealed {
                Some(s) => Some(parse("consent", &store.open_sealed(patient, s)?)?),
                None => None,
            };
            let live = generation_of(grant_raw.clone());
            let (consent, changed) = match previous {
                Some(p) if p.connection.scopes == scopes && live == Some(p.generation) => {
                    (p, false)
                }
                previous => (
                    Consent {
                        connection: Connection {
                            app_id: app_id.to_string(),
                            scopes: scopes.clone(),
                            since: previous.map_or(now, |p| p.connection.since),
                            updated: now,
                        },
                        generation: fresh,
                    },
                    true,
                ),
            };
            let record = CodeRecord {
                app_id: app_id.to_string(),
                patient,
                scopes: scopes.clone(),
                redirect_uri: redirect_uri.to_string(),
                challenge: code_challenge.to_string(),
                expires: now + CODE_LIFETIME,
                generation: consent.generation,
                used: false,
                tokens: Vec::new(),
            };
            let mut batch = Batch::new();
            batch.check(CONSENTS, key.clone(), sealed);
            batch.check(GRANTS, key.clone(), grant_raw);
            if changed {
                let plain = json("consent", &consent)?;
                batch.put(CONSENTS, key.clone(), store.seal(patient, &plain)?);
                batch.put(
                    GRANTS,
                    key.clone(),
                    consent.generation.to_be_bytes().to_vec(),
                );
            }
            let code_key = sha256(&code).to_vec();
            batch.check(CODES, code_key.clone(), None);
            batch.put(CODES, code_key, json("code", &record)?);
            Ok((batch, changed))
        })?;
        self.audit(
            AuditEvent::new(
                account.address.to_string(),
                "app.consent",
                Scope::join(&scopes),
            )
            .with_detail(audit_detail(patient, app_id)),
        )?;
        if changed {
            self.drop_tokens(patient, app_id, None)?;
        }
        self.purge_codes(now)?;
        Ok(code)
    }

    /// The token request (RFC 6749 §4.1.3): trades a code for an access token and a refresh
    /// token. The code works once; when it comes back, what it gave is revoked (§4.1.2). A
    /// code presented with the wrong verifier, app or redirect_uri is burnt.
    pub fn exchange(
        &self,
        app_id: &str,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
        now: i64,
    ) -> Result<IssuedToken> {
        // RFC 7636 §4.1
        if !(43..=128).contains(&code_verifier.len()) || !unreserved(code_verifier) {
            return Err(CatalogueError::BadVerifier);
        }
        let code_key = sha256(code).to_vec();
        let store = self.store();
        let lane = u64::from_be_bytes(code_key[..8].try_into().unwrap_or_default());
        let (record, outcome) = retry(store, lane, || {
            let raw = store
                .kv()
                .get(CODES, &code_key)?
                .ok_or(CatalogueError::UnknownCode)?;
            let mut record: CodeRecord = parse("code", &raw)?;
            let mut batch = Batch::new();
            batch.check(CODES, code_key.clone(), Some(raw));
            let refusal = if record.used {
                for token in record.tokens.drain(..) {
                    if let Some(hash) = unhex(&token) {
                        batch.remove(TOKENS, hash.clone());
                        let mut of = pair_key(record.patient, &record.app_id);
                        of.extend_from_slice(&hash);
                        batch.remove(TOKENS_OF, of);
                    }
                }
                Some(CatalogueError::CodeReused)
            } else if record.expires <= now {
                Some(CatalogueError::CodeExpired)
            } else if record.app_id != app_id || record.redirect_uri != redirect_uri {
                Some(CatalogueError::CodeMismatch)
            } else if !equal_in_constant_time(
                s256(code_verifier).as_bytes(),
                record.challenge.as_bytes(),
            ) {
                Some(CatalogueError::VerifierMismatch)
            } else if generation_of(
                store
                    .kv()
                    .get(GRANTS, &pair_key(record.patient, &record.app_id))?,
            ) != Some(record.generation)
            {
                Some(CatalogueError::ConsentWithdrawn)
            } else {
                None
            };
            record.used = true;
            if let Some(refusal) = refusal {
                batch.put(CODES, code_key.clone(), json("code", &record)?);
                return Ok((batch, (record, Err(refusal))));
            }
            let issued = self.issue(
                &mut batch,
                &record.app_id,
                record.patient,
                &record.scopes,
                record.generation,
                now,
            )?;
            record.tokens = vec![
                hex(&sha256(&issued.access_token)),
                hex(&sha256(&issued.refresh_token)),
            ];
            batch.put(CODES, code_key.clone(), json("code", &record)?);
            Ok((batch, (record, Ok(issued))))
        })?;
        let detail = audit_detail(record.patient, &record.app_id);
        match outcome {
            Ok(issued) => {
                self.audit(
                    AuditEvent::new(
                        format!("app:{}", record.app_id),
                        "app.token",
                        issued.scope.clone(),
                    )
                    .with_detail(detail),
                )?;
                Ok(issued)
            }
            Err(refusal) => {
                if matches!(refusal, CatalogueError::CodeReused) {
                    // Tokens refreshed from that code's are "based on that authorization" too.
                    self.drop_tokens(record.patient, &record.app_id, None)?;
                    self.audit(
                        AuditEvent::new(
                            format!("app:{app_id}"),
                            "app.code-reused",
                            "tokens revoked",
                        )
                        .with_detail(detail),
                    )?;
                }
                Err(refusal)
            }
        }
    }

    /// The refresh request (RFC 6749 §6): a new access token and a new refresh token; the one
    /// presented stops working. The scopes are those of the consent.
    pub fn refresh(&self, app_id: &str, refresh_token: &str, now: i64) -> Result<IssuedToken> {
        let hash = sha256(refresh_token).to_vec();
        let store = self.store();
        let lane = u64::from_be_bytes(hash[..8].try_into().unwrap_or_default());
        let issued = retry(store, lane, || {
            let raw = store
                .kv()
                .get(TOKENS, &hash)?
                .ok_or(CatalogueError::InvalidRefreshToken)?;
            let record: TokenRecord = parse("token", &raw)?;
            let pair = pair_key(record.patient, &record.app_id);
            let alive = record.kind == TokenKind::Refresh
                && record.app_id == app_id
                && record.expires > now
                && generation_of(store.kv().get(GRANTS, &pair)?) == Some(record.generation);
            if !alive {
                return Err(CatalogueError::InvalidRefreshToken);
            }
            let mut batch = Batch::new();
            batch.check(TOKENS, hash.clone(), Some(raw));
            batch.remove(TOKENS, hash.clone());
            let mut of = pair;
            of.extend_from_slice(&hash);
            batch.remove(TOKENS_OF, of);
            let issued = self.issue(
                &mut batch,
                app_id,
                record.patient,
                &record.scopes,
                record.generation,
                now,
            )?;
            Ok((batch, (record.patient, issued)))
        })?;
        let (patient, issued) = issued;
        self.audit(
            AuditEvent::new(
                format!("app:{app_id}"),
                "app.token.refresh",
                issued.scope.clone(),
            )
            .with_detail(audit_detail(patient, app_id)),
        )?;
        self.drop_tokens(patient, app_id, Some(now))?;
        Ok(issued)
    }

    /// Adds to `batch` a new access token and refresh token.
    fn issue(
        &self,
        batch: &mut Batch,
        app_id: &str,
        patient: AccountId,
        scopes: &[Scope],
        generation: u64,
        now: i64,
    ) -> Result<IssuedToken> {
        let access = random_secret()?;
        let refresh = random_secret()?;
        for (token, kind, lifetime) in [
            (&access, TokenKind::Access, ACCESS_LIFETIME),
            (&refresh, TokenKind::Refresh, REFRESH_LIFETIME),
        ] {
            let hash = sha256(token).to_vec();
            let record = TokenRecord {
                kind,
                app_id: app_id.to_string(),
                patient,
                scopes: scopes.to_vec(),
                generation,
                expires: now + lifetime,
            };
            batch.check(TOKENS, hash.clone(), None);
            batch.put(TOKENS, hash.clone(), json("token", &record)?);
            let mut of = pair_key(patient, app_id);
            of.extend_from_slice(&hash);
            batch.put(TOKENS_OF, of, Vec::new());
        }
        Ok(IssuedToken {
            access_token: access,
            token_type: "Bearer".into(),
            expires_in: ACCESS_LIFETIME,
            scope: Scope::join(scopes),
            refresh_token: refresh,
        })
    }

    /// Checks a bearer token (RFC 6750) at `now`. Fails at once after [`Catalogue::revoke`] or
    /// a change of consent, when the app leaves the catalogue, when the patient's account is
    /// disabled, or when the token expired.
    pub fn authenticate(&self, bearer: &str, now: i64) -> Result<AppGrant> {
        let hash = sha256(bearer);
        let store = self.store();
        let record: TokenRecord = match store.kv().get(TOKENS, &hash)? {
            Some(raw) => parse("token", &raw)?,
            None => return Err(CatalogueError::InvalidToken),
        };
        if record.kind != TokenKind::Access || record.expires <= now {
            return Err(CatalogueError::InvalidToken);
        }
        let live = generation_of(
            store
                .kv()
                .get(GRANTS, &pair_key(record.patient, &record.app_id))?,
        );
        if live != Some(record.generation) {
            return Err(CatalogueError::InvalidToken);
        }
        let Some(app) = self.app(&record.app_id)? else {
            return Err(CatalogueError::InvalidToken);
        };
        // A disabled account's apps stop with it (the directory caches decoded accounts).
        let active = self
            .directory()
            .account(record.patient)?
            .is_some_and(|a| a.kind.is_patient() && !a.disabled);
        if !active {
            return Err(CatalogueError::InvalidToken);
        }
        Ok(AppGrant {
            scopes: record
                .scopes
                .into_iter()
                .filter(|s| app.offers(s))
                .collect(),
            app_id: record.app_id,
            patient: record.patient,
            expires: record.expires,
        })
    }

    /// The apps the patient connected, with what each may do, by app id.
    pub fn connections(&self, patient: AccountId) -> Result<Vec<Connection>> {
        let store = self.store();
        let mut out = Vec::new();
        for (key, sealed) in store.kv().scan(CONSENTS, &patient.to_key(), None, None)? {
            // A consent whose grant is gone is being revoked: not a connection.
            if store.kv().get(GRANTS, &key)?.is_none() {
                continue;
            }
            let consent: Consent = parse("consent", &store.open_sealed(patient, &sealed)?)?;
            out.push(consent.connection);
        }
        out.sort_by(|a, b| a.app_id.cmp(&b.app_id));
        Ok(out)
    }

    /// The patient withdraws the app's access: the consent is removed and every token of
    /// (app, patient) dies at once. Audited `app.revoke` (when there was something to revoke).
    pub fn revoke(&self, patient: AccountId, app_id: &str, actor: &str) -> Result<()> {
        let key = pair_key(patient, app_id);
        let store = self.store();
        let existed = retry(store, lane(patient), || {
            let consent = store.kv().get(CONSENTS, &key)?;
            let grant = store.kv().get(GRANTS, &key)?;
            let existed = consent.is_some() || grant.is_some();
            let mut batch = Batch::new();
            batch.check(CONSENTS, key.clone(), consent);
            batch.check(GRANTS, key.clone(), grant);
            batch.remove(GRANTS, key.clone());
            batch.remove(CONSENTS, key.clone());
            Ok((batch, existed))
        })?;
        // Tokens are dead already (their generation is gone); this removes them.
        self.drop_tokens(patient, app_id, None)?;
        if existed {
            self.audit(
                AuditEvent::new(actor, "app.revoke", format!("app:{app_id}"))
                    .with_detail(audit_detail(patient, app_id)),
            )?;
        }
        Ok(())
    }

    /// Removes the tokens of (patient, app): all of them, or only those expired at `expired_at`.
    fn drop_tokens(&self, patient: AccountId, app_id: &str, expired_at: Option<i64>) -> Result<()> {
        let store = self.store();
        let prefix = pair_key(patient, app_id);
        let mut batch = Batch::new();
        for (of, _) in store.kv().scan(TOKENS_OF, &prefix, None, None)? {
            let hash = &of[prefix.len()..];
            let remove = match (expired_at, store.kv().get(TOKENS, hash)?) {
                (_, None) => true,
                (None, Some(_)) => true,
                (Some(now), Some(raw)) => {
                    let record: TokenRecord = parse("token", &raw)?;
                    let live = generation_of(store.kv().get(GRANTS, &prefix)?);
                    record.expires <= now || live != Some(record.generation)
                }
            };
            if remove {
                batch.remove(TOKENS, hash.to_vec());
                batch.remove(TOKENS_OF, of);
            }
        }
        if !batch.writes.is_empty() {
            let _ = store.kv().commit(&batch)?;
        }
        Ok(())
    }

    /// Removes codes expired for more than their lifetime (kept that long to detect reuse).
    fn purge_codes(&self, now: i64) -> Result<()> {
        let store = self.store();
        let mut batch = Batch::new();
        for (key, raw) in store.kv().scan(CODES, &[], None, Some(10_000))? {
            match parse::<CodeRecord>("code", &raw) {
                Ok(r) if r.expires + CODE_LIFETIME > now => {}
                _ => {
                    batch.check(CODES, key.clone(), Some(raw));
                    batch.remove(CODES, key);
                }
            }
        }
        if !batch.writes.is_empty() {
            // A conflict means someone used a code meanwhile: it will be purged next time.
            let _ = store.kv().commit(&batch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("zz"), None);
    }
}
