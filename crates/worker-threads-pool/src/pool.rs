//! `Pool`: piscina for Rust threads.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, EventHook};
use crate::error::{BuildError, RunError, ShutdownTimedOut};
use crate::inner::{Inner, OnFull, Precancelled, RetryWith, Shutdown};
use crate::retry::Retry;
use crate::signal::CancelToken;
use crate::stats::Latency;
use crate::stats::Resolved;
use crate::task::TaskHandle;

/// A pool of threads that run tasks from a bounded queue: piscina for Rust.
///
/// Every task `T` is handed to the pool's handler on one of its threads; its result `R`
/// resolves the task's [`TaskHandle`]. The queue is bounded by default
/// ([`MaxQueue::Auto`](crate::MaxQueue) = `max_threads²`), so submitting faster than the
/// threads can run either fails with the task handed back ([`run`](Pool::run)) or waits
/// for room ([`run_wait`](Pool::run_wait), [`run_async`](Pool::run_async),
/// [`map`](Pool::map)): piscina's out-of-memory trap (an unbounded queue that a
/// fast submission loop fills until the heap is gone) cannot happen by accident.
///
/// Dropping the pool closes it without waiting (see its `Drop`): accepted tasks still run
/// and resolve; [`close`](Pool::close) waits for them.
///
/// # Examples
///
/// piscina's first example, the square root of nine:
///
/// ```
/// use worker_threads_pool::Pool;
///
/// let pool = Pool::builder().build(|n: f64| n.sqrt())?;
/// let square_root_of_nine = pool.run(9.0)?.join()?;
/// println!("The square root of nine is {square_root_of_nine}");
/// # assert_eq!(square_root_of_nine, 3.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool<T, R> {
    pub(crate) inner: Arc<Inner<T, R>>,
    /// Every task's retry policy ([`with_retry`](Pool::with_retry)).
    pub(crate) retry: Option<RetryWith<T>>,
}

impl<T: Send + 'static, R: Send + 'static> Pool<T, R> {
    pub(crate) fn start<S, I, F>(
        config: Config,
        on_event: Option<EventHook>,
        init: I,
        handler: F,
    ) -> Result<Self, BuildError>
    where
        S: 'static,
        I: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> R + Send + Sync + 'static,
    {
        Inner::start(config, on_event, init, handler).map(|inner| Self { inner, retry: None })
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn start_async(
        config: Config,
        on_event: Option<EventHook>,
        handler: Arc<crate::inner::async_worker::AsyncHandler<T, R>>,
    ) -> Result<Self, BuildError> {
        Inner::start_async(config, on_event, handler).map(|inner| Self { inner, retry: None })
    }

    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn start_process(
        config: Config,
        on_event: Option<EventHook>,
        spawn: Box<crate::inner::process_worker::ProcessSpawner<T, R>>,
        settings: crate::inner::process_worker::ProcessSettings,
    ) -> Result<Self, BuildError> {
        Inner::start_process(config, on_event, spawn, settings)
            .map(|inner| Self { inner, retry: None })
    }

    /// Submits `task` if the queue has room: piscina's `run`.
    ///
    /// # Errors
    ///
    /// [`RunError::QueueFull`] or [`RunError::Closed`], with the task.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_pool::{MaxQueue, Pool, RunError};
    /// use std::sync::mpsc;
    ///
    /// let (gate_tx, gate) = mpsc::channel::<()>();
    /// let gate = std::sync::Mutex::new(gate);
    /// let pool = Pool::builder()
    ///     .max_threads(1)
    ///     .max_queue(MaxQueue::Bounded(1))
    ///     .build(move |n: u32| { let _ = gate.lock().unwrap().recv(); n })?;
    /// let first = pool.run(1)?; // taken by the thread, which waits at the gate
    /// pool.wait_drain();
    /// let second = pool.run(2)?; // queued
    /// assert!(matches!(pool.run(3), Err(RunError::QueueFull(3))));
    /// drop(gate_tx); // open the gate
    /// assert_eq!((first.join()?, second.join()?), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run(&self, task: T) -> Result<TaskHandle<R>, RunError<T>> {
        self.submit(task, OnFull::Refuse)
    }

    /// Submits `task` with the default deadline, under the pool's retry policy.
    fn submit(&self, task: T, on_full: OnFull) -> Result<TaskHandle<R>, RunError<T>> {
        let deadline = self.inner.default_deadline();
        self.submit_until(task, on_full, deadline, None)
    }

