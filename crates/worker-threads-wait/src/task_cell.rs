//! [`TaskCell`]: where a pool task's input waits to be taken and its output lands, exactly
//! once, kept by one atomic state word.
//!
//! # States
//!
//! ```text
//! QUEUED --claim--> RUNNING --resolve--> RESOLVING --> DONE --take--> TAKEN
//!    |                  `---cancel: sets CANCELLED, stays RUNNING
//!    `--cancel / resolve (the input is dropped unrun)--> RESOLVING --> DONE
//! ```
//!
//! Every transition is one compare-and-swap on `state`; the `CANCELLED` bit rides along
//! in the same word, so "resolved as cancelled" and "resolved with a value" cannot both
//! win. Whoever moves the cell to `RESOLVING` is the one resolver: it alone writes the
//! output, then publishes `DONE` (release) and wakes the joiner (a [`Waiters`] list: one
//! load when nobody waits). The input is taken only by the claim that left `QUEUED`, the
//! output only by the take that left `DONE`: each cell access is owned by the thread whose
//! transition won, which is the whole argument for the `unsafe` below.

use std::task::{Context, Poll};

use crate::deadline::Deadline;
use crate::spin::Backoff;
use crate::sync::UnsafeCell;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::waiters::{Joiner, Parker};

const QUEUED: usize = 0;
const RUNNING: usize = 1;
const RESOLVING: usize = 2;
const DONE: usize = 3;
const TAKEN: usize = 4;
const PHASE: usize = 7;
/// Set by a cancel (or an expiry): a running task sees it, and resolves as cancelled.
const CANCELLED: usize = 8;

/// How a cancel found the task.
///
/// # Examples
///
/// ```
/// use worker_threads_wait::{Cancel, TaskCell};
///
/// let queued = TaskCell::<u32, &str>::new(1);
/// assert_eq!(queued.cancel(|| "cancelled"), Cancel::WhileQueued);
/// assert_eq!(queued.take(), Some("cancelled"));
///
/// let running = TaskCell::<u32, &str>::new(2);
/// let input = running.claim().expect("the input");
/// assert_eq!(running.cancel(|| "unused"), Cancel::WhileRunning);
/// running.resolve(false, |r| if r.cancelled { "cancelled" } else { "ran" });
/// assert_eq!((input, running.take()), (2, Some("cancelled")));
/// assert_eq!(running.cancel(|| "unused"), Cancel::TooLate);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// It was queued: the cancel resolved it (with the given output), its input dropped.
    WhileQueued,
    /// It was running: it is marked cancelled and resolves as such when it returns.
    WhileRunning,
    /// It had resolved already: nothing changed.
    TooLate,
}

/// What a resolution found, for the resolver to decide and count the output.
///
/// # Examples
///
/// ```
/// use worker_threads_wait::{Resolution, TaskCell};
///
/// let cell = TaskCell::<u32, u32>::new(5);
/// let n = cell.claim().expect("the input");
/// let found = cell.resolve(false, |_| n * 2);
/// assert_eq!(found, Some(Resolution { was_queued: false, cancelled: false }));
/// assert_eq!(cell.take(), Some(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    /// The task never ran (it left the queue here).
    pub was_queued: bool,
    /// It was cancelled (before or by this resolution).
    pub cancelled: bool,
}

/// A task's input and output with their exactly-once hand-off (see the module doc).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use worker_threads_wait::{Deadline, TaskCell};
///
/// let cell = Arc::new(TaskCell::<u64, u64>::new(6));
/// let worker = {
///     let cell = Arc::clone(&cell);
///     std::thread::spawn(move || {
///         if let Some(n) = cell.claim() {
///             cell.resolve(false, |_| n * 7);
///         }
///     })
/// };
/// // Exactly one hand-off: the submitter waits for the output and takes it once.
/// assert_eq!(cell.wait(Deadline::Never), Some(42));
/// assert_eq!(cell.take(), None);
/// worker.join().unwrap();
/// ```
pub struct TaskCell<I, O> {
    state: AtomicUsize,
    input: UnsafeCell<Option<I>>,
    output: UnsafeCell<Option<O>>,
    joiner: Joiner,
}

