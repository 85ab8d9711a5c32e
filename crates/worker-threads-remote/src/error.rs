//! The errors of connecting, submitting a task, a task's outcome, and serving a queue.

use std::fmt;

/// The error of connecting a [`RemotePool`](crate::RemotePool) or starting a
/// [`RemoteWorker`](crate::RemoteWorker).
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// A queue name is letters, digits, `-` and `_` (it names a stream and subjects).
    #[error("invalid queue name {0:?}: use letters, digits, '-' and '_'")]
    QueueName(String),
    /// The NATS server could not be reached.
    #[error("could not connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    /// JetStream refused to create or look up the queue's stream or consumer (is the
    /// server started with `-js`?).
    #[error("JetStream: {0}")]
    JetStream(String),
    /// A subscription could not be made.
    #[error("subscribing: {0}")]
    Subscribe(String),
    /// The pool's runtime thread could not start.
    #[error("could not start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The error of [`RemotePool::run`](crate::RemotePool::run) and the other submitters:
/// the task was not accepted, and comes back.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RunError<T> {
    /// The queue (the stream's `max_msgs`) is full: JetStream refused the message. Wait for
    /// room ([`wait_drain`](crate::RemotePool::wait_drain),
    /// [`run_wait`](crate::RemotePool::run_wait)) and try again.
    #[error("the remote task queue is full")]
    QueueFull(T),
    /// The pool was closed.
    #[error("the remote pool is closed")]
    Closed(T),
    /// The task could not be serialized.
    #[error("the task could not be encoded: {error}")]
    Encode {
        /// The task.
        task: T,
        /// The codec's message.
        error: String,
    },
    /// NATS did not take the task: no acknowledgement in time (the server is gone or
    /// slow), or another refusal. The task may still have been stored (at-least-once).
    #[error("NATS did not accept the task: {error}")]
    Nats {
        /// The task.
        task: T,
        /// What the client said.
        error: String,
    },
}

impl<T> RunError<T> {
    /// The task that was not accepted.
    pub fn into_inner(self) -> T {
        match self {
            Self::QueueFull(task) | Self::Closed(task) => task,
            Self::Encode { task, .. } | Self::Nats { task, .. } => task,
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
            Self::Nats { error, .. } => write!(f, "Nats {{ error: {error:?}, .. }}"),
        }
    }
}

/// How an accepted task failed to give its value: the error of
/// [`RemoteHandle::join`](crate::RemoteHandle::join).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The handler panicked on the worker; the message of the panic. Not redelivered.
    #[error("the task panicked: {0}")]
    Panicked(String),
    /// The task was cancelled ([`RemoteHandle::cancel`](crate::RemoteHandle::cancel)).
    #[error("the task was cancelled")]
    Cancelled,
    /// The worker's local pool timed the task out (its `task_timeout`).
    #[error("the task's deadline passed")]
    TimedOut,
    /// The worker's local pool runs processes and the one running the task ended.
    #[error("the task's worker process ended (signal {signal:?})")]
    Crashed {
        /// The signal that ended the process, if one did.
        signal: Option<i32>,
    },
    /// JetStream delivered the task `attempts` times (the queue's `max_deliver`) and no
    /// worker acknowledged it: each attempt's worker died or stalled past `ack_wait`. The
    /// task is removed from the queue.
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
    /// The connection to the NATS server was lost while the task was pending. The task
    /// may still run (at-least-once); its result, if it comes, is dropped.
    #[error("the connection to NATS was lost before the task resolved")]
    Disconnected,
    /// The `RemotePool` was dropped before the task resolved.
    #[error("the remote pool was dropped before the task resolved")]
    Closed,
}

/// The error that ends [`RemoteWorker::join`](crate::RemoteWorker::join).
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The local pool was closed: the worker cannot take tasks.
    #[error("the local pool is closed")]
    PoolClosed,
    /// The pull subscription could not be made or remade.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// The serving task panicked.
    #[error("the serving task ended abnormally: {0}")]
    Aborted(String),
}
