//! The authentication cache: a repeated login takes no hashing slot, and nothing that changes
//! whether a password may log in is missed.
//!
//! "Takes no slot" is tested without timing: the process's hashing gate is made busy (every
//! slot held, its queue full), so that any login that needs a hash gets `Busy` at once while
//! one answered from the cache goes through. The tests of this file share that gate, so they
//! run one at a time.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mshub_directory::hashing::{self, Busy};
use mshub_directory::*;
use mshub_store::{MasterKey, Store};

const MARTIN: &str = "dr.martin@hopital.mshub.test";
const DURAND: &str = "dr.durand@hopital.mshub.test";
const PASSWORD: &str = "demo-martin-password";

/// One test at a time: they hold the process's hashing gate.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn directory() -> (tempfile::TempDir, Directory) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap();
    let directory =
        Directory::open(Arc::new(store), Domain::try_from("mshub.test").unwrap()).unwrap();
    directory
        .set_domain(
            DomainEntry {
                domain: Domain::try_from("hopital.mshub.test").unwrap(),
                role: DomainRole::Local,
            },
            "test",
        )
        .unwrap();
    (dir, directory)
}

fn add(dir: &Directory, address: &str, rpps: &str, password: &str) {
    dir.add_account(
        Address::try_from(address).unwrap(),
        AccountKind::Professional {
            rpps: Rpps::try_from(rpps).unwrap(),
            given_name: "Jean".into(),
            family_name: "Martin".into(),
            profession: Profession::Physician,
            specialty: "médecine générale".into(),
            city: String::new(),
        },
        Some(password),
        "t",
    )
    .unwrap();
}

fn with_martin() -> (tempfile::TempDir, Directory) {
    let (d, dir) = directory();
    add(&dir, MARTIN, "10003456786", PASSWORD);
    (d, dir)
}

fn source(i: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, i])
}

fn address(s: &str) -> Address {
    Address::try_from(s).unwrap()
}

fn login(dir: &Directory, who: &str, password: &str, door: Door) -> Result<Account> {
    dir.authenticate(who, password, source(1), door)
}

fn is_busy<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(DirectoryError::Busy(_)))
}

/// Runs `f` while the hashing gate is busy: every slot held and every place of its queue
/// taken, so that whoever needs a hash is told `Busy::QueueFull` at once.
fn while_busy<R>(f: impl FnOnce() -> R) -> R {
    let gate = hashing::gate();
    let held: Vec<_> = (0..gate.slots())
        .map(|_| gate.enter().expect("a free gate"))
        .collect();
    let waiters: Vec<_> = (0..gate.max_waiting())
        .map(|_| std::thread::spawn(|| hashing::gate().enter().map(drop)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while gate.waiting() < gate.max_waiting() {
        assert!(Instant::now() < deadline, "the queue did not fill");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        gate.enter().map(drop),
        Err(Busy::QueueFull),
        "the gate is busy"
    );
    let out = f();
    drop(held);
    for w in waiters {
        let _ = w.join().unwrap();
    }
    out
}

#[test]
fn a_repeated_login_takes_no_hashing_slot() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    add(&dir, DURAND, "10003456794", "demo-durand-password");
    let first = login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    assert_eq!(dir.auth_cache().stats().misses, 1);
    while_busy(|| {
        for _ in 0..3 {
            let again = login(&dir, MARTIN, PASSWORD, Door::Mail).expect("answered from the cache");
            assert_eq!(again.id, first.id);
        }
        // Whoever is not remembered needs a slot: another account, a wrong password, the
        // other door, an unknown account (which still costs a whole verification).
        assert!(is_busy(login(
            &dir,
            DURAND,
            "demo-durand-password",
            Door::Mail
        )));
        assert!(is_busy(login(&dir, MARTIN, "not-the-password", Door::Mail)));
        assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Web)));
        assert!(is_busy(login(
            &dir,
            "nobody@hopital.mshub.test",
            PASSWORD,
            Door::Mail
        )));
    });
    let stats = dir.auth_cache().stats();
    assert_eq!(stats.hits, 3);
    assert_eq!(stats.entries, 1);
    // The logins turned away were withdrawn from the throttle, not counted as failures.
    login(&dir, MARTIN, PASSWORD, Door::Web).unwrap();
    login(&dir, DURAND, "demo-durand-password", Door::Mail).unwrap();
}

