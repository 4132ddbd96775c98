//! `rolegate export APP DB.COLL [--store DIR]`: print the documents of a collection of the
//! app's embedded store, as the system user (no rules).
//!
//! Input: the app (only to find its data folder, `APP/.rolegate/data`, unless `--store DIR`
//! names another: the rules are not read, so the data of an app whose rules no longer load can
//! still be exported) and the namespace. Output: each document whole, as **canonical Extended
//! JSON** on its own line, in natural order (insertion order; a replaced document keeps its
//! place) — the format `import` reads back. A collection the store never held prints nothing,
//! with a warning naming the collections it holds.
//!
//! Exit codes ([`super::exit`]): 0 once printed; 2 for a namespace that is not `DB.COLL` or a
//! rule file without `--store`; 3 when the data folder holds no store (nothing is created) or
//! the store cannot be opened or fails; 4 when the app path does not exist.

use std::io::Write;
use std::path::PathBuf;

use bson::Bson;
use clap::Args;

use super::ejson::canonical;
use super::report::{self, Problem};
use super::store::{data_folder, holds_store, namespace, open_embedded};
use super::{CliError, Exit, Format, emit};

/// Arguments of `rolegate export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The app directory whose data folder holds the documents (or a rule file, with
    /// `--store`).
    pub app: PathBuf,
    /// The namespace: `database.collection`.
    #[arg(value_name = "DB.COLL")]
    pub namespace: String,
    /// The embedded store's data folder (default: `APP/.rolegate/data`).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

/// Runs `export`.
pub fn run(args: &ExportArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    let ns = namespace(&args.namespace)?;
    let dir = data_folder(&args.app, args.store.as_deref())?;
    if !holds_store(&dir) {
        return Err(CliError::input(
            Problem::error("no-store", "the data folder holds no store")
                .in_file(dir.display().to_string())
                .with_hint("`rolegate import APP DB.COLL DOCS.jsonl` creates it"),
        ));
    }
    let store = open_embedded(&dir)?;
    let failed =
        |e: rolegate::ops::StoreError| CliError::input(Problem::error("store", e.to_string()));
    let held = store.collections().map_err(failed)?;
    if !held.contains(&ns) {
        let names: Vec<String> = held.iter().map(|n| format!("`{n}`")).collect();
        let hint = if names.is_empty() {
            "it holds no collection".to_string()
        } else {
            format!("it holds {}", names.join(", "))
        };
        report::warn(
            &Problem::warning(
                "unknown-collection",
                format!("the store holds no collection `{ns}`"),
            )
            .in_file(dir.display().to_string())
            .with_hint(hint),
            Format::Human,
        );
        return Ok(Exit::Yes);
    }
    for doc in store.documents(&ns).map_err(failed)? {
        emit(out, canonical(&Bson::Document(doc))?)?;
    }
    Ok(Exit::Yes)
}
