//! `docs/architecture.md` is what a new colleague follows: every repository path it names in
//! backticks (those starting at a top-level folder: `crates/`, `docs/`, `xtask/`, `fuzz/`,
//! `.cargo/`) exists, so its extension recipes never send anyone to a file that moved.

use std::path::Path;

#[test]
fn architecture_doc_names_only_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let tops = ["crates/", "docs/", "xtask/", "fuzz/", ".cargo/"];
    let mut named = 0;
    let mut missing = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        // odd pieces are inside backticks; a path is one token without spaces or placeholders
        if i % 2 == 0 || span.contains([' ', '<', '*', '{']) || span.contains("...") {
            continue;
        }
        if !tops.iter().any(|t| span.starts_with(t)) {
            continue;
        }
        named += 1;
        if !root.join(span).exists() {
            missing.push(span.to_string());
        }
    }
    assert!(named >= 30, "expected the recipes' paths, found {named}");
    assert!(missing.is_empty(), "docs/architecture.md names paths that do not exist: {missing:?}");
}
