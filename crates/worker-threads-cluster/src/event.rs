//! What the primary sees happen to its workers.

use std::net::SocketAddr;

use worker_threads_process::{IpcError, Signal};

use crate::error::ForkError;

/// One thing that happened to one worker, as Node's `cluster.on(...)` events.
///
/// For one worker they come in this order: `Fork`, `Online`, `Listening` (once per
/// address), `Message` (any number), then `Disconnect` and `Exit`. `Error` comes before
/// `Disconnect` when the worker broke the protocol; `RestartFailed` after `Exit`.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_cluster::{Cluster, Event};
///
/// let cluster = Cluster::<String>::new();
/// cluster.fork()?;
/// for event in cluster.iter() {
///     match event {
///         Event::Listening { worker, address } => println!("worker {worker} serves {address}"),
///         Event::Message { worker, message } => println!("worker {worker}: {message}"),
///         Event::Exit { worker, code, .. } => {
///             println!("worker {worker} exited with {code:?}");
///             break;
///         }
///         _ => {}
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<T> {
    /// The process was started (`'fork'`).
    Fork {
        /// The worker's id.
        worker: usize,
    },
    /// The worker's cluster runtime is up (`'online'`): it called a `cluster` function.
    Online {
        /// The worker's id.
        worker: usize,
    },
    /// The worker is serving `address` (`'listening'`): the actual address, so a port of
    /// 0 shows the port that was chosen.
    Listening {
        /// The worker's id.
        worker: usize,
        /// The address it serves.
        address: SocketAddr,
    },
    /// The worker sent a message (`'message'`).
    Message {
        /// The worker's id.
        worker: usize,
        /// The message.
        message: T,
    },
    /// The IPC channel closed (`'disconnect'`).
    Disconnect {
        /// The worker's id.
        worker: usize,
    },
    /// The process exited (`'exit'`): `code` if it exited, `signal` if a signal ended it.
    Exit {
        /// The worker's id.
        worker: usize,
        /// The exit code, if it exited normally.
        code: Option<i32>,
        /// The signal that ended it, if one did.
        signal: Option<Signal>,
        /// Whether it exited after `disconnect()` or `kill()` (Node's
        /// `worker.exitedAfterDisconnect`); the restart policy never restarts those.
        planned: bool,
    },
    /// The worker broke the IPC protocol (an oversize or undecodable frame): the primary
    /// disconnected and killed it; the restart policy applies.
    Error {
        /// The worker's id.
        worker: usize,
        /// What it sent.
        error: IpcError,
    },
    /// The restart policy could not fork a replacement for `worker`.
    RestartFailed {
        /// The worker that was to be replaced.
        worker: usize,
        /// Why the fork failed.
        error: ForkError,
    },
}

impl<T> Event<T> {
    /// The id of the worker this event is about.
    pub fn worker(&self) -> usize {
        match self {
            Event::Fork { worker }
            | Event::Online { worker }
            | Event::Listening { worker, .. }
            | Event::Message { worker, .. }
            | Event::Disconnect { worker }
            | Event::Exit { worker, .. }
            | Event::Error { worker, .. }
            | Event::RestartFailed { worker, .. } => *worker,
        }
    }
}
