//! The errors of building a pool, submitting a task, and a task's outcome.

use std::fmt;
use std::io;

/// The error of [`Pool::run`](crate::Pool::run) and the other submitters: the task was not
/// accepted, and comes back.
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum RunError<T> {
    /// The queue holds `max_queue` tasks. Wait for room
    /// ([`wait_drain`](crate::Pool::wait_drain), [`run_wait`](crate::Pool::run_wait)) and
    /// try again.
    #[error("the pool's task queue is full")]
    QueueFull(T),
    /// The pool was closed or destroyed.
    #[error("the pool is closed")]
    Closed(T),
}

impl<T> RunError<T> {
    /// The task that was not accepted.
    pub fn into_inner(self) -> T {
        match self {
            Self::QueueFull(task) | Self::Closed(task) => task,
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
        }
    }
}

/// How an accepted task failed to give its value: the error of
/// [`TaskHandle::join`](crate::TaskHandle::join).
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
}

/// [`Pool::close_timeout`](crate::Pool::close_timeout) gave up: the accepted tasks did not
/// all finish in time, so the pool was destroyed (piscina's `closeTimeout`, with its
/// message).
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
#[error("close operation timed out")]
pub struct CloseTimedOut;

/// The error of [`PoolBuilder::build`](crate::PoolBuilder::build).
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
