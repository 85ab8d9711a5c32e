//! Which side of the cluster this process is on.

use crate::worker::runtime;

/// Whether this process is the primary: it was not started by [`Cluster::fork`]
/// (Node's `cluster.isPrimary`).
///
/// [`Cluster::fork`]: crate::Cluster::fork
///
/// # Examples
///
/// ```
/// // A program started by hand (or by `cargo test`) is the primary.
/// assert!(worker_threads_cluster::is_primary());
/// assert!(!worker_threads_cluster::is_worker());
/// assert_eq!(worker_threads_cluster::worker_id(), None);
/// ```
pub fn is_primary() -> bool {
    !is_worker()
}

/// Whether this process is a worker started by [`Cluster::fork`](crate::Cluster::fork)
/// (Node's `cluster.isWorker`). The first call in a worker starts its side of the IPC
/// channel and reports it `Online` to the primary.
pub fn is_worker() -> bool {
    runtime::runtime().is_some()
}

/// This worker's id (Node's `cluster.worker.id`), or `None` in the primary.
pub fn worker_id() -> Option<usize> {
    runtime::runtime().map(|rt| rt.id)
}

/// Whether the primary asked this worker to disconnect (Node's `worker.exitedAfterDisconnect`
/// seen from inside). Listeners stop accepting at that moment.
pub fn is_disconnected() -> bool {
    runtime::runtime().is_some_and(runtime::Runtime::is_disconnected)
}
