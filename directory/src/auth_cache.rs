//! The authentication cache: a password verified once is not hashed again for a few minutes
//! (Dovecot's `auth_cache`). An argon2id verification is right for a phone's first LOGIN and
//! wasteful for its hundredth reconnect: a hit answers in microseconds and takes no slot of
//! the hashing gate ([`crate::hashing`]), which stays free for the logins that need it.
//!
//! What is remembered, **in memory only**, is a fact that cannot go stale: "this password
//! matches this credential of this account", that is the result of `verify(password, PHC)`.
//! - The key is an HMAC-SHA256, under a random key drawn when the directory opens and never
//!   stored, of the account id, the door and the password: the table holds no password and
//!   nothing that can be tested offline once the process is gone.
//! - The value names the credential that matched (the account's password or one application
//!   password) and an HMAC of its PHC string. A hit counts only if the account, as read from
//!   the store for this very login, still has that credential with that PHC string: a changed
//!   password (a new salt, so a new PHC string), a revoked application password, a space whose
//!   identity was blanked all miss at once, even when another process made the change.
//! - Entries live for a TTL (5 minutes by default) from the verification, not refreshed by
//!   hits; at most a bounded number (10 000), the oldest evicted first.
//! - Every change that bears on whether a password may log in (password, application
//!   passwords, disabling, the space's life) also forgets the account's entries at once
//!   ([`AuthCache::forget`]): memory is not kept for a password that no longer logs in.
//!
//! Failures are never remembered. What is decided for each login is decided again on a hit:
//! the throttle (a lockout in force stops a cached password too, and a hit is a success for
//! its bookkeeping), the account being usable, and the door (the web door takes no
//! application password). Unknown accounts never reach the cache: they still cost one whole
//! verification (no account enumeration).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mshub_store::AccountId;
use ring::hmac;

use crate::{Account, Door};

/// How long a verified password is remembered, by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// How many verified passwords are remembered at most, by default (a few MiB at most).
pub const DEFAULT_CAPACITY: usize = 10_000;

/// The cache's settings (`[accounts]` in the configuration). A zero TTL or capacity turns the
/// cache off: every login is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthCacheConfig {
    pub ttl: Duration,
    pub capacity: usize,
}

impl Default for AuthCacheConfig {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

impl AuthCacheConfig {
    /// No cache: every login is hashed.
    pub fn disabled() -> Self {
        Self {
            ttl: Duration::ZERO,
            capacity: 0,
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }
}

/// Where the cache reads the time: [`Instant::now`] unless a test drives it.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Counters since the directory opened (hits and misses count only logins of known accounts
/// while the cache is on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthCacheStats {
    /// Logins answered without hashing.
    pub hits: u64,
    /// Logins that had to be hashed.
    pub misses: u64,
    /// Passwords remembered now (expired ones may remain until pushed out).
    pub entries: usize,
}

/// Which of the account's credentials a password matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    Password,
    App(u32),
}

type Tag = [u8; 32];

/// The HMAC of one (account, door, password): the cache's key for one login.
#[derive(Clone, Copy)]
pub(crate) struct LoginTag(Tag);

#[derive(Debug, Clone, Copy)]
struct Entry {
    account: AccountId,
    credential: Credential,
    /// HMAC of the credential's PHC string when it was verified.
    phc: Tag,
    verified: Instant,
    /// Insertion order, for eviction.
    seq: u64,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<Tag, Entry>,
    /// seq → key, oldest first.
    order: BTreeMap<u64, Tag>,
    by_account: HashMap<AccountId, Vec<Tag>>,
    next_seq: u64,
}

impl Table {
    fn remove(&mut self, tag: &Tag) -> Option<Entry> {
        let entry = self.entries.remove(tag)?;
        self.order.remove(&entry.seq);
        if let Some(tags) = self.by_account.get_mut(&entry.account) {
            tags.retain(|t| t != tag);
            if tags.is_empty() {
                self.by_account.remove(&entry.account);
            }
        }
        Some(entry)
    }

    fn forget(&mut self, account: AccountId) -> usize {
        let tags = self.by_account.remove(&account).unwrap_or_default();
        for tag in &tags {
            if let Some(entry) = self.entries.remove(tag) {
                self.order.remove(&entry.seq);
            }
        }
        tags.len()
    }

