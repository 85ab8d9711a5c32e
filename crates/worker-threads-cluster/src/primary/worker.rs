//! `ClusterWorker`: a worker process as the primary sees it, and the state its supervising
//! thread keeps for it.

use std::ffi::OsString;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use std::time::Instant;
use worker_threads_wait::sync::{Condvar, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use worker_threads_process::{Channel, IpcError, Process, Signal};

use crate::error::SendError;
use crate::lock;
use crate::primary::server::Server;
use crate::wire::{self, ToWorker};

/// A worker process, seen from the primary (Node's `cluster.workers[id]`).
///
/// Cheap to clone; every clone is the same worker.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_cluster::{Cluster, Signal};
///
/// let cluster = Cluster::<String>::new();
/// let worker = cluster.fork()?;
/// println!("worker {} is process {}", worker.id(), worker.pid());
/// worker.send("hello".to_string())?;
/// worker.kill(Signal::TERM)?;
/// let (code, signal) = worker.wait();
/// println!("ended: code {code:?}, signal {signal:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ClusterWorker<T> {
    pub(crate) inner: Arc<WorkerInner>,
    pub(crate) _message: PhantomData<fn(T) -> T>,
}

pub(crate) struct WorkerInner {
    pub(crate) id: usize,
    pub(crate) ipc: Arc<Channel>,
    pub(crate) process: Process,
    pub(crate) env: Vec<(OsString, OsString)>,
    /// Crashes in a row that led to this worker (0 for a first fork).
    pub(crate) crashes: u32,
    pub(crate) started: Instant,
    pub(crate) status: Mutex<Status>,
    pub(crate) changed: Condvar,
    /// Bytes of this worker's messages queued in the events and not yet read.
    pub(crate) unread: Arc<AtomicUsize>,
    /// Why the primary gave up on this worker from a sending side (a send that timed
    /// out); the supervising thread reports it as `Event::Error`.
    pub(crate) failure: Mutex<Option<IpcError>>,
}

#[derive(Default)]
pub(crate) struct Status {
    pub(crate) online: bool,
    pub(crate) listening: usize,
    pub(crate) planned: bool,
    pub(crate) servers: Vec<Arc<Server>>,
    pub(crate) exit: Option<(Option<i32>, Option<Signal>)>,
}

impl<T> Clone for ClusterWorker<T> {
    fn clone(&self) -> Self {
        ClusterWorker {
            inner: Arc::clone(&self.inner),
            _message: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for ClusterWorker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterWorker")
            .field("id", &self.inner.id)
            .field("pid", &self.inner.process.pid())
            .finish_non_exhaustive()
    }
}

impl<T> ClusterWorker<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// The worker's id: 1, 2, ... in fork order, never reused (Node's `worker.id`).
    pub fn id(&self) -> usize {
        self.inner.id
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.inner.process.pid()
    }

    /// Sends a message to the worker (Node's `worker.send`).
    ///
    /// # Errors
    ///
    /// The message comes back in a [`SendError`] if the worker has gone or the message
    /// cannot be encoded or is over the frame cap.
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        let sent = wire::send_message(&self.inner.ipc, message);
        if let Err(error) = &sent {
            self.inner.check(error.error());
        }
        sent
    }

    /// Sends `signal` to the worker process (Node's `worker.process.kill(signal)`). The
    /// exit that follows counts as planned: the restart policy leaves it alone.
    ///
    /// # Errors
    ///
    /// The error of the underlying `pidfd_send_signal`/`kill` (the process is gone).
    pub fn kill(&self, signal: Signal) -> std::io::Result<()> {
        lock(&self.inner.status).planned = true;
        self.inner.signal(signal)
    }

    /// Asks the worker to stop gracefully (Node's `worker.disconnect()`): the primary stops
    /// handing it connections, its listeners stop accepting, it finishes what is in flight
    /// and exits. The exit counts as planned.
    pub fn disconnect(&self) {
        let servers = {
            let mut status = lock(&self.inner.status);
            status.planned = true;
            std::mem::take(&mut status.servers)
        };
        for server in servers {
            server.leave(self.inner.id);
        }
        if let Err(error) = wire::send_control(&self.inner.ipc, &ToWorker::Disconnect, &[]) {
            self.inner.check(&error);
        }
    }

    /// Whether the worker exited, or will exit, because of `disconnect()` or `kill()`
    /// (Node's `worker.exitedAfterDisconnect`).
    pub fn exited_after_disconnect(&self) -> bool {
        lock(&self.inner.status).planned
    }

    /// Whether the process has exited and been reaped (Node's `worker.isDead()`).
    pub fn is_dead(&self) -> bool {
        lock(&self.inner.status).exit.is_some()
    }

    /// Waits for the process to exit: its exit code, or the signal that ended it.
    pub fn wait(&self) -> (Option<i32>, Option<Signal>) {
        self.inner.wait_until(|status| status.exit)
    }
}

impl WorkerInner {
    /// A send to this worker failed with `error`: a worker that does not read within the
    /// send timeout is hung: record why, kill it (its supervisor reports the error).
    pub(crate) fn check(&self, error: &IpcError) {
        if matches!(error, IpcError::SendTimedOut) {
            self.fail(IpcError::SendTimedOut);
        }
    }

    /// Gives up on this worker: the error is reported by its supervising thread, the
    /// process is killed first (so it cannot take the shutdown for a graceful stop).
    pub(crate) fn fail(&self, error: IpcError) {
        tracing::warn!(worker = self.id, %error, "giving up on a worker: killing it");
        lock(&self.failure).get_or_insert(error);
        let _ = self.signal(Signal::KILL);
        self.ipc.shutdown();
    }

    pub(crate) fn signal(&self, signal: Signal) -> std::io::Result<()> {
        if lock(&self.status).exit.is_some() {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        }
        self.process.signal(signal)
    }

    /// Waits until online and listening on `listening` addresses; false if it exited.
    pub(crate) fn wait_ready(&self, listening: usize) -> bool {
        self.wait_until(|status| {
            if status.exit.is_some() {
                Some(false)
            } else {
                (status.online && status.listening >= listening).then_some(true)
            }
        })
    }

    /// Waits until `done` gives a value for the status.
    pub(crate) fn wait_until<V>(&self, mut done: impl FnMut(&Status) -> Option<V>) -> V {
        let mut status = lock(&self.status);
        loop {
            if let Some(value) = done(&status) {
                return value;
            }
            status = worker_threads_wait::wait(&self.changed, status);
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut lock(&self.status));
        self.changed.notify_all();
    }
}
