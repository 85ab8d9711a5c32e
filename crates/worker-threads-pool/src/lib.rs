//! A piscina-style worker pool for Rust threads: a bounded task queue, drain,
//! cancellation, per-thread state, and statistics.
//!
//! # Running tasks
//!
//! A [`Pool`] runs a handler for each task on one of its threads. [`Pool::run`] returns a
//! [`TaskHandle`] to `join` (or `.await`).
//!
//! ```
//! use worker_threads_pool::Pool;
//!
//! let pool = Pool::builder().build(|n: f64| n.sqrt())?;
//! assert_eq!(pool.run(9.0)?.join()?, 3.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A bounded queue, and back-pressure
//!
//! The queue holds at most `max_threads²` tasks by default ([`MaxQueue::Auto`]). The Node
//! chapter's submission loop (submit until `queue_size() == max_queue()`, then wait for
//! drain) works as written, and cannot hang: [`Pool::wait_drain`] returns when the queue
//! goes from non-empty to empty.
//!
//! ```
//! use worker_threads_pool::Pool;
//!
//! let pool = Pool::builder().build(|n: f64| n.sqrt())?;
//! let mut handles = Vec::new();
//! for i in 0..1000 {
//!     if pool.queue_size() == pool.max_queue() {
//!         pool.wait_drain();
//!     }
//!     handles.push(pool.run(f64::from(i))?);
//! }
//! for handle in handles {
//!     assert!(handle.join()?.is_finite());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The easy path does it for you: [`Pool::map`] keeps a bounded number of tasks in flight,
//! [`Pool::run_wait`] and [`Pool::run_async`] wait for room.
//!
//! # Exactly once
//!
//! A task the pool accepted resolves exactly once: its value, [`TaskError::Panicked`]
//! (the handler panicked; the thread is replaced, the pool keeps its size), or
//! [`TaskError::Cancelled`] ([`TaskHandle::cancel`], or [`Pool::destroy`]). A task that
//! was not accepted comes back in the [`RunError`].
//!
//! # Cancellation
//!
//! Cancelling a queued task removes it at once. A running task sees [`is_cancelled`] turn
//! true and may stop early; its thread is never killed (piscina kills it).
//!
//! # Statistics and events
//!
//! [`Pool::completed`], [`Pool::utilization`], [`Pool::run_time`] and [`Pool::wait_time`]
//! (hdrhistogram percentiles), and a hook for [`PoolEvent`]s.
#![forbid(unsafe_code)]

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod builder;
mod config;
mod error;
mod events;
mod inner;
mod map;
mod pool;
#[cfg(all(feature = "process", target_os = "linux"))]
pub mod process;
mod retry;
mod signal;
mod stats;
mod task;
mod task_pool;

pub use crate::builder::{MaxQueue, PoolBuilder};
pub use crate::error::{BuildError, RunError, ShutdownTimedOut, TaskError};
pub use crate::events::PoolEvent;
pub use crate::map::{Map, MapStream, MapUnordered, MapUnorderedStream};
pub use crate::pool::Pool;
pub use crate::retry::{Backoff, Retry};
pub use crate::signal::CancelToken;
pub use crate::stats::Latency;
pub use crate::task::{TaskHandle, is_cancelled};
pub use crate::task_pool::{PoolHandle, TaskPool};
