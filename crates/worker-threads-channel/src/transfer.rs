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
use worker_threads_process::codec;
use worker_threads_process::ports::{self, Endpoint};

use crate::port::{MessageChannel, MessagePort};

/// A custom serde error's message, kept for the codec too (postcard drops it).
fn noted(message: &str) -> &str {
    codec::note(message);
    message
}

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
        let id = ports::export(Box::new(end)).ok_or_else(|| {
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
        if !ports::import(id, Box::new(port2)) {
            return Err(D::Error::custom(noted(
                "a MessagePort deserializes only out of a process worker's data or messages",
            )));
        }
        Ok(port1)
    }
}

/// The relayed end: the peer's posts are `X`, what it sends on is `Y`.
impl<X, Y> Endpoint for MessagePort<X, Y>
where
    X: DeserializeOwned + Send,
    Y: Serialize + Send,
{
    fn deliver(&self, message: &[u8]) -> Result<(), IpcError> {
        let message: X = codec::decode(message)?;
        // Fails only once this end closed: the peer's post raced the close.
        let _ = self.post_message(message);
        Ok(())
    }

    fn take(&self, out: &mut Vec<u8>) -> Result<bool, IpcError> {
        match self.recv() {
            Ok(message) => codec::encode_into(&message, out).map(|()| true),
            Err(_) => Ok(false),
        }
    }

    fn close(&self) {
        MessagePort::close(self);
    }
}
