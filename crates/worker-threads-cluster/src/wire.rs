//! What the frames say: a tag byte, then a postcard body (the framing is
//! `worker_threads_process::Channel`'s).

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use serde::{Deserialize, Serialize};

use worker_threads_process::{Channel as Ipc, IpcError};

use crate::error::SendError;

/// The environment variable that marks a worker process (its payload is the worker id).
pub(crate) const MARKER: &str = "WORKER_THREADS_CLUSTER_WORKER";

/// A frame whose body is one of the enums below.
pub(crate) const TAG_CONTROL: u8 = 0;
/// A frame whose body is a user message.
pub(crate) const TAG_MESSAGE: u8 = 1;

/// Worker to primary.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToPrimary {
    /// The worker's cluster runtime is up.
    Online,
    /// `worker_threads_cluster::listen(addr)`; answered by `ToWorker::Listening { seq, .. }`.
    Listen { seq: u64, addr: SocketAddr },
    /// `ReusePort`: the worker bound and listens on `addr`.
    Bound { addr: SocketAddr },
    /// Round-robin: the worker dropped its last listener of server `key`.
    Unlisten { key: u64 },
}

/// Primary to worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// The answer to `Listen { seq }`.
    Listening {
        seq: u64,
        grant: Result<Grant, String>,
    },
    /// A connection accepted for server `key`; its descriptor is attached.
    Connection { key: u64 },
    /// Stop accepting, finish in-flight work, exit.
    Disconnect,
}

/// How a worker serves an address, by the primary's scheduling policy.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Grant {
    /// Round-robin: connections arrive as `Connection { key }` frames.
    Handoff { key: u64, addr: SocketAddr },
    /// The listening socket itself is attached; accept from it.
    Shared { addr: SocketAddr },
    /// Bind `addr` yourself with `SO_REUSEPORT` (the primary holds the port).
    ReusePort { addr: SocketAddr },
}

pub(crate) use worker_threads_process::codec::{decode, encode};

/// Sends `control` (a `ToPrimary` or `ToWorker`) with `fds` attached.
pub(crate) fn send_control<V: Serialize>(
    ipc: &Ipc,
    control: &V,
    fds: &[BorrowedFd<'_>],
) -> Result<(), IpcError> {
    ipc.send(TAG_CONTROL, &encode(control)?, fds)
}

/// Sends a user message, handing it back if it cannot be encoded or sent.
pub(crate) fn send_message<T: Serialize>(ipc: &Ipc, message: T) -> Result<(), SendError<T>> {
    match encode(&message).and_then(|body| ipc.send(TAG_MESSAGE, &body, &[])) {
        Ok(()) => Ok(()),
        Err(error) => Err(SendError::new(message, error)),
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::{ToPrimary, ToWorker, decode};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Control messages both ways: arbitrary bodies give a value or a typed error.
        #[test]
        fn arbitrary_bodies_never_panic_the_control_layer(body in vec(any::<u8>(), 0..200)) {
            let _ = decode::<ToWorker>(&body);
            let _ = decode::<ToPrimary>(&body);
        }
    }
}
