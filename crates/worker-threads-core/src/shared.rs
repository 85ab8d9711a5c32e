//! What a worker's thread and its handle share (`Shared`: the termination signal, the
//! first exit code, the outcome and its lifecycle), and the reporter the thread writes its
//! lifecycle through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use worker_threads_channel::TerminationSignal;

use crate::error::WorkerError;
use crate::lifecycle::Lifecycle;
use crate::outcome::Outcome;

/// State shared by a worker's thread and its [`Worker`](crate::Worker) handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Raised by `terminate`; installed on the worker's thread, so that every blocking
    /// receive there, on any port, fails with `Terminated`.
    pub(crate) termination: TerminationSignal,
    /// The code of the worker's first [`exit`]: later exits, returns and panics do not
    /// change it (Node: the first `process.exit` wins).
    pub(crate) exit_code: OnceLock<i32>,
    /// Set by the worker's thread as it ends, before it reports `Exit`: its error, if any.
    pub(crate) ended: OnceLock<Option<WorkerError>>,
    /// Set when the handle saw the worker's outcome (`join`, or `events` / the stream
    /// reaching `Error`/`Exit`): its error, if any, was handled.
    pub(crate) observed: AtomicBool,
    /// Set when the handle was dropped.
    pub(crate) handle_gone: AtomicBool,
    /// Set once an unhandled error was reported (logged), so it is logged once.
    reported: AtomicBool,
    /// `Online`, then the outcome, as the handle waits for them.
    pub(crate) lifecycle: Lifecycle,
}

impl Shared {
    /// The worker's error if it ended with one that its handle never looked at.
    pub(crate) fn unhandled_error(&self) -> Option<WorkerError> {
        if self.observed.load(Ordering::Acquire) {
            return None;
        }
        self.ended.get().cloned().flatten()
    }

    /// Still running, or ended with an error nobody has looked at yet.
    pub(crate) fn still_matters(&self) -> bool {
        match self.ended.get() {
            None => true,
            Some(error) => error.is_some() && !self.observed.load(Ordering::Acquire),
        }
    }

    /// Logs an unhandled error once, if there is one and nobody can look at it any more.
    pub(crate) fn report_if_unhandled(&self, thread_id: u64) {
        if !self.handle_gone.load(Ordering::Acquire) {
            return;
        }
        if let Some(error) = self.unhandled_error() {
            if !self.reported.swap(true, Ordering::AcqRel) {
                tracing::error!(thread_id, %error, "unhandled worker error (its handle was dropped without looking)");
            }
        }
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

    use super::{Reporter, Shared};
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
