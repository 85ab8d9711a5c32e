//! The errors of building a pool, submitting a task, and a task's outcome.

use std::fmt;
use std::io;

/// The error of [`Pool::run`](crate::Pool::run), `RemotePool::run` (the
/// `worker-threads-remote` crate) and the other submitters: the task was not accepted, and
/// comes back ([`into_inner`](Self::into_inner)). One type for every pool, so code written
/// against [`TaskPool`](crate::TaskPool) handles each the same way.
///
/// # Examples
///
/// ```
/// use worker_threads_pool::{MaxQueue, Pool, RunError};
///
/// let pool = Pool::builder().max_threads(1).max_queue(MaxQueue::Bounded(1)).build(|n: u32| n)?;
/// pool.close();
/// let refused = pool.run(7).unwrap_err();
/// assert!(matches!(refused, RunError::Closed(7)));
/// assert_eq!(refused.into_inner(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum RunError<T> {
    /// The queue holds `max_queue` tasks. Wait for room
    /// ([`wait_drain`](crate::Pool::wait_drain), [`run_wait`](crate::Pool::run_wait)) and
    /// try again. For a `RemotePool`: JetStream refused the message because the stream
    /// holds its `max_msgs`.
    #[error("the pool's task queue is full")]
    QueueFull(T),
    /// The pool was closed or destroyed.
    #[error("the pool is closed")]
    Closed(T),
    /// The task could not be serialized (a `RemotePool`, whose tasks cross the network).
    #[error("the task could not be encoded: {error}")]
    Encode {
        /// The task.
        task: T,
        /// The codec's message.
        error: String,
    },
    /// The transport did not take the task (a `RemotePool`: NATS gave no acknowledgement
    /// in time, or another refusal). The task may still have been stored (at-least-once).
    #[error("the transport did not accept the task: {error}")]
    Transport {
        /// The task.
        task: T,
        /// What the transport said.
        error: String,
    },
}

impl<T> RunError<T> {
    /// The task that was not accepted.
    pub fn into_inner(self) -> T {
        match self {
            Self::QueueFull(task) | Self::Closed(task) => task,
            Self::Encode { task, .. } | Self::Transport { task, .. } => task,
        }
    }

    /// True for `QueueFull`.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::QueueFull(_))
    }
}

impl<T> fmt::Debug for RunError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QueueFull(_) => f.write_str("QueueFull(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Encode { error, .. } => write!(f, "Encode {{ error: {error:?}, .. }}"),
            Self::Transport { error, .. } => write!(f, "Transport {{ error: {error:?}, .. }}"),
        }
    }
}

/// How an accepted task failed to give its value: the error of
/// [`TaskHandle::join`](crate::TaskHandle::join) and of `RemoteHandle::join` (the
/// `worker-threads-remote` crate). The variants after `LimitExceeded` come from a pool
/// whose tasks cross the network; a local pool never gives them.
///
/// # Examples
///
/// ```
/// use worker_threads_pool::{Pool, TaskError};
///
/// let pool = Pool::builder().build(|n: u32| if n == 0 { panic!("zero") } else { 10 / n })?;
/// assert_eq!(pool.run(5)?.join(), Ok(2));
/// assert_eq!(pool.run(0)?.join(), Err(TaskError::Panicked("zero".into())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The handler panicked; the message of the panic.
    #[error("the task panicked: {0}")]
    Panicked(String),
    /// The task was cancelled (by its handle, or by `destroy`) before it gave a value.
    #[error("the task was cancelled")]
    Cancelled,
    /// The task's deadline ([`Pool::run_with_deadline`](crate::Pool::run_with_deadline),
    /// [`PoolBuilder::task_timeout`](crate::PoolBuilder::task_timeout)) passed before it
    /// gave a value. A running task sees [`is_cancelled`](crate::is_cancelled) turn true;
    /// its thread stays busy until it returns (a thread cannot be killed). In a process
    /// pool its process is killed, and an async task's future is dropped.
    #[error("the task's deadline passed")]
    TimedOut,
    /// The worker process running the task ended under it (a crash: `abort()`, a
    /// segfault, out of memory; or a broken channel): that task only, in a process pool.
    /// The pool starts a new process for the next task.
    #[error("the task's worker process ended ({})", match .signal {
        Some(signal) => format!("signal {signal}"),
        None => "no signal".to_string(),
    })]
    Crashed {
        /// The signal that ended the process, if one did.
        signal: Option<i32>,
    },
    /// The worker process running the task crossed a cap of the pool's
    /// [`resource_limits`](crate::process::ProcessPoolBuilder::resource_limits) while it
    /// ran, and the kernel ended it (tinypool's `resourceLimits`): that task only. The
    /// pool starts a new process for the next task.
    #[cfg(feature = "process")]
    #[error("the task's worker process crossed its {limit} limit")]
    LimitExceeded {
        /// Which cap.
        limit: worker_threads_core::Limit,
    },
    /// The queue delivered the task `attempts` times (a `RemotePool`'s `max_deliver`) and
    /// no worker acknowledged it: each attempt's worker died or stalled past `ack_wait`.
    /// The task is removed from the queue.
    #[error("the task was delivered {attempts} times and never finished (max_deliver)")]
    MaxDeliveries {
        /// Deliveries made.
        attempts: u64,
    },
    /// The worker could not decode the task (a submitter and a worker built with different
    /// task types, or a hostile message).
    #[error("the worker could not decode the task: {0}")]
    BadTask(String),
    /// The result could not be encoded by the worker or decoded here.
    #[error("the result could not be decoded: {0}")]
    BadResult(String),
    /// The connection to the queue's server was lost while the task was pending. The task
    /// may still run (at-least-once); its result, if it comes, is dropped.
    #[error("the connection to the queue was lost before the task resolved")]
    Disconnected,
    /// The pool was dropped before the task resolved (a `RemotePool`; dropping a local
    /// [`Pool`](crate::Pool) waits for its tasks).
    #[error("the pool was dropped before the task resolved")]
    Closed,
    /// Every try of a task with a [`Retry`](crate::Retry) policy failed: `last` is the
    /// last try's failure, `attempts` the tries made. (Fewer than the policy's when the
    /// pool closed while the task waited for its next try.)
    #[error("the task failed {attempts} times; the last: {last}")]
    Retried {
        /// Tries made.
        attempts: u32,
        /// The last try's failure.
        #[source]
        last: Box<TaskError>,
    },
}

