//! Node's `cluster` for Rust: worker processes that share one listening port, typed IPC
//! between the primary and each worker, and supervision. Linux only.
//!
//! ## Primary and workers
//!
//! A program is the *primary* unless [`Cluster::fork`] started it: `fork` runs this
//! executable again, with the same arguments and an environment marker, and in that
//! process [`is_primary`] is false, [`is_worker`] true and [`worker_id`] set. As in Node,
//! one `main` holds both paths:
//!
//! ```no_run
//! use worker_threads_cluster::{Cluster, Event, Restart};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     if worker_threads_cluster::is_primary() {
//!         let cluster = Cluster::<()>::builder().restart(Restart::on_crash()).build();
//!         for _ in 0..4 {
//!             cluster.fork()?;
//!         }
//!         for event in cluster.iter() {
//!             if let Event::Exit { worker, code, signal, .. } = event {
//!                 println!("worker {worker} died ({code:?}, {signal:?})");
//!             }
//!         }
//!     } else {
//!         let listener = worker_threads_cluster::listen("127.0.0.1:3000")?;
//!         for stream in listener.incoming() {
//!             let _ = std::io::Write::write_all(&mut stream?, b"Hello, World!\n");
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! ## Sharing a port
//!
//! [`listen`] in a worker asks the primary, which binds the address once and, by
//! [`SchedulingPolicy`], accepts and hands each connection to the next worker
//! (`RoundRobin`, Node's default), gives every worker the listening socket (`Shared`), or
//! holds the port while each worker binds it with `SO_REUSEPORT` (`ReusePort`).
//!
//! ## Messages
//!
//! `Cluster<T>` and [`Primary<T>`] carry messages of one type both ways:
//! [`ClusterWorker::send`] and [`Event::Message`] in the primary, [`primary`]`().send` and
//! `recv` in a worker. Any `T: Serialize + DeserializeOwned` crosses, encoded with
//! postcard over a `SOCK_SEQPACKET` socketpair; a peer that sends an oversize or
//! malformed frame is disconnected with [`Event::Error`], and the primary goes on.
//!
//! ## Supervision
//!
//! The primary sees each worker's [`Event`]s in order (`Fork`, `Online`, `Listening`,
//! `Message`, `Disconnect`, `Exit`), can [`ClusterWorker::kill`] or [`ClusterWorker::disconnect`] one,
//! restarts crashed ones with exponential back-off ([`Restart::OnCrash`]), and replaces
//! them all one by one with [`Cluster::rolling_restart`].
//!
//! ## Under `cargo test`
//!
//! A test that forks re-runs the test binary; [`ClusterBuilder::test_harness`] makes the
//! worker run only that test, which takes its worker path when [`is_worker`] is true.
#![cfg(target_os = "linux")]
#![forbid(unsafe_code)]

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod builder;
mod config;
mod error;
mod event;
mod net;
mod primary;
mod role;
mod wait;
mod wire;
mod worker;

pub use builder::ClusterBuilder;
pub use config::{Backoff, Restart, SchedulingPolicy};
pub use error::{
    ForkError, IpcRecvError, IpcRecvTimeoutError, IpcTryRecvError, ListenError, NotAWorker,
    RestartError, SendError,
};
pub use event::Event;
pub use primary::{Cluster, ClusterWorker};
pub use role::{is_disconnected, is_primary, is_worker, worker_id};
#[cfg(feature = "tokio")]
pub use worker::listener::TokioListener;
pub use worker::listener::{Listener, listen};
pub use worker::primary::{Primary, primary, try_primary};
pub use worker_threads_process::{IpcError, Signal};

/// Locks a mutex, going on after a panic on another thread (what the crate keeps under
/// its locks is counts and lists that a panic cannot leave half-written).
use worker_threads_wait::lock;