#[test]
fn a_wrong_password_is_never_remembered() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    assert!(matches!(
        login(&dir, MARTIN, "wrong-password", Door::Mail),
        Err(DirectoryError::BadCredentials)
    ));
    assert_eq!(dir.auth_cache().stats().entries, 0);
    while_busy(|| {
        // Neither the wrong password nor, of course, the right one.
        assert!(is_busy(login(&dir, MARTIN, "wrong-password", Door::Mail)));
        assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Mail)));
    });
    // The right one after a wrong one works, and is remembered.
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    assert!(matches!(
        login(&dir, MARTIN, "wrong-password", Door::Mail),
        Err(DirectoryError::BadCredentials)
    ));
    while_busy(|| {
        login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
        assert!(is_busy(login(&dir, MARTIN, "wrong-password", Door::Mail)));
    });
    assert_eq!(dir.auth_cache().stats().entries, 1);
}

#[test]
fn a_password_change_forgets_the_old_password_at_once() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    login(&dir, MARTIN, PASSWORD, Door::Web).unwrap();
    assert_eq!(dir.auth_cache().stats().entries, 2);
    dir.set_password(&address(MARTIN), "the-new-password", "t")
        .unwrap();
    assert_eq!(dir.auth_cache().stats().entries, 0, "forgotten at once");
    while_busy(|| {
        assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Mail)));
        assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Web)));
    });
    for door in [Door::Mail, Door::Web] {
        assert!(matches!(
            login(&dir, MARTIN, PASSWORD, door),
            Err(DirectoryError::BadCredentials)
        ));
    }
    login(&dir, MARTIN, "the-new-password", Door::Mail).unwrap();
    while_busy(|| login(&dir, MARTIN, "the-new-password", Door::Mail).unwrap());
}

/// A change the directory was not told of (another process sharing the store changed the
/// password, and this one's `forget` never ran): the remembered password no longer matches
/// the record read for the login, and misses.
#[test]
fn a_remembered_password_is_checked_against_the_current_record() {
    let _serial = serial();
    let (d, dir) = with_martin();
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    // A second directory on the same store plays the other process.
    let other =
        Directory::open(dir.store().clone(), Domain::try_from("mshub.test").unwrap()).unwrap();
    other
        .set_password(&address(MARTIN), "changed-elsewhere", "t")
        .unwrap();
    assert_eq!(dir.auth_cache().stats().entries, 1, "this one was not told");
    while_busy(|| assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Mail))));
    assert!(matches!(
        login(&dir, MARTIN, PASSWORD, Door::Mail),
        Err(DirectoryError::BadCredentials)
    ));
    drop(d);
}

#[test]
fn a_revoked_app_password_is_forgotten_at_once() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    let (entry, app) = dir
        .add_app_password(&address(MARTIN), "téléphone", "t")
        .unwrap();
    login(&dir, MARTIN, &app, Door::Mail).unwrap();
    while_busy(|| login(&dir, MARTIN, &app, Door::Mail).unwrap());
    dir.revoke_app_password(&address(MARTIN), entry.id, "t")
        .unwrap();
    assert_eq!(dir.auth_cache().stats().entries, 0);
    while_busy(|| assert!(is_busy(login(&dir, MARTIN, &app, Door::Mail))));
    assert!(matches!(
        login(&dir, MARTIN, &app, Door::Mail),
        Err(DirectoryError::BadCredentials)
    ));
    // The account's own password still works (hashed again once).
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
}

#[test]
fn the_web_door_takes_no_remembered_app_password() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    let (_, app) = dir
        .add_app_password(&address(MARTIN), "téléphone", "t")
        .unwrap();
    login(&dir, MARTIN, &app, Door::Mail).unwrap();
    while_busy(|| {
        login(&dir, MARTIN, &app, Door::Mail).unwrap();
        assert!(is_busy(login(&dir, MARTIN, &app, Door::Web)));
    });
    assert!(matches!(
        login(&dir, MARTIN, &app, Door::Web),
        Err(DirectoryError::BadCredentials)
    ));
    // Still refused at the web door once a web login of the account is remembered.
    login(&dir, MARTIN, PASSWORD, Door::Web).unwrap();
    assert!(matches!(
        login(&dir, MARTIN, &app, Door::Web),
        Err(DirectoryError::BadCredentials)
    ));
}