    /// Submits `task` with `deadline` (and a cancel that came before it), under the pool's
    /// retry policy, if it has one.
    fn submit_until(
        &self,
        task: T,
        on_full: OnFull,
        deadline: Option<Instant>,
        precancelled: Precancelled,
    ) -> Result<TaskHandle<R>, RunError<T>> {
        self.inner
            .submit_retrying(task, self.retry, on_full, deadline, precancelled)
    }

    /// Submits `task` if the queue has room, with a deadline: its handle resolves
    /// [`TaskError::TimedOut`](crate::TaskError::TimedOut) at `deadline` unless it
    /// resolved before (piscina users pass `AbortSignal.timeout(ms)`). A queued task
    /// leaves the queue then; a running one sees [`is_cancelled`](crate::is_cancelled)
    /// turn true, and its thread stays busy until it returns (a thread cannot be killed).
    /// Counted in [`timed_out`](Self::timed_out).
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use worker_threads_pool::{Pool, TaskError};
    ///
    /// let pool = Pool::builder().max_threads(1).build(|(): ()| {
    ///     while !worker_threads_pool::is_cancelled() {
    ///         std::hint::spin_loop();
    ///     }
    /// })?;
    /// let task = pool.run_with_deadline((), Instant::now() + Duration::from_millis(20))?;
    /// assert_eq!(task.join(), Err(TaskError::TimedOut));
    /// assert_eq!(pool.timed_out(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_with_deadline(
        &self,
        task: T,
        deadline: Instant,
    ) -> Result<TaskHandle<R>, RunError<T>> {
        self.submit_until(task, OnFull::Refuse, Some(deadline), None)
    }

    /// Submits `task` if the queue has room, cancellable by `token` (piscina's `signal`
    /// option): cancelling the token cancels the task as
    /// [`TaskHandle::cancel`](crate::TaskHandle::cancel) would, and a token already
    /// cancelled means the task never runs (its handle resolves `Cancelled`). See
    /// [`CancelToken`].
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub fn run_with_token(
        &self,
        task: T,
        token: &CancelToken,
    ) -> Result<TaskHandle<R>, RunError<T>> {
        // A token cancelled already cancels the task as it is accepted, before it is
        // queued, so no pool thread can start it; one cancelled later cancels it through
        // the handle.
        let precancelled = token.is_cancelled().then(|| token.reason());
        let deadline = self.inner.default_deadline();
        let handle = self.submit_until(task, OnFull::Refuse, deadline, precancelled)?;
        token.register(handle.canceller());
        Ok(handle)
    }

    /// Submits `task`, waiting for room in the queue: back-pressure the easy way. On one of
    /// the pool's own threads it runs the task right there instead of waiting.
    ///
    /// # Errors
    ///
    /// [`RunError::Closed`] with the task if the pool is closed.
    pub fn run_wait(&self, task: T) -> Result<TaskHandle<R>, RunError<T>> {
        self.submit(task, OnFull::Wait)
    }

    /// Submits `task`, awaiting room in the queue, under any executor.
    ///
    /// # Errors
    ///
    /// [`RunError::Closed`] with the task if the pool is closed.
    ///
    /// # Cancel safety
    ///
    /// The task is accepted only in the poll that returns its handle. Dropping the future
    /// before that drops the task unrun (it was never accepted, so nothing resolves for
    /// it); once the handle is returned, the task is accepted and resolves exactly once
    /// whether or not the handle is kept.
    pub async fn run_async(&self, mut task: T) -> Result<TaskHandle<R>, RunError<T>> {
        loop {
            match self.submit(task, OnFull::Refuse) {
                Err(RunError::QueueFull(back)) => task = back,
                done => return done,
            }
            self.inner.room().await;
        }
    }

    /// Waits until the queue drains: returns at once if it is empty, else when it goes
    /// from non-empty to empty. (piscina 5's `drain` fires when running tasks drop below
    /// capacity instead, and a loop that waits for `drain` whenever `queueSize` reaches
    /// `maxQueue` hangs on it; see their issue #868.) A `RemotePool`'s waits for its
    /// server's queue to empty: every submitter's tasks.
    pub fn wait_drain(&self) {
        self.inner.handoff.wait_drain();
    }

    /// Awaits the queue draining, as [`wait_drain`](Self::wait_drain), under any executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits. A new `drained()` after a dropped one starts over (it
    /// returns at once on an empty queue, else at the next drain).
    pub async fn drained(&self) {
        self.inner.handoff.drained().await;
    }
}

