//! `PoolBuilder` and `MaxQueue`.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, EventHook};
use crate::error::BuildError;
use crate::events::PoolEvent;
use crate::pool::Pool;

/// The bound of a pool's task queue: piscina's `maxQueue`.
///
/// # Examples
///
/// ```
/// use worker_threads_pool::{MaxQueue, Pool};
///
/// let pool = Pool::builder().max_threads(2).build(|n: u32| n)?;
/// assert_eq!(pool.max_queue(), 4); // Auto: max_threads²
/// let pool = Pool::builder().max_queue(MaxQueue::Bounded(100)).build(|n: u32| n)?;
/// assert_eq!(pool.max_queue(), 100);
/// let pool = Pool::builder().max_queue(MaxQueue::Unbounded).build(|n: u32| n)?;
/// assert_eq!(pool.max_queue(), usize::MAX);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxQueue {
    /// `max_threads²`, piscina's `'auto'`: the default.
    #[default]
    Auto,
    /// At most this many queued tasks. `Bounded(0)` is piscina's `maxQueue: 0`, no queue:
    /// a task is accepted only when a thread can take it at once (an idle one, or one the
    /// pool may still start), and `run` refuses it with `QueueFull` otherwise;
    /// [`run_wait`](crate::Pool::run_wait) waits for a thread instead. Without a queue
    /// [`needs_drain`](crate::Pool::needs_drain) is always true, as in piscina.
    Bounded(usize),
    /// No bound: piscina's default, where a fast submission loop can fill the heap. Use
    /// with care.
    Unbounded,
}

/// Configures a [`Pool`]: `Pool::builder()....build(handler)`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_pool::{MaxQueue, Pool};
///
/// let pool = Pool::builder()
///     .name("resize")
///     .min_threads(1)
///     .max_threads(4)
///     .idle_timeout(Duration::from_secs(10))
///     .max_queue(MaxQueue::Bounded(64))
///     .build(|(w, h): (u32, u32)| w * h)?;
/// assert_eq!(pool.run((3, 4))?.join()?, 12);
/// assert_eq!(pool.thread_bounds(), (1, 4));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PoolBuilder {
    pub(crate) min_threads: Option<usize>,
    pub(crate) max_threads: Option<usize>,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_queue: MaxQueue,
    pub(crate) name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) concurrency: usize,
    pub(crate) on_event: Option<EventHook>,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        Self {
            min_threads: None,
            max_threads: None,
            idle_timeout: Duration::from_secs(30),
            max_queue: MaxQueue::Auto,
            name: "pool".into(),
            stack_size: None,
            task_timeout: None,
            concurrency: 1,
            on_event: None,
        }
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("min_threads", &self.min_threads)
            .field("max_threads", &self.max_threads)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_queue", &self.max_queue)
            .field("name", &self.name)
            .field("stack_size", &self.stack_size)
            .finish_non_exhaustive()
    }
}

impl PoolBuilder {
    /// Threads kept even when idle. Default: `max_threads` (no shrinking). Given alone,
    /// above the default maximum, it raises the maximum to itself (as piscina's
    /// `minThreads` does); above an explicit [`max_threads`](Self::max_threads) it is a
    /// build error.
    pub fn min_threads(mut self, n: usize) -> Self {
        self.min_threads = Some(n);
        self
    }

    /// The most threads the pool runs. Default: `std::thread::available_parallelism()`
    /// (1 if unknown).
    pub fn max_threads(mut self, n: usize) -> Self {
        self.max_threads = Some(n);
        self
    }

