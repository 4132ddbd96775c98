//! Stage: the lifetime of `watch` streams. Input: the configured cap on open streams and the
//! keep-alive interval; the server's shutdown. Output: a [`StreamSlot`] per open stream (none
//! beyond the cap: the request is refused), and the signal that ends every stream when the
//! server shuts down ([`Streams::close`]; graceful shutdown waits for open responses, which a
//! stream never finishes by itself).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// The open streams: a cap and the shutdown signal.
#[derive(Debug)]
pub struct Streams {
    slots: Arc<Semaphore>,
    max: usize,
    closing: watch::Sender<bool>,
    /// How long a stream stays silent before it sends a keep-alive comment.
    pub keep_alive: Duration,
}

/// One open stream's place: released when dropped; tells the stream when the server closes.
#[derive(Debug)]
pub struct StreamSlot {
    _permit: OwnedSemaphorePermit,
    closing: watch::Receiver<bool>,
}

impl Streams {
    /// At most `max` streams at once (at least 1), with keep-alives every `keep_alive`.
    pub fn new(max: usize, keep_alive: Duration) -> Streams {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Streams {
            slots: Arc::new(Semaphore::new(max)),
            max,
            closing: watch::Sender::new(false),
            keep_alive,
        }
    }

    /// A slot for a new stream, or `None` when `max` streams are open or the server is
    /// closing.
    pub fn open(&self) -> Option<StreamSlot> {
        if *self.closing.borrow() {
            return None;
        }
        let permit = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        Some(StreamSlot {
            _permit: permit,
            closing: self.closing.subscribe(),
        })
    }

    /// Ends every open stream and refuses new ones (the server is shutting down).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// How many streams are open.
    pub fn open_count(&self) -> usize {
        self.max.saturating_sub(self.slots.available_permits())
    }
}

impl StreamSlot {
    /// Completes when the server closes its streams.
    pub async fn closed(&mut self) {
        loop {
            if *self.closing.borrow_and_update() {
                return;
            }
            if self.closing.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cap_and_the_shutdown() {
        let streams = Streams::new(2, Duration::from_secs(15));
        let a = streams.open();
        let mut b = streams.open();
        assert!(a.is_some() && b.is_some());
        assert!(streams.open().is_none());
        assert_eq!(streams.open_count(), 2);
        drop(a);
        assert_eq!(streams.open_count(), 1);
        let c = streams.open();
        assert!(c.is_some());
        streams.close();
        if let Some(b) = b.as_mut() {
            b.closed().await;
        }
        drop(c);
        assert!(streams.open().is_none());
    }
}