impl<T: Clone + Send + 'static, R: Send + 'static> Pool<T, R> {
    /// The same pool, trying every task as `retry` says (BullMQ's `attempts` and
    /// `backoff` as a queue's default): a try that panics, or whose worker process ends,
    /// is followed by another after the back-off; a task whose tries all failed resolves
    /// [`TaskError::Retried`](crate::TaskError::Retried) with the last failure and the
    /// number of tries. Each try runs on a copy of the task (hence `T: Clone`).
    ///
    /// A task waiting for its back-off keeps its place in [`queue_size`](Self::queue_size)
    /// (it is still to run; its next try enters the queue without waiting for room, and
    /// a drain waits for it). A cancel then ends it at once; [`close`](Self::close) ends
    /// it with the tries made, [`destroy`](Self::destroy) with `Cancelled`. A deadline
    /// (`task_timeout`, [`run_with_deadline`](Self::run_with_deadline)) is the whole
    /// task's: a try that times out is not tried again. The pool's counters count
    /// tries. `map`'s items are tried as tasks are.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    /// use worker_threads_pool::{Backoff, Pool, Retry, TaskError};
    ///
    /// static TRIES: AtomicU32 = AtomicU32::new(0);
    /// // Fails twice, then works.
    /// let flaky = |n: u32| {
    ///     if TRIES.fetch_add(1, Ordering::SeqCst) < 2 {
    ///         panic!("not yet");
    ///     }
    ///     n * 2
    /// };
    /// let retry = Retry::attempts(3).backoff(Backoff::Fixed(Duration::from_millis(5)));
    /// let pool = Pool::builder().build(flaky)?.with_retry(retry);
    /// assert_eq!(pool.run(21)?.join(), Ok(42));
    /// assert_eq!(TRIES.load(Ordering::SeqCst), 3);
    /// // Two tries of a task that always fails: its last failure, and the count.
    /// let pool = Pool::builder().build(|_: ()| -> u32 { panic!("never") })?;
    /// let handle = pool.run_with_retry((), Retry::attempts(2))?;
    /// assert_eq!(
    ///     handle.join(),
    ///     Err(TaskError::Retried { attempts: 2, last: Box::new(TaskError::Panicked("never".into())) })
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = Some(RetryWith {
            policy: retry,
            clone: T::clone,
        });
        self
    }

    /// Submits `task` if the queue has room, tried as `retry` says (whatever the pool's
    /// policy): BullMQ's per-job `attempts` and `backoff`. See
    /// [`with_retry`](Self::with_retry).
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub fn run_with_retry(&self, task: T, retry: Retry) -> Result<TaskHandle<R>, RunError<T>> {
        let retry = RetryWith {
            policy: retry,
            clone: T::clone,
        };
        let deadline = self.inner.default_deadline();
        self.inner
            .submit_retrying(task, Some(retry), OnFull::Refuse, deadline, None)
    }
}

impl<T, R> Pool<T, R> {
    /// The retry policy every task gets ([`with_retry`](Pool::with_retry)); `None`: one
    /// try.
    pub fn retry(&self) -> Option<Retry> {
        self.retry.map(|retry| retry.policy)
    }

    /// Tasks waiting in the queue (not the running ones). piscina's `queueSize`. (A
    /// `RemotePool`'s counts differently: every submitter's queued and running tasks, as
    /// its server counts them.)
    pub fn queue_size(&self) -> usize {
        self.inner.handoff.queued()
    }

    /// The queue's bound; `usize::MAX` when unbounded (piscina's `Infinity`). piscina's
    /// `options.maxQueue`.
    pub fn max_queue(&self) -> usize {
        self.inner.config.max_queue.unwrap_or(usize::MAX)
    }

    /// True when the queue is full: wait for a drain before submitting. piscina's
    /// `needsDrain`.
    pub fn needs_drain(&self) -> bool {
        self.queue_size() >= self.max_queue()
    }

