//! The closed state of a port pair or a broadcast instance: [`CloseSignal`], and why it
//! ended ([`Ended`]). A close wakes every receiver and sender parked on the signal's wake
//! channel, and every async receiver of the inboxes it closes.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel as cb;

use worker_threads_wait::Gate;

/// The message type of the wake channel: it has no values, so nothing is ever sent.
pub(crate) enum Never {}

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

/// The closed state shared by everything that closes together (both ends of a
/// `MessageChannel`, or one `BroadcastChannel` instance).
pub(crate) struct CloseSignal {
    /// `OPEN`, `CLOSED` or `TERMINATED`; it leaves `OPEN` once and never changes after.
    state: AtomicU8,
    /// The only sender of `wake_rx`; dropped by `close` to wake parked `Select`s.
    wake_tx: Mutex<Option<cb::Sender<Never>>>,
    /// Ready (disconnected) once closed: parked `Select`s include it.
    pub(crate) wake_rx: cb::Receiver<Never>,
    /// The async events of the inboxes this signal closes.
    arrivals: Vec<Arc<Gate>>,
}

impl CloseSignal {
    pub(crate) fn new(arrivals: Vec<Arc<Gate>>) -> Arc<Self> {
        let (wake_tx, wake_rx) = cb::bounded(0);
        Arc::new(Self {
            state: AtomicU8::new(OPEN),
            wake_tx: Mutex::new(Some(wake_tx)),
            wake_rx,
            arrivals,
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

    /// Closes for `why`, wakes every parked and awaiting receiver and sender; returns
    /// false (and changes nothing) if it was closed already.
    pub(crate) fn close(&self, why: Ended) -> bool {
        let state = match why {
            Ended::Closed => CLOSED,
            Ended::Terminated => TERMINATED,
        };
        if self
            .state
            .compare_exchange(OPEN, state, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        // A poisoned lock still holds a valid `Option`: take the sender either way.
        drop(
            self.wake_tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        for arrival in &self.arrivals {
            arrival.notify_all();
        }
        true
    }
}
