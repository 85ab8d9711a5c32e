//! The error of the channel and the codec.

use std::io;

/// What went wrong on a channel between a parent and a child process.
///
/// A parent reports it for the child that caused it (an error event, then the child is
/// killed); it never takes the parent down.
///
/// # Examples
///
/// ```
/// use worker_threads_process::{Channel, IpcError, channel_pair};
///
/// let (a, b) = channel_pair()?;
/// let (a, b) = (Channel::new(a, 1 << 20), Channel::new(b, 16));
/// let mut buf = Vec::new();
/// assert!(matches!(b.try_recv(&mut buf), Err(IpcError::Empty)));
/// // Over the receiver's cap: refused before anything is allocated for it.
/// a.send(1, &[0; 64], &[])?;
/// assert!(matches!(b.recv(&mut buf), Err(IpcError::TooLarge { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// The other side has gone (exited, or its end was shut down).
    #[error("the IPC channel is closed")]
    Closed,
    /// A frame over the receiver's or the sender's cap: refused before anything was
    /// allocated for it.
    #[error("frame of {len} bytes exceeds the cap of {max} bytes")]
    TooLarge {
        /// The length the frame announced.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A frame that does not follow the wire format.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    /// The rest of a frame did not come within the frame timeout: the peer stopped
    /// mid-frame.
    #[error("the rest of a frame did not come in time")]
    Stalled,
    /// A non-blocking send found the peer not reading: its receive buffer is full, or
    /// another thread is in the middle of a frame to it. Nothing was sent.
    #[error("the peer is not reading")]
    Full,
    /// A non-blocking receive found no frame waiting ([`Channel::try_recv`](crate::Channel::try_recv)).
    #[error("no frame is waiting")]
    Empty,
    /// A bounded receive ([`Channel::recv_timeout`](crate::Channel::recv_timeout),
    /// [`Channel::recv_deadline`](crate::Channel::recv_deadline)) saw no frame begin in
    /// time.
    #[error("no frame came in time")]
    RecvTimedOut,
    /// A send waited longer than the channel's send timeout for the peer to read.
    /// Part of the frame may have been sent: the channel can no longer be trusted.
    #[error("the peer did not read within the send timeout")]
    SendTimedOut,
    /// The peer sent more than the receiver keeps unread for it.
    #[error("the peer sent more than the {max} bytes kept unread for it")]
    Overflow {
        /// The bound.
        max: usize,
    },
    /// A frame whose body is not a valid postcard encoding of the expected type.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// A message that postcard could not encode.
    #[error("unencodable message: {0}")]
    Encode(String),
    /// The socket call failed.
    #[error("IPC socket: {0}")]
    Io(#[from] io::Error),
}
