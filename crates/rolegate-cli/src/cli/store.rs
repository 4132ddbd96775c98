//! Stage: the data store of `call`, `import` and `export`. Input: the app path and the
//! `--store DIR` / `--mongodb URI` options, or a `DB.COLL` argument. Output: an open store (the
//! embedded store in a data folder, or — in a build with the `mongodb` feature — a MongoDB
//! deployment) and the namespace, or the [`CliError`] that says why not.
//!
//! **The default data folder is `APP/.rolegate/data`** when `APP` is an app directory: each app
//! has its own data, found again by every command that names the app without a flag, so
//! `import` then `call` on the same app need no `--store`; the folder is hidden, so the loader
//! and `check` do not look at it, and `.gitignore` keeps it out of this repository. A rule file
//! given as `APP` has no folder of its own: `--store DIR` is required then (exit 2).
//!
//! Exit codes ([`super::exit`]): 2 for a namespace that is not `DB.COLL`, a rule file without
//! `--store`, or `--mongodb` in a build without MongoDB support; 4 for an `APP` that does not
//! exist; 3 when the store cannot be
//! opened (the folder cannot be created, the file is corrupt, of another format, or open in
//! another process) or fails.

use std::path::{Path, PathBuf};

use rolegate::ops::{Namespace, Store};
use rolegate_store::{EmbeddedStore, FILE_NAME};

use super::report::Problem;
use super::{CliError, Exit};

/// The data folder of an app directory, relative to it.
pub const DATA_FOLDER: &str = ".rolegate/data";

/// The message of `--mongodb` in a build without the `mongodb` feature.
pub const NO_MONGODB: &str = "this build has no MongoDB support: build with --features mongodb";

/// The data folder: `--store DIR` when given, else `APP/.rolegate/data` for an app directory.
/// An `APP` that does not exist is exit 4, as for every command that names the rules.
pub fn data_folder(app: &Path, store: Option<&Path>) -> Result<PathBuf, CliError> {
    if !app.exists() {
        return Err(CliError::new(
            Exit::Rules,
            vec![
                Problem::error("io", "cannot read: no such file or directory")
                    .in_file(app.display().to_string()),
            ],
        ));
    }
    if let Some(dir) = store {
        return Ok(dir.to_path_buf());
    }
    if app.is_dir() {
        return Ok(app.join(DATA_FOLDER));
    }
    Err(CliError::new(
        Exit::Usage,
        vec![
            Problem::error(
                "no-data-folder",
                format!(
                    "`{}` is a rule file, not an app directory: it has no data folder of its own",
                    app.display()
                ),
            )
            .with_hint("give the data folder with `--store DIR`"),
        ],
    ))
}

/// Opens (creating it when needed) the embedded store in `dir`.
pub fn open_embedded(dir: &Path) -> Result<EmbeddedStore, CliError> {
    EmbeddedStore::open(dir).map_err(|e| {
        CliError::input(
            Problem::error("store", format!("cannot open the data store: {e}"))
                .in_file(dir.display().to_string()),
        )
    })
}

/// Whether `dir` holds an embedded store (its database file).
pub fn holds_store(dir: &Path) -> bool {
    dir.join(FILE_NAME).is_file()
}

/// The store a `call` runs on, and how to name it in messages.
pub struct OpenStore {
    /// The store.
    pub store: Box<dyn Store>,
    /// `the embedded store in DIR` or `the MongoDB deployment of --mongodb`.
    pub description: String,
    /// Set when the embedded store was created by this command (its folder held none).
    pub created: Option<PathBuf>,
}

/// Opens the store of a `call`: the MongoDB deployment of `mongodb`, else the embedded store
/// in the data folder ([`data_folder`]), created empty when it holds none.
pub fn open_for_call(
    app: &Path,
    store: Option<&Path>,
    mongodb: Option<&str>,
) -> Result<OpenStore, CliError> {
    if let Some(uri) = mongodb {
        return connect_mongodb(uri);
    }
    let dir = data_folder(app, store)?;
    let existed = holds_store(&dir);
    let embedded = open_embedded(&dir)?;
    Ok(OpenStore {
        store: Box::new(embedded),
        description: format!("the embedded store in {}", dir.display()),
        created: (!existed).then_some(dir),
    })
}

/// Refuses `--mongodb` before any other work when this build cannot connect (exit 2).
pub fn check_mongodb_support(mongodb: Option<&str>) -> Result<(), CliError> {
    if mongodb.is_some() && !cfg!(feature = "mongodb") {
        return Err(CliError::usage("no-mongodb", NO_MONGODB));
    }
    Ok(())
}

/// Connects to the MongoDB deployment at `uri`. The URI is never printed (it may hold a
/// password).
#[cfg(feature = "mongodb")]
fn connect_mongodb(uri: &str) -> Result<OpenStore, CliError> {
    let store = rolegate_store_mongodb::MongoStore::connect(uri).map_err(|e| {
        CliError::input(Problem::error(
            "store",
            format!("cannot connect to the MongoDB deployment of --mongodb: {e}"),
        ))
    })?;
    Ok(OpenStore {
        store: Box::new(store),
        description: "the MongoDB deployment of --mongodb".to_string(),
        created: None,
    })
}

