//! `Primary`: a worker's channel to its primary (messages both ways).

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{IpcRecvError, IpcRecvTimeoutError, IpcTryRecvError, NotAWorker, SendError};
use crate::wire;
use crate::worker::runtime::{Runtime, runtime};

/// The worker's channel to its primary (Node's `process.send` / `process.on('message')`).
///
/// `T` is the message type: the same as the primary's `Cluster<T>`.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_cluster::{Cluster, Event, is_primary, primary};
///
/// if is_primary() {
///     let cluster = Cluster::<String>::new();
///     let worker = cluster.fork()?;
///     worker.send("ping".to_string())?;
///     for event in cluster.iter() {
///         if let Event::Message { message, .. } = event {
///             assert_eq!(message, "pong");
///             break;
///         }
///     }
/// } else {
///     // Node's `process.on('message')` and `process.send`.
///     let primary = primary::<String>();
///     if primary.recv()? == "ping" {
///         primary.send("pong".to_string())?;
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Primary<T> {
    rt: &'static Runtime,
    /// The messages as a stream, for the [`Stream`] impl (made on first poll).
    stream: Option<flume::r#async::RecvStream<'static, Vec<u8>>>,
    _message: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Primary<T> {
    fn clone(&self) -> Self {
        Primary {
            rt: self.rt,
            stream: None,
            _message: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Primary<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Primary")
            .field("worker", &self.rt.id)
            .finish_non_exhaustive()
    }
}

/// The channel to the primary.
///
/// # Panics
///
/// In the primary; [`try_primary`] is the fallible twin.
#[track_caller]
pub fn primary<T>() -> Primary<T>
where
    T: Serialize + DeserializeOwned,
{
    match try_primary() {
        Ok(primary) => primary,
        Err(e) => panic!(
            "cluster::primary(): {e}; only a worker process has a primary: check \
             cluster::is_worker() first, or call try_primary"
        ),
    }
}

/// The channel to the primary, or [`NotAWorker`] in the primary.
///
/// # Errors
///
/// [`NotAWorker`] when this process is the primary.
pub fn try_primary<T>() -> Result<Primary<T>, NotAWorker>
where
    T: Serialize + DeserializeOwned,
{
    let rt = runtime().ok_or(NotAWorker)?;
    Ok(Primary {
        rt,
        stream: None,
        _message: PhantomData,
    })
}

impl<T> Primary<T>
where
    T: Serialize + DeserializeOwned,
{
    /// Sends a message to the primary, which sees it as [`Event::Message`](crate::Event).
    ///
    /// # Errors
    ///
    /// The message comes back in a [`SendError`] if the primary has gone or the message
    /// cannot be encoded.
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        wire::send_message(&self.rt.ipc, message)
    }

    /// The next message, waiting for one.
    ///
    /// # Errors
    ///
    /// [`IpcRecvError::Closed`] once the primary has gone and every message was taken;
    /// [`IpcRecvError::Decode`] for a message that is not a `T`.
    pub fn recv(&self) -> Result<T, IpcRecvError> {
        let body = crate::wait::recv(&self.rt.messages).map_err(|_| IpcRecvError::Closed)?;
        wire::decode(&body).map_err(|e| IpcRecvError::Decode(e.to_string()))
    }

    /// The next message, if one is waiting.
    ///
    /// # Errors
    ///
    /// [`IpcTryRecvError::Empty`] when none is; otherwise as [`recv`](Primary::recv).
    pub fn try_recv(&self) -> Result<T, IpcTryRecvError> {
        let body = self.rt.messages.try_recv().map_err(|e| match e {
            flume::TryRecvError::Empty => IpcTryRecvError::Empty,
            flume::TryRecvError::Disconnected => IpcTryRecvError::Closed,
        })?;
        wire::decode(&body).map_err(|e| IpcTryRecvError::Decode(e.to_string()))
    }

    /// The next message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`IpcRecvTimeoutError::Timeout`] when none came in time; otherwise as
    /// [`recv`](Primary::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, IpcRecvTimeoutError> {
        match worker_threads_wait::Deadline::after(timeout) {
            worker_threads_wait::Deadline::At(deadline) => self.recv_deadline(deadline),
            // Further than an `Instant` reaches: wait as long as it takes.
            worker_threads_wait::Deadline::Never => self.recv().map_err(Into::into),
        }
    }

    /// The next message, waiting until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Primary::recv_timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, IpcRecvTimeoutError> {
        let body = self
            .rt
            .messages
            .recv_deadline(deadline)
            .map_err(|e| match e {
                flume::RecvTimeoutError::Timeout => IpcRecvTimeoutError::Timeout,
                flume::RecvTimeoutError::Disconnected => IpcRecvTimeoutError::Closed,
            })?;
        wire::decode(&body).map_err(|e| IpcRecvTimeoutError::Decode(e.to_string()))
    }

    /// The next message, awaited under any executor.
    ///
    /// # Errors
    ///
    /// As [`recv`](Primary::recv).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a message is taken only in the poll that returns it, so dropping the
    /// future loses none. `Primary` is also a [`Stream`] of its messages.
    pub async fn recv_async(&self) -> Result<T, IpcRecvError> {
        let body = self
            .rt
            .messages
            .recv_async()
            .await
            .map_err(|_| IpcRecvError::Closed)?;
        wire::decode(&body).map_err(|e| IpcRecvError::Decode(e.to_string()))
    }

    /// Messages as they come, until the primary has gone (or one does not decode).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv().ok())
    }
}

/// The primary's messages as they come: `Ok(message)`, or `Err(Decode)` for one that
/// does not decode as `T` (the stream goes on); it ends when the primary has gone.
/// Dropping a pending `next()` loses no message.
impl<T: DeserializeOwned> Stream for Primary<T> {
    type Item = Result<T, IpcRecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let rt = this.rt;
        let stream = this
            .stream
            .get_or_insert_with(|| rt.messages.clone().into_stream());
        Pin::new(stream).poll_next(cx).map(|body| {
            body.map(|body| wire::decode(&body).map_err(|e| IpcRecvError::Decode(e.to_string())))
        })
    }
}
