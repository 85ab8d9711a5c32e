//! `Pool::map` and `Pool::map_unordered`: run an iterator's items with bounded in-flight
//! work.
//!
//! Items travel in *chunks*: one queue entry, one hand-off and one result slot for several
//! items, run one after the other by one worker. The chunk size adapts, per map: it
//! doubles (up to `config::MAX_CHUNK`) whenever the oldest chunk had already finished
//! when its results were wanted (the workers are ahead, so the submitting thread is the bottleneck
//! and hand-offs are the cost to cut), and halves (down to 1) whenever the consumer had to
//! wait for it (the work itself is the cost; small chunks spread it over the threads). So
//! a map of cheap items pays one hand-off per up to 64 items, and a map of heavy items
//! behaves as one task per item. Each item still runs on a pool thread, is counted in
//! `completed`, and resolves on its own (a panicking item gives `Err(Panicked)` for that
//! item only).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use worker_threads_wait::Token;

use crate::error::{RunError, TaskError};
use crate::inner::{ChunkHandle, OnFull};
use crate::pool::Pool;
use crate::task::TaskHandle;

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

    /// [`map`](Self::map) as a [`Stream`], for async code: the same chunks, order, bound
    /// and per-item results, without blocking the executor (a chunk that finds the queue
    /// full waits for room as [`run_async`](Self::run_async) does).
    ///
    /// # Cancel safety
    ///
    /// Dropping the stream stops submitting; chunks already submitted still run and
    /// resolve (and count) as accepted tasks do, their results unread.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio_stream::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = worker_threads_pool::Pool::builder().build(|n: u64| n * n)?;
    /// let squares: Vec<u64> = pool.map_stream(1..=4).map(Result::unwrap).collect().await;
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_stream<I: IntoIterator<Item = T>>(
        &self,
        tasks: I,
    ) -> MapStream<'_, T, R, I::IntoIter> {
        MapStream {
            flight: InFlight::new(self, tasks.into_iter(), in_flight_bound(self)),
        }
    }

    /// [`map_unordered`](Self::map_unordered) as a [`Stream`]; see
    /// [`map_stream`](Self::map_stream).
    pub fn map_unordered_stream<I: IntoIterator<Item = T>>(
        &self,
        tasks: I,
    ) -> MapUnorderedStream<'_, T, R, I::IntoIter> {
        MapUnorderedStream {
            flight: InFlight::new(self, tasks.into_iter(), in_flight_bound(self)),
        }
    }
}

/// How many queue entries a map keeps in flight: every thread busy and the queue full.
fn in_flight_bound<T, R>(pool: &Pool<T, R>) -> usize {
    let threads = pool.inner.config.max_threads;
    threads.saturating_add(pool.inner.config.max_queue.unwrap_or(threads))
}

/// What a map waits on: a chunk of items, or one item with the pool's retry policy (each
/// item is tried on its own: a chunk's try would run its other items again).
enum Flight<R> {
    Chunk(ChunkHandle<R>),
    One(TaskHandle<R>),
}

