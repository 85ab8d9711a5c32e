//! Node's message ports for Rust threads: [`MessageChannel`], [`MessagePort`] and
//! [`BroadcastChannel`].
//!
//! Messages are moved, never serialised: posting a value hands it to the other thread,
//! with every port, buffer or handle inside it (Node's transfer list, checked by the
//! compiler). Every failed post hands the message back, and closing a port still delivers
//! what was posted before the close.
//!
//! # Message channels
//!
//! A [`MessageChannel`] is a pair of entangled ports. What one posts, the other receives,
//! in order, in both directions.
//!
//! ```
//! use worker_threads_channel::MessageChannel;
//! use std::thread;
//!
//! let MessageChannel { port1, port2 } = MessageChannel::new();
//! let worker = thread::spawn(move || {
//!     for n in &port2 {
//!         port2.post_message(n * 2).unwrap();
//!     }
//! });
//! for n in 0..3 {
//!     port1.post_message(n).unwrap();
//!     assert_eq!(port1.recv(), Ok(n * 2));
//! }
//! drop(port1); // closes the pair: the worker's loop ends
//! worker.join().unwrap();
//! ```
//!
//! # Across processes (feature `process`, Linux)
//!
//! With the feature, a `MessagePort` whose types are `Serialize + DeserializeOwned` is
//! itself `Serialize` and `Deserialize`, but only inside a process worker's data or
//! messages (elsewhere serde refuses it with a clear error): it arrives in the other
//! process as a working port, relayed over that worker's one channel (see
//! `worker_threads_core::process`).
//!
//! # Receiving
//!
//! [`recv`](MessagePort::recv) blocks, [`try_recv`](MessagePort::try_recv) (or
//! [`receive_message_on_port`]) does not, [`recv_timeout`](MessagePort::recv_timeout) and
//! [`recv_deadline`](MessagePort::recv_deadline) wait a while,
//! [`recv_async`](MessagePort::recv_async) awaits under any executor, `for msg in &port`
//! iterates until the port closes, and [`on_message`](MessagePort::on_message) runs a
//! handler on a thread of its own. A blocked receiver spins for about a microsecond before
//! it parks, so a busy exchange between two threads never pays for a futex wake.
//!
//! # Back-pressure
//!
//! Node's ports are unbounded; [`MessageChannel::new`] is too. [`MessageChannel::bounded`]
//! gives queues that hold `cap` messages: [`post_message`](MessagePort::post_message)
//! waits for room, [`try_post_message`](MessagePort::try_post_message) returns
//! [`TryPostError::Full`] with the message.
//!
//! ```
//! use worker_threads_channel::{MessageChannel, TryPostError};
//!
//! let MessageChannel { port1, port2 } = MessageChannel::bounded(2);
//! port1.post_message(1).unwrap();
//! port1.post_message(2).unwrap();
//! assert_eq!(port1.try_post_message(3), Err(TryPostError::Full(3)));
//! assert_eq!(port2.recv(), Ok(1));
//! port1.try_post_message(3).unwrap();
//! ```
//!
//! # Transferring a port
//!
//! A port is a value like any other: post it, and the receiving thread talks to its peer.
//!
//! ```
//! use worker_threads_channel::{MessageChannel, MessagePort};
//! use std::thread;
//!
//! let MessageChannel { port1: to_worker, port2: worker_end } =
//!     MessageChannel::<MessagePort<String>>::new();
//! let MessageChannel { port1: mine, port2: theirs } = MessageChannel::<String>::new();
//! let worker = thread::spawn(move || {
//!     let port = worker_end.recv().unwrap();
//!     port.post_message("hi from the worker".to_string()).unwrap();
//! });
//! to_worker.post_message(theirs).unwrap();
//! assert_eq!(mine.recv().unwrap(), "hi from the worker");
//! worker.join().unwrap();
//! ```
//!
//! # Broadcast channels
//!
//! A [`BroadcastChannel`] joins a named group: what one instance posts, every other
//! instance with the same name receives. A name carries one message type.
//!
//! ```
//! use worker_threads_channel::BroadcastChannel;
//!
//! let tx = BroadcastChannel::<u8>::new("config");
//! let rx = BroadcastChannel::<u8>::new("config");
//! tx.post_message(3u8).unwrap();
//! assert_eq!(rx.recv(), Ok(3));
//! ```
//!
//! # Errors
//!
//! Each operation has its own error: [`PostError`], [`TryPostError`] and
//! [`PostTimeoutError`] hold the message; [`RecvError`], [`TryRecvError`] and
//! [`RecvTimeoutError`] say why nothing was received.
#![forbid(unsafe_code)]

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod broadcast;
mod close;
mod error;
mod iter;
mod listener;
mod port;
mod queue;
#[cfg(all(target_os = "linux", feature = "process"))]
pub mod remote;
#[cfg(not(all(target_os = "linux", feature = "process")))]
#[allow(dead_code, unreachable_pub)]
mod remote;
mod termination;
#[cfg(all(target_os = "linux", feature = "process"))]
mod transfer;

pub use crate::broadcast::BroadcastChannel;
pub use crate::error::{
    BroadcastTypeError, PostError, PostTimeoutError, RecvError, RecvTimeoutError, TryPostError,
    TryRecvError,
};
pub use crate::iter::{Iter, TryIter};
pub use crate::listener::MessageListener;
pub use crate::port::{IntoIter, MessageChannel, MessagePort, receive_message_on_port};
pub use crate::termination::{Installed, TerminationSignal};
