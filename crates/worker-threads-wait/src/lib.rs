//! The waiting and hand-off machinery the worker-threads crates share: the closable
//! lock-free queues under ports and pools ([`queue::List`], [`queue::Array`]), a pool
//! task's exactly-once hand-off ([`TaskCell`]), who sleeps on them and how they are woken
//! ([`Waiters`], [`Parker`]), poison-tolerant locks and condvar waits ([`lock`],
//! [`wait`], [`wait_until`]), deadlines that cannot overflow ([`Deadline`]),
//! spin-then-park ([`spin_while`], [`SpinWait`], [`snooze_until`], [`Backoff`]), and panic
//! messages ([`panic_message`]), and the blocking bridge to a future ([`block_on`]).
//!
//! An internal crate of [worker-threads](https://docs.rs/worker-threads): its API follows
//! what the other crates need, with no stability promise.
//!
//! # A queue and its sleepers
//!
//! The shape every blocking receive in the workspace has: try the lock-free queue, and
//! only when it is empty register, look again, and sleep until a push wakes you.
//!
//! ```
//! use std::sync::Arc;
//! use worker_threads_wait::queue::{List, PopError};
//! use worker_threads_wait::{Deadline, Waiters};
//!
//! struct Channel {
//!     queue: List<u64>,
//!     not_empty: Waiters,
//! }
//!
//! impl Channel {
//!     fn send(&self, value: u64) {
//!         self.queue.push(value).expect("open");
//!         self.not_empty.notify_one();
//!     }
//!
//!     fn recv(&self) -> Option<u64> {
//!         loop {
//!             match self.queue.pop() {
//!                 Ok(value) => return Some(value),
//!                 Err(PopError::Closed) => return None,
//!                 Err(PopError::Empty) => {
//!                     let ready = || self.queue.is_ready() || self.queue.is_closed();
//!                     self.not_empty.wait_until(ready, Deadline::Never);
//!                 }
//!             }
//!         }
//!     }
//! }
//!
//! let channel = Arc::new(Channel { queue: List::new(), not_empty: Waiters::new() });
//! let sender = {
//!     let channel = Arc::clone(&channel);
//!     std::thread::spawn(move || (1..=100).for_each(|n| channel.send(n)))
//! };
//! let sum: u64 = (0..100).map(|_| channel.recv().expect("a value")).sum();
//! assert_eq!(sum, 5050);
//! sender.join().unwrap();
//! ```
//!
//! # The loom switch
//!
//! Built with `RUSTFLAGS="--cfg worker_threads_loom"`, [`sync`] is loom's (atomics, cells,
//! locks, condvars, threads, `Arc`), and spinning yields to loom's scheduler: the loom
//! models in this crate's tests, and in the crates that build on it, then explore this
//! code itself rather than a copy of it. A cfg of our own (not `cfg(loom)`), so that
//! crates that know `cfg(loom)` (tokio) are not switched with ours.
// Unsafe code lives in three modules: `queue` and `task_cell` (cells written and read only
// by the thread whose state transition owns them) and `clock` (one libc call); everything
// else here is safe.
#![deny(unsafe_code)]

mod block;
#[allow(unsafe_code)]
mod clock;
mod deadline;
mod lock;
mod panic;
#[allow(unsafe_code)]
pub mod queue;
mod spin;
pub mod sync;
#[allow(unsafe_code)]
mod task_cell;
mod waiters;

pub use block::block_on;
pub use clock::Stamp;
pub use deadline::Deadline;
pub use lock::{Unpoison, lock, wait, wait_until};
pub use panic::panic_message;
pub use spin::{Backoff, SpinWait, snooze_until, spin_while, yield_for};
pub use task_cell::{Cancel, Resolution, TaskCell};
pub use waiters::{Joiner, Parker, Token, Until, Waiters};