impl<R: Send + 'static> Flight<R> {
    fn is_finished(&self) -> bool {
        match self {
            Self::Chunk(handle) => handle.is_finished(),
            Self::One(handle) => handle.is_finished(),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<Result<R, TaskError>>, TaskError>> {
        match self {
            Self::Chunk(handle) => Pin::new(handle).poll(cx),
            Self::One(handle) => Pin::new(handle).poll(cx).map(|result| Ok(vec![result])),
        }
    }

    fn join(self) -> Result<Vec<Result<R, TaskError>>, TaskError> {
        match self {
            Self::Chunk(handle) => handle.join(),
            Self::One(handle) => Ok(vec![handle.join()]),
        }
    }
}

/// One submitted chunk: its handle (or why it was refused) and how many items it holds.
struct Chunk<R> {
    handle: Result<Flight<R>, TaskError>,
    items: usize,
    /// A stream polled it before it finished (so it was waited for).
    waited: bool,
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
    /// The stream's chunk that found the queue full, to submit first when there is room.
    stash: Option<Vec<T>>,
    /// The stream's registration while it waits for room with nothing in flight.
    room: Option<Token>,
}

impl<'p, T, R, I> InFlight<'p, T, R, I> {
    fn new(pool: &'p Pool<T, R>, tasks: I, limit: usize) -> Self {
        Self {
            pool,
            tasks,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            limit: limit.max(1),
            chunk: pool.inner.config.chunk_bounds().0,
            stash: None,
            room: None,
        }
    }
}

impl<T: Send + 'static, R: Send + 'static, I: Iterator<Item = T>> InFlight<'_, T, R, I> {
    fn fill(&mut self) {
        while self.pending.len() < self.limit {
            let size = self.chunk();
            let tasks: Vec<T> = self.tasks.by_ref().take(size).collect();
            if tasks.is_empty() {
                break;
            }
            let items = tasks.len();
            let handle = match self.submit(tasks, OnFull::Wait) {
                Ok(handle) => Ok(handle),
                // A local pool refuses only when closed (a waiting submit is never full).
                Err(_) => Err(TaskError::Cancelled),
            };
            self.pending.push_back(Chunk {
                handle,
                items,
                waited: false,
            });
        }
    }

    /// Submits chunks without waiting while fewer than `limit` are in flight; true if it
    /// stopped at a full queue (the chunk is kept in `stash`). The stream's `fill`.
    fn try_fill(&mut self) -> bool {
        while self.pending.len() < self.limit {
            let size = self.chunk();
            let tasks = match self.stash.take() {
                Some(tasks) => tasks,
                None => self.tasks.by_ref().take(size).collect(),
            };
            if tasks.is_empty() {
                break;
            }
            let items = tasks.len();
            let handle = match self.submit(tasks, OnFull::Refuse) {
                Ok(handle) => Ok(handle),
                Err(RunError::QueueFull(tasks)) => {
                    self.stash = Some(tasks);
                    return true;
                }
                Err(_) => Err(TaskError::Cancelled),
            };
            self.pending.push_back(Chunk {
                handle,
                items,
                waited: false,
            });
        }
        false
    }

    /// The items of the next chunk: one each under a retry policy.
    fn chunk(&self) -> usize {
        if self.pool.retry.is_some() {
            1
        } else {
            self.chunk
        }
    }

    /// Submits a chunk of items, or (under a retry policy) its one item with the policy.
    fn submit(&self, mut tasks: Vec<T>, on_full: OnFull) -> Result<Flight<R>, RunError<Vec<T>>> {
        let (Some(retry), 1) = (self.pool.retry, tasks.len()) else {
            return self
                .pool
                .inner
                .submit_chunk(tasks, on_full)
                .map(Flight::Chunk);
        };
        let Some(task) = tasks.pop() else {
            unreachable!("one item")
        };
        let deadline = self.pool.inner.default_deadline();
        self.pool
            .inner
            .submit_retrying(task, Some(retry), on_full, deadline, None)
            .map(Flight::One)
            .map_err(|refused| match refused {
                RunError::QueueFull(task) => RunError::QueueFull(vec![task]),
                other => RunError::Closed(vec![other.into_inner()]),
            })
    }

    /// Polls chunk `at`; once it resolved, moves its results into `ready`.
    fn poll_take(&mut self, at: usize, cx: &mut Context<'_>) -> Poll<()> {
        let Some(chunk) = self.pending.get_mut(at) else {
            return Poll::Ready(());
        };
        let (finished, results) = match &mut chunk.handle {
            Ok(handle) => {
                let finished = handle.is_finished() && !chunk.waited;
                match handle.poll(cx) {
                    Poll::Pending => {
                        chunk.waited = true;
                        return Poll::Pending;
                    }
                    Poll::Ready(results) => (Some(finished), results),
                }
            }
            Err(error) => (None, Err(error.clone())),
        };
        let items = chunk.items;
        self.pending.remove(at);
        self.settle(finished, results, items);
        Poll::Ready(())
    }

    /// Joins chunk `at` into `ready`, adapting the chunk size to whether it had finished.
    fn take(&mut self, at: usize) {
        let Some(Chunk { handle, items, .. }) = self.pending.remove(at) else {
            return;
        };
        match handle {
            Ok(handle) => {
                let finished = handle.is_finished();
                self.settle(Some(finished), handle.join(), items);
            }
            Err(error) => self.settle(None, Err(error), items),
        }
    }

    /// Moves a resolved chunk's results into `ready`. The chunk size doubles if the chunk
    /// had finished before it was waited for (the threads are ahead) and halves if not.
    fn settle(
        &mut self,
        finished: Option<bool>,
        results: Result<Vec<Result<R, TaskError>>, TaskError>,
        items: usize,
    ) {
        match finished {
            Some(true) => {
                self.chunk = (self.chunk * 2).min(self.pool.inner.config.chunk_bounds().1)
            }
            Some(false) => {
                self.chunk = (self.chunk / 2).max(self.pool.inner.config.chunk_bounds().0)
            }
            None => {}
        }
        match results {
            Ok(results) => self.ready.extend(results),
            Err(error) => self
                .ready
                .extend(std::iter::repeat_n(error, items).map(Err)),
        }
    }
}