    /// True once [`close`](Self::close) or [`destroy`](Self::destroy) began (or the pool
    /// was dropped): `run` refuses with `Closed`.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The threads running now.
    pub fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// The pool's `(min_threads, max_threads)`.
    pub fn thread_bounds(&self) -> (usize, usize) {
        (self.inner.config.min_threads, self.inner.config.max_threads)
    }

    /// Tasks that resolved with the handler's value (piscina's `completed`). A task the
    /// pool accepted is counted once, as exactly one of `completed`, [`panicked`](Self::panicked),
    /// [`cancelled`](Self::cancelled) or [`timed_out`](Self::timed_out), by the time its
    /// handle resolves: once every handle has resolved, the four add up to the tasks
    /// accepted. (Under a [`Retry`] policy they count tries; see
    /// [`with_retry`](Pool::with_retry).)
    pub fn completed(&self) -> u64 {
        self.inner.stats.count(Resolved::Value)
    }

    /// Tasks whose handler panicked.
    pub fn panicked(&self) -> u64 {
        self.inner.stats.count(Resolved::Panicked)
    }

    /// Tasks that resolved [`TimedOut`](crate::TaskError::TimedOut): their deadline passed.
    pub fn timed_out(&self) -> u64 {
        self.inner.stats.count(Resolved::TimedOut)
    }

    /// Tasks whose worker process ended under them (`TaskError::Crashed`, and
    /// `TaskError::LimitExceeded`; process pools).
    pub fn crashed(&self) -> u64 {
        self.inner.stats.count(Resolved::Crashed)
    }

    /// Tasks that resolved `Cancelled`.
    pub fn cancelled(&self) -> u64 {
        self.inner.stats.count(Resolved::Cancelled)
    }

    /// The share of the pool's thread time spent running tasks since it started, 0.0 to
    /// 1.0. piscina's `utilization`.
    pub fn utilization(&self) -> f64 {
        self.inner.stats.utilization(self.inner.config.max_threads)
    }

    /// How long tasks ran. piscina's `runTime`.
    pub fn run_time(&self) -> Latency {
        self.inner.stats.run_time()
    }

    /// How long tasks waited in the queue. piscina's `waitTime`.
    pub fn wait_time(&self) -> Latency {
        self.inner.stats.wait_time()
    }
}

impl<T, R> Pool<T, R> {
    /// Stops accepting tasks, finishes every task already accepted, and waits for the
    /// threads to end (unless called from one of them). piscina's `close()`. In async
    /// code, [`close_async`](Self::close_async) waits without blocking the executor.
    pub fn close(&self) {
        self.inner.shut_down(Shutdown::Close);
    }

