//! `Pool::map` and `Pool::map_unordered`: run an iterator's items with bounded in-flight
//! work.
//!
//! Items travel in *chunks*: one queue entry, one hand-off and one result slot for several
//! items, run one after the other by one worker. The chunk size adapts, per map: it
//! doubles (up to [`MAX_CHUNK`]) whenever the oldest chunk had already finished when its
//! results were wanted (the workers are ahead, so the submitting thread is the bottleneck
//! and hand-offs are the cost to cut), and halves (down to 1) whenever the consumer had to
//! wait for it (the work itself is the cost; small chunks spread it over the threads). So
//! a map of cheap items pays one hand-off per up to 64 items, and a map of heavy items
//! behaves as one task per item. Each item still runs on a pool thread, is counted in
//! `completed`, and resolves on its own (a panicking item gives `Err(Panicked)` for that
//! item only).

use std::collections::VecDeque;
use std::fmt;

use crate::error::{RunError, TaskError};
use crate::inner::ChunkHandle;
use crate::pool::Pool;
use crate::task::TaskHandle;

/// The largest chunk of a map.
pub(crate) const MAX_CHUNK: usize = 64;

impl<T: Send + 'static, R: Send + 'static> Pool<T, R> {
    /// Runs every item of `tasks` and yields the results in order, keeping at most
    /// `max_threads + max_queue` queue entries in flight (so memory stays flat however long
    /// the iterator). An item the closed pool refused yields `Err(Cancelled)`.
    ///
    /// Items are handed to the threads in chunks (one queue entry for up to 64 items, run
    /// in order by one thread), sized as the map goes: chunks grow while the threads keep
    /// ahead of the consumer and shrink to single items when the consumer waits on them.
    /// So cheap items pay one hand-off per chunk, while expensive ones are spread one per
    /// thread as with [`run`](Self::run). Each item still resolves on its own (a panicking
    /// item gives `Err(Panicked)` for that item, and its thread is replaced after the
    /// chunk; the rest of its chunk runs on a fresh `init` state) and counts in
    /// [`completed`](Self::completed) and the histograms. `queue_size` counts chunks.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = worker_threads_pool::Pool::builder().build(|n: u64| n * n)?;
    /// let squares: Vec<u64> = pool.map(1..=4).map(Result::unwrap).collect();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<I: IntoIterator<Item = T>>(&self, tasks: I) -> Map<'_, T, R, I::IntoIter> {
        Map::new(self, tasks.into_iter(), in_flight_bound(self))
    }

    /// As [`map`](Self::map), yielding results as they finish (roughly), not in order.
    pub fn map_unordered<I: IntoIterator<Item = T>>(
        &self,
        tasks: I,
    ) -> MapUnordered<'_, T, R, I::IntoIter> {
        MapUnordered::new(self, tasks.into_iter(), in_flight_bound(self))
    }
}

/// How many queue entries a map keeps in flight: every thread busy and the queue full.
fn in_flight_bound<T, R>(pool: &Pool<T, R>) -> usize {
    let threads = pool.inner.config.max_threads;
    threads.saturating_add(pool.inner.config.max_queue.unwrap_or(threads))
}

/// One submitted chunk: its handle (or why it was refused) and how many items it holds.
struct Chunk<R> {
    handle: Result<ChunkHandle<R>, TaskError>,
    items: usize,
}

/// Keeps up to `limit` chunks of `tasks` in flight on `pool`.
struct InFlight<'p, T, R, I> {
    pool: &'p Pool<T, R>,
    tasks: I,
    pending: VecDeque<Chunk<R>>,
    /// Results of a chunk already joined, waiting to be yielded.
    ready: VecDeque<Result<R, TaskError>>,
    limit: usize,
    chunk: usize,
}

impl<'p, T, R, I> InFlight<'p, T, R, I> {
    fn new(pool: &'p Pool<T, R>, tasks: I, limit: usize) -> Self {
        Self {
            pool,
            tasks,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            limit: limit.max(1),
            chunk: 1,
        }
    }
}

impl<T: Send + 'static, R: Send + 'static, I: Iterator<Item = T>> InFlight<'_, T, R, I> {
    fn fill(&mut self) {
        while self.pending.len() < self.limit {
            let tasks: Vec<T> = self.tasks.by_ref().take(self.chunk).collect();
            if tasks.is_empty() {
                break;
            }
            let items = tasks.len();
            let handle = match self.pool.inner.submit_chunk(tasks) {
                Ok(handle) => Ok(handle),
                Err(RunError::Closed(_) | RunError::QueueFull(_)) => Err(TaskError::Cancelled),
            };
            self.pending.push_back(Chunk { handle, items });
        }
    }

    /// Joins chunk `at` into `ready`, adapting the chunk size to whether it had finished.
    fn take(&mut self, at: usize) {
        let Some(Chunk { handle, items }) = self.pending.remove(at) else {
            return;
        };
        let results = match handle {
            Ok(handle) => {
                self.chunk = if handle.is_finished() {
                    (self.chunk * 2).min(MAX_CHUNK)
                } else {
                    (self.chunk / 2).max(1)
                };
                handle.join()
            }
            Err(error) => Err(error),
        };
        match results {
            Ok(results) => self.ready.extend(results),
            Err(error) => self
                .ready
                .extend(std::iter::repeat_n(error, items).map(Err)),
        }
    }
}

/// The iterator of [`Pool::map`]: results in submission order.
pub struct Map<'p, T, R, I> {
    flight: InFlight<'p, T, R, I>,
}

impl<'p, T, R, I> Map<'p, T, R, I> {
    pub(crate) fn new(pool: &'p Pool<T, R>, tasks: I, limit: usize) -> Self {
        Self {
            flight: InFlight::new(pool, tasks, limit),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static, I: Iterator<Item = T>> Iterator for Map<'_, T, R, I> {
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.flight.ready.is_empty() {
            self.flight.fill();
            self.flight.take(0);
            // Keep the workers busy while these results are consumed.
            self.flight.fill();
        }
        self.flight.ready.pop_front()
    }
}

/// The iterator of [`Pool::map_unordered`]: results roughly as they finish.
pub struct MapUnordered<'p, T, R, I> {
    flight: InFlight<'p, T, R, I>,
}

impl<'p, T, R, I> MapUnordered<'p, T, R, I> {
    pub(crate) fn new(pool: &'p Pool<T, R>, tasks: I, limit: usize) -> Self {
        Self {
            flight: InFlight::new(pool, tasks, limit),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static, I: Iterator<Item = T>> Iterator
    for MapUnordered<'_, T, R, I>
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.flight.ready.is_empty() {
            self.flight.fill();
            // The first finished chunk, else the oldest (waiting for it).
            let at = self
                .flight
                .pending
                .iter()
                .position(|chunk| chunk.handle.as_ref().map_or(true, TaskHandle::is_finished))
                .unwrap_or(0);
            self.flight.take(at);
            self.flight.fill();
        }
        self.flight.ready.pop_front()
    }
}

impl<T, R, I> fmt::Debug for Map<'_, T, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("chunks_in_flight", &self.flight.pending.len())
            .field("chunk", &self.flight.chunk)
            .finish_non_exhaustive()
    }
}

impl<T, R, I> fmt::Debug for MapUnordered<'_, T, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapUnordered")
            .field("chunks_in_flight", &self.flight.pending.len())
            .field("chunk", &self.flight.chunk)
            .finish_non_exhaustive()
    }
}