/// The iterator of [`Pool::map`]: results in submission order.
///
/// # Examples
///
/// ```
/// let pool = worker_threads_pool::Pool::builder().build(|n: u64| n + 1)?;
/// let map = pool.map(0..1000);
/// assert_eq!(map.map(Result::unwrap).sum::<u64>(), 500_500);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// # Examples
///
/// ```
/// let pool = worker_threads_pool::Pool::builder().build(|n: u64| n * 2)?;
/// let mut doubled: Vec<u64> = pool.map_unordered(0..100).map(Result::unwrap).collect();
/// doubled.sort_unstable();
/// assert_eq!(doubled, (0..100).map(|n| n * 2).collect::<Vec<_>>());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
                .position(|chunk| chunk.handle.as_ref().map_or(true, Flight::is_finished))
                .unwrap_or(0);
            self.flight.take(at);
            self.flight.fill();
        }
        self.flight.ready.pop_front()
    }
}

// The streams never pin what they hold: items and results sit in `Vec`s and
// `VecDeque`s and are moved freely, so the maps are `Unpin` whatever `T` and `R` are.
impl<T, R, I: Unpin> Unpin for MapStream<'_, T, R, I> {}
impl<T, R, I: Unpin> Unpin for MapUnorderedStream<'_, T, R, I> {}

/// The stream of [`Pool::map_stream`]: results in submission order. (A type of its own,
/// not `Map`, so that `StreamExt` and `Iterator` adapters never clash on one value.)
///
/// # Examples
///
/// ```
/// use tokio_stream::StreamExt;
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// let pool = worker_threads_pool::Pool::builder().build(|n: u64| n * n)?;
/// let squares: Vec<u64> = runtime.block_on(pool.map_stream(1..=3).map(Result::unwrap).collect());
/// assert_eq!(squares, [1, 4, 9]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MapStream<'p, T, R, I> {
    flight: InFlight<'p, T, R, I>,
}

/// The stream of [`Pool::map_unordered_stream`]: results roughly as they finish.
///
/// # Examples
///
/// ```
/// use tokio_stream::StreamExt;
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// let pool = worker_threads_pool::Pool::builder().build(|n: u64| n * n)?;
/// let stream = pool.map_unordered_stream(1..=3).map(Result::unwrap);
/// let mut squares: Vec<u64> = runtime.block_on(stream.collect());
/// squares.sort_unstable();
/// assert_eq!(squares, [1, 4, 9]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MapUnorderedStream<'p, T, R, I> {
    flight: InFlight<'p, T, R, I>,
}

