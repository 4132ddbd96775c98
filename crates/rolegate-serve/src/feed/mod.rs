//! Stage: the change feed. Input: the write sets that `functions/call` commits through a
//! [`PublishingStore`]. Output: one [`FeedEvent`] per committed change, in commit order, on a
//! bounded broadcast channel that every `watch` stream subscribes to ([`ChangeFeed::subscribe`]).
//!
//! * **Commit order**: one lock is held around each write and the publication of its events, so
//!   the events of one write set are consecutive and the feed's order is the order in which the
//!   store committed the write sets.
//! * **What is published**: every change of a committed write set outside the reserved
//!   database (the accounts are never published): an insert (an upsert's insert included) as
//!   `insert`; a replace as `update`, with the paths it changed ([`diff`]), unless the
//!   operation replaced whole documents ([`rolegate::ops::Operation::replaces`]), then as
//!   `replace`; a delete as `delete`. Events carry the stored pre-image and post-image
//!   unredacted: each stream decides what its user sees of them (`crate::watch`).
//! * **Bounded**: the channel holds the last `capacity` events; a stream that falls further
//!   behind is told so (`RecvError::Lagged`) and ends with an error rather than skip events.
//! * Writes made outside a [`PublishingStore`] (accounts, tests writing the store directly)
//!   are not published.

pub mod diff;

use std::sync::{Arc, Mutex, PoisonError};

use crate::data::{Shared, SharedStore};
use bson::{Document, Timestamp};
use rolegate::ops::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};
use tokio::sync::broadcast;

use crate::accounts::RESERVED_DATABASE;
use crate::tokens::now;

use self::diff::Diff;

/// What kind of change an event reports (MongoDB's `operationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new document.
    Insert,
    /// A document changed by update operators.
    Update,
    /// A document replaced whole.
    Replace,
    /// A document deleted.
    Delete,
}

impl ChangeKind {
    /// The `operationType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Replace => "replace",
            ChangeKind::Delete => "delete",
        }
    }
}

/// One committed change, as stored (not redacted: never sent as is).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// The position in the feed (1, 2, ...): the resume token's data.
    pub sequence: u64,
    /// When it was published: seconds since the epoch and a counter within the second.
    pub cluster_time: Timestamp,
    /// The collection changed.
    pub namespace: Namespace,
    /// The kind of change.
    pub kind: ChangeKind,
    /// The stored document before the change (update, replace, delete).
    pub pre: Option<Document>,
    /// The stored document after the change (insert, update, replace).
    pub post: Option<Document>,
    /// The paths an update changed and removed (update only).
    pub diff: Option<Diff>,
}

/// The feed's clock: the last sequence number and cluster time handed out.
#[derive(Debug, Default)]
struct Clock {
    sequence: u64,
    seconds: u32,
    increment: u32,
}

impl Clock {
    /// The next sequence number and cluster time (never going back, even if the wall clock
    /// does).
    fn tick(&mut self) -> (u64, Timestamp) {
        self.sequence = self.sequence.saturating_add(1);
        let wall = u32::try_from(now()).unwrap_or(u32::MAX);
        if wall > self.seconds {
            self.seconds = wall;
            self.increment = 1;
        } else if self.increment == u32::MAX {
            self.seconds = self.seconds.saturating_add(1);
            self.increment = 1;
        } else {
            self.increment += 1;
        }
        (
            self.sequence,
            Timestamp {
                time: self.seconds,
                increment: self.increment,
            },
        )
    }
}

/// The server's change feed.
#[derive(Debug)]
pub struct ChangeFeed {
    sender: broadcast::Sender<Arc<FeedEvent>>,
    /// Held around each write and its publication (the commit order is the feed's order).
    clock: Mutex<Clock>,
}