/// A bounded shut-down gave up waiting: the error of
/// [`Pool::close_timeout`](crate::Pool::close_timeout) and
/// [`Pool::destroy_timeout`](crate::Pool::destroy_timeout). Either way the pool is
/// destroyed: every task not finished yet resolves `Cancelled`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_pool::{Pool, ShutdownTimedOut};
///
/// let pool = Pool::builder().max_threads(1).build(|(): ()| {
///     while !worker_threads_pool::is_cancelled() {
///         std::thread::yield_now();
///     }
/// })?;
/// let _stuck = pool.run(())?;
/// let timed_out = pool.close_timeout(Duration::from_millis(10)).unwrap_err();
/// assert_eq!(timed_out, ShutdownTimedOut::Close);
/// assert_eq!(timed_out.to_string(), "close operation timed out"); // piscina's message
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownTimedOut {
    /// The accepted tasks did not all finish in time, so the pool was destroyed
    /// (piscina's `closeTimeout`, with its message).
    #[error("close operation timed out")]
    Close,
    /// Threads still ran a task that does not look at
    /// [`is_cancelled`](crate::is_cancelled); they end when it returns, on their own.
    #[error("destroy operation timed out")]
    Destroy,
}

/// The error of [`PoolBuilder::build`](crate::PoolBuilder::build).
///
/// # Examples
///
/// ```
/// use worker_threads_pool::Pool;
///
/// let refused = Pool::builder().max_threads(0).build(|n: u32| n).unwrap_err();
/// assert_eq!(refused.to_string(), "max_threads must be at least 1");
/// let refused = Pool::builder().min_threads(3).max_threads(2).build(|n: u32| n).unwrap_err();
/// assert_eq!(refused.to_string(), "min_threads (3) is more than max_threads (2)");
/// ```
#[derive(thiserror::Error, Debug)]
#[error("{kind}")]
pub struct BuildError {
    kind: BuildErrorKind,
}

#[derive(thiserror::Error, Debug)]
enum BuildErrorKind {
    #[error("max_threads must be at least 1")]
    NoThreads,
    #[error("min_threads ({min}) is more than max_threads ({max})")]
    MinAboveMax { min: usize, max: usize },
    #[error("the OS refused a pool thread")]
    Spawn(#[source] io::Error),
}

impl BuildError {
    pub(crate) fn no_threads() -> Self {
        Self {
            kind: BuildErrorKind::NoThreads,
        }
    }

    pub(crate) fn min_above_max(min: usize, max: usize) -> Self {
        Self {
            kind: BuildErrorKind::MinAboveMax { min, max },
        }
    }

    pub(crate) fn spawn(err: io::Error) -> Self {
        Self {
            kind: BuildErrorKind::Spawn(err),
        }
    }
}