#[test]
fn disabling_forgets_at_once() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    dir.set_disabled(&address(MARTIN), true, "t").unwrap();
    assert_eq!(dir.auth_cache().stats().entries, 0);
    assert!(matches!(
        login(&dir, MARTIN, PASSWORD, Door::Mail),
        Err(DirectoryError::Disabled(_))
    ));
    // A disabled account's right password is not remembered either.
    assert_eq!(dir.auth_cache().stats().entries, 0);
    while_busy(|| assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Mail))));
    dir.set_disabled(&address(MARTIN), false, "t").unwrap();
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
}

/// Disabled while a remembered entry is kept (another process disabled it): the hit still
/// reads the account's state and refuses.
#[test]
fn a_hit_still_checks_the_account_is_usable() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    let other =
        Directory::open(dir.store().clone(), Domain::try_from("mshub.test").unwrap()).unwrap();
    other.set_disabled(&address(MARTIN), true, "t").unwrap();
    while_busy(|| {
        assert!(matches!(
            login(&dir, MARTIN, PASSWORD, Door::Mail),
            Err(DirectoryError::Disabled(_))
        ));
    });
}

#[test]
fn closing_the_space_forgets_at_once() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    login(&dir, MARTIN, PASSWORD, Door::Web).unwrap();
    dir.close(&address(MARTIN), 1_000, "t").unwrap();
    assert_eq!(dir.auth_cache().stats().entries, 0);
    assert!(matches!(
        login(&dir, MARTIN, PASSWORD, Door::Mail),
        Err(DirectoryError::Disabled(_))
    ));
    assert!(matches!(
        login(&dir, MARTIN, PASSWORD, Door::Web),
        Err(DirectoryError::NotOpen { .. })
    ));
    while_busy(|| assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Web))));
    // Reopened, and destroyed at the end of the retention delay: each time forgotten.
    dir.reopen(&address(MARTIN), 2_000, "t").unwrap();
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    assert_eq!(dir.auth_cache().stats().entries, 1);
    let closed = dir.close(&address(MARTIN), 3_000, "t").unwrap();
    assert_eq!(dir.auth_cache().stats().entries, 0);
    let Lifecycle::Closed { destroy_after, .. } = closed.lifecycle else {
        panic!("closed: {:?}", closed.lifecycle)
    };
    dir.tick(destroy_after, 10).unwrap();
    assert!(matches!(
        login(&dir, MARTIN, PASSWORD, Door::Mail),
        Err(DirectoryError::BadCredentials)
    ));
}

#[test]
fn a_hit_goes_through_the_throttle() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    let wrong = |i: u8| dir.authenticate(MARTIN, "wrong-password", source(100 + i), Door::Mail);
    // Three free failures, then the remembered password: a success for the throttle, which
    // forgives the account's failures…
    for i in 0..3 {
        assert!(matches!(wrong(i), Err(DirectoryError::BadCredentials)));
    }
    while_busy(|| login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap());
    // …so three more are free again (without it the fourth failure would lock the account
    // and the fifth attempt be throttled).
    for i in 3..6 {
        assert!(matches!(wrong(i), Err(DirectoryError::BadCredentials)));
    }
    while_busy(|| login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap());
    // A lockout in force stops the remembered password too.
    for i in 6..10 {
        assert!(matches!(wrong(i), Err(DirectoryError::BadCredentials)));
    }
    let hits = dir.auth_cache().stats().hits;
    assert!(matches!(
        login(&dir, MARTIN, PASSWORD, Door::Mail),
        Err(DirectoryError::Throttled { .. })
    ));
    assert_eq!(dir.auth_cache().stats().hits, hits, "not even looked up");
}

#[test]
fn entries_expire_after_the_ttl() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    let t0 = Instant::now();
    let now = Arc::new(Mutex::new(t0));
    let clock = now.clone();
    dir.auth_cache()
        .set_clock(Arc::new(move || *clock.lock().unwrap()));
    dir.auth_cache().configure(AuthCacheConfig {
        ttl: Duration::from_secs(60),
        capacity: 100,
    });
    let at = |secs: u64| *now.lock().unwrap() = t0 + Duration::from_secs(secs);
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    at(59);
    while_busy(|| login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap());
    at(60);
    while_busy(|| assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Mail))));
    // Hashed again, remembered again from then: hits do not extend the TTL.
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    at(100);
    while_busy(|| login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap());
    at(120);
    while_busy(|| assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Mail))));
}

