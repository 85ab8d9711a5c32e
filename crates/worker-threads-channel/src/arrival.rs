//! Where posts into one queue are counted and its async receivers wait: the [`Arrival`]
//! of a direction. The protocol that uses it (why no wake-up and no accepted post is
//! lost) is argued in the module doc of `queue.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::Backoff;
use event_listener::{Event, EventListener, IntoNotification};

/// One poster inside its critical section, in [`Arrival::gate`].
const POSTER: usize = 1;
/// One registered async receiver, in [`Arrival::gate`].
const WAITER: usize = 1 << (usize::BITS / 2);

/// Where posts into one queue are counted and its async receivers wait for a message.
pub(crate) struct Arrival {
    event: Event,
    /// Posters inside their critical section (low half, in `POSTER`s) and async receivers
    /// registered on `event` (high half, in `WAITER`s). One word, so that leaving the
    /// section and reading the waiters is one RMW (see the module doc).
    gate: AtomicUsize,
}

impl Arrival {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            event: Event::new(),
            gate: AtomicUsize::new(0),
        })
    }

    /// A poster enters its critical section, before it looks at the closed flag.
    pub(crate) fn enter_post(&self) {
        self.gate.fetch_add(POSTER, Ordering::SeqCst);
    }

    /// A poster leaves its critical section; `sent` if its message went into the queue,
    /// which then wakes an async receiver if one is registered.
    pub(crate) fn leave_post(&self, sent: bool) {
        if self.gate.fetch_sub(POSTER, Ordering::SeqCst) >= WAITER && sent {
            self.event.notify(1.additional());
        }
    }

    /// Wakes every async receiver (the port closed).
    pub(crate) fn notify_all(&self) {
        self.event.notify(usize::MAX);
    }

    /// Waits until no poster is inside its critical section. The section never blocks
    /// (a flag load and a `try_send`), so this is short unless a poster was preempted.
    pub(crate) fn wait_for_posters(&self) {
        let backoff = Backoff::new();
        while self.gate.load(Ordering::SeqCst) % WAITER != 0 {
            backoff.snooze();
        }
    }
}

/// An async receiver's registration in an [`Arrival`], withdrawn on drop (also when the
/// future is cancelled).
pub(crate) struct Waiting<'a>(&'a Arrival);

impl<'a> Waiting<'a> {
    pub(crate) fn register(arrival: &'a Arrival) -> (Self, EventListener) {
        let listener = arrival.event.listen();
        arrival.gate.fetch_add(WAITER, Ordering::SeqCst);
        (Self(arrival), listener)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.gate.fetch_sub(WAITER, Ordering::Relaxed);
    }
}

/// An async receiver's registration that outlives one poll: what a [`Stream`] keeps
/// between polls. Withdrawn on drop, as [`Waiting`].
///
/// [`Stream`]: futures_core::Stream
pub(crate) struct AsyncWait {
    arrival: Arc<Arrival>,
    pub(crate) listener: EventListener,
}

impl AsyncWait {
    /// Listens, then counts itself as a waiter (in that order: see the module doc of
    /// `queue.rs`). The caller looks at the queue again before it polls `listener`.
    pub(crate) fn register(arrival: &Arc<Arrival>) -> Self {
        let listener = arrival.event.listen();
        arrival.gate.fetch_add(WAITER, Ordering::SeqCst);
        Self {
            arrival: Arc::clone(arrival),
            listener,
        }
    }
}

impl Drop for AsyncWait {
    fn drop(&mut self) {
        self.arrival.gate.fetch_sub(WAITER, Ordering::Relaxed);
    }
}
