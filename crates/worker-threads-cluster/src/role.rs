//! Which side of the cluster this process is on.

use std::fmt;
use std::os::fd::RawFd;

use crate::worker;

/// The environment marker a worker is started with: `id,fd,primary_pid`.
pub(crate) struct Marker {
    pub(crate) id: usize,
    pub(crate) fd: RawFd,
    pub(crate) primary: u32,
}

impl Marker {
    /// The variable's name.
    pub(crate) const VAR: &'static str = "WORKER_THREADS_CLUSTER_WORKER";

    /// The marker of this process, if it has one and was started by its parent (a marker
    /// inherited by a worker's own child names another parent, and is ignored).
    pub(crate) fn from_env() -> Option<Marker> {
        let value = std::env::var(Marker::VAR).ok()?;
        let mut parts = value.split(',');
        let marker = Marker {
            id: parts.next()?.parse().ok()?,
            fd: parts.next()?.parse().ok()?,
            primary: parts.next()?.parse().ok()?,
        };
        let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32);
        (parts.next().is_none() && parent == Some(marker.primary)).then_some(marker)
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{}", self.id, self.fd, self.primary)
    }
}

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
    worker::runtime().is_some()
}

/// This worker's id (Node's `cluster.worker.id`), or `None` in the primary.
pub fn worker_id() -> Option<usize> {
    worker::runtime().map(|rt| rt.id)
}
