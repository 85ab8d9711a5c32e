//! The cluster's event queue: each event with the credit it holds against its worker's
//! bound of unread bytes, released when the event leaves the queue (read, or dropped
//! with the queue).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::event::Event;

/// Bytes one message holds against its worker's unread bound.
#[derive(Debug)]
pub(crate) struct Credit {
    unread: Arc<AtomicUsize>,
    bytes: usize,
}

impl Credit {
    /// Counts `bytes` against `unread` until the credit drops.
    pub(crate) fn take(unread: &Arc<AtomicUsize>, bytes: usize) -> Credit {
        unread.fetch_add(bytes, Ordering::AcqRel);
        Credit {
            unread: Arc::clone(unread),
            bytes,
        }
    }
}

impl Drop for Credit {
    fn drop(&mut self) {
        self.unread.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// An event as queued.
pub(crate) struct Queued<T> {
    pub(crate) event: Event<T>,
    /// Held until the event is taken: dropping it releases the bytes.
    pub(crate) credit: Option<Credit>,
}

impl<T> Queued<T> {
    /// The event; its credit is released here.
    pub(crate) fn into_event(self) -> Event<T> {
        drop(self.credit);
        self.event
    }
}