impl ChangeFeed {
    /// A feed that keeps the last `capacity` events (at least 1) for streams that are behind.
    pub fn new(capacity: usize) -> ChangeFeed {
        let (sender, _) = broadcast::channel(capacity.max(1));
        ChangeFeed {
            sender,
            clock: Mutex::new(Clock::default()),
        }
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedEvent>> {
        self.sender.subscribe()
    }

    /// Applies `writes` to `store` and, once committed, publishes its changes (`replaces`: the
    /// operation replaced whole documents). Nothing is published when the write fails, or for
    /// the reserved database.
    pub fn write<S: Store + ?Sized>(
        &self,
        store: &mut S,
        writes: &WriteSet,
        replaces: bool,
    ) -> Result<(), StoreError> {
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        store.write(writes)?;
        // Checked after the commit: a stream that subscribes later did not miss these events
        // (the write committed before it subscribed).
        if writes.namespace.database == RESERVED_DATABASE || self.sender.receiver_count() == 0 {
            return Ok(());
        }
        for change in &writes.changes {
            let (sequence, cluster_time) = clock.tick();
            let (kind, pre, post, diff) = match change {
                Change::Insert(doc) => (ChangeKind::Insert, None, Some(doc.clone()), None),
                Change::Replace { expected, document } if replaces => (
                    ChangeKind::Replace,
                    Some(expected.clone()),
                    Some(document.clone()),
                    None,
                ),
                Change::Replace { expected, document } => (
                    ChangeKind::Update,
                    Some(expected.clone()),
                    Some(document.clone()),
                    Some(diff::diff(expected, document)),
                ),
                Change::Delete { expected } => {
                    (ChangeKind::Delete, Some(expected.clone()), None, None)
                }
            };
            // No receiver left: nobody to tell.
            let _ = self.sender.send(Arc::new(FeedEvent {
                sequence,
                cluster_time,
                namespace: writes.namespace.clone(),
                kind,
                pre,
                post,
                diff,
            }));
        }
        Ok(())
    }
}

/// The app's data store as one operation sees it: reads go to the store; a write is committed
/// and published on the feed ([`ChangeFeed::write`]).
pub struct PublishingStore<'a> {
    store: &'a dyn SharedStore,
    feed: &'a ChangeFeed,
    replaces: bool,
}

impl<'a> PublishingStore<'a> {
    /// The store for an operation (`replaces`: it replaces whole documents,
    /// [`rolegate::ops::Operation::replaces`]).
    pub fn new(store: &'a dyn SharedStore, feed: &'a ChangeFeed, replaces: bool) -> Self {
        PublishingStore {
            store,
            feed,
            replaces,
        }
    }
}

impl Store for PublishingStore<'_> {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        self.store.find(read)
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        self.feed
            .write(&mut Shared(self.store), writes, self.replaces)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;
    use bson::doc;
    use rolegate::ops::MemoryStore;

    fn ns(db: &str) -> Namespace {
        Namespace::new(db, "c")
    }

    #[test]
    fn committed_changes_are_published_in_order_with_their_kinds() {
        let feed = ChangeFeed::new(16);
        let mut rx = feed.subscribe();
        let mut store = MemoryStore::new();
        let a = doc! {"_id": 1, "n": 1, "gone": true};
        let b = doc! {"_id": 1, "n": 2};
        let insert = WriteSet {
            namespace: ns("db"),
            changes: vec![Change::Insert(a.clone())],
        };
        feed.write(&mut store, &insert, false).unwrap();
        let update = WriteSet {
            namespace: ns("db"),
            changes: vec![Change::Replace {
                expected: a.clone(),
                document: b.clone(),
            }],
        };
        feed.write(&mut store, &update, false).unwrap();
        let replace = WriteSet {
            namespace: ns("db"),
            changes: vec![Change::Replace {
                expected: b.clone(),
                document: a.clone(),
            }],
        };
        feed.write(&mut store, &replace, true).unwrap();
        // A conflicting write (its pre-image is stale) commits nothing and publishes nothing.
        assert!(feed.write(&mut store, &replace, false).is_err());
        // The reserved database is never published.
        let hidden = WriteSet {
            namespace: ns(RESERVED_DATABASE),
            changes: vec![Change::Insert(doc! {"_id": 9})],
        };
        feed.write(&mut store, &hidden, false).unwrap();
        let delete = WriteSet {
            namespace: ns("db"),
            changes: vec![Change::Delete {
                expected: a.clone(),
            }],
        };
        feed.write(&mut store, &delete, false).unwrap();

        let mut got = Vec::new();
        while let Ok(e) = rx.try_recv() {
            got.push(e);
        }
        let kinds: Vec<ChangeKind> = got.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                ChangeKind::Insert,
                ChangeKind::Update,
                ChangeKind::Replace,
                ChangeKind::Delete
            ]
        );
        let sequences: Vec<u64> = got.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, [1, 2, 3, 4]);
        assert!(
            got.windows(2)
                .all(|w| w[0].cluster_time < w[1].cluster_time)
        );
        let update = &got[1];
        assert_eq!(update.pre.as_ref(), Some(&a));
        assert_eq!(update.post.as_ref(), Some(&b));
        let d = update.diff.as_ref().unwrap();
        assert_eq!(d.updated, vec![vec!["n".to_string()]]);
        assert_eq!(d.removed, vec![vec!["gone".to_string()]]);
        assert!(got[2].diff.is_none());
        assert_eq!(
            (got[3].pre.as_ref(), got[3].post.as_ref()),
            (Some(&a), None)
        );
    }

    #[test]
    fn a_receiver_that_falls_behind_is_told() {
        let feed = ChangeFeed::new(2);
        let mut rx = feed.subscribe();
        let mut store = MemoryStore::new();
        for i in 0..5 {
            let w = WriteSet {
                namespace: ns("db"),
                changes: vec![Change::Insert(doc! {"_id": i})],
            };
            feed.write(&mut store, &w, false).unwrap();
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
    }
}
