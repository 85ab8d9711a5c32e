//! The errors of spawning a worker, of a worker's run, and of reading a worker's context.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

/// The error of [`Worker::spawn`](crate::Worker::spawn): the OS refused a thread.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerOptions};
///
/// match Worker::<()>::spawn(WorkerOptions::new(), |_ctx| {}) {
///     Ok(worker) => assert_eq!(worker.join()?, 0),
///     // The OS refused a thread: what it said.
///     Err(error) => eprintln!("no worker: {}", error.io_error()),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[error("failed to start a worker")]
pub struct SpawnError {
    #[source]
    source: io::Error,
}

impl SpawnError {
    pub(crate) fn new(source: io::Error) -> Self {
        Self { source }
    }

    /// The OS error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

/// Why a worker ended with an error: reported as [`WorkerEvent::Error`](crate::WorkerEvent)
/// and by [`Worker::join`](crate::Worker::join).
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerError, WorkerOptions};
///
/// let worker = Worker::<()>::spawn(WorkerOptions::new(), |_ctx| -> Result<(), std::io::Error> {
///     Err(std::io::Error::other("no input"))
/// })?;
/// match worker.join() {
///     Err(WorkerError::Failed(error)) => assert_eq!(error.to_string(), "no input"),
///     other => panic!("expected the entry's error, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The entry panicked.
    #[error("worker panicked at {location}: {message}", location = .location.as_deref().unwrap_or("<unknown>"))]
    Panicked {
        /// The panic message (`"<non-string panic payload>"` if it was not a string).
        message: String,
        /// `file:line:column` of the panic, when the panic hook saw it.
        location: Option<String>,
    },
    /// The entry returned an error.
    #[error("worker failed: {0}")]
    Failed(#[source] Arc<dyn Error + Send + Sync>),
    /// A process worker ended by a signal it did not catch (a segfault, `abort()`, a
    /// `kill`): exit code 128 + the signal's number. The parent and the other workers
    /// go on.
    #[error("worker process ended by signal {signal}")]
    Crashed {
        /// The signal's number (11 for `SIGSEGV`, 6 for `SIGABRT`, 9 for `SIGKILL`).
        signal: i32,
    },
    /// A process worker went over one of its
    /// `resource_limits`: exit code 1 (Node's
    /// `ERR_WORKER_OUT_OF_MEMORY` and the like).
    #[error("worker process exceeded its {limit} limit")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
    },
    /// A process worker's channel broke: it sent a frame that does not follow the
    /// protocol or a message that does not decode as the worker's type. The process was
    /// killed (exit code 1); nothing else was affected.
    #[error("worker process channel: {message}")]
    Channel {
        /// What was wrong.
        message: String,
    },
    /// A process worker ended without running its entry: its `main` does not call
    /// `process::init` first (in a test binary:
    /// `process::test_support!`), or it failed to start.
    #[error(
        "worker process ended (code {code:?}) without running its entry: call \
         worker_threads::process::init() first in main, or process::test_support!() in a test binary"
    )]
    EntryNotRun {
        /// Its exit code, if it exited rather than being killed.
        code: Option<i32>,
    },
    /// A worker this worker spawned ended with an error that nothing looked at (its
    /// handle was dropped, or never asked for its outcome, before this worker ended):
    /// Node's unhandled `'error'` event of a nested worker, which ends its parent.
    #[error("unhandled error of worker {thread_id}, spawned by this worker: {error}")]
    UnhandledChild {
        /// The child worker's id.
        thread_id: u64,
        /// The child's own error.
        error: Box<WorkerError>,
    },
}