    /// Drops the expired entries at the front, then the oldest ones until there is room for
    /// one more.
    fn make_room(&mut self, config: &AuthCacheConfig, now: Instant) {
        while let Some((_, tag)) = self.order.first_key_value() {
            let tag = *tag;
            let expired = self
                .entries
                .get(&tag)
                .is_none_or(|e| now.saturating_duration_since(e.verified) >= config.ttl);
            if !expired && self.entries.len() < config.capacity {
                break;
            }
            if self.remove(&tag).is_none() {
                // An order entry without its entry cannot happen; never loop on one.
                self.order.pop_first();
            }
        }
    }

    fn insert(&mut self, tag: Tag, mut entry: Entry, config: &AuthCacheConfig, now: Instant) {
        self.remove(&tag);
        self.make_room(config, now);
        entry.seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(entry.seq, tag);
        self.by_account.entry(entry.account).or_default().push(tag);
        self.entries.insert(tag, entry);
    }
}

/// Verified passwords, in memory. One per [`crate::Directory`].
pub struct AuthCache {
    key: hmac::Key,
    config: RwLock<AuthCacheConfig>,
    clock: RwLock<Clock>,
    table: Mutex<Table>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("config", &self.config())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AuthCache {
    /// An empty cache with a fresh random key (never stored).
    pub fn new(config: AuthCacheConfig) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system's random generator works");
        Self {
            key,
            config: RwLock::new(config),
            clock: RwLock::new(Arc::new(Instant::now)),
            table: Mutex::new(Table::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> AuthCacheConfig {
        *self.config.read().unwrap_or_else(|p| p.into_inner())
    }

    /// New settings; what was remembered is forgotten.
    pub fn configure(&self, config: AuthCacheConfig) {
        let mut table = self.table();
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        *table = Table::default();
    }

    /// Reads the time from `clock` from now on (tests drive the TTL with it).
    pub fn set_clock(&self, clock: Clock) {
        *self.clock.write().unwrap_or_else(|p| p.into_inner()) = clock;
    }

    fn now(&self) -> Instant {
        let clock = self.clock.read().unwrap_or_else(|p| p.into_inner()).clone();
        clock()
    }

    pub fn stats(&self) -> AuthCacheStats {
        AuthCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.table().entries.len(),
        }
    }

    /// Forgets every password remembered for `account`; how many there were.
    pub fn forget(&self, account: AccountId) -> usize {
        self.table().forget(account)
    }

    /// Forgets everything.
    pub fn clear(&self) {
        *self.table() = Table::default();
    }

    fn mac(&self, parts: &[&[u8]]) -> Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn phc(&self, phc: &str) -> Tag {
        self.mac(&[b"mshub-auth-cache-phc\0", phc.as_bytes()])
    }

    /// The key of one login, or `None` when the cache is off (nothing to compute, nothing
    /// to remember) or the password is longer than any verification accepts.
    pub(crate) fn tag(&self, account: AccountId, door: Door, password: &str) -> Option<LoginTag> {
        if !self.config().is_enabled() || password.len() > 1024 {
            return None;
        }
        let door: &[u8] = match door {
            Door::Mail => b"M",
            Door::Web => b"W",
        };
        Some(LoginTag(self.mac(&[
            b"mshub-auth-cache-login\0",
            &account.to_key(),
            door,
            password.as_bytes(),
        ])))
    }

    /// Whether this login's password was verified within the TTL against a credential that
    /// `account` (as just read from the store) still has and that `door` accepts. A stale
    /// entry found on the way is dropped.
    pub(crate) fn check(&self, tag: &LoginTag, account: &Account, door: Door) -> bool {
        let config = self.config();
        let now = self.now();
        let mut table = self.table();
        let Some(entry) = table.entries.get(&tag.0).copied() else {
            drop(table);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let current = match entry.credential {
            Credential::Password => account.password_hash.as_deref(),
            // The web door takes the account's own password only, whatever is remembered.
            Credential::App(_) if door != Door::Mail => None,
            Credential::App(id) => account
                .app_passwords
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.hash.as_str()),
        };
        let fresh = now.saturating_duration_since(entry.verified) < config.ttl;
        let valid = fresh
            && entry.account == account.id
            && current.is_some_and(|phc| self.phc(phc) == entry.phc);
        if !valid {
            table.remove(&tag.0);
        }
        drop(table);
        let counter = if valid { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        valid
    }

    /// Remembers that this login's password matched `credential` of `account`.
    pub(crate) fn remember(&self, tag: &LoginTag, account: &Account, credential: Credential) {
        let config = self.config();
        if !config.is_enabled() {
            return;
        }
        let phc = match credential {
            Credential::Password => account.password_hash.as_deref(),
            Credential::App(id) => account
                .app_passwords
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.hash.as_str()),
        };
        let Some(phc) = phc else { return };
        let entry = Entry {
            account: account.id,
            credential,
            phc: self.phc(phc),
            verified: self.now(),
            seq: 0,
        };
        let now = entry.verified;
        self.table().insert(tag.0, entry, &config, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(account: u64, verified: Instant) -> Entry {
        Entry {
            account: AccountId(account),
            credential: Credential::Password,
            phc: [0; 32],
            verified,
            seq: 0,
        }
    }

    fn config(capacity: usize) -> AuthCacheConfig {
        AuthCacheConfig {
            ttl: Duration::from_secs(60),
            capacity,
        }
    }

    #[test]
    fn the_oldest_entry_goes_first_and_the_size_is_bounded() {
        let mut t = Table::default();
        let t0 = Instant::now();
        for i in 0..5u8 {
            t.insert([i; 32], entry(u64::from(i), t0), &config(3), t0);
        }
        assert_eq!(t.entries.len(), 3);
        for gone in 0..2u8 {
            assert!(!t.entries.contains_key(&[gone; 32]));
        }
        assert_eq!(t.order.len(), 3);
        assert_eq!(t.by_account.len(), 3);
        // Remembering a key again makes it the newest.
        t.insert([2; 32], entry(2, t0), &config(3), t0);
        t.insert([9; 32], entry(9, t0), &config(3), t0);
        assert!(t.entries.contains_key(&[2; 32]));
        assert!(!t.entries.contains_key(&[3; 32]));
    }

    #[test]
    fn expired_entries_make_room_first() {
        let mut t = Table::default();
        let t0 = Instant::now();
        t.insert([1; 32], entry(1, t0), &config(10), t0);
        t.insert(
            [2; 32],
            entry(2, t0 + Duration::from_secs(30)),
            &config(10),
            t0,
        );
        t.insert(
            [3; 32],
            entry(3, t0 + Duration::from_secs(61)),
            &config(10),
            t0 + Duration::from_secs(61),
        );
        assert!(!t.entries.contains_key(&[1; 32]), "expired, dropped");
        assert!(t.entries.contains_key(&[2; 32]));
    }

    #[test]
    fn forgetting_an_account_drops_all_its_entries_and_only_them() {
        let mut t = Table::default();
        let t0 = Instant::now();
        t.insert([1; 32], entry(7, t0), &config(10), t0);
        t.insert([2; 32], entry(7, t0), &config(10), t0);
        t.insert([3; 32], entry(8, t0), &config(10), t0);
        assert_eq!(t.forget(AccountId(7)), 2);
        assert_eq!(t.entries.len(), 1);
        assert_eq!(t.order.len(), 1);
        assert!(!t.by_account.contains_key(&AccountId(7)));
        assert_eq!(t.forget(AccountId(7)), 0);
    }

    #[test]
    fn tags_depend_on_account_door_and_password_and_on_the_key() {
        let c = AuthCache::new(AuthCacheConfig::default());
        let tag = |a, d, p| c.tag(AccountId(a), d, p).unwrap().0;
        let base = tag(1, Door::Mail, "secret-password");
        assert_eq!(base, tag(1, Door::Mail, "secret-password"));
        assert_ne!(base, tag(2, Door::Mail, "secret-password"));
        assert_ne!(base, tag(1, Door::Web, "secret-password"));
        assert_ne!(base, tag(1, Door::Mail, "secret-passwore"));
        let other = AuthCache::new(AuthCacheConfig::default());
        assert_ne!(
            base,
            other
                .tag(AccountId(1), Door::Mail, "secret-password")
                .unwrap()
                .0,
            "a key of its own per process"
        );
        assert!(c.tag(AccountId(1), Door::Mail, &"x".repeat(1025)).is_none());
        c.configure(AuthCacheConfig::disabled());
        assert!(c.tag(AccountId(1), Door::Mail, "secret-password").is_none());
    }
}
