//! The primitives everything here is built on: std's, or loom's under
//! `--cfg worker_threads_loom` (see the crate doc).

#[cfg(not(worker_threads_loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};

#[cfg(worker_threads_loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};

/// Threads: std's, or loom's under `--cfg worker_threads_loom`.
pub mod thread {
    #[cfg(not(worker_threads_loom))]
    pub use std::thread::{spawn, yield_now};

    #[cfg(worker_threads_loom)]
    pub use loom::thread::{spawn, yield_now};
}