// SAFETY: the cell moves an `I` and an `O` between threads (so both `Send`); each is
// accessed only by the thread whose state transition owns it (module doc), never shared.
unsafe impl<I: Send, O: Send> Send for TaskCell<I, O> {}
// SAFETY: as above: `&TaskCell` hands the values over, it never shares one.
unsafe impl<I: Send, O: Send> Sync for TaskCell<I, O> {}

impl<I, O> TaskCell<I, O> {
    /// A queued task holding `input`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = worker_threads_wait::TaskCell::<&str, ()>::new("input");
    /// assert!(!cell.is_done());
    /// assert_eq!(cell.claim(), Some("input"));
    /// assert_eq!(cell.claim(), None, "claimed once");
    /// ```
    pub fn new(input: I) -> Self {
        Self {
            state: AtomicUsize::new(QUEUED),
            input: UnsafeCell::new(Some(input)),
            output: UnsafeCell::new(None),
            joiner: Joiner::new(),
        }
    }

    /// Takes the input to run it (`QUEUED` to `RUNNING`); `None` if the task left the
    /// queue already (claimed, cancelled, expired).
    #[inline]
    pub fn claim(&self) -> Option<I> {
        self.state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        // SAFETY: leaving `QUEUED` made this thread the input's only taker.
        self.input.with_mut(|input| unsafe { (*input).take() })
    }

    /// Resolves the task unless it resolved already: from `QUEUED` (dropping the input
    /// unrun) or `RUNNING`, setting `CANCELLED` if `cancel`. `output` decides the output
    /// from what the resolution found (and may count it: it runs before anyone can see
    /// the result). The resolution, or `None` if another came first.
    pub fn resolve(
        &self,
        cancel: bool,
        output: impl FnOnce(Resolution) -> O,
    ) -> Option<Resolution> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let phase = state & PHASE;
            if phase != QUEUED && phase != RUNNING {
                return None;
            }
            let cancelled = state & CANCELLED != 0 || cancel;
            let next = RESOLVING | if cancelled { CANCELLED } else { 0 };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let resolution = Resolution {
                        was_queued: phase == QUEUED,
                        cancelled,
                    };
                    if resolution.was_queued {
                        // SAFETY: leaving `QUEUED` made this thread the input's only
                        // taker: it is dropped unrun.
                        drop(self.input.with_mut(|input| unsafe { (*input).take() }));
                    }
                    self.publish(output(resolution), next);
                    return Some(resolution);
                }
                Err(current) => state = current,
            }
        }
    }

    /// Cancels: a queued task resolves now with `output()`; a running one is marked.
    pub fn cancel(&self, output: impl FnOnce() -> O) -> Cancel {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let (next, found) = match state & PHASE {
                QUEUED => (RESOLVING | CANCELLED, Cancel::WhileQueued),
                RUNNING => (state | CANCELLED, Cancel::WhileRunning),
                _ => return Cancel::TooLate,
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if found == Cancel::WhileQueued {
                        // SAFETY: leaving `QUEUED` made this thread the input's only taker.
                        drop(self.input.with_mut(|input| unsafe { (*input).take() }));
                        self.publish(output(), next);
                    }
                    return found;
                }
                Err(current) => state = current,
            }
        }
    }

    /// Writes the output (this thread moved the cell to `RESOLVING`), publishes `DONE`,
    /// and wakes the joiner.
    fn publish(&self, output: O, resolving: usize) {
        // SAFETY: only the thread that moved the cell to `RESOLVING` writes the output,
        // and nobody reads it before `DONE` (acquired by `take`).
        self.output.with_mut(|slot| unsafe { *slot = Some(output) });
        // `SeqCst`, as the joiner's look after it registered: one of the two sees the
        // other (the protocol of `Waiters`).
        self.state
            .store(DONE | (resolving & CANCELLED), Ordering::SeqCst);
        self.joiner.notify();
    }

    /// Whether the task was cancelled (or expired): what a running task looks at.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) & CANCELLED != 0
    }

    /// Whether the output is there (or was taken). (`SeqCst`: it is the joiner's look
    /// after it registered.)
    #[inline]
    pub fn is_done(&self) -> bool {
        self.state.load(Ordering::SeqCst) & PHASE >= DONE
    }

    /// Takes the output once it is there (`DONE` to `TAKEN`); `None` before, and after
    /// it was taken. Only the cell's one owner takes (a handle, which `join` consumes and
    /// `poll` borrows mutably): no one else writes the state after `DONE`, so a store
    /// moves it.
    pub fn take(&self) -> Option<O> {
        let state = self.state.load(Ordering::Acquire);
        if state & PHASE != DONE {
            return None;
        }
        self.state
            .store(TAKEN | (state & CANCELLED), Ordering::Relaxed);
        // SAFETY: the cell's owner alone takes, once (`DONE` to `TAKEN` above); the
        // resolver wrote the output before `DONE`, which the load above acquired.
        self.output.with_mut(|slot| unsafe { (*slot).take() })
    }

    /// Waits until the output is there and takes it: spin briefly, then park (woken by
    /// the resolution). `None` at the deadline, or if it was taken already.
    pub fn wait(&self, deadline: Deadline) -> Option<O> {
        let backoff = Backoff::new();
        while !self.is_done() && !backoff.is_completed() {
            backoff.snooze();
        }
        while !self.is_done() {
            if deadline.has_passed() {
                return None;
            }
            let parker = Parker::current();
            self.joiner.register(&parker);
            if !self.is_done() {
                parker.park(deadline);
            }
            self.joiner.unregister();
        }
        self.take()
    }

    /// The poll form of [`wait`](Self::wait): the waker stays registered between polls;
    /// withdraw it with [`forget`](Self::forget) when the poller goes away.
    pub fn poll(&self, cx: &mut Context<'_>) -> Poll<Option<O>> {
        if !self.is_done() {
            self.joiner.register_waker(cx.waker());
            if !self.is_done() {
                return Poll::Pending;
            }
        }
        self.forget();
        Poll::Ready(self.take())
    }

    /// Withdraws a poller's registration.
    pub fn forget(&self) {
        self.joiner.unregister();
    }
}

