//! Node's `worker_threads` for Rust threads: [`Worker`], `workerData`, `parentPort`,
//! `isMainThread`, `threadId`, lifecycle events and termination.
//!
//! # Spawning a worker
//!
//! [`Worker::spawn`] starts a thread running an entry function (Node's worker file) with
//! a [`WorkerContext`]: its parent port, its data, its id and name. The main side talks to
//! it through the [`Worker`] handle.
//!
//! ```
//! use worker_threads_core::{Worker, WorkerOptions};
//!
//! let worker: Worker<u64> = Worker::spawn(WorkerOptions::new(), |ctx| {
//!     let port = ctx.parent_port();
//!     for n in port.iter() {
//!         port.post_message(n * n).unwrap();
//!     }
//! })?;
//! worker.post_message(12).unwrap();
//! assert_eq!(worker.recv()?, 144);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # workerData and the transfer list
//!
//! [`WorkerOptions::worker_data`] moves a value into the worker; a port inside it is
//! transferred with it (Node's `workerData: { port }` with `transferList: [port]`).
//!
//! ```
//! use worker_threads_channel::{MessageChannel, MessagePort};
//! use worker_threads_core::{Worker, WorkerOptions, worker_data};
//!
//! let MessageChannel { port1, port2 } = MessageChannel::<String>::new();
//! let options = WorkerOptions::new().worker_data(port2);
//! let worker: Worker<()> = Worker::spawn(options, |_| {
//!     let port = worker_data::<MessagePort<String>>();
//!     port.post_message("Hello, World!".into()).unwrap();
//! })?;
//! assert_eq!(port1.recv()?, "Hello, World!");
//! worker.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Anywhere in the worker's code
//!
//! [`is_main_thread`], [`thread_id`], [`parent_port`], [`worker_data`],
//! [`is_terminating`] and [`exit`] work at any depth on the worker's thread, as Node's
//! module-level names do. The `try_` forms return a [`ContextError`] instead of
//! panicking.
//!
//! # Lifecycle
//!
//! [`Worker::events`] yields `Online`, the messages, at most one `Error`, then one
//! `Exit(code)`. [`Worker::join`] waits and returns the exit code, or the
//! [`WorkerError`] of a panic or a returned error. A worker's panic never reaches the
//! main thread as a panic. [`Worker::terminate`] is cooperative: Rust cannot kill a
//! thread (see [`Worker`]).
#![deny(unsafe_code)]

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod context;
mod error;
mod events;
mod isolation;
mod lifecycle;
mod options;
mod outcome;
#[cfg(all(feature = "process", target_os = "linux"))]
#[allow(unsafe_code)]
pub mod process;
mod shared;
mod worker;

pub use crate::context::{
    WorkerContext, exit, is_main_thread, is_terminating, parent_port, thread_id, try_exit,
    try_parent_port, try_worker_data, worker_data, worker_name,
};
pub use crate::error::{ContextError, JoinTimeoutError, Limit, SpawnError, WorkerError};
pub use crate::events::WorkerEvent;
pub use crate::isolation::{Isolation, Process, Thread};
pub use crate::options::WorkerOptions;
pub use crate::outcome::IntoExitCode;
pub use crate::worker::{Events, Spawn, Worker};
