//! The pages' layout: one module per page, and no page importing another. What two pages
//! share (the frame, formatting, downloads, the vault's and mailboxes' reads) lives in a
//! module of its own, so a page can be read, changed or removed alone.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    out.sort();
    out
}

/// The code of a file: without comments (a doc link to another page is fine) nor its
/// `#[cfg(test)]` module, which may use `super::*`.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_page_imports_another_page_nor_the_router() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let pages: Vec<String> = sources(&src.join("pages"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod")
        .collect();
    assert!(pages.len() >= 10, "{pages:?}");
    let mut offences = Vec::new();
    for path in sources(&src.join("pages")) {
        if path.ends_with("mod.rs") {
            continue;
        }
        let code = code(&path);
        for (n, line) in code.lines().enumerate() {
            if line.contains("super::") || line.contains("crate::pages") {
                offences.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    // Shared modules never reach into a page either (lib.rs mounts the router).
    for path in sources(&src) {
        if path.ends_with("lib.rs") {
            continue;
        }
        let code = code(&path);
        for (n, line) in code.lines().enumerate() {
            if line.contains("crate::pages") || line.contains("pages::") {
                offences.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "imports across pages:\n{}",
        offences.join("\n")
    );
}

#[test]
fn no_page_module_grows_past_what_one_reader_holds() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pages");
    for path in sources(&src) {
        let lines = code(&path).lines().count();
        assert!(lines <= 800, "{} has {lines} lines of code", path.display());
    }
}
