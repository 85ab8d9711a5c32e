//! What the frames say: a tag byte, then a postcard body (postcard's wire format is
//! frozen and documented; see ipc.rs for the framing).

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{IpcError, SendError};
use crate::ipc::Ipc;

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

/// Encodes a body.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, IpcError> {
    postcard::to_stdvec(value).map_err(|e| IpcError::Encode(e.to_string()))
}

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

/// Decodes a body; trailing bytes are an error (a frame is exactly one value).
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, IpcError> {
    match postcard::take_from_bytes(body) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(IpcError::Decode("trailing bytes after the value".into())),
        Err(e) => Err(IpcError::Decode(e.to_string())),
    }
}
