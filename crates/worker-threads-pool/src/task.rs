//! A task: its [`TaskHandle`], and the [`Task`] the queue and the handle share, whose
//! input is taken and whose result lands exactly once (a [`TaskCell`]: one atomic state
//! word, see `worker_threads_wait`).

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use std::sync::OnceLock;

use worker_threads_wait::sync::Mutex;
use worker_threads_wait::{Cancel, Deadline, TaskCell, lock};

use crate::error::TaskError;
use crate::stats::{Counts, Resolved};
use worker_threads_wait::Stamp;

/// What a task resolves with.
pub(crate) type Output<R> = Result<R, TaskError>;

/// What a task needs from its pool when it leaves the queue, or resolves, off the pool's
/// threads (a cancel, a deadline), and to run it inline.
pub(crate) trait PoolHooks: Send + Sync {
    /// A queued task left the queue unrun (cancelled, expired): it takes no room any more.
    /// True if that emptied the queue (then call [`emptied`](Self::emptied), outside any
    /// lock: it runs the pool's event hook).
    fn left_queue(&self) -> bool;
    /// The queue emptied (`PoolEvent::Drain`).
    fn emptied(&self);
    /// The pool's shared counters (resolutions made off its threads).
    fn counts(&self) -> &Counts;
    /// If the calling thread is one of this pool's and `task` is still queued, runs it
    /// here (a handler that joins its own sub-task cannot starve the pool) and returns
    /// true.
    fn run_inline_if_worker(&self, task: Arc<dyn Any + Send + Sync>) -> bool;
}

/// What stops a running task early: the waker of the async task running it, and (process
/// pools) what kills its process; with the reason of the cancel that took effect.
#[derive(Default)]
struct Extras {
    reason: Option<Arc<str>>,
    runner: Option<Waker>,
    stopper: Option<Box<dyn FnOnce() + Send>>,
}

/// A task as the queue and its handle share it: its cell (input `I`, output
/// `Output<R>`), its id, when it was accepted, and how many items it holds (1, or a `map`
/// chunk's length).
pub(crate) struct Task<I, R> {
    pub(crate) cell: TaskCell<I, Output<R>>,
    pub(crate) id: u64,
    pub(crate) enqueued: Stamp,
    pub(crate) items: u64,
    /// Made by the first cancel, deadline or stopper (not on the path of a task that
    /// just runs, which never allocates or drops it).
    extras: OnceLock<Mutex<Extras>>,
}

/// A chunk of `map`'s items: one queue entry, one result per item.
pub(crate) type Chunk<T, R> = Task<Vec<T>, Vec<Output<R>>>;

impl<I, R> Task<I, R> {
    pub(crate) fn new(id: u64, enqueued: Stamp, input: I, items: u64) -> Arc<Self> {
        Arc::new(Self {
            cell: TaskCell::new(input),
            id,
            enqueued,
            items,
            extras: OnceLock::new(),
        })
    }

    fn extras(&self) -> &Mutex<Extras> {
        self.extras.get_or_init(Mutex::default)
    }

    /// Resolves with what the handler gave (as `Cancelled` if a cancel came first),
    /// counting it with `count` before anyone can see it; nothing if it resolved already
    /// (a deadline came first).
    pub(crate) fn resolve(&self, output: Output<R>, count: impl FnOnce(&Output<R>)) {
        self.cell.resolve(false, |found| {
            let output = if found.cancelled {
                Err(TaskError::Cancelled)
            } else {
                output
            };
            count(&output);
            output
        });
    }

    /// Cancels (`reason` kept if this is the first cancel to take effect): a queued task
    /// resolves `Cancelled` now, counted in `pool`'s shared counters, and leaves the
    /// queue; a running one is marked (and its runner woken, its process killed). False
    /// if it had resolved already.
    pub(crate) fn cancel(&self, reason: Option<Arc<str>>, pool: Option<&dyn PoolHooks>) -> bool {
        match pool {
            Some(pool) => {
                let mut emptied = false;
                let cancelled =
                    self.cancel_counted(reason, pool.counts(), || emptied = pool.left_queue());
                if emptied {
                    pool.emptied();
                }
                cancelled
            }
            None => self.cancel_counted(reason, &Counts::default(), || {}),
        }
    }

    /// [`cancel`](Self::cancel), counting a queued task's resolution in `counts` and
    /// calling `left_queue` as it leaves the queue: before its resolution can be seen, so
    /// whoever the resolution wakes sees the queue without it.
    pub(crate) fn cancel_counted(
        &self,
        reason: Option<Arc<str>>,
        counts: &Counts,
        left_queue: impl FnOnce(),
    ) -> bool {
        let mut extras = lock(self.extras());
        let found = self.cell.cancel(|| {
            left_queue();
            counts.add(Resolved::Cancelled, self.items);
            Err(TaskError::Cancelled)
        });
        if found == Cancel::TooLate {
            return false;
        }
        if extras.reason.is_none() {
            extras.reason = reason;
        }
        if found == Cancel::WhileRunning {
            Self::stop(&mut extras);
        }
        true
    }

