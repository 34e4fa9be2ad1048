//! `mshub migrate --from sled:DIR --to postgres://…`: copies every record of one key-value
//! backend into another, empty one, then reads both back and compares them entry by entry.
//! The hub must be stopped (sled's lock says so if it is not). Sealed blobs are files in the
//! data directory's `blobs/` and are not copied: every node must see that directory (or its
//! copy) at its own `data_dir/blobs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};

use mshub_store::{Backend, Batch, PgBackend, SledBackend, Tree};

/// Entries read and written at a time.
const PAGE: usize = 500;

/// A store named on the command line.
enum Location {
    Sled(PathBuf),
    Postgres(String),
}

impl Location {
    fn parse(text: &str) -> anyhow::Result<Self> {
        if let Some(dir) = text.strip_prefix("sled:") {
            let dir = Path::new(dir);
            // The data directory (its `kv/` is the sled database) or the database itself.
            let kv = dir.join("kv");
            return Ok(Self::Sled(if kv.is_dir() { kv } else { dir.to_path_buf() }));
        }
        let url = text.strip_prefix("postgres:").filter(|u| u.contains("://"));
        match url {
            Some(url) => Ok(Self::Postgres(url.to_string())),
            None if text.starts_with("postgres://") || text.starts_with("postgresql://") => {
                Ok(Self::Postgres(text.to_string()))
            }
            None => bail!("unknown store {text:?}: expected sled:DIR or postgres://user@host/db"),
        }
    }

    fn open(&self, password: Option<&str>) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(match self {
            Self::Sled(dir) => {
                if !dir.exists() {
                    bail!("no sled store at {}", dir.display());
                }
                Arc::new(SledBackend::open(dir)?)
            }
            Self::Postgres(url) => Arc::new(PgBackend::open(url, password, 4)?),
        })
    }
}

pub fn run(
    from: &str,
    to: &str,
    password: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let source = Location::parse(from)?
        .open(password)
        .context("opening the source store")?;
    let target = Location::parse(to)?
        .open(password)
        .context("opening the destination store")?;
    if !target.tree_names()?.is_empty() {
        bail!("the destination store already holds records: migrate only into an empty store");
    }
    let mut total = 0;
    let names = source.tree_names()?;
    // A progress line on standard error when it is a terminal: tree, records so far.
    let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
    for (n, name) in names.iter().enumerate() {
        // Tree names are 'static in the store's API; a one-shot command may keep a few.
        let tree = Tree(Box::leak(name.clone().into_boxed_str()));
        let progress = |copied: usize| {
            if show {
                eprint!(
                    "\r  tree {}/{} {name:<24} {copied} records copied\x1b[K",
                    n + 1,
                    names.len()
                );
            }
        };
        let copied = copy_tree(&*source, &*target, tree, &progress)?;
        if show {
            eprint!(
                "\r  tree {}/{} {name:<24} verifying\x1b[K",
                n + 1,
                names.len()
            );
        }
        verify_tree(&*source, &*target, tree, copied)?;
        if show {
            eprint!("\r\x1b[K");
        }
        writeln!(out, "  {name:<24} {copied} records")?;
        total += copied;
    }
    writeln!(
        out,
        "copied and verified {total} records in {} trees",
        names.len()
    )?;
    if let Location::Sled(kv) = Location::parse(from)? {
        if let Some(data) = kv.parent().filter(|d| d.join("blobs").is_dir()) {
            writeln!(
                out,
                "the sealed blobs stay in {}: give every node this directory as data_dir/blobs",
                data.join("blobs").display()
            )?;
        }
    }
    Ok(())
}

fn copy_tree(
    source: &dyn Backend,
    target: &dyn Backend,
    tree: Tree,
    progress: &dyn Fn(usize),
) -> anyhow::Result<usize> {
    let mut after: Option<Vec<u8>> = None;
    let mut copied = 0;
    loop {
        let page = source.scan(tree, &[], after.as_deref(), Some(PAGE))?;
        let Some((last, _)) = page.last() else {
            return Ok(copied);
        };
        after = Some(last.clone());
        let mut batch = Batch::new();
        for (k, v) in &page {
            batch.put(tree, k.clone(), v.clone());
        }
        let _ = target.commit(&batch)?;
        copied += page.len();
        progress(copied);
    }
}

/// Both stores hold exactly the same entries in `tree`.
fn verify_tree(
    source: &dyn Backend,
    target: &dyn Backend,
    tree: Tree,
    copied: usize,
) -> anyhow::Result<()> {
    let mut after: Option<Vec<u8>> = None;
    let mut seen = 0;
    loop {
        let a = source.scan(tree, &[], after.as_deref(), Some(PAGE))?;
        let b = target.scan(tree, &[], after.as_deref(), Some(PAGE))?;
        if a != b {
            bail!(
                "verification failed in tree {}: the copy differs from the source after {seen} \
                 records (was the hub running?)",
                tree.0
            );
        }
        let Some((last, _)) = a.last() else { break };
        after = Some(last.clone());
        seen += a.len();
    }
    if seen != copied {
        bail!(
            "verification failed in tree {}: {copied} copied, {seen} found",
            tree.0
        );
    }
    Ok(())
}
