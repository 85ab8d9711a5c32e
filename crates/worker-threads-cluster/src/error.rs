//! Every error of the cluster crate, one type per operation.

use std::fmt;
use std::io;

use worker_threads_process::IpcError;

/// A message that could not be sent, handed back with the reason.
pub struct SendError<T> {
    message: T,
    error: IpcError,
}

impl<T> SendError<T> {
    pub(crate) fn new(message: T, error: IpcError) -> Self {
        SendError { message, error }
    }

    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// Why it was not sent.
    pub fn error(&self) -> &IpcError {
        &self.error
    }

    /// Whether the other side has gone.
    pub fn is_closed(&self) -> bool {
        matches!(self.error, IpcError::Closed)
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sending over cluster IPC: {}", self.error)
    }
}

impl<T> std::error::Error for SendError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The error of [`Primary::recv`](crate::Primary::recv): no message will come. Named for
/// the IPC channel it receives on, apart from the message ports' `RecvError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpcRecvError {
    /// The primary has gone (its channel closed), and every message it sent was received.
    #[error("receiving from a closed primary")]
    Closed,
    /// A message arrived that is not a valid encoding of the receiver's type.
    #[error("undecodable message: {0}")]
    Decode(String),
}

/// The error of [`Primary::try_recv`](crate::Primary::try_recv) and
/// [`Cluster::try_recv`](crate::Cluster::try_recv).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpcTryRecvError {
    /// No message is waiting, but one may come.
    #[error("no message waiting")]
    Empty,
    /// The primary has gone, and every message it sent was received.
    #[error("receiving from a closed primary")]
    Closed,
    /// A message arrived that is not a valid encoding of the receiver's type.
    #[error("undecodable message: {0}")]
    Decode(String),
}

/// The error of [`Primary::recv_timeout`](crate::Primary::recv_timeout),
/// [`Primary::recv_deadline`](crate::Primary::recv_deadline) and the same two of
/// [`Cluster`](crate::Cluster).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpcRecvTimeoutError {
    /// No message came before the deadline.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The primary has gone, and every message it sent was received.
    #[error("receiving from a closed primary")]
    Closed,
    /// A message arrived that is not a valid encoding of the receiver's type.
    #[error("undecodable message: {0}")]
    Decode(String),
}

impl IpcTryRecvError {
    /// True if no message was waiting.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }

    /// True if the primary has gone and every message was received.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }
}

impl IpcRecvTimeoutError {
    /// True if no message came in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    /// True if the primary has gone and every message was received.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }
}

impl From<IpcRecvError> for IpcRecvTimeoutError {
    fn from(err: IpcRecvError) -> Self {
        match err {
            IpcRecvError::Closed => Self::Closed,
            IpcRecvError::Decode(why) => Self::Decode(why),
        }
    }
}

/// A worker-only function was called in the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a cluster worker: this process was not started by Cluster::fork")]
pub struct NotAWorker;

/// `fork` could not start a worker process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForkError {
    /// The cluster is shutting down (it was dropped, or `disconnect` was called).
    #[error("the cluster is shutting down")]
    Closed,
    /// `std::env::current_exe` failed.
    #[error("locating the current executable: {0}")]
    CurrentExe(#[source] io::Error),
    /// Creating the IPC socketpair or spawning the process failed.
    #[error("spawning a worker process: {0}")]
    Spawn(#[source] io::Error),
}

/// [`listen`](crate::listen) could not give the worker a listener.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// Called in the primary: the primary serves through its workers.
    #[error(transparent)]
    NotAWorker(#[from] NotAWorker),
    /// The address did not resolve.
    #[error("resolving the listen address: {0}")]
    Resolve(#[source] io::Error),
    /// The primary could not bind the address (in use, not permitted, ...).
    #[error("the primary could not listen: {0}")]
    Refused(String),
    /// The worker was disconnected before the primary answered.
    #[error("the worker is disconnected")]
    Disconnected,
    /// The request could not be sent, or the answer was not understood.
    #[error(transparent)]
    Ipc(#[from] IpcError),
    /// Binding or configuring the worker's own socket failed (`ReusePort`).
    #[error("worker socket: {0}")]
    Io(#[source] io::Error),
}

/// A rolling restart stopped before replacing every worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestartError {
    /// A replacement could not be forked.
    #[error(transparent)]
    Fork(#[from] ForkError),
    /// Worker `id`, a replacement, exited before it was ready to serve; the worker it was
    /// to replace is still running.
    #[error("replacement worker {id} exited before it was listening")]
    ReplacementDied {
        /// The replacement's id.
        id: usize,
    },
}