    /// Resolves `TimedOut` unless it resolved already, marking it cancelled (a running
    /// task sees `is_cancelled()`, and is stopped as a cancel stops it); a queued task
    /// leaves the queue first (whoever the resolution wakes sees the queue without it).
    /// True if it resolved here.
    pub(crate) fn expire(&self, pool: &dyn PoolHooks) -> bool {
        let mut extras = lock(self.extras());
        let mut emptied = false;
        let resolution = self.cell.resolve(true, |found| {
            if found.was_queued {
                emptied = pool.left_queue();
            }
            pool.counts().add(Resolved::TimedOut, self.items);
            Err(TaskError::TimedOut)
        });
        let Some(resolution) = resolution else {
            return false;
        };
        if !resolution.was_queued {
            Self::stop(&mut extras);
        }
        drop(extras);
        if emptied {
            pool.emptied();
        }
        true
    }

    /// Wakes the async task running this one and kills its process, if either is set.
    fn stop(extras: &mut Extras) {
        if let Some(runner) = extras.runner.take() {
            runner.wake();
        }
        if let Some(stop) = extras.stopper.take() {
            stop();
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }

    /// Installs what stops this task's work (a process pool kills the task's process);
    /// false, and `stop` is dropped, if the task was cancelled or resolved already.
    #[cfg_attr(not(feature = "process"), allow(dead_code))]
    pub(crate) fn set_stopper(&self, stop: Box<dyn FnOnce() + Send>) -> bool {
        let mut extras = lock(self.extras());
        if self.cell.is_cancelled() || self.cell.is_done() {
            return false;
        }
        extras.stopper = Some(stop);
        true
    }

    /// Removes the stopper: once this returns, it is not running and will not run.
    #[cfg_attr(not(feature = "process"), allow(dead_code))]
    pub(crate) fn clear_stopper(&self) {
        if let Some(extras) = self.extras.get() {
            lock(extras).stopper = None;
        }
    }

    /// Registers the async task running this one, to be woken by a cancel.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn set_runner(&self, waker: &Waker) {
        let mut extras = lock(self.extras());
        match &mut extras.runner {
            Some(runner) if runner.will_wake(waker) => {}
            runner => *runner = Some(waker.clone()),
        }
    }

    fn reason(&self) -> Option<Arc<str>> {
        self.extras
            .get()
            .and_then(|extras| lock(extras).reason.clone())
    }
}

/// A task a deadline can expire, whatever its types.
pub(crate) trait Expire: Send + Sync {
    /// [`Task::expire`], type-erased.
    fn expire(&self, pool: &dyn PoolHooks) -> bool;
    /// Whether it resolved.
    fn is_done(&self) -> bool;
}

impl<I: Send, R: Send> Expire for Task<I, R> {
    fn expire(&self, pool: &dyn PoolHooks) -> bool {
        Task::expire(self, pool)
    }

    fn is_done(&self) -> bool {
        self.cell.is_done()
    }
}