    /// [`close`](Self::close), waiting at most `timeout` for the accepted tasks; past it the
    /// pool is [destroyed](Self::destroy) (every task not finished yet resolves
    /// `Cancelled`; a process pool kills the processes running tasks), a
    /// [`PoolEvent::Error`](crate::PoolEvent::Error) says so, and the call returns without
    /// waiting for threads whose task does not look at
    /// [`is_cancelled`](crate::is_cancelled). piscina's `closeTimeout`. Called from one of
    /// the pool's own threads it closes and returns at once, as `close` does.
    ///
    /// # Errors
    ///
    /// [`ShutdownTimedOut::Close`] if the tasks did not all finish in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_pool::{Pool, ShutdownTimedOut, TaskError};
    ///
    /// let pool = Pool::builder().max_threads(1).build(|stuck: bool| {
    ///     while stuck && !worker_threads_pool::is_cancelled() {
    ///         std::thread::yield_now();
    ///     }
    /// })?;
    /// assert_eq!(pool.run(false)?.join(), Ok(()));
    /// let stuck = pool.run(true)?; // returns only once cancelled
    /// assert_eq!(pool.close_timeout(Duration::from_millis(20)), Err(ShutdownTimedOut::Close));
    /// assert_eq!(stuck.join(), Err(TaskError::Cancelled));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimedOut> {
        let deadline = worker_threads_wait::Deadline::after(timeout);
        self.inner.begin_shut_down(Shutdown::Close);
        if self.inner.is_current_worker() || self.inner.wait_threads(deadline) {
            return Ok(());
        }
        tracing::warn!(name = %self.inner.config.name, ?timeout, "pool close timed out: destroyed");
        self.inner
            .emit(crate::PoolEvent::Error(ShutdownTimedOut::Close.to_string()));
        self.inner.begin_shut_down(Shutdown::Destroy);
        Err(ShutdownTimedOut::Close)
    }

    /// Stops accepting tasks, resolves every queued task `Cancelled`, lets the running
    /// ones finish (they are not cancelled: they resolve with what they return), and
    /// waits for the threads to end. piscina's `close({ force: true })`; unlike
    /// [`destroy`](Self::destroy), which cancels the running tasks too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use worker_threads_pool::{MaxQueue, Pool, TaskError};
    ///
    /// let (started_tx, started) = mpsc::channel();
    /// let (go_tx, go) = mpsc::channel::<()>();
    /// let go = std::sync::Mutex::new(go);
    /// let pool = Pool::builder().max_threads(1).max_queue(MaxQueue::Bounded(4)).build(
    ///     move |n: u32| {
    ///         started_tx.send(()).unwrap();
    ///         let _ = go.lock().unwrap().recv();
    ///         n
    ///     },
    /// )?;
    /// let running = pool.run(1)?;
    /// started.recv()?; // the first task runs; the second waits in the queue
    /// let queued = pool.run(2)?;
    /// drop(go_tx); // let the running task finish
    /// pool.close_force();
    /// assert_eq!(running.join(), Ok(1));
    /// assert_eq!(queued.join(), Err(TaskError::Cancelled));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_force(&self) {
        self.inner.shut_down(Shutdown::Force);
    }

    /// Stops accepting tasks, resolves every queued task `Cancelled`, cancels every
    /// running one (it sees [`is_cancelled`](crate::is_cancelled) turn true, and resolves
    /// `Cancelled` whatever it returns), and waits for the threads to end. piscina's
    /// `destroy()`, except that no thread is killed: a task that never looks at
    /// `is_cancelled()` is waited for until it returns; see
    /// [`destroy_timeout`](Self::destroy_timeout) for a bound.
    pub fn destroy(&self) {
        self.inner.shut_down(Shutdown::Destroy);
    }

    /// [`destroy`](Self::destroy), waiting at most `timeout` for the threads. If they do
    /// not all end in time, the pool is destroyed all the same (every task resolved
    /// `Cancelled`) and the threads still running a task that does not look at
    /// `is_cancelled()` end when it returns, on their own.
    ///
    /// # Errors
    ///
    /// [`ShutdownTimedOut::Destroy`] if a thread was still running then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_pool::Pool;
    ///
    /// let pool = Pool::builder().build(|n: u32| n + 1)?;
    /// assert_eq!(pool.run(1)?.join(), Ok(2));
    /// assert_eq!(pool.destroy_timeout(Duration::from_secs(60)), Ok(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn destroy_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimedOut> {
        self.inner.begin_shut_down(Shutdown::Destroy);
        if self
            .inner
            .wait_threads(worker_threads_wait::Deadline::after(timeout))
        {
            Ok(())
        } else {
            Err(ShutdownTimedOut::Destroy)
        }
    }

    /// [`close`](Self::close), awaited under any executor instead of blocking its thread.
    ///
    /// # Cancel safety
    ///
    /// The pool is closed at the first poll; dropping the future only stops waiting.
    pub async fn close_async(&self) {
        self.inner.begin_shut_down(Shutdown::Close);
        self.inner.threads_ended().await;
    }

    /// [`destroy`](Self::destroy), awaited under any executor instead of blocking its
    /// thread.
    ///
    /// # Cancel safety
    ///
    /// The pool is destroyed at the first poll; dropping the future only stops waiting.
    pub async fn destroy_async(&self) {
        self.inner.begin_shut_down(Shutdown::Destroy);
        self.inner.threads_ended().await;
    }
}

/// Dropping the pool closes it **without waiting**: no task is accepted any more, every
/// task already accepted still runs and resolves its handle, and the threads end when the
/// queue is empty. So a pool dropped inside an async runtime never blocks the executor
/// thread. Call [`close`](Pool::close) (or `close_async().await`) to wait for the work,
/// [`destroy`](Pool::destroy) to cancel it.
impl<T, R> Drop for Pool<T, R> {
    fn drop(&mut self) {
        self.inner.begin_shut_down(Shutdown::Close);
    }
}

impl<T, R> fmt::Debug for Pool<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner.config.name)
            .field("queue_size", &self.queue_size())
            .field("max_queue", &self.max_queue())
            .finish_non_exhaustive()
    }
}