impl<I, O> std::fmt::Debug for TaskCell<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCell")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use super::{Cancel, Resolution, TaskCell};
    use crate::deadline::Deadline;

    #[test]
    fn a_claimed_task_resolves_once_with_its_value() {
        let cell = TaskCell::<u32, u32>::new(5);
        assert_eq!(cell.claim(), Some(5));
        assert_eq!(cell.claim(), None);
        let resolution = cell.resolve(false, |r| {
            assert!(!r.was_queued && !r.cancelled);
            25
        });
        assert_eq!(
            resolution,
            Some(Resolution {
                was_queued: false,
                cancelled: false
            })
        );
        assert_eq!(cell.resolve(true, |_| 0), None, "a second resolution loses");
        assert_eq!(cell.cancel(|| 0), Cancel::TooLate);
        assert_eq!(cell.wait(Deadline::Never), Some(25));
        assert_eq!(cell.take(), None, "taken once");
    }

    #[test]
    fn a_cancel_resolves_a_queued_task_and_marks_a_running_one() {
        let queued = TaskCell::<String, &str>::new("input".into());
        assert_eq!(queued.cancel(|| "cancelled"), Cancel::WhileQueued);
        assert_eq!(queued.claim(), None, "a cancelled task is never claimed");
        assert_eq!(queued.take(), Some("cancelled"));

        let running = TaskCell::<u32, &str>::new(1);
        running.claim().unwrap();
        assert_eq!(running.cancel(|| unreachable!()), Cancel::WhileRunning);
        assert!(running.is_cancelled() && !running.is_done());
        let resolution =
            running.resolve(false, |r| if r.cancelled { "cancelled" } else { "value" });
        assert_eq!(resolution.map(|r| r.cancelled), Some(true));
        assert_eq!(running.take(), Some("cancelled"));
    }

    #[test]
    fn a_joiner_on_another_thread_is_woken_by_the_resolution() {
        let cell = std::sync::Arc::new(TaskCell::<u32, u32>::new(2));
        let joiner = std::thread::spawn({
            let cell = std::sync::Arc::clone(&cell);
            move || cell.wait(Deadline::Never)
        });
        let input = cell.claim().unwrap();
        // Whether the joiner parked by now or not, the resolution reaches it (the loom
        // model explores both).
        cell.resolve(false, |_| input * 21);
        assert_eq!(joiner.join().unwrap(), Some(42));
    }
}
