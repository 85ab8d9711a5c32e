//! worker-threads: Node's multicore model for Rust.
//!
//! This crate is the facade: it re-exports the workspace's crates under the names a
//! Node developer knows. See the README for the Node -> Rust name table.
//!
//! - [`MessageChannel`], [`MessagePort`], [`BroadcastChannel`]: Node's message ports,
//!   for threads (the `channel` crate).
//! - [`Worker`], [`WorkerOptions`], [`is_main_thread`], [`thread_id`], [`parent_port`],
//!   [`worker_data`]: Node's `worker_threads` (the `worker-core` crate).
//! - [`SharedArrayBuffer`] and [`atomics`]: shared memory and `Atomics.wait`/`notify` (the
//!   `shared` crate).
//! - [`Pool`]: piscina, a pool of threads with a bounded task queue (the `pool` crate).
//! - [`cluster`]: Node's `cluster`, worker processes that share one listening port (the
//!   `cluster` crate; Linux).
//!
//! ```
//! use worker_threads::MessageChannel;
//!
//! let MessageChannel { port1, port2 } = MessageChannel::new();
//! port1.post_message("Hello, World!").unwrap();
//! assert_eq!(port2.recv(), Ok("Hello, World!"));
//! ```
#![forbid(unsafe_code)]

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(target_os = "linux")]
pub use cluster;

pub use channel::{
    BroadcastChannel, BroadcastTypeError, Installed, IntoIter, Iter, Listener, MessageChannel,
    MessagePort, PostError, PostTimeoutError, RecvError, RecvTimeoutError, TerminationSignal,
    TryIter, TryPostError, TryRecvError, receive_message_on_port,
};
pub use pool::{
    BuildError, Latency, Map, MapUnordered, MaxQueue, Pool, PoolBuilder, PoolEvent, RunError,
    TaskError, TaskHandle, is_cancelled,
};
pub use shared::{AllocError, Element, SharedArrayBuffer, ViewError, atomics};
pub use worker_core::{
    ContextError, Events, IntoExitCode, SpawnError, Worker, WorkerContext, WorkerError,
    WorkerEvent, WorkerOptions, exit, is_main_thread, is_terminating, parent_port, thread_id,
    try_exit, try_parent_port, try_worker_data, worker_data, worker_name,
};
