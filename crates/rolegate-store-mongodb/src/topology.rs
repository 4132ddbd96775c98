//! Stage: the deployment check at connection. Input: the server's answer to `hello`. Output:
//! whether the deployment runs multi-document transactions, which every write set of the store
//! needs: a replica-set member answers with its `setName`, a `mongos` (a sharded cluster, or
//! the proxy of a load-balanced or serverless deployment) with `msg: "isdbgrid"`. A standalone
//! server answers with neither: it cannot run transactions, so the store refuses it at once
//! rather than failing on the first write.

use bson::Document;

/// Whether the server that answered `hello` with `hello` can run transactions.
pub fn runs_transactions(hello: &Document) -> bool {
    hello.get_str("setName").is_ok_and(|name| !name.is_empty())
        || hello.get_str("msg").is_ok_and(|msg| msg == "isdbgrid")
}

/// What the store says when the deployment cannot run transactions.
pub const NEEDS_TRANSACTIONS: &str = "the MongoDB store needs a replica set or a sharded cluster \
     (its write sets are multi-document transactions); this server is a standalone";

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn replica_sets_and_mongos_run_transactions() {
        assert!(runs_transactions(&doc! {
            "isWritablePrimary": true, "setName": "rs0", "ok": 1.0,
        }));
        assert!(runs_transactions(
            &doc! { "isWritablePrimary": true, "msg": "isdbgrid" }
        ));
    }

    #[test]
    fn standalones_do_not() {
        assert!(!runs_transactions(
            &doc! { "isWritablePrimary": true, "ok": 1.0 }
        ));
        assert!(!runs_transactions(&doc! { "setName": "" }));
        assert!(!runs_transactions(&doc! { "setName": 1, "msg": "other" }));
        assert!(NEEDS_TRANSACTIONS.contains("replica set"));
    }
}
