//! [`RemotePool::map`] and [`RemotePool::map_unordered`], and their streams: tasks sent
//! in chunks (one message holds `chunk_size` tasks), a bounded number of chunks in flight.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::core::{Answer, Core};
use crate::pool::RemotePool;
use crate::wire;
use worker_threads_pool::TaskError;
use worker_threads_wait::block_on;

/// Chunks in flight at most (each is one message in the queue).
const WINDOW: usize = 32;

impl<T, R> RemotePool<T, R>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
{
    /// Runs every task and yields the results in the order of the tasks. Tasks go in
    /// chunks of [`chunk_size`](crate::RemotePoolBuilder::chunk_size), at most 32 chunks
    /// (and at most `max_queue`) in flight, waiting for room when the queue is full; a
    /// worker runs a chunk on its local pool. A chunk that could not be submitted or
    /// answered gives its error for each of its tasks. Dropping the iterator drops the
    /// results still to come (the tasks run).
    pub fn map<I: IntoIterator<Item = T>>(&self, tasks: I) -> RemoteMap<'_, T, R, I::IntoIter> {
        RemoteMap(Ordered::new(self, tasks.into_iter()))
    }

    /// As [`map`](Self::map), yielding each chunk's results as soon as it comes back.
    pub fn map_unordered<I: IntoIterator<Item = T>>(
        &self,
        tasks: I,
    ) -> RemoteMapUnordered<'_, T, R, I::IntoIter> {
        RemoteMapUnordered(Unordered::new(self, tasks.into_iter()))
    }

    /// [`map`](Self::map) as a [`Stream`](futures_util::Stream), for async code under any
    /// executor: the input iterator is read as the stream is polled, and nothing blocks.
    ///
    /// # Cancel safety
    ///
    /// Dropping the stream (or a pending `next()`) loses no task: chunks already submitted
    /// run, and their results are dropped.
    pub fn map_stream<I: IntoIterator<Item = T>>(
        &self,
        tasks: I,
    ) -> RemoteMapStream<'_, T, R, I::IntoIter> {
        RemoteMapStream(Ordered::new(self, tasks.into_iter()))
    }

    /// [`map_unordered`](Self::map_unordered) as a [`Stream`](futures_util::Stream).
    ///
    /// # Cancel safety
    ///
    /// As [`map_stream`](Self::map_stream).
    pub fn map_unordered_stream<I: IntoIterator<Item = T>>(
        &self,
        tasks: I,
    ) -> RemoteMapUnorderedStream<'_, T, R, I::IntoIter> {
        RemoteMapUnorderedStream(Unordered::new(self, tasks.into_iter()))
    }
}

/// The iterator of [`RemotePool::map`]: results in the order of the tasks.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_remote::RemotePool;
///
/// let pool: RemotePool<u64, u64> = RemotePool::builder("nats://127.0.0.1:4222", "square").connect()?;
/// let squares: Vec<u64> = pool.map(0..10_000).collect::<Result<_, _>>()?;
/// assert_eq!(squares[100], 10_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RemoteMap<'p, T, R, I>(Ordered<'p, T, R, I>);

/// The stream of [`RemotePool::map_stream`]: results in the order of the tasks.
///
/// # Examples
///
/// ```no_run
/// use futures_util::StreamExt;
/// use worker_threads_remote::RemotePool;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool: RemotePool<u64, u64> = RemotePool::builder("nats://127.0.0.1:4222", "square").connect()?;
/// let mut squares = pool.map_stream(0..10_000);
/// while let Some(square) = squares.next().await {
///     println!("{}", square?);
/// }
/// # Ok(())
/// # }
/// ```
pub struct RemoteMapStream<'p, T, R, I>(Ordered<'p, T, R, I>);

/// The iterator of [`RemotePool::map_unordered`]: each chunk's results as it comes back.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_remote::RemotePool;
///
/// let pool: RemotePool<u64, u64> = RemotePool::builder("nats://127.0.0.1:4222", "square").connect()?;
/// // Chunks come back as they finish: sum without caring for the order.
/// let total: u64 = pool.map_unordered(0..10_000).map(Result::unwrap).sum();
/// assert_eq!(total, (0..10_000u64).map(|n| n * n).sum::<u64>());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RemoteMapUnordered<'p, T, R, I>(Unordered<'p, T, R, I>);

/// The stream of [`RemotePool::map_unordered_stream`]: each chunk's results as it comes
/// back.
///
/// # Examples
///
/// ```no_run
/// use futures_util::StreamExt;
/// use worker_threads_remote::RemotePool;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool: RemotePool<u64, u64> = RemotePool::builder("nats://127.0.0.1:4222", "square").connect()?;
/// let total: u64 = pool.map_unordered_stream(0..10_000).map(Result::unwrap).fold(0, |a, b| async move { a + b }).await;
/// assert_eq!(total, (0..10_000u64).map(|n| n * n).sum::<u64>());
/// # Ok(())
/// # }
/// ```
pub struct RemoteMapUnorderedStream<'p, T, R, I>(Unordered<'p, T, R, I>);

impl<T, R, I: Unpin> Unpin for RemoteMapStream<'_, T, R, I> {}
impl<T, R, I: Unpin> Unpin for RemoteMapUnorderedStream<'_, T, R, I> {}

impl<T, R, I> Iterator for RemoteMap<'_, T, R, I>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
    I: Iterator<Item = T>,
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        block_on(std::future::poll_fn(|cx| self.0.poll_next(cx)))
    }
}

