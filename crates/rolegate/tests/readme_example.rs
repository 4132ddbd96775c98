//! The README's library example is the crate front page's example (which `cargo test` runs as a
//! doctest): the two may differ only in how the example app is found, since doctests run in
//! `crates/rolegate` and the README speaks from the repository root.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;

/// The first ```rust block after `marker`, one string per line.
fn rust_block<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    let from = text
        .find(marker)
        .unwrap_or_else(|| panic!("`{marker}` not found"));
    text[from..]
        .lines()
        .skip_while(|l| l.trim() != "```rust")
        .skip(1)
        .take_while(|l| l.trim() != "```")
        .collect()
}

#[test]
fn the_readme_example_is_the_doctested_front_page_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../../README.md")).unwrap();
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let doc: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let front = rust_block(&doc, "# Example");
    // The front page loads the app through hidden lines and comments out the README's line.
    let mut shown = Vec::new();
    let mut hidden_comment = false;
    for line in front {
        match line {
            "# /*" => hidden_comment = true,
            "# */" => hidden_comment = false,
            l if hidden_comment => shown.push(l),
            l if l.starts_with("# let app") || l.starts_with("# let rules") => {}
            l => shown.push(l),
        }
    }
    let readme_block = rust_block(&readme, "## The library in one example");
    assert!(readme_block.len() > 20, "the README example is missing");
    assert_eq!(
        shown, readme_block,
        "README.md and crates/rolegate/src/lib.rs must show the same example"
    );
}

#[test]
fn the_readme_operations_example_is_the_doctested_ops_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../../README.md")).unwrap();
    let ops = std::fs::read_to_string(root.join("src/ops/mod.rs")).unwrap();
    let doc: String = ops
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let shown = rust_block(&doc, "# Example");
    let readme_block = rust_block(&readme, "## Operations and stores");
    assert!(
        readme_block.len() > 10,
        "the README's operations example is missing"
    );
    assert_eq!(
        shown, readme_block,
        "README.md and crates/rolegate/src/ops/mod.rs must show the same example"
    );
}
