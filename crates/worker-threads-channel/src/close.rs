//! The closed state of a port pair or a broadcast instance: [`CloseSignal`], and why it
//! ended ([`Ended`]). A close records why, then closes each queue it covers (a mark in the
//! queue's own index: see `worker_threads_wait::queue`) and wakes whoever sleeps on them.

use std::sync::Arc;

use worker_threads_wait::Waiters;
use worker_threads_wait::sync::atomic::{AtomicU8, Ordering};

/// Why a port stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Closed or dropped: what was posted before is still delivered.
    Closed,
    /// Terminated: receives fail at once, what is waiting is dropped.
    Terminated,
}

const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const TERMINATED: u8 = 2;

/// Something a close shuts: a direction's queue, which then wakes its sleepers.
pub(crate) trait Closable: Send + Sync {
    fn close(&self);
}

/// The closed state shared by everything that closes together (both ends of a
/// `MessageChannel`, or one `BroadcastChannel` instance), or a thread's termination
/// signal.
pub(crate) struct CloseSignal {
    /// `OPEN`, `CLOSED` or `TERMINATED`; it leaves `OPEN` once and never changes after.
    state: AtomicU8,
    /// The queues this signal closes.
    queues: Vec<Arc<dyn Closable>>,
    /// Receives blocked on a thread where this signal is installed (a
    /// `TerminationSignal`), woken when it is raised.
    pub(crate) sleepers: Waiters,
}

impl CloseSignal {
    pub(crate) fn new(queues: Vec<Arc<dyn Closable>>) -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU8::new(OPEN),
            queues,
            sleepers: Waiters::new(),
        })
    }

    /// `None` while open.
    #[inline]
    pub(crate) fn ended(&self) -> Option<Ended> {
        match self.state.load(Ordering::SeqCst) {
            OPEN => None,
            CLOSED => Some(Ended::Closed),
            _ => Some(Ended::Terminated),
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::SeqCst) != OPEN
    }

    /// Closes for `why`: records it, then closes every queue (which wakes their sleepers)
    /// and wakes the threads asleep on this signal. False if it was closed already (the
    /// first reason stays). Either way every queue is closed when it returns: a close that
    /// lost the race to another closes the queues too (closing one twice changes nothing),
    /// so a post after it is refused even while the winner is still at work.
    pub(crate) fn close(&self, why: Ended) -> bool {
        let state = match why {
            Ended::Closed => CLOSED,
            Ended::Terminated => TERMINATED,
        };
        let won = self
            .state
            .compare_exchange(OPEN, state, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        // The reason first: whoever sees a closed queue then reads why.
        for queue in &self.queues {
            queue.close();
        }
        if won {
            self.sleepers.notify_all();
        }
        won
    }
}