    /// How long a thread above `min_threads` waits for work before it exits; the pool
    /// grows back under load. Default: 30 s.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The queue's bound. Default: [`MaxQueue::Auto`] (`max_threads²`).
    pub fn max_queue(mut self, max_queue: MaxQueue) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// The prefix of the threads' names (`name-0`, `name-1`...). Default: `pool`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// A deadline for every task submitted with [`run`](crate::Pool::run),
    /// [`run_wait`](crate::Pool::run_wait) or [`run_async`](crate::Pool::run_async): its
    /// handle resolves [`TaskError::TimedOut`](crate::TaskError::TimedOut) once `timeout`
    /// has passed since it was accepted (piscina users pass `AbortSignal.timeout(ms)`).
    /// A queued task leaves the queue then; a running one sees
    /// [`is_cancelled`](crate::is_cancelled) and its thread stays busy until it returns
    /// (a thread cannot be killed). It holds for each of `map`'s items too, from when the
    /// item is accepted: with a timeout set, a map hands its items over one by one (not
    /// in chunks), so that no item's deadline covers the items queued behind it. Default:
    /// none.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// How many tasks each thread of an async pool ([`build_async`](Self::build_async))
    /// drives at once: piscina's `concurrentTasksPerWorker`. Default 1; a sync pool runs
    /// one task per thread whatever this says.
    pub fn concurrent_tasks_per_worker(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Each thread's stack size in bytes. Default: Rust's.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Calls `hook` for each [`PoolEvent`] (piscina's events), on the thread where it
    /// happens; keep it short.
    pub fn on_event(mut self, hook: impl Fn(&PoolEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    pub(crate) fn config(&self) -> Result<Config, BuildError> {
        let default_max = || std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let max_threads = match (self.max_threads, self.min_threads) {
            (Some(max), _) => max,
            // As piscina: a minimum alone raises the default maximum to it.
            (None, Some(min)) => default_max().max(min),
            (None, None) => default_max(),
        };
        if max_threads == 0 {
            return Err(BuildError::no_threads());
        }
        let min_threads = self.min_threads.unwrap_or(max_threads);
        if min_threads > max_threads {
            return Err(BuildError::min_above_max(min_threads, max_threads));
        }
        let max_queue = match self.max_queue {
            MaxQueue::Auto => Some(max_threads.saturating_mul(max_threads)),
            MaxQueue::Bounded(n) => Some(n),
            MaxQueue::Unbounded => None,
        };
        Ok(Config {
            min_threads,
            max_threads,
            idle_timeout: self.idle_timeout,
            max_queue,
            name: self.name.clone(),
            stack_size: self.stack_size,
            task_timeout: self.task_timeout,
            concurrency: self.concurrency,
            chunks: (1, crate::config::MAX_CHUNK),
        })
    }

    /// Builds the pool: every task `T` is passed to `handler` on a pool thread, and its
    /// result resolves the task's handle.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for an impossible configuration or a refused thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = worker_threads_pool::Pool::builder().max_threads(2).build(|n: f64| n.sqrt())?;
    /// assert_eq!(pool.run(9.0)?.join()?, 3.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build<T, R, F>(self, handler: F) -> Result<Pool<T, R>, BuildError>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        self.build_with_init(|| (), move |(), task| handler(task))
    }

    /// Builds a pool whose handler is async (piscina's "the function can also be an
    /// async function"): each pool thread drives up to
    /// [`concurrent_tasks_per_worker`](Self::concurrent_tasks_per_worker) tasks at once on
    /// a tokio current-thread runtime of its own (so the future need not be `Send`, and
    /// tokio's timers and I/O work inside it). Feature `tokio`.
    ///
    /// The queue bound, drain, `map`, statistics and exactly-once resolution are those of
    /// a sync pool. Cancelling a running task (its handle, a deadline, `destroy`) drops
    /// its future at once: it stops at the `await` it is in. A panic while polling a task
    /// resolves that task `Panicked`; the thread and its other tasks go on.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = worker_threads_pool::Pool::builder()
    ///     .max_threads(2)
    ///     .concurrent_tasks_per_worker(8)
    ///     .build_async(|ms: u64| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms * 2
    ///     })?;
    /// assert_eq!(pool.run(5)?.join()?, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tokio")]
    pub fn build_async<T, R, F, Fut>(self, handler: F) -> Result<Pool<T, R>, BuildError>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + 'static,
    {
        let config = self.config()?;
        let handler: std::sync::Arc<crate::inner::async_worker::AsyncHandler<T, R>> =
            std::sync::Arc::new(move |task: T| {
                Box::pin(handler(task)) as std::pin::Pin<Box<dyn std::future::Future<Output = R>>>
            });
        Pool::start_async(config, self.on_event, handler)
    }

    /// Builds the pool with per-thread state: `init` runs once on each pool thread (what a
    /// Node worker keeps at module scope), and `handler` gets that state with each task.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = worker_threads_pool::Pool::builder()
    ///     .max_threads(1)
    ///     .build_with_init(|| vec![0u8; 1024], |scratch: &mut Vec<u8>, n: usize| {
    ///         scratch[n] = 1;
    ///         scratch.iter().filter(|&&b| b == 1).count()
    ///     })?;
    /// assert_eq!(pool.run(1)?.join()?, 1);
    /// assert_eq!(pool.run(2)?.join()?, 2); // the same thread, the same scratch
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_with_init<T, R, S, I, F>(
        self,
        init: I,
        handler: F,
    ) -> Result<Pool<T, R>, BuildError>
    where
        T: Send + 'static,
        R: Send + 'static,
        S: 'static,
        I: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> R + Send + Sync + 'static,
    {
        let config = self.config()?;
        Pool::start(config, self.on_event, init, handler)
    }
}

impl Pool<(), ()> {
    /// A [`PoolBuilder`] with the defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = worker_threads_pool::Pool::builder().build(|s: String| s.len())?;
    /// assert_eq!(pool.run("four".to_string())?.join()?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }
}
