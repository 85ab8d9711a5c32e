//! `WorkerEvent`, and where a worker's event stream is (`Stage`). The iterator over a
//! worker's events, `Events`, is in `worker.rs`.

use std::fmt;

use crate::error::WorkerError;

/// One event of a worker's life, as [`Worker::events`](crate::Worker::events) yields them: Node's `'online'`,
/// `'message'`, `'error'` and `'exit'`.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerEvent, WorkerOptions};
///
/// let mut worker = Worker::<(), &str>::spawn(WorkerOptions::new(), |ctx| {
///     ctx.parent_port().post_message("hello").unwrap();
/// })?;
/// let events: Vec<WorkerEvent<&str>> = worker.events().collect();
/// assert!(matches!(events[..], [WorkerEvent::Online, WorkerEvent::Message("hello"), WorkerEvent::Exit(0)]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub enum WorkerEvent<T> {
    /// The worker's thread started and is about to run its entry.
    Online,
    /// A message the worker posted.
    Message(T),
    /// The worker panicked or its entry returned an error; `Exit(1)` follows.
    Error(WorkerError),
    /// The worker ended with this exit code; nothing follows.
    Exit(i32),
}

impl<T: fmt::Debug> fmt::Debug for WorkerEvent<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Online => f.write_str("Online"),
            Self::Message(msg) => f.debug_tuple("Message").field(msg).finish(),
            Self::Error(err) => f.debug_tuple("Error").field(err).finish(),
            Self::Exit(code) => f.debug_tuple("Exit").field(code).finish(),
        }
    }
}

/// Where a worker's event stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Start,
    Messages,
    Ending,
    Exit,
    Done,
}
