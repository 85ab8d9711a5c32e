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
mod marker;
pub mod ports;
mod signal;
#[allow(unsafe_code)]
mod spawn;

pub use channel::{Channel, Frame, MAX_FDS, RECORD, Readable, channel_pair, is_seqpacket};
pub use error::IpcError;
pub use marker::Marker;
pub use signal::Signal;
pub use spawn::{Limits, Process, Spawned, exit_of, spawn};
