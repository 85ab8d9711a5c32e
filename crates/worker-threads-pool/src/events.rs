//! `PoolEvent`: what piscina emits, for a hook set with `PoolBuilder::on_event`.

/// An event of a pool's life (piscina's `'drain'`, `'needsDrain'`, `'workerCreate'`,
/// `'workerDestroy'`, `'error'`).
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use worker_threads_pool::{Pool, PoolEvent};
///
/// let created = Arc::new(Mutex::new(0));
/// let count = Arc::clone(&created);
/// let pool = Pool::builder()
///     .min_threads(2)
///     .max_threads(2)
///     .on_event(move |event| {
///         if let PoolEvent::WorkerCreated { .. } = event {
///             *count.lock().unwrap() += 1;
///         }
///     })
///     .build(|n: u32| n)?;
/// assert_eq!(*created.lock().unwrap(), 2);
/// # drop(pool);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// The queue went from non-empty to empty.
    Drain,
    /// The queue became full: submitters should wait for `Drain`.
    NeedsDrain,
    /// A pool thread started (at build, on growth, or replacing one whose task panicked).
    WorkerCreated {
        /// The thread's name.
        name: String,
    },
    /// A pool thread ended (idle above `min_threads`, after a panic, or at close).
    WorkerDestroyed {
        /// The thread's name.
        name: String,
    },
    /// Something went wrong outside any one task (a refused thread, a panicking `init`).
    Error(String),
}
