//! Every error of the cluster crate, one type per operation.

use std::fmt;
use std::io;

use worker_threads_process::IpcError;

/// A message that could not be sent, handed back with the reason.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_cluster::Cluster;
///
/// let cluster = Cluster::<String>::new();
/// let worker = cluster.fork()?;
/// worker.disconnect();
/// worker.wait();
/// // The worker has gone: the message comes back.
/// let refused = worker.send("late".to_string()).unwrap_err();
/// assert!(refused.is_closed());
/// assert_eq!(refused.into_inner(), "late");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// # Examples
///
/// ```no_run
/// use worker_threads_cluster::{IpcRecvError, primary};
///
/// // In a worker: read the primary's messages until it goes away.
/// loop {
///     match primary::<String>().recv() {
///         Ok(message) => println!("{message}"),
///         Err(IpcRecvError::Closed) => break,
///         Err(IpcRecvError::Decode(why)) => eprintln!("a message that is not a String: {why}"),
///         Err(other) => panic!("{other}"),
///     }
/// }
/// ```
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
///
/// # Examples
///
/// ```
/// use worker_threads_cluster::{Cluster, IpcTryRecvError};
///
/// let cluster = Cluster::<()>::new();
/// // Nothing has happened yet: no event is waiting.
/// assert_eq!(cluster.try_recv().unwrap_err(), IpcTryRecvError::Empty);
/// ```
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
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_cluster::Cluster;
///
/// let cluster = Cluster::<()>::new();
/// let waited = cluster.recv_timeout(Duration::from_millis(1)).unwrap_err();
/// assert!(waited.is_timeout());
/// ```
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
///
/// # Examples
///
/// ```
/// use worker_threads_cluster::{NotAWorker, try_primary};
///
/// // This process is the primary: it has no primary to talk to.
/// assert_eq!(try_primary::<String>().unwrap_err(), NotAWorker);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a cluster worker: this process was not started by Cluster::fork")]
pub struct NotAWorker;

/// `fork` could not start a worker process.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_cluster::{Cluster, ForkError};
///
/// let cluster = Cluster::<()>::new();
/// match cluster.fork() {
///     Ok(worker) => println!("forked worker {}", worker.id()),
///     Err(ForkError::Spawn(error)) => eprintln!("the OS refused a process: {error}"),
///     Err(other) => eprintln!("{other}"),
/// }
/// ```
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
///
/// # Examples
///
/// ```
/// use worker_threads_cluster::{ListenError, listen};
///
/// // In the primary, `listen` has nobody to ask for the port.
/// assert!(matches!(listen("127.0.0.1:0"), Err(ListenError::NotAWorker(_))));
/// ```
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
///
/// # Examples
///
/// ```no_run
/// use worker_threads_cluster::{Cluster, RestartError};
///
/// let cluster = Cluster::<()>::new();
/// cluster.fork()?;
/// match cluster.rolling_restart() {
///     Ok(()) => println!("every worker replaced, one at a time"),
///     Err(RestartError::ReplacementDied { id }) => eprintln!("worker {id} died on start"),
///     Err(other) => eprintln!("{other}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
