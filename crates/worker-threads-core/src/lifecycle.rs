//! A worker's lifecycle as its handle sees it: `Online` once, then the `Outcome` once.
//!
//! The reports live in the state the worker's thread and its handle already share (no channel
//! of their own): a state word with a bit for each report, the outcome written once before its
//! bit is set, and one sleeper (the handle: `join`, `events`, the stream) woken by each report.
//! The reporter (`Reporter`, beside the shared state in `shared.rs`) is a guard: a thread
//! that ends without reporting its outcome (it cannot, short of an abort) still ends the
//! wait, with [`Outcome::vanished`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use worker_threads_wait::{Deadline, Joiner, Parker, SpinWait};

use crate::outcome::Outcome;

/// `Online` was reported.
const ONLINE: u8 = 1;
/// The outcome was reported (and written).
const EXITED: u8 = 2;

/// The two reports and whoever waits for them.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// `ONLINE` and `EXITED` bits; only ever set.
    state: AtomicU8,
    /// Written once, before `state` becomes `EXITED`.
    outcome: OnceLock<Outcome>,
    /// The handle, while it waits.
    joiner: Joiner,
}

impl Lifecycle {
    /// Reports `Online` (nothing if the worker already reported more).
    pub(crate) fn report_online(&self) {
        // A read-modify-write, then a look for the sleeper: the waker protocol.
        if self.state.fetch_or(ONLINE, Ordering::SeqCst) & ONLINE == 0 {
            self.joiner.notify();
        }
    }

    /// Reports the outcome; only the first report counts.
    pub(crate) fn report_exit(&self, outcome: Outcome) {
        if self.outcome.set(outcome).is_ok() {
            self.state.fetch_or(EXITED, Ordering::SeqCst);
            self.joiner.notify();
        }
    }

    /// True once `Online` was reported (a worker that ended without starting its entry
    /// never reports it).
    #[cfg(any(test, all(feature = "process", target_os = "linux")))]
    pub(crate) fn was_online(&self) -> bool {
        self.state.load(Ordering::SeqCst) & ONLINE != 0
    }

    /// True once either report came: no `Online` can follow the outcome.
    fn is_past_start(&self) -> bool {
        self.state.load(Ordering::SeqCst) != 0
    }

    /// The outcome, once reported.
    pub(crate) fn outcome(&self) -> Option<&Outcome> {
        match self.state.load(Ordering::SeqCst) & EXITED {
            0 => None,
            _ => self.outcome.get(),
        }
    }

    /// Waits for `Online`, or for the outcome of a worker that ended without it.
    pub(crate) fn wait_online(&self) {
        self.wait(Self::is_past_start, Deadline::Never);
    }

    /// Waits for the outcome until `deadline`; `None` if it passed first.
    pub(crate) fn wait_outcome(&self, deadline: Deadline) -> Option<&Outcome> {
        self.wait(|lifecycle| lifecycle.outcome().is_some(), deadline);
        self.outcome()
    }

    /// The poll form of [`wait_online`](Self::wait_online): the task is woken by the
    /// next report.
    pub(crate) fn poll_online(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll(Self::is_past_start, cx)
    }

    /// `Ready` with the outcome once reported; otherwise the task is woken by it.
    pub(crate) fn poll_outcome(&self, cx: &mut Context<'_>) -> Poll<&Outcome> {
        match self.poll(|lifecycle| lifecycle.outcome().is_some(), cx) {
            Poll::Ready(()) => match self.outcome() {
                Some(outcome) => Poll::Ready(outcome),
                None => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }

    /// Looks, spins briefly, then sleeps between looks (register, look again, park). The
    /// spin never yields: a report comes from a thread starting or ending, often queued on
    /// this core, and a yield there costs more than parking.
    fn wait(&self, done: impl Fn(&Self) -> bool, deadline: Deadline) -> bool {
        let mut spin = SpinWait::new();
        while !spin.is_completed() {
            if done(self) {
                return true;
            }
            spin.spin();
        }
        loop {
            if deadline.has_passed() {
                return done(self);
            }
            let parker = Parker::current();
            self.joiner.register(&parker);
            if !done(self) {
                parker.park(deadline);
            }
            self.joiner.unregister();
            if done(self) {
                return true;
            }
        }
    }

    fn poll(&self, done: impl Fn(&Self) -> bool, cx: &mut Context<'_>) -> Poll<()> {
        if done(self) {
            return Poll::Ready(());
        }
        self.joiner.register_waker(cx.waker());
        if done(self) {
            self.joiner.unregister();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
