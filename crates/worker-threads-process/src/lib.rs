//! The process layer of [worker-threads](https://docs.rs/worker-threads) (Linux): what
//! `worker-threads-cluster` and process workers share.
//!
//! - [`spawn`] starts a program (usually `current_exe()` again) with its end of a
//!   `SOCK_SEQPACKET` socketpair, named in an environment [`Marker`], under [`Limits`]
//!   (rlimits set between `fork` and `exec`), and returns a pidfd-backed [`Process`].
//! - The child finds its end with [`Marker::from_env`] and [`Marker::adopt`].
//! - [`fds`] lets a value that owns a descriptor (a memfd-backed buffer) serialize into
//!   a frame and come out whole on the other side.
//! - [`Channel`] sends and receives whole frames (`[len][tag][body]`, split into 64 KiB
//!   records, a cap checked before any allocation, descriptors with `SCM_RIGHTS`), and
//!   [`codec`] encodes bodies with postcard.
//! - [`ports`] carries any number of message ports over one channel: a value that
//!   stands for a port serializes as an id, and a [`ports::Router`] on each side relays
//!   what is posted on it.
//!
//! Everything a peer sends is untrusted: a bad frame is an [`IpcError`], never a panic or
//! an allocation past the cap (property tests in `src/channel/tests.rs`).
//!
//! # Frames, end to end
//!
//! Both ends in one process here; [`spawn`] hands one to a child instead.
//!
//! ```
//! use std::os::fd::AsFd;
//! use worker_threads_process::{Channel, channel_pair, codec};
//!
//! let (parent, child) = channel_pair()?;
//! let (parent, child) = (Channel::new(parent, 1 << 20), Channel::new(child, 1 << 20));
//!
//! // A typed message, and a descriptor beside it.
//! let log = std::fs::File::open("/dev/null")?;
//! parent.send(1, &codec::encode(&("start", 4u32))?, &[log.as_fd()])?;
//!
//! let mut buf = Vec::new();
//! let frame = child.recv(&mut buf)?.expect("a frame");
//! let (command, workers): (String, u32) = codec::decode(&frame.body)?;
//! assert_eq!((command.as_str(), workers, frame.fds.len()), ("start", 4, 1));
//!
//! // The parent goes away: the child reads the end, not an error.
//! drop(parent);
//! assert!(child.recv(&mut buf)?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg(target_os = "linux")]
#![deny(unsafe_code)]

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod channel;
pub mod codec;
mod error;
pub mod fds;
#[allow(unsafe_code)]
pub mod mapped;
#[allow(unsafe_code)]
mod marker;
pub mod ports;
mod ring;
pub mod rings;
mod signal;
#[allow(unsafe_code)]
mod spawn;

pub use channel::{Channel, Frame, MAX_FDS, RECORD, Readable, channel_pair, is_seqpacket};
pub use error::IpcError;
pub use marker::Marker;
pub use signal::Signal;
pub use spawn::{Limits, Process, Spawned, exit_of, spawn};
