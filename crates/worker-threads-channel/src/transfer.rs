//! Ports that cross to another process (Linux, feature `process`): a [`MessagePort`] in
//! a process worker's data or messages arrives there as a working port. It serializes as
//! an id and its end stays here, relayed by the channel's `Router` (the
//! `worker-threads-process` crate's `ports`): what the other process posts is posted here,
//! what is posted to this end goes there. The other side gets a new local pair, one end
//! for the program, the other relayed the same way. Order and close semantics hold across;
//! the queue's bound does not (the new pair is unbounded).

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use worker_threads_process::IpcError;
use worker_threads_process::codec::{self, noted};
use worker_threads_process::ports::{self, Endpoint};

use std::sync::Mutex;
use std::task::{Context, Poll};
use worker_threads_wait::Unpoison;

use crate::port::{MessageChannel, MessagePort};
use crate::queue::AsyncWait;

/// Only into a process worker's data or messages: the port stays here, relayed.
impl<S, R> Serialize for MessagePort<S, R>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        if !ports::exporting() {
            return Err(Z::Error::custom(noted(
                "a MessagePort serializes only into a process worker's data or messages",
            )));
        }
        let end = self.transfer().ok_or_else(|| {
            Z::Error::custom(noted(
                "this MessagePort was sent to another process already",
            ))
        })?;
        let id = ports::export(Box::new(Crossed::new(end))).ok_or_else(|| {
            Z::Error::custom(noted(
                "a MessagePort serializes only into a process worker's data or messages",
            ))
        })?;
        serializer.serialize_u64(id)
    }
}

/// Only out of a process worker's data or messages: a new local pair, one end relayed.
impl<'de, S, R> Deserialize<'de> for MessagePort<S, R>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = u64::deserialize(deserializer)?;
        let MessageChannel { port1, port2 } = MessageChannel::<S, R>::asymmetric();
        if !ports::import(id, Box::new(Crossed::new(port2))) {
            return Err(D::Error::custom(noted(
                "a MessagePort deserializes only out of a process worker's data or messages",
            )));
        }
        Ok(port1)
    }
}

/// The relayed end of a port that crossed: the peer's posts are `X`, what it sends on is
/// `Y`. The router's relay thread polls it (`waiting` keeps its registration between
/// polls, as a stream's).
struct Crossed<X, Y> {
    port: MessagePort<X, Y>,
    waiting: Mutex<Option<AsyncWait<Y>>>,
}

impl<X, Y> Crossed<X, Y> {
    fn new(port: MessagePort<X, Y>) -> Self {
        Crossed {
            port,
            waiting: Mutex::new(None),
        }
    }
}

impl<X, Y> Endpoint for Crossed<X, Y>
where
    X: DeserializeOwned + Send,
    Y: Serialize + Send,
{
    fn deliver(&self, message: &[u8]) -> Result<(), IpcError> {
        let message: X = codec::decode(message)?;
        // Fails only once this end closed: the peer's post raced the close.
        let _ = self.port.post_message(message);
        Ok(())
    }

    fn poll_take(&self, cx: &mut Context<'_>, out: &mut Vec<u8>) -> Poll<Result<bool, IpcError>> {
        let mut waiting = self.waiting.lock().unpoison();
        match self.port.inbox().poll_recv(&mut waiting, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(message)) => {
                Poll::Ready(codec::encode_into(&message, out).map(|()| true))
            }
            Poll::Ready(Err(_)) => Poll::Ready(Ok(false)),
        }
    }

    fn close(&self) {
        self.port.close();
    }
}