/// The results in submission order, as the iterator gives them, without blocking the
/// executor: items are submitted without waiting (a chunk that finds the queue full waits
/// for room as `run_async` does), and each chunk's handle is awaited.
impl<T, R, I> Stream for MapStream<'_, T, R, I>
where
    T: Send + 'static,
    R: Send + 'static,
    I: Iterator<Item = T> + Unpin,
{
    type Item = Result<R, TaskError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // The oldest chunk, always: results in submission order.
        self.get_mut().flight.poll_next_result(cx, |_| Some(0))
    }
}

/// The results roughly as they finish, as the iterator gives them, without blocking the
/// executor.
impl<T, R, I> Stream for MapUnorderedStream<'_, T, R, I>
where
    T: Send + 'static,
    R: Send + 'static,
    I: Iterator<Item = T> + Unpin,
{
    type Item = Result<R, TaskError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // A finished chunk if there is one, else whichever finishes first.
        self.get_mut().flight.poll_next_result(cx, |pending| {
            pending
                .iter()
                .position(|chunk| chunk.handle.as_ref().map_or(true, Flight::is_finished))
        })
    }
}

impl<T: Send + 'static, R: Send + 'static, I: Iterator<Item = T>> InFlight<'_, T, R, I> {
    /// A stream's `poll_next`: the next ready result, making progress with `pick` (see
    /// [`poll_progress`](Self::poll_progress)) until there is one or nothing is left.
    fn poll_next_result(
        &mut self,
        cx: &mut Context<'_>,
        pick: impl Fn(&VecDeque<Chunk<R>>) -> Option<usize>,
    ) -> Poll<Option<Result<R, TaskError>>> {
        loop {
            if let Some(result) = self.ready.pop_front() {
                return Poll::Ready(Some(result));
            }
            if self.poll_progress(cx, &pick).is_pending() {
                return Poll::Pending;
            }
            if self.pending.is_empty() && self.ready.is_empty() && self.stash.is_none() {
                return Poll::Ready(None);
            }
        }
    }

    /// One step of a stream: submit what fits, then poll the chunk `pick` chooses (or, if
    /// it chooses none, every chunk in flight until one resolves). Ready when `ready` got
    /// results, or when there is nothing left in flight and nothing left to submit.
    fn poll_progress(
        &mut self,
        cx: &mut Context<'_>,
        pick: impl Fn(&VecDeque<Chunk<R>>) -> Option<usize>,
    ) -> Poll<()> {
        let full = self.try_fill();
        if self.pending.is_empty() {
            if !full {
                return Poll::Ready(());
            }
            // Nothing in flight and the queue full (others fill it): wait for room.
            let inner = &self.pool.inner;
            if inner
                .handoff
                .poll_room(|| inner.has_room(), &mut self.room, cx)
                .is_pending()
            {
                return Poll::Pending;
            }
            return Poll::Ready(());
        }
        if let Some(at) = pick(&self.pending) {
            return self.poll_take(at, cx);
        }
        for at in 0..self.pending.len() {
            if self.poll_take(at, cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

impl<T, R, I> Drop for InFlight<'_, T, R, I> {
    /// A stream dropped while it waited for room withdraws its registration.
    fn drop(&mut self) {
        self.pool.inner.handoff.forget_room(&mut self.room);
    }
}

impl<T, R, I> InFlight<'_, T, R, I> {
    /// The `Debug` of the iterators and streams over it, named `name`.
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("chunks_in_flight", &self.pending.len())
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl<T, R, I> fmt::Debug for Map<'_, T, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.flight.debug("Map", f)
    }
}

impl<T, R, I> fmt::Debug for MapUnordered<'_, T, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.flight.debug("MapUnordered", f)
    }
}

impl<T, R, I> fmt::Debug for MapStream<'_, T, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.flight.debug("MapStream", f)
    }
}

impl<T, R, I> fmt::Debug for MapUnorderedStream<'_, T, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.flight.debug("MapUnorderedStream", f)
    }
}
