//! Stage: the store itself. Input: a connection string, then the reads and write sets of
//! operations. Output: documents read from the deployment, and write sets applied there all or
//! nothing (module `write`).
//!
//! A read is a `find` with the read's query and projection, the `simple` collation and no sort
//! (natural order), outside any transaction.

use bson::{Document, doc};
use mongodb::sync::{Client, Collection};
use rolegate::ops::{Namespace, Store, StoreError, StoreRead, WriteSet};

use crate::filter::simple_collation;
use crate::topology::{NEEDS_TRANSACTIONS, runs_transactions};
use crate::write::{failed, write_set};

/// A [`Store`] on a MongoDB replica set or sharded cluster, through the official driver's
/// blocking API. Each [`Namespace`] is the database and collection of the same names.
#[derive(Debug, Clone)]
pub struct MongoStore {
    client: Client,
}

impl MongoStore {
    /// Connects to the deployment `uri` names (`mongodb://…` or `mongodb+srv://…`, with any
    /// driver option the URI can carry: credentials, TLS, timeouts), asks it `hello`, and
    /// refuses a standalone server, which cannot run the transactions every write set needs.
    /// The error is a [`StoreError::Failed`] with the driver's message, from which the URI and
    /// its password are removed (error messages end up in logs).
    pub fn connect(uri: &str) -> Result<MongoStore, StoreError> {
        let scrub = |e: StoreError| match e {
            StoreError::Failed(m) => StoreError::Failed(scrub_secrets(&m, uri)),
            other => other,
        };
        let client = Client::with_uri_str(uri).map_err(|e| scrub(failed("reading the URI", &e)))?;
        let hello = client
            .database("admin")
            .run_command(doc! { "hello": 1 })
            .run()
            .map_err(|e| scrub(failed("connecting", &e)))?;
        if !runs_transactions(&hello) {
            return Err(StoreError::Failed(NEEDS_TRANSACTIONS.to_string()));
        }
        Ok(MongoStore { client })
    }

    /// The driver's client, for what the [`Store`] trait does not cover (indexes, dropping a
    /// database, administration).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The collection of `namespace`.
    pub(crate) fn collection(&self, namespace: &Namespace) -> Collection<Document> {
        self.client
            .database(&namespace.database)
            .collection(&namespace.collection)
    }
}

impl Store for MongoStore {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        let coll = self.collection(&read.namespace);
        let mut find = coll.find(read.query.clone()).collation(simple_collation());
        if let Some(projection) = &read.projection {
            find = find.projection(projection.clone());
        }
        let cursor = find.run().map_err(|e| failed("reading", &e))?;
        cursor
            .collect::<Result<Vec<Document>, _>>()
            .map_err(|e| failed("reading", &e))
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        write_set(self, writes)
    }
}

/// `message` without `uri` and without the password of its `user:password@` part.
fn scrub_secrets(message: &str, uri: &str) -> String {
    let mut out = message.replace(uri, "<the URI>");
    let password = uri
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    if let Some(p) = password {
        out = out.replace(p, "<password>");
    }
    out
}

#[cfg(test)]
mod scrub_tests {
    use super::scrub_secrets;

    #[test]
    fn uris_and_passwords_are_removed_from_messages() {
        let uri = "mongodb://app:s3cret@db.example.com/?replicaSet=rs0";
        let m = format!("bad {uri} and s3cret again");
        let out = scrub_secrets(&m, uri);
        assert!(!out.contains("s3cret"), "{out}");
        assert_eq!(out, "bad <the URI> and <password> again");
        assert_eq!(scrub_secrets("plain", "mongodb://h"), "plain");
    }
}