impl<T, R, I> futures_util::Stream for RemoteMapStream<'_, T, R, I>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
    I: Iterator<Item = T> + Unpin,
{
    type Item = Result<R, TaskError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_next(cx)
    }
}

impl<T, R, I> Iterator for RemoteMapUnordered<'_, T, R, I>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
    I: Iterator<Item = T>,
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        block_on(std::future::poll_fn(|cx| self.0.poll_next(cx)))
    }
}

impl<T, R, I> futures_util::Stream for RemoteMapUnorderedStream<'_, T, R, I>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
    I: Iterator<Item = T> + Unpin,
{
    type Item = Result<R, TaskError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_next(cx)
    }
}

/// Results in the order of the tasks: chunks in a queue, the front one awaited. The
/// iterator blocks on it, the stream polls it.
struct Ordered<'p, T, R, I> {
    flight: Flight<'p, T, R, I>,
    chunks: VecDeque<JoinHandle<Vec<Result<R, TaskError>>>>,
    ready: std::vec::IntoIter<Result<R, TaskError>>,
}

impl<'p, T, R, I> Ordered<'p, T, R, I>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
    I: Iterator<Item = T>,
{
    fn new(pool: &'p RemotePool<T, R>, input: I) -> Self {
        Ordered {
            flight: Flight::new(pool, input),
            chunks: VecDeque::new(),
            ready: Vec::new().into_iter(),
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, TaskError>>> {
        loop {
            if let Some(result) = self.ready.next() {
                return Poll::Ready(Some(result));
            }
            while self.chunks.len() < self.flight.window {
                match self.flight.next_chunk() {
                    Some(chunk) => self.chunks.push_back(chunk),
                    None => break,
                }
            }
            let Some(front) = self.chunks.front_mut() else {
                return Poll::Ready(None);
            };
            let results = std::task::ready!(Pin::new(front).poll(cx));
            self.chunks.pop_front();
            self.ready = joined(results).into_iter();
        }
    }
}

/// Each chunk's results as it comes back: every chunk in flight sends its results to one
/// channel when it resolves.
struct Unordered<'p, T, R, I> {
    flight: Flight<'p, T, R, I>,
    in_flight: usize,
    tx: mpsc::UnboundedSender<Vec<Result<R, TaskError>>>,
    rx: mpsc::UnboundedReceiver<Vec<Result<R, TaskError>>>,
    ready: std::vec::IntoIter<Result<R, TaskError>>,
}

impl<'p, T, R, I> Unordered<'p, T, R, I>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
    I: Iterator<Item = T>,
{
    fn new(pool: &'p RemotePool<T, R>, input: I) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Unordered {
            flight: Flight::new(pool, input),
            in_flight: 0,
            tx,
            rx,
            ready: Vec::new().into_iter(),
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, TaskError>>> {
        loop {
            if let Some(result) = self.ready.next() {
                return Poll::Ready(Some(result));
            }
            while self.in_flight < self.flight.window {
                let Some(chunk) = self.flight.next_chunk() else {
                    break;
                };
                let tx = self.tx.clone();
                self.flight.pool.runtime().spawn(async move {
                    let _ = tx.send(joined(chunk.await));
                });
                self.in_flight += 1;
            }
            if self.in_flight == 0 {
                return Poll::Ready(None);
            }
            match std::task::ready!(self.rx.poll_recv(cx)) {
                Some(results) => {
                    self.in_flight -= 1;
                    self.ready = results.into_iter();
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

/// The part both orders share: the input, and submitting its next chunk.
struct Flight<'p, T, R, I> {
    pool: &'p RemotePool<T, R>,
    input: I,
    window: usize,
}

impl<'p, T, R, I> Flight<'p, T, R, I>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
    I: Iterator<Item = T>,
{
    fn new(pool: &'p RemotePool<T, R>, input: I) -> Self {
        Self {
            window: WINDOW.min(pool.max_queue()).max(1),
            pool,
            input,
        }
    }

    /// Submits the next chunk on the pool's runtime; `None` when the input is done. The
    /// task resolves to one result per item.
    fn next_chunk(&mut self) -> Option<JoinHandle<Vec<Result<R, TaskError>>>> {
        let chunk: Vec<T> = self.input.by_ref().take(self.pool.chunk_size()).collect();
        if chunk.is_empty() {
            return None;
        }
        let items = chunk.len();
        let encoded = wire::encode(&chunk);
        let core: Arc<Core<R>> = Arc::clone(self.pool.core());
        let kind = self.pool.chunk_kind();
        Some(self.pool.runtime().spawn(async move {
            let answer: Answer<R> = match encoded {
                Err(error) => Err(TaskError::BadTask(error)),
                Ok(payload) => match core.submit_wait(payload, kind).await {
                    Ok((_, rx)) => rx.await.unwrap_or(Err(TaskError::Closed)),
                    Err(refusal) => Err(refusal.into_task_error()),
                },
            };
            match answer {
                Ok(results) if results.len() == items => results,
                Ok(results) => {
                    let error = TaskError::BadResult(format!(
                        "a chunk of {items} tasks came back with {} results",
                        results.len()
                    ));
                    (0..items).map(|_| Err(error.clone())).collect()
                }
                Err(error) => (0..items).map(|_| Err(error.clone())).collect(),
            }
        }))
    }
}

fn joined<R>(
    chunk: Result<Vec<Result<R, TaskError>>, tokio::task::JoinError>,
) -> Vec<Result<R, TaskError>> {
    chunk.unwrap_or_else(|_| vec![Err(TaskError::Closed)])
}