/// What a handle needs of its task, with the input's type erased.
pub(crate) trait View<R>: Send + Sync {
    fn task_id(&self) -> u64;
    fn done(&self) -> bool;
    fn wait(&self) -> Output<R>;
    fn poll(&self, cx: &mut Context<'_>) -> Poll<Output<R>>;
    fn forget(&self);
    fn cancel(&self, reason: Option<Arc<str>>, pool: Option<&dyn PoolHooks>) -> bool;
    fn cancel_reason(&self) -> Option<Arc<str>>;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<I: Send + 'static, R: Send + 'static> View<R> for Task<I, R> {
    fn task_id(&self) -> u64 {
        self.id
    }

    fn done(&self) -> bool {
        self.cell.is_done()
    }

    fn wait(&self) -> Output<R> {
        // Only the handle takes, once (`join` consumes it): the output is there.
        self.cell
            .wait(Deadline::Never)
            .unwrap_or(Err(TaskError::Cancelled))
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<Output<R>> {
        self.cell
            .poll(cx)
            .map(|output| output.unwrap_or(Err(TaskError::Cancelled)))
    }

    fn forget(&self) {
        self.cell.forget();
    }

    fn cancel(&self, reason: Option<Arc<str>>, pool: Option<&dyn PoolHooks>) -> bool {
        Task::cancel(self, reason, pool)
    }

    fn cancel_reason(&self) -> Option<Arc<str>> {
        self.reason()
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// A type-erased view of the running task, for [`is_cancelled`]; the task comes back out
/// of it whole ([`run_owned`]).
trait CancelFlag: Any + Send + Sync {
    fn is_cancelled(&self) -> bool;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<I: Send + 'static, R: Send + 'static> CancelFlag for Task<I, R> {
    fn is_cancelled(&self) -> bool {
        Task::is_cancelled(self)
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
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

/// Runs `f` under `catch_unwind` with `task` as the calling thread's running task (for
/// [`is_cancelled`]), and gives `task` back: the task moves in and out of the thread's
/// slot, so a task costs no reference count there (as [`running`] does).
pub(crate) fn run_owned<I: Send + 'static, R: Send + 'static, X>(
    task: Arc<Task<I, R>>,
    f: impl FnOnce() -> X,
) -> (std::thread::Result<X>, Arc<Task<I, R>>) {
    let previous = RUNNING.with(|running| running.replace(Some(task as _)));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let mine = RUNNING.with(|running| running.replace(previous));
    let task = mine
        .map(CancelFlag::into_any)
        .and_then(|any| any.downcast::<Task<I, R>>().ok())
        .unwrap_or_else(|| unreachable!("the slot holds the task installed above"));
    (result, task)
}

/// Runs `f` with `task` as the calling thread's running task (for [`is_cancelled`]).
pub(crate) fn running<I: Send + 'static, R: Send + 'static, X>(
    task: &Arc<Task<I, R>>,
    f: impl FnOnce() -> X,
) -> X {
    let previous = RUNNING.with(|running| running.replace(Some(Arc::clone(task) as _)));
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
            .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Acquire))
    });
    destroyed
        || RUNNING.with(|running| {
            running
                .borrow()
                .as_ref()
                .is_some_and(|task| task.is_cancelled())
        })
}

/// The handle of an accepted task: [`join`](TaskHandle::join) blocks for its result,
/// `.await` waits for it asynchronously, [`cancel`](TaskHandle::cancel) cancels it. The
/// task resolves exactly once: its value, `Panicked`, or `Cancelled`. Dropping the handle
/// does not cancel the task.
///
/// # Examples
///
/// ```
/// use worker_threads_pool::Pool;
///
/// let pool = Pool::builder().build(|n: u32| n * 3)?;
/// let handle = pool.run(4)?;
/// let id = handle.id();
/// assert_eq!(handle.join()?, 12);
/// // Or `.await` it under any executor.
/// let value = tokio::runtime::Builder::new_current_thread().build()?.block_on(pool.run(5)?)?;
/// assert_eq!(value, 15);
/// assert!(pool.run(6)?.id() > id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a TaskHandle lets the task run but loses its result"]
pub struct TaskHandle<R> {
    task: Arc<dyn View<R>>,
    pool: Weak<dyn PoolHooks>,
    /// A pending `.await` registered its waker, withdrawn on drop.
    polled: bool,
}

impl<R: Send + 'static> TaskHandle<R> {
    pub(crate) fn new<I: Send + 'static>(task: Arc<Task<I, R>>, pool: Weak<dyn PoolHooks>) -> Self {
        Self::of_view(task, pool)
    }

    /// The handle of anything a handle can wait on (a retried task's tries).
    pub(crate) fn of_view(task: Arc<dyn View<R>>, pool: Weak<dyn PoolHooks>) -> Self {
        Self {
            task,
            pool,
            polled: false,
        }
    }
}

impl<R> TaskHandle<R> {
    /// Waits for the task and returns its value. Called on one of the same pool's threads
    /// for a task that is still queued, it runs the task right there instead of waiting,
    /// so a handler that waits for its own sub-tasks cannot starve the pool.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] or [`TaskError::Cancelled`].
    pub fn join(self) -> Result<R, TaskError> {
        if !self.task.done() {
            if let Some(pool) = self.pool.upgrade() {
                pool.run_inline_if_worker(Arc::clone(&self.task).into_any());
            }
        }
        self.task.wait()
    }

    /// True once the task has resolved.
    pub fn is_finished(&self) -> bool {
        self.task.done()
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
        let pool = self.pool.upgrade();
        self.task.cancel(reason, pool.as_deref())
    }

    /// Why the task was cancelled: the reason given to
    /// [`cancel_with`](Self::cancel_with) or to
    /// [`CancelToken::cancel_with`](crate::CancelToken::cancel_with), by the first cancel
    /// that took effect. `None` if it was not cancelled, or was cancelled without a reason
    /// ([`cancel`](Self::cancel), `destroy`, a deadline).
    pub fn cancel_reason(&self) -> Option<Arc<str>> {
        self.task.cancel_reason()
    }

    /// The task's id in its pool (increasing in submission order).
    pub fn id(&self) -> u64 {
        self.task.task_id()
    }
}

impl<R: Send + 'static> TaskHandle<R> {
    /// A canceller for this task that does not keep it or its pool alive (for a
    /// [`CancelToken`](crate::CancelToken)).
    pub(crate) fn canceller(&self) -> crate::signal::Canceller {
        let (task, pool) = (Arc::downgrade(&self.task), self.pool.clone());
        Box::new(move |reason| {
            if let Some(task) = task.upgrade() {
                let pool = pool.upgrade();
                task.cancel(reason, pool.as_deref());
            }
        })
    }
}

impl<R> Future for TaskHandle<R> {
    type Output = Result<R, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.polled = true;
        this.task.poll(cx)
    }
}

impl<R> Drop for TaskHandle<R> {
    fn drop(&mut self) {
        if self.polled {
            self.task.forget();
        }
    }
}

impl<R> fmt::Debug for TaskHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
