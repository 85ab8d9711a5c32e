//! What a running pool is configured with: the builder's choices, resolved.

use std::sync::Arc;
use std::time::Duration;

use crate::events::PoolEvent;

/// The hook that receives every [`PoolEvent`].
pub(crate) type EventHook = Arc<dyn Fn(&PoolEvent) + Send + Sync>;

/// The resolved configuration a pool runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) min_threads: usize,
    pub(crate) max_threads: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_queue: Option<usize>,
    pub(crate) name: String,
    pub(crate) stack_size: Option<usize>,
    /// The deadline of every task submitted with `run`, `run_wait` or `run_async`, and of
    /// every `map` item.
    pub(crate) task_timeout: Option<Duration>,
    /// Tasks an async pool thread drives at once (`concurrent_tasks_per_worker`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) concurrency: usize,
    /// The smallest and the largest chunk `map` hands over: (1, 64) in a thread pool,
    /// larger in a process pool, where a chunk is a round trip to another process.
    pub(crate) chunks: (usize, usize),
}

/// The largest chunk of a thread pool's map.
pub(crate) const MAX_CHUNK: usize = 64;

impl Config {
    /// The smallest and largest chunk of a map: one item each when tasks have a
    /// `task_timeout` (a chunk's deadline would cover the items queued behind it in it).
    pub(crate) fn chunk_bounds(&self) -> (usize, usize) {
        if self.task_timeout.is_some() {
            (1, 1)
        } else {
            self.chunks
        }
    }
}
