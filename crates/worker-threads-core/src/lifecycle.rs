//! A worker's lifecycle as its handle sees it: `Online` once, then the `Outcome` once.
//!
//! The reports live in the state the worker's thread and its handle already share (no channel
//! of their own): a state word with a bit for each report, the outcome written once before its
//! bit is set, and one sleeper (the handle: `join`, `events`, the stream) woken by each report.
//! The reporter is a guard: a thread that ends without reporting its outcome (it cannot, short
//! of an abort) still ends the wait, with [`Outcome::vanished`].

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use worker_threads_wait::{Deadline, Joiner, Parker, SpinWait};

use crate::context::Shared;
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
    fn report_exit(&self, outcome: Outcome) {
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

/// What reports a worker's lifecycle: its thread, or for a process worker the thread
/// that reads the child's channel. Dropped without [`exit`](Reporter::exit), it reports
/// [`Outcome::vanished`].
pub(crate) struct Reporter(Arc<Shared>);

impl Reporter {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self(shared)
    }

    /// Reports `Online`.
    pub(crate) fn online(&self) {
        self.0.lifecycle.report_online();
    }

    /// Reports the outcome: the last report.
    pub(crate) fn exit(self, outcome: Outcome) {
        self.0.lifecycle.report_exit(outcome);
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        // Nothing if `exit` reported first.
        self.0.lifecycle.report_exit(Outcome::vanished());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    use std::thread;
    use std::time::Duration;

    use worker_threads_wait::Deadline;

    use super::Reporter;
    use crate::context::Shared;
    use crate::outcome::Outcome;

    struct Flag(std::sync::atomic::AtomicUsize);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn the_outcome_reported_is_the_one_the_handle_gets_and_later_reports_are_ignored() {
        let shared = Arc::new(Shared::default());
        let reporter = Reporter::new(Arc::clone(&shared));
        assert!(
            shared
                .lifecycle
                .wait_outcome(Deadline::after(Duration::from_millis(1)))
                .is_none()
        );
        reporter.online();
        reporter.exit(Outcome {
            code: 7,
            error: None,
        });
        // The reporter is gone: its drop did not overwrite the outcome with `vanished`.
        let outcome = shared.lifecycle.wait_outcome(Deadline::Never).unwrap();
        assert_eq!((outcome.code, outcome.error.is_none()), (7, true));
        assert!(shared.lifecycle.was_online());
    }

    #[test]
    fn a_reporter_dropped_without_an_exit_ends_the_wait_with_vanished() {
        let shared = Arc::new(Shared::default());
        let reporter = Reporter::new(Arc::clone(&shared));
        let dropper = thread::spawn(move || drop(reporter));
        shared.lifecycle.wait_online();
        let outcome = shared.lifecycle.wait_outcome(Deadline::Never).unwrap();
        assert_eq!(outcome.code, 1);
        assert!(outcome.error.is_some());
        // It ended, but was never online: a process worker's child says so.
        assert!(!shared.lifecycle.was_online());
        dropper.join().unwrap();
    }

    #[test]
    fn a_pending_poll_is_woken_by_each_report() {
        let shared = Arc::new(Shared::default());
        let reporter = Reporter::new(Arc::clone(&shared));
        let flag = Arc::new(Flag(0.into()));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        assert!(shared.lifecycle.poll_online(&mut cx).is_pending());
        reporter.online();
        assert_eq!(flag.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(shared.lifecycle.poll_online(&mut cx).is_ready());
        assert!(shared.lifecycle.poll_outcome(&mut cx).is_pending());
        reporter.exit(Outcome {
            code: 3,
            error: None,
        });
        assert_eq!(flag.0.load(std::sync::atomic::Ordering::SeqCst), 2);
        match shared.lifecycle.poll_outcome(&mut cx) {
            Poll::Ready(outcome) => assert_eq!(outcome.code, 3),
            Poll::Pending => panic!("the outcome was reported"),
        }
    }

    #[test]
    fn a_report_racing_the_wait_is_never_lost() {
        // The waker protocol, run against a reporter on another thread many times: a lost
        // wake-up hangs the test.
        for round in 0..3_000 {
            let shared = Arc::new(Shared::default());
            let reporter = Reporter::new(Arc::clone(&shared));
            let exit = thread::spawn(move || {
                reporter.online();
                reporter.exit(Outcome {
                    code: round,
                    error: None,
                });
            });
            shared.lifecycle.wait_online();
            let outcome = shared.lifecycle.wait_outcome(Deadline::Never).unwrap();
            assert_eq!(outcome.code, round);
            exit.join().unwrap();
        }
    }
}
