//! `rolegate import APP DB.COLL DOCS.jsonl [--store DIR] [--drop]`: load documents into the
//! app's embedded store, as the system user (no rules: the store's own door).
//!
//! Input: the app (its rules are loaded, so a folder that is not an app is refused before
//! anything is written, and a namespace that no rule file names gets the `eval` warning that
//! says which rules govern it), the namespace, and a file of Extended JSON documents
//! ([`super::doc_file`]: one per line, or a JSON array; `-` is stdin). Every bad line is
//! reported with its line number and nothing is written. A document without `_id` gets a new
//! ObjectId first. The data folder is `APP/.rolegate/data` unless `--store DIR` names another
//! ([`super::store`]); it is created when needed.
//!
//! **All or nothing**: the documents go into the store in one transaction; an `_id` equal to a
//! stored one (or to another of the file's) writes none of them. `--drop` replaces the
//! collection's documents with the file's, in the same single transaction (nothing changes on
//! any error).
//!
//! Output: `imported N documents into DB.COLL (DIR)` on stdout.
//!
//! Exit codes ([`super::exit`]): 0 once imported; 2 for a namespace that is not `DB.COLL` or a
//! rule file without `--store`; 3 for a bad documents file (every problem printed), an `_id`
//! already stored, or a store that cannot be opened or fails; 4 for an app that does not exist
//! or whose rules do not load.

use std::io::Write;
use std::path::PathBuf;

use bson::Bson;
use clap::Args;
use rolegate::Rules;
use rolegate::mql::bson_equal;
use rolegate::ops::{Change, Namespace, Store, StoreError, WriteSet};

use super::doc_file::{Placed, read_documents};
use super::inputs::{collection, load_app, shown};
use super::report::{self, Problem};
use super::store::{data_folder, namespace, open_embedded};
use super::{CliError, Exit, Format, emit};

/// Arguments of `rolegate import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The app directory whose data folder receives the documents (or a rule file, with
    /// `--store`).
    pub app: PathBuf,
    /// The namespace: `database.collection`.
    #[arg(value_name = "DB.COLL")]
    pub namespace: String,
    /// The documents: Extended JSON, one per line, or a JSON array (`-`: stdin).
    #[arg(value_name = "DOCS.jsonl")]
    pub documents: PathBuf,
    /// The embedded store's data folder (default: `APP/.rolegate/data`).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Replace the collection's documents with the file's (in the same single transaction).
    #[arg(long)]
    pub drop: bool,
}

/// Runs `import`.
pub fn run(args: &ImportArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    let ns = namespace(&args.namespace)?;
    let dir = data_folder(&args.app, args.store.as_deref())?;
    let docs = read_documents(&args.documents)?;
    let (set, _) = load_app(&args.app)?;
    let rules = Rules::new(set);
    match collection(&rules, &ns.to_string(), false) {
        Ok((_, _, Some(note))) => report::warn(&note, Format::Human),
        Ok(_) => {}
        Err(e) => {
            for p in e.problems {
                let mut warning = p;
                warning.severity = report::Severity::Warning;
                warning.message.push_str(
                    " (imported all the same; app users' calls on it fail with \
                     NoMatchingRuleFound)",
                );
                report::warn(&warning, Format::Human);
            }
        }
    }
    let mut store = open_embedded(&dir)?;
    let mut changes = Vec::with_capacity(docs.len());
    let mut dropped = 0;
    if args.drop {
        let stored = store.documents(&ns).map_err(|e| store_failed(&e))?;
        dropped = stored.len();
        changes.extend(
            stored
                .into_iter()
                .map(|expected| Change::Delete { expected }),
        );
    }
    let count = docs.len();
    changes.extend(docs.iter().map(|p| Change::Insert(p.doc.clone())));
    let writes = WriteSet {
        namespace: ns.clone(),
        changes,
    };
    store
        .write(&writes)
        .map_err(|e| write_failed(&e, &docs, &ns, &shown(&args.documents)))?;
    let replaced = if args.drop {
        format!(", replacing {dropped}")
    } else {
        String::new()
    };
    emit(
        out,
        format_args!(
            "imported {count} document{} into {ns}{replaced} ({})",
            if count == 1 { "" } else { "s" },
            dir.display()
        ),
    )?;
    Ok(Exit::Yes)
}

/// A store that failed (exit 3).
fn store_failed(e: &StoreError) -> CliError {
    CliError::input(Problem::error(
        "store",
        format!("the data store failed: {e}"),
    ))
}

/// Why the write failed: a duplicate `_id` names the lines that hold it.
fn write_failed(e: &StoreError, docs: &[Placed], ns: &Namespace, file: &str) -> CliError {
    let StoreError::DuplicateKey { id } = e else {
        return CliError::input(
            Problem::error(
                "store",
                format!("nothing was imported: the data store refused the documents: {e}"),
            )
            .in_file(file),
        );
    };
    let problems: Vec<Problem> = docs
        .iter()
        .filter(|p| p.doc.get("_id").is_some_and(|x| bson_equal(x, id)))
        .map(|p| {
            p.place.problem(
                "duplicate-id",
                format!(
                    "nothing was imported: {ns} already holds a document with `_id` {}",
                    shown_id(id)
                ),
                file,
            )
        })
        .collect();
    if problems.is_empty() {
        return CliError::input(Problem::error(
            "duplicate-id",
            format!("nothing was imported: duplicate `_id` {}", shown_id(id)),
        ));
    }
    let mut err = CliError::new(Exit::Input, problems);
    if let Some(last) = err.problems.last_mut() {
        last.hint = Some("`--drop` replaces the collection's documents with the file's".into());
    }
    err
}

fn shown_id(id: &Bson) -> String {
    id.to_string()
}
