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
    /// The error is a [`StoreError::Failed`] with the driver's message.
    pub fn connect(uri: &str) -> Result<MongoStore, StoreError> {
        let client = Client::with_uri_str(uri).map_err(|e| failed("reading the URI", &e))?;
        let hello = client
            .database("admin")
            .run_command(doc! { "hello": 1 })
            .run()
            .map_err(|e| failed("connecting", &e))?;
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
