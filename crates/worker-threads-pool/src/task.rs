//! A task's handle and the slot its result lands in, exactly once.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

// The slot's own primitives come through the wait crate's switch, so that under
// `--cfg worker_threads_loom` the slot itself is what the loom model below explores.
use worker_threads_wait::sync::atomic::{AtomicBool, Ordering};
use worker_threads_wait::sync::{Condvar, Mutex, MutexGuard};
use worker_threads_wait::{lock, spin_while, wait};

use crate::error::TaskError;

/// What a handle needs from its pool: cancel a queued task, run a queued task here.
pub(crate) trait PoolHooks: Send + Sync {
    /// Removes task `id` from the queue and resolves it `Cancelled`; false if not queued.
    fn cancel_queued(&self, id: u64) -> bool;
    /// If the calling thread is one of this pool's workers and task `id` is still queued,
    /// runs it here and returns true.
    fn run_inline_if_worker(&self, id: u64) -> bool;
}

/// How a slot resolved: what the pool's counters count it as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The handler's value (for a chunk: the chunk's results, item by item).
    Value,
    /// The handler panicked.
    Panicked,
    /// Cancelled, by its handle or by `destroy`, before or while it ran.
    Cancelled,
    /// Its deadline passed first.
    TimedOut,
    /// Its worker process ended under it.
    Crashed,
}

struct SlotState<R> {
    /// `Some` from resolution until the handle takes it.
    result: Option<Result<R, TaskError>>,
    resolved: bool,
    cancelled: bool,
    /// The reason given by the first cancel that took effect, if it gave one.
    reason: Option<Arc<str>>,
    sleeping: bool,
    waker: Option<Waker>,
    /// The task running this slot's work on an async pool thread: woken by a cancel or
    /// an expiry, so that it stops at once instead of at its next wake-up.
    runner: Option<Waker>,
    /// What stops this slot's work in a process pool (kills its process): called, under
    /// the slot's lock, by a cancel or an expiry.
    stopper: Option<Box<dyn FnOnce() + Send>>,
}

/// Where a task's result lands: resolved exactly once (the first `resolve` wins).
pub(crate) struct Slot<R> {
    done: AtomicBool,
    cancelled: AtomicBool,
    state: Mutex<SlotState<R>>,
    ready: Condvar,
}

