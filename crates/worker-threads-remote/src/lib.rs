//! The worker-threads pool past one machine: tasks go into a NATS JetStream work queue,
//! and workers on any machine serve it, each with a local
//! [`Pool`](worker_threads_pool::Pool).
//!
//! ```no_run
//! use worker_threads_pool::{MaxQueue, Pool};
//! use worker_threads_remote::{RemotePool, RemoteWorker};
//!
//! // On each worker machine: a local pool with a deep queue behind the queue.
//! let local = Pool::builder().max_queue(MaxQueue::Bounded(256)).build(|n: f64| n.sqrt())?;
//! let worker = RemoteWorker::builder("nats://127.0.0.1:4222", "sqrt").serve(local)?;
//!
//! // On the submitting machine: the pool's surface.
//! let pool: RemotePool<f64, f64> =
//!     RemotePool::builder("nats://127.0.0.1:4222", "sqrt").connect()?;
//! assert_eq!(pool.run(9.0)?.join()?, 3.0);
//! let roots: Vec<f64> = pool.map((0..10_000).map(f64::from)).collect::<Result<_, _>>()?;
//! assert_eq!(roots[16], 4.0);
//! worker.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What holds
//!
//! - **At-least-once execution, exactly-once resolution.** A worker answers a task, then
//!   acknowledges it; one that dies before has the task delivered again after the queue's
//!   `ack_wait`. A second answer for a task is dropped at the submitter, so each
//!   [`RemoteHandle`] resolves once. A task runs twice when its worker died after running
//!   it, or when its answer was lost while its submitter was disconnected.
//! - **A dead worker costs under 2 s.** `ack_wait` is 1.5 s by default: every message
//!   a worker holds (running, or waiting for room in its local pool) is acknowledged as in
//!   progress every fifth of it, so a long task is not delivered again while it runs, and
//!   the tasks of a worker that was killed go to another within `ack_wait` (JetStream's
//!   own default is 30 s). A worker pulls only as many messages as it has room for, and one
//!   that stops hands back those it had not started at once.
//! - **A bounded queue.** The stream holds at most `max_queue` messages (discard-new): a
//!   full queue refuses the publish and [`RunError::QueueFull`] hands the task back.
//!   [`RemotePool::wait_drain`] returns when the queue is empty.
//! - **Poison tasks end.** A task delivered `max_deliver` times without an answer (its
//!   workers died) resolves [`TaskError::MaxDeliveries`] and is removed. A handler's
//!   panic is that task's [`TaskError::Panicked`], not a redelivery.
//! - **Cancel** resolves the handle `Cancelled` at once, removes a queued task from the
//!   stream and tells the worker running one.
//! - **A lost connection costs nothing.** The client reconnects; the queue (kept in files
//!   by default) survives a server restart; a submission while the server is away is
//!   tried again with the same message id until stored once (or its `publish_timeout`
//!   passes, and the task is handed back). Once back, the pool publishes again each
//!   pending task that left the queue while its answer could not reach the pool (it runs
//!   twice). Pending handles fail [`TaskError::Disconnected`] only when the connection
//!   stays lost longer than [`reconnect_timeout`](RemotePoolBuilder::reconnect_timeout)
//!   (30 s by default). Nothing hangs.
//! - Results come back on a subject only their submitter reads
//!   (`wt.<queue>.results.<submitter>`).
#![forbid(unsafe_code)]

mod body;
mod connect;
mod core;
mod error;
mod handle;
mod held;
mod map;
mod pool;
mod queue;
mod runtime;
mod task_pool;
mod wire;
mod worker;

pub use crate::error::{ConnectError, ServeError};
pub use crate::handle::RemoteHandle;
pub use crate::map::{RemoteMap, RemoteMapStream, RemoteMapUnordered, RemoteMapUnorderedStream};
pub use crate::pool::{RemotePool, RemotePoolBuilder};
pub use crate::queue::QueueConfig;
pub use crate::worker::{RemoteWorker, RemoteWorkerBuilder};
/// The NATS client, for [`ConnectOptions`](async_nats::ConnectOptions) (credentials, TLS).
pub use async_nats;
pub use worker_threads_pool::{Backoff, Retry, RunError, TaskError};