#[test]
fn the_oldest_entry_is_evicted_past_the_capacity() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    add(&dir, DURAND, "10003456794", "demo-durand-password");
    dir.auth_cache().configure(AuthCacheConfig {
        ttl: Duration::from_secs(300),
        capacity: 2,
    });
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    login(&dir, MARTIN, PASSWORD, Door::Web).unwrap();
    login(&dir, DURAND, "demo-durand-password", Door::Mail).unwrap();
    assert_eq!(dir.auth_cache().stats().entries, 2);
    while_busy(|| {
        assert!(
            is_busy(login(&dir, MARTIN, PASSWORD, Door::Mail)),
            "evicted"
        );
        login(&dir, MARTIN, PASSWORD, Door::Web).unwrap();
        login(&dir, DURAND, "demo-durand-password", Door::Mail).unwrap();
    });
}

#[test]
fn a_cache_turned_off_hashes_every_login() {
    let _serial = serial();
    let (_d, dir) = with_martin();
    dir.auth_cache().configure(AuthCacheConfig::disabled());
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    while_busy(|| assert!(is_busy(login(&dir, MARTIN, PASSWORD, Door::Mail))));
    assert_eq!(dir.auth_cache().stats(), AuthCacheStats::default());
}

/// CPU time of the calling thread, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`: precise, unlike
/// the scheduler-tick accounting of /proc).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_ns() -> Option<u64> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec of the platform's layout (64-bit Linux).
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    (rc == 0).then(|| t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu_ns() -> Option<u64> {
    None
}

/// Logins/s and CPU per login for 200 repeated logins of one account, without and with the
/// cache. Run in release: `bench/auth-cache.sh` (figures in BENCHMARKS.md).
#[test]
#[ignore = "benchmark: bench/auth-cache.sh"]
fn bench_repeated_logins() {
    let _serial = serial();
    const LOGINS: u32 = 200;
    let (_d, dir) = with_martin();
    // The dummy verification's hash, the store's first reads: not measured.
    login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
    println!(
        "{LOGINS} logins of one account, Door::Mail, {} hashing slot(s)",
        hashing::gate().slots()
    );
    println!("| cache | logins/s | wall per login | CPU per login | hits | misses |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, config) in [
        ("off", Some(AuthCacheConfig::disabled())),
        ("on (5 min), from empty", Some(AuthCacheConfig::default())),
        ("on, already remembered", None),
    ] {
        if let Some(config) = config {
            // Configuring empties the cache.
            dir.auth_cache().configure(config);
        }
        let before = dir.auth_cache().stats();
        let cpu0 = thread_cpu_ns();
        let started = Instant::now();
        for _ in 0..LOGINS {
            login(&dir, MARTIN, PASSWORD, Door::Mail).unwrap();
        }
        let wall = started.elapsed();
        let cpu = cpu0.zip(thread_cpu_ns()).map(|(a, b)| b - a);
        let after = dir.auth_cache().stats();
        let per = |ns: u128| {
            let ns = ns / u128::from(LOGINS);
            if ns >= 1_000_000 {
                format!("{:.1} ms", ns as f64 / 1e6)
            } else {
                format!("{:.1} µs", ns as f64 / 1e3)
            }
        };
        println!(
            "| {label} | {:.0} | {} | {} | {} | {} |",
            f64::from(LOGINS) / wall.as_secs_f64(),
            per(wall.as_nanos()),
            cpu.map_or("n/a".into(), |c| per(u128::from(c))),
            after.hits - before.hits,
            after.misses - before.misses,
        );
    }
    // What every login pays before any password is looked at: finding and opening the
    // account's record (sealed identity).
    let martin = address(MARTIN);
    let cpu0 = thread_cpu_ns();
    let started = Instant::now();
    for _ in 0..LOGINS {
        dir.account_by_address(&martin).unwrap().unwrap();
    }
    let wall = started.elapsed();
    let cpu = cpu0.zip(thread_cpu_ns()).map(|(a, b)| b - a);
    println!(
        "| (reading the account record alone) | {:.0} | {:.1} µs | {} | | |",
        f64::from(LOGINS) / wall.as_secs_f64(),
        wall.as_nanos() as f64 / f64::from(LOGINS) / 1e3,
        cpu.map_or("n/a".into(), |c| format!(
            "{:.1} µs",
            c as f64 / f64::from(LOGINS) / 1e3
        )),
    );
}