impl<R> Slot<R> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            done: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            state: Mutex::new(SlotState {
                result: None,
                resolved: false,
                cancelled: false,
                reason: None,
                sleeping: false,
                waker: None,
                runner: None,
                stopper: None,
            }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SlotState<R>> {
        lock(&self.state)
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Resolves with `result`, or with `Cancelled` if a cancel came first; a slot that is
    /// already resolved stays as it is. `count` learns how the slot resolved, once, before
    /// anyone waiting on the handle can see the result: so the pool's counters already
    /// include a task when its `join` returns.
    pub(crate) fn resolve(&self, result: Result<R, TaskError>, count: impl FnOnce(Resolved)) {
        let (sleeping, waker) = {
            let mut state = self.lock();
            if state.resolved {
                return;
            }
            state.resolved = true;
            let result = if state.cancelled {
                Err(TaskError::Cancelled)
            } else {
                result
            };
            count(match &result {
                Ok(_) => Resolved::Value,
                Err(TaskError::Panicked(_)) => Resolved::Panicked,
                Err(TaskError::Cancelled) => Resolved::Cancelled,
                Err(TaskError::TimedOut) => Resolved::TimedOut,
                Err(TaskError::Crashed { .. }) => Resolved::Crashed,
            });
            state.result = Some(result);
            self.done.store(true, Ordering::Release);
            (state.sleeping, state.waker.take())
        };
        self.wake(sleeping, waker);
    }

    /// Wakes whoever waits for the result: a sleeping `join`, a polled future.
    fn wake(&self, sleeping: bool, waker: Option<Waker>) {
        if sleeping {
            self.ready.notify_all();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Resolves `TimedOut` (its deadline passed) unless it already resolved, and raises
    /// the cancelled flag so that the running task sees `is_cancelled()`. True if it
    /// resolved here.
    pub(crate) fn expire(&self, count: impl FnOnce(Resolved)) -> bool {
        let (sleeping, waker) = {
            let mut state = self.lock();
            if state.resolved {
                return false;
            }
            state.resolved = true;
            state.result = Some(Err(TaskError::TimedOut));
            self.cancelled.store(true, Ordering::Release);
            count(Resolved::TimedOut);
            self.done.store(true, Ordering::Release);
            if let Some(runner) = state.runner.take() {
                runner.wake();
            }
            if let Some(stop) = state.stopper.take() {
                stop();
            }
            (state.sleeping, state.waker.take())
        };
        self.wake(sleeping, waker);
        true
    }

    /// Marks the task cancelled; true if it had not resolved (it will resolve `Cancelled`).
    pub(crate) fn cancel(&self) -> bool {
        self.cancel_with(None)
    }

    /// As [`cancel`](Self::cancel), recording `reason` if this is the first cancel.
    pub(crate) fn cancel_with(&self, reason: Option<Arc<str>>) -> bool {
        let mut state = self.lock();
        if state.resolved {
            return false;
        }
        if !state.cancelled {
            state.reason = reason;
        }
        state.cancelled = true;
        self.cancelled.store(true, Ordering::Release);
        if let Some(runner) = state.runner.take() {
            runner.wake();
        }
        if let Some(stop) = state.stopper.take() {
            stop();
        }
        true
    }

    /// The reason given by the cancel that cancelled the task, if it gave one.
    pub(crate) fn cancel_reason(&self) -> Option<Arc<str>> {
        self.lock().reason.clone()
    }

    /// Installs what stops this slot's work (a process pool kills the task's process);
    /// false, and `stop` is dropped, if the slot was cancelled or resolved already.
    #[cfg_attr(not(feature = "process"), allow(dead_code))]
    pub(crate) fn set_stopper(&self, stop: Box<dyn FnOnce() + Send>) -> bool {
        let mut state = self.lock();
        if state.cancelled || state.resolved {
            return false;
        }
        state.stopper = Some(stop);
        true
    }

    /// Removes the stopper: once this returns, it is not running and will not run.
    #[cfg_attr(not(feature = "process"), allow(dead_code))]
    pub(crate) fn clear_stopper(&self) {
        self.lock().stopper = None;
    }

    /// Registers the async task running this slot's work, to be woken by a cancel.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn set_runner(&self, waker: &Waker) {
        let mut state = self.lock();
        match &mut state.runner {
            Some(runner) if runner.will_wake(waker) => {}
            runner => *runner = Some(waker.clone()),
        }
    }

    fn take(state: &mut SlotState<R>) -> Result<R, TaskError> {
        // Only `join` and `poll` take, each from a handle they own: the result is there.
        state.result.take().unwrap_or(Err(TaskError::Cancelled))
    }

    /// Waits for the result: spin briefly, then sleep.
    fn wait(&self) -> Result<R, TaskError> {
        spin_while(|| !self.is_done());
        let mut state = self.lock();
        while !state.resolved {
            state.sleeping = true;
            state = wait(&self.ready, state);
        }
        Self::take(&mut state)
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<R, TaskError>> {
        let mut state = self.lock();
        if state.resolved {
            return Poll::Ready(Self::take(&mut state));
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A slot a deadline can expire, whatever its result type (a task's or a chunk's).
pub(crate) trait Expire: Send + Sync {
    /// [`Slot::expire`], type-erased.
    fn expire_counted(&self, count: &mut dyn FnMut(Resolved)) -> bool;
    /// [`Slot::is_done`].
    fn is_done(&self) -> bool;
}

impl<R: Send> Expire for Slot<R> {
    fn expire_counted(&self, count: &mut dyn FnMut(Resolved)) -> bool {
        self.expire(count)
    }

    fn is_done(&self) -> bool {
        Slot::is_done(self)
    }
}

#[cfg(all(test, worker_threads_loom))]
mod loom_model;

/// A type-erased view of the running task's slot, for [`is_cancelled`].
trait CancelFlag {
    fn is_cancelled(&self) -> bool;
}

impl<R> CancelFlag for Slot<R> {
    fn is_cancelled(&self) -> bool {
        Slot::is_cancelled(self)
    }
}

thread_local! {
    static RUNNING: RefCell<Option<Arc<dyn CancelFlag>>> = const { RefCell::new(None) };
    /// On a pool thread, the pool's "destroyed" flag: `destroy` cancels every running task.
    static POOL_DESTROYED: RefCell<Option<Arc<std::sync::atomic::AtomicBool>>> = const { RefCell::new(None) };
}

/// Makes `destroyed` the calling pool thread's pool flag (once, as the thread starts).
pub(crate) fn set_pool_destroyed_flag(destroyed: Arc<std::sync::atomic::AtomicBool>) {
    POOL_DESTROYED.with(|flag| *flag.borrow_mut() = Some(destroyed));
}

/// Runs `f` with `slot` as the calling thread's running task (for [`is_cancelled`]).
pub(crate) fn running<R: 'static, T>(slot: &Arc<Slot<R>>, f: impl FnOnce() -> T) -> T {
    let previous = RUNNING.with(|running| running.replace(Some(Arc::clone(slot) as _)));
    struct Restore(Option<Arc<dyn CancelFlag>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            RUNNING.with(|running| *running.borrow_mut() = previous);
        }
    }
    let _restore = Restore(previous);
    f()
}

/// True if the task running on the calling pool thread was cancelled: piscina's
/// `AbortSignal`, seen from inside. A long task should look now and then and return early;
/// its handle resolves `Cancelled` whatever it returns. False off a pool thread.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// let (started_tx, started) = mpsc::channel();
/// let pool = worker_threads_pool::Pool::builder().max_threads(1).build(move |_: ()| {
///     started_tx.send(()).unwrap();
///     while !worker_threads_pool::is_cancelled() {
///         std::hint::spin_loop();
///     }
///     "stopped early"
/// })?;
/// let task = pool.run(())?;
/// started.recv()?;
/// assert!(task.cancel());
/// assert_eq!(task.join(), Err(worker_threads_pool::TaskError::Cancelled));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn is_cancelled() -> bool {
    let destroyed = POOL_DESTROYED.with(|flag| {
        flag.borrow()
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    });
    destroyed
        || RUNNING.with(|running| {
            running
                .borrow()
                .as_ref()
                .is_some_and(|slot| slot.is_cancelled())
        })
}

/// The handle of an accepted task: [`join`](TaskHandle::join) blocks for its result,
/// `.await` waits for it asynchronously, [`cancel`](TaskHandle::cancel) cancels it. The
/// task resolves exactly once: its value, `Panicked`, or `Cancelled`. Dropping the handle
/// does not cancel the task.
#[must_use = "dropping a TaskHandle lets the task run but loses its result"]
pub struct TaskHandle<R> {
    id: u64,
    slot: Arc<Slot<R>>,
    pool: Weak<dyn PoolHooks>,
}

impl<R> TaskHandle<R> {
    pub(crate) fn new(id: u64, slot: Arc<Slot<R>>, pool: Weak<dyn PoolHooks>) -> Self {
        Self { id, slot, pool }
    }

    pub(crate) fn slot(&self) -> &Arc<Slot<R>> {
        &self.slot
    }

    /// Waits for the task and returns its value. Called on one of the same pool's threads
    /// for a task that is still queued, it runs the task right there instead of waiting,
    /// so a handler that waits for its own sub-tasks cannot starve the pool.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] or [`TaskError::Cancelled`].
    pub fn join(self) -> Result<R, TaskError> {
        if !self.slot.is_done() {
            if let Some(pool) = self.pool.upgrade() {
                pool.run_inline_if_worker(self.id);
            }
        }
        self.slot.wait()
    }

    /// True once the task has resolved.
    pub fn is_finished(&self) -> bool {
        self.slot.is_done()
    }

    /// Cancels the task. A queued task leaves the queue and resolves `Cancelled` at once; a
    /// running one sees [`is_cancelled`] turn true (its thread is never killed) and
    /// resolves `Cancelled` when it returns. Returns false if the task had already
    /// resolved (then nothing changes).
    pub fn cancel(&self) -> bool {
        self.cancel_because(None)
    }

    /// Cancels the task as [`cancel`](Self::cancel) does, giving a reason that
    /// [`cancel_reason`](Self::cancel_reason) returns afterwards (`AbortController.abort(reason)`).
    /// If the task was cancelled already, the first reason stays.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_pool::{MaxQueue, Pool, TaskError};
    ///
    /// let pool = Pool::builder().max_threads(1).max_queue(MaxQueue::Bounded(4)).build(|(): ()| {
    ///     while !worker_threads_pool::is_cancelled() {
    ///         std::hint::spin_loop();
    ///     }
    /// })?;
    /// let task = pool.run(())?;
    /// assert!(task.cancel_with("the user left"));
    /// assert_eq!(task.cancel_reason().as_deref(), Some("the user left"));
    /// // `join` takes the handle; awaiting `&mut task` keeps it for the reason.
    /// assert_eq!(task.join(), Err(TaskError::Cancelled));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_with(&self, reason: impl Into<Arc<str>>) -> bool {
        self.cancel_because(Some(reason.into()))
    }

    fn cancel_because(&self, reason: Option<Arc<str>>) -> bool {
        if !self.slot.cancel_with(reason) {
            return false;
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.cancel_queued(self.id);
        }
        true
    }

    /// Why the task was cancelled: the reason given to
    /// [`cancel_with`](Self::cancel_with) or to
    /// [`CancelToken::cancel_with`](crate::CancelToken::cancel_with), by the first cancel
    /// that took effect. `None` if it was not cancelled, or was cancelled without a reason
    /// ([`cancel`](Self::cancel), `destroy`, a deadline).
    pub fn cancel_reason(&self) -> Option<Arc<str>> {
        self.slot.cancel_reason()
    }

    /// The task's id in its pool (increasing in submission order).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<R: Send + 'static> TaskHandle<R> {
    /// A canceller for this task that does not keep it or its pool alive (for a
    /// [`CancelToken`](crate::CancelToken)).
    pub(crate) fn canceller(&self) -> crate::signal::Canceller {
        let (id, slot, pool) = (self.id, Arc::downgrade(&self.slot), self.pool.clone());
        Box::new(move |reason| {
            let Some(slot) = slot.upgrade() else { return };
            if slot.cancel_with(reason) {
                if let Some(pool) = pool.upgrade() {
                    pool.cancel_queued(id);
                }
            }
        })
    }
}

impl<R> Future for TaskHandle<R> {
    type Output = Result<R, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.slot.poll(cx)
    }
}

impl<R> fmt::Debug for TaskHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