/// The error of [`Worker::join_timeout`](crate::Worker::join_timeout): the worker is
/// still running (the handle stays usable), or it ended with an error.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_core::{JoinTimeoutError, Worker, WorkerOptions};
///
/// let mut worker = Worker::<()>::spawn(WorkerOptions::new(), |_ctx| -> () { panic!("boom") })?;
/// match worker.join_timeout(Duration::from_secs(60)) {
///     Err(JoinTimeoutError::Worker(error)) => assert_eq!(error.panic_message(), Some("boom")),
///     other => panic!("expected the worker's panic, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinTimeoutError {
    /// The worker did not end in time.
    #[error("timed out waiting for the worker to end")]
    Timeout,
    /// The worker ended with an error, as [`Worker::join`](crate::Worker::join) gives it.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

impl JoinTimeoutError {
    /// True if the worker did not end in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }
}

impl WorkerError {
    /// True for a panic.
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked { .. })
    }

    /// The panic message, for a panic.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Self::Panicked { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl fmt::Debug for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked { message, location } => f
                .debug_struct("Panicked")
                .field("message", message)
                .field("location", location)
                .finish(),
            Self::Failed(err) => f.debug_tuple("Failed").field(&err.to_string()).finish(),
            Self::UnhandledChild { thread_id, error } => f
                .debug_struct("UnhandledChild")
                .field("thread_id", thread_id)
                .field("error", error)
                .finish(),
            Self::Crashed { signal } => f.debug_struct("Crashed").field("signal", signal).finish(),
            Self::LimitExceeded { limit } => f
                .debug_struct("LimitExceeded")
                .field("limit", limit)
                .finish(),
            Self::Channel { message } => {
                f.debug_struct("Channel").field("message", message).finish()
            }
            Self::EntryNotRun { code } => {
                f.debug_struct("EntryNotRun").field("code", code).finish()
            }
        }
    }
}

/// A resource limit of a process worker (see
/// `WorkerOptions::resource_limits`).
///
/// # Examples
///
/// ```no_run
/// use worker_threads_core::process::ResourceLimits;
/// use worker_threads_core::{Limit, Process, Worker, WorkerError, WorkerOptions};
///
/// fn greedy(_ctx: worker_threads_core::WorkerContext<(), ()>) {
///     let hog: Vec<u8> = vec![1; 1 << 30];
///     std::hint::black_box(hog);
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     worker_threads_core::process::init();
///     let limits = ResourceLimits::new().max_memory(256 << 20);
///     let options = WorkerOptions::new().isolation(Process).resource_limits(limits);
///     let worker = Worker::<()>::spawn(options, greedy)?;
///     match worker.join() {
///         Err(WorkerError::LimitExceeded { limit: Limit::Memory }) => {}
///         other => panic!("expected the memory cap, got {other:?}"),
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// The memory cap (address space).
    Memory,
    /// The CPU-time cap.
    CpuTime,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Memory => "memory",
            Limit::CpuTime => "CPU-time",
        })
    }
}

/// The error of the `try_` context functions ([`try_parent_port`](crate::try_parent_port),
/// [`try_worker_data`](crate::try_worker_data)).
///
/// # Examples
///
/// ```
/// use worker_threads_core::{ContextError, try_worker_data};
///
/// // On the main thread there is no worker data to take.
/// assert!(matches!(try_worker_data::<u32>(), Err(ContextError::NotInWorker)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// Called on a thread that is not a worker (the main thread, or a plain thread).
    #[error("not running on a worker thread")]
    NotInWorker,
    /// The worker's port or data has another type than the one asked for.
    #[error(
        "the worker's {what} is `{}`, not `{}`",
        short_type_name(actual),
        short_type_name(requested)
    )]
    WrongType {
        /// `"parent port"` or `"worker data"`.
        what: &'static str,
        /// The type asked for.
        requested: &'static str,
        /// The type the worker was spawned with.
        actual: &'static str,
    },
}

/// A type name without this library's own module paths
/// (`worker_threads_channel::port::MessagePort<u32>` reads `MessagePort<u32>`); the user's
/// own paths stay.
fn short_type_name(name: &str) -> String {
    name.replace("worker_threads_channel::port::", "")
}
