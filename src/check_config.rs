//! `mshub check-config`: what an operator runs after editing the configuration and before
//! (re)starting the service — every problem the hub would meet at start, found without
//! starting it or opening the store, each on its own line.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::config::Config;

/// Checks `config` (already parsed from `path`); writes one line per check and returns
/// whether all passed.
pub fn run(path: &Path, config: &Config, out: &mut dyn Write) -> anyhow::Result<bool> {
    let mut failed = 0;
    let mut report = |what: &str, result: anyhow::Result<String>| -> std::io::Result<()> {
        match result {
            Ok(detail) => writeln!(out, "ok    {what}{}", suffix(&detail)),
            Err(e) => {
                failed += 1;
                writeln!(out, "FAIL  {what}: {e:#}")
            }
        }
    };
    report("configuration", Ok(path.display().to_string()))?;
    report(
        "[tls] certificate and key",
        crate::tls::load_identity(&config.tls).map(|_| config.tls.cert.display().to_string()),
    )?;
    report(
        "master key",
        config
            .master_key()
            .map(|_| match std::env::var_os("MSHUB_MASTER_KEY") {
                Some(_) => "from MSHUB_MASTER_KEY".to_string(),
                None => "from master_key_file".to_string(),
            }),
    )?;
    report("data_dir", writable(&config.data_dir))?;
    report("[listen] addresses", distinct_listeners(config))?;
    if let Some(ca) = &config.mta.peer_ca {
        report(
            "[mta] peer_ca",
            mshub_mta::tls::load_roots(ca)
                .map(|_| ca.display().to_string())
                .map_err(anyhow::Error::from),
        )?;
    }
    for authority in &config.catalogue.authorities {
        report(
            "[catalogue] authority",
            std::fs::metadata(authority)
                .map(|_| authority.display().to_string())
                .map_err(|e| anyhow::anyhow!("{}: {e}", authority.display())),
        )?;
    }
    if let Some(key) = &config.prescription.signing_key {
        report(
            "[prescription] signing_key",
            std::fs::metadata(key)
                .map(|_| key.display().to_string())
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display())),
        )?;
    }
    if config.store.backend == crate::config::StoreBackend::Postgres {
        report(
            "[store] url",
            config
                .postgres()
                .map(|(url, _)| format!("{url} (reachability is checked at start, not here)")),
        )?;
    }
    if failed == 0 {
        writeln!(out, "configuration OK")?;
    } else {
        writeln!(
            out,
            "{failed} problem(s): the hub would not start as configured"
        )?;
    }
    Ok(failed == 0)
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

/// The data directory exists (or can be created) and takes a file.
fn writable(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let probe = tempfile_in(dir)?;
    std::fs::remove_file(&probe).ok();
    Ok(dir.display().to_string())
}

fn tempfile_in(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let probe = dir.join(format!(".check-config-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| anyhow::anyhow!("{} is not writable: {e}", dir.display()))?;
    Ok(probe)
}

/// No two services on one address (port 0 — a port the system picks — excepted).
fn distinct_listeners(config: &Config) -> anyhow::Result<String> {
    let l = &config.listen;
    let all = [
        ("smtp_relay", l.smtp_relay),
        ("submission", l.submission),
        ("submissions", l.submissions),
        ("imap", l.imap),
        ("imaps", l.imaps),
        ("https", l.https),
        ("admin", l.admin),
    ];
    let mut seen: HashMap<std::net::SocketAddr, &str> = HashMap::new();
    for (name, addr) in all {
        if addr.port() == 0 {
            continue;
        }
        if let Some(other) = seen.insert(addr, name) {
            anyhow::bail!("{other} and {name} both on {addr}");
        }
    }
    if !l.admin.ip().is_loopback() {
        return Ok(format!(
            "admin on {} is not loopback: keep it on a management network",
            l.admin
        ));
    }
    Ok(String::new())
}
