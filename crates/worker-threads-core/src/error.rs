//! The errors of spawning a worker, of a worker's run, and of reading a worker's context.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

/// The error of [`Worker::spawn`](crate::Worker::spawn): the OS refused a thread.
#[derive(Debug, thiserror::Error)]
#[error("failed to spawn a worker thread")]
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

impl WorkerError {
    /// True for a panic.
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked { .. })
    }

    /// The panic message, for a panic.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Self::Panicked { message, .. } => Some(message),
            Self::Failed(_) | Self::UnhandledChild { .. } => None,
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
        }
    }
}

/// The error of the `try_` context functions ([`try_parent_port`](crate::try_parent_port),
/// [`try_worker_data`](crate::try_worker_data)).
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
