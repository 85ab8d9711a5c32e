//! The waiting and hand-off machinery the worker-threads crates share: the closable
//! lock-free queues under ports and pools ([`queue::List`], [`queue::Array`]), a pool
//! task's exactly-once hand-off ([`TaskCell`]), who sleeps on them and how they are woken
//! ([`Waiters`], [`Parker`]), poison-tolerant locks and condvar waits ([`lock`],
//! [`wait`], [`wait_until`]), deadlines that cannot overflow ([`Deadline`]),
//! spin-then-park ([`spin_while`], [`SpinWait`], [`snooze_until`], [`Backoff`]), and panic
//! messages ([`panic_message`]).
//!
//! An internal crate of [worker-threads](https://docs.rs/worker-threads): its API follows
//! what the other crates need, with no stability promise.
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

pub use clock::Stamp;
pub use deadline::Deadline;
pub use lock::{lock, wait, wait_until};
pub use panic::panic_message;
pub use spin::{Backoff, SpinWait, snooze_until, spin_while};
pub use task_cell::{Cancel, Resolution, TaskCell};
pub use waiters::{Joiner, Parker, Token, Until, Waiters};