/// The MongoDB deployment at `uri` as the shared data store of `rolegate serve`. The URI is
/// never printed.
#[cfg(feature = "mongodb")]
pub fn mongodb_for_serve(
    uri: &str,
) -> Result<std::sync::Arc<dyn rolegate_serve::data::SharedStore>, CliError> {
    let store = rolegate_store_mongodb::MongoStore::connect(uri).map_err(|e| {
        CliError::input(Problem::error(
            "store",
            format!("cannot connect to the MongoDB deployment of --mongodb: {e}"),
        ))
    })?;
    Ok(std::sync::Arc::new(MongoData(store)))
}

/// Without the `mongodb` feature, `--mongodb` is a usage error.
#[cfg(not(feature = "mongodb"))]
pub fn mongodb_for_serve(
    _uri: &str,
) -> Result<std::sync::Arc<dyn rolegate_serve::data::SharedStore>, CliError> {
    Err(CliError::usage("no-mongodb", NO_MONGODB))
}

/// A MongoDB deployment shared by the server's threads: the driver's client is a handle onto
/// one connection pool, so each read or write set works on a clone of it.
#[cfg(feature = "mongodb")]
struct MongoData(rolegate_store_mongodb::MongoStore);

#[cfg(feature = "mongodb")]
impl rolegate_serve::data::SharedStore for MongoData {
    fn find(
        &self,
        read: &rolegate::ops::StoreRead,
    ) -> Result<Vec<bson::Document>, rolegate::ops::StoreError> {
        rolegate::ops::Store::find(&mut self.0.clone(), read)
    }

    fn write(&self, writes: &rolegate::ops::WriteSet) -> Result<(), rolegate::ops::StoreError> {
        rolegate::ops::Store::write(&mut self.0.clone(), writes)
    }

    fn describe(&self) -> String {
        "the MongoDB deployment of --mongodb".to_string()
    }
}

/// Without the `mongodb` feature, `--mongodb` is a usage error.
#[cfg(not(feature = "mongodb"))]
fn connect_mongodb(_uri: &str) -> Result<OpenStore, CliError> {
    Err(CliError::usage("no-mongodb", NO_MONGODB))
}

/// Parses a `DB.COLL` argument: the database name (up to the first `.`) must be non-empty and
/// hold none of `/\. "$` nor NUL (MongoDB's rule for database names), the collection name
/// non-empty without `$` nor NUL. `data_source/DB.COLL` is refused with a hint: the store keeps
/// one namespace per `DB.COLL`.
pub fn namespace(arg: &str) -> Result<Namespace, CliError> {
    let bad = |why: &str, hint: &str| {
        CliError::new(
            Exit::Usage,
            vec![
                Problem::error(
                    "invalid-namespace",
                    format!("`{arg}` is not a namespace: {why}"),
                )
                .with_hint(hint.to_string()),
            ],
        )
    };
    let expected = "a namespace is `database.collection`, e.g. `taskboard.tasks`";
    if let Some((ds, ns)) = arg.split_once('/')
        && !ds.contains('.')
        && ns.contains('.')
    {
        return Err(bad(
            "a data source is not part of a store's namespace",
            &format!("give `{ns}`: the store keeps one collection per `database.collection`"),
        ));
    }
    let Some((database, collection)) = arg.split_once('.') else {
        return Err(bad("it has no `.`", expected));
    };
    if database.is_empty() || collection.is_empty() {
        return Err(bad(
            "the database or the collection name is empty",
            expected,
        ));
    }
    if let Some(c) = database
        .chars()
        .find(|c| matches!(c, '/' | '\\' | ' ' | '"' | '$' | '\0'))
    {
        return Err(bad(&format!("a database name cannot hold {c:?}"), expected));
    }
    if let Some(c) = collection.chars().find(|c| matches!(c, '$' | '\0')) {
        return Err(bad(
            &format!("a collection name cannot hold {c:?}"),
            expected,
        ));
    }
    Ok(Namespace::new(database, collection))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert_eq!(
            namespace("taskboard.tasks").unwrap(),
            Namespace::new("taskboard", "tasks")
        );
        // The collection may hold dots.
        assert_eq!(namespace("a.b.c").unwrap(), Namespace::new("a", "b.c"));
        for bad in [
            "tasks",
            ".tasks",
            "taskboard.",
            "mongodb-atlas/taskboard.tasks",
            "task board.x",
            "db.co$ll",
        ] {
            let e = namespace(bad).err().map(|e| e.exit);
            assert_eq!(e, Some(Exit::Usage), "{bad}");
        }
    }

    #[test]
    fn a_rule_file_needs_a_store_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.json");
        std::fs::write(&file, "{}").unwrap();
        assert_eq!(
            data_folder(&file, None).err().map(|e| e.exit),
            Some(Exit::Usage)
        );
        assert_eq!(
            data_folder(dir.path(), None).ok(),
            Some(dir.path().join(DATA_FOLDER))
        );
        let other = dir.path().join("elsewhere");
        assert_eq!(data_folder(&file, Some(&other)).ok(), Some(other.clone()));
        assert_eq!(
            data_folder(&dir.path().join("missing"), Some(&other))
                .err()
                .map(|e| e.exit),
            Some(Exit::Rules)
        );
    }
}
