//! Replays a fuzz target's committed corpus (`fuzz/corpus/<target>/`, which must not be empty)
//! and its crash reproducers (`fuzz/artifacts/<target>/`, if any) through `run`, as an
//! ordinary test: a panic fails the test and names the file. Included with `#[path]` by the
//! `tests/fuzz_corpus.rs` of each crate (one directory below the repository root).

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs `run` on every input of `target`; returns how many were replayed.
pub fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let corpus = files(&fuzz.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty or missing: the replay would pass vacuously"
    );
    let artifacts = files(&fuzz.join("artifacts").join(target));
    for path in corpus.iter().chain(&artifacts) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        if outcome.is_err() {
            panic!("{target}: {} panics", path.display());
        }
    }
    corpus.len() + artifacts.len()
}
