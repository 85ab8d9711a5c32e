//! worker-threads: Node's multicore model for Rust.
//!
//! This crate is the facade: it re-exports the workspace's crates under the names a
//! Node developer knows. See the README for the Node -> Rust name table.
//!
//! - [`MessageChannel`], [`MessagePort`], [`BroadcastChannel`]: Node's message ports,
//!   for threads (the `worker-threads-channel` crate).
//! - [`Worker`], [`WorkerOptions`], [`is_main_thread`], [`thread_id`], [`parent_port`],
//!   [`worker_data`]: Node's `worker_threads` (the `worker-threads-core` crate).
//! - [`SharedArrayBuffer`] and [`atomics`]: shared memory and `Atomics.wait`/`notify` (the
//!   `worker-threads-shared` crate).
//! - [`Pool`]: piscina, a pool of threads with a bounded task queue (the
//!   `worker-threads-pool` crate).
//! - `cluster`: Node's `cluster`, worker processes that share one listening port (the
//!   `worker-threads-cluster` crate; Linux, feature `cluster`, on by default).
//!
//! - `process`: workers in processes of their own, the same [`Worker`] with
//!   `WorkerOptions::isolation(Process)`: hard terminate, crash isolation, resource
//!   limits (Linux, feature `process`, on by default).
//! - `remote`: the pool past one machine, `RemotePool` and `RemoteWorker` over a NATS
//!   JetStream work queue (the `worker-threads-remote` crate; feature `remote`).
//!
//! # What sits at the root, what stays a module
//!
//! The root flattens the crates a program on one machine's threads uses: ports, workers,
//! shared memory and the pool (with [`TaskPool`], the surface every pool shares).
//! `cluster`, `process` and `remote` stay modules: they are for programs that choose
//! them, and their names read as `cluster::Cluster`, `process::ProcessFn`,
//! `remote::RemotePool`. No name means two things: a name in a module is either its own
//! (`cluster::Listener`, a shared listening socket; `cluster::ClusterWorker`) or the
//! root's type re-exported (`remote::RunError` is [`RunError`]).
//!
//! # Features
//!
//! - `cluster` (default): the `cluster` module, on Linux.
//! - `process` (default): the `process` module and `Process` isolation, on Linux.
//! - `tokio`: `cluster::Listener::into_tokio` for tokio servers; implies `cluster`.
//! - `remote`: the `remote` module (brings `async-nats` and tokio's runtime).
//!
//! ```
//! use worker_threads::MessageChannel;
//!
//! let MessageChannel { port1, port2 } = MessageChannel::new();
//! port1.post_message("Hello, World!").unwrap();
//! assert_eq!(port2.recv(), Ok("Hello, World!"));
//! ```
#![forbid(unsafe_code)]

/// The README's examples, compiled and run as doc tests (its tour uses every feature:
/// `cargo test --workspace` builds the facade with all of them).
#[cfg(all(
    doctest,
    target_os = "linux",
    feature = "process",
    feature = "cluster",
    feature = "remote"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(all(feature = "cluster", target_os = "linux"))]
pub use worker_threads_cluster as cluster;

pub use worker_threads_channel::{
    BroadcastChannel, BroadcastTypeError, Installed, IntoIter, Iter, MessageChannel,
    MessageListener, MessagePort, PostError, PostTimeoutError, RecvError, RecvTimeoutError,
    TerminationSignal, TryIter, TryPostError, TryRecvError, receive_message_on_port,
};
#[cfg(all(feature = "process", target_os = "linux"))]
pub use worker_threads_core::process;
pub use worker_threads_core::{
    ContextError, Events, IntoExitCode, Isolation, JoinTimeoutError, Limit, Process, Spawn,
    SpawnError, Thread, Worker, WorkerContext, WorkerError, WorkerEvent, WorkerOptions, exit,
    is_main_thread, is_terminating, parent_port, thread_id, try_exit, try_parent_port,
    try_worker_data, worker_data, worker_name,
};
#[cfg(all(feature = "process", target_os = "linux"))]
pub use worker_threads_pool::process::ProcessPoolBuilder;
pub use worker_threads_pool::{
    Backoff, BuildError, CancelToken, Latency, Map, MapStream, MapUnordered, MapUnorderedStream,
    MaxQueue, Pool, PoolBuilder, PoolEvent, PoolHandle, Retry, RunError, ShutdownTimedOut,
    TaskError, TaskHandle, TaskPool, is_cancelled,
};
#[cfg(feature = "remote")]
pub use worker_threads_remote as remote;
pub use worker_threads_shared::{AllocError, Element, SharedArrayBuffer, ViewError, atomics};
