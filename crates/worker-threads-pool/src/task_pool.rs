//! [`TaskPool`] and [`PoolHandle`]: the surface every pool shares, so code can be generic
//! over a thread pool, a process pool and a pool past one machine.

use std::future::Future;
use std::sync::Arc;

use futures_core::Stream;

use crate::{Pool, RunError, TaskError, TaskHandle};

/// What every pool does: a [`Pool`] of threads, of async handlers or of processes, and a
/// `RemotePool` (the `worker-threads-remote` crate) whose tasks run on other machines.
/// The methods mean what the inherent methods of the same names mean on each; where a
/// meaning differs (a remote `queue_size` counts every submitter's queued and running
/// tasks), the pool's own doc says so.
///
/// Write the work once and choose the pool where it is built:
///
/// ```
/// use worker_threads_pool::{Pool, PoolHandle, TaskError, TaskPool};
///
/// /// The Node chapter's loop: submit until the queue is full, wait for it to drain.
/// fn sum_of_roots<P: TaskPool<f64, f64>>(pool: &P, tasks: u32) -> Result<f64, TaskError> {
///     let mut handles = Vec::new();
///     for i in 0..tasks {
///         if pool.queue_size() >= pool.max_queue() {
///             pool.wait_drain();
///         }
///         handles.push(pool.run(f64::from(i)).expect("the pool is open"));
///     }
///     handles.into_iter().map(PoolHandle::join).sum()
/// }
///
/// let pool = Pool::builder().build(|n: f64| n.sqrt())?;
/// assert_eq!(sum_of_roots(&pool, 5)?, 0.0 + 1.0 + 2f64.sqrt() + 3f64.sqrt() + 2.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait TaskPool<T, R> {
    /// The handle of an accepted task.
    type Handle: PoolHandle<R>;

    /// Submits `task` if the queue has room.
    ///
    /// # Errors
    ///
    /// [`RunError`], with the task: `QueueFull`, `Closed` (and, for a pool whose tasks
    /// cross the network, `Encode` or `Transport`).
    fn run(&self, task: T) -> Result<Self::Handle, RunError<T>>;

    /// Submits `task`, waiting for room in the queue.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run), except `QueueFull`.
    fn run_wait(&self, task: T) -> Result<Self::Handle, RunError<T>>;

    /// Submits `task`, awaiting room in the queue, under any executor.
    ///
    /// # Errors
    ///
    /// As [`run_wait`](Self::run_wait).
    fn run_async(&self, task: T) -> impl Future<Output = Result<Self::Handle, RunError<T>>>;

    /// Runs every task and yields the results in the order of the tasks, a bounded number
    /// in flight.
    fn map<I>(&self, tasks: I) -> impl Iterator<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>;

    /// As [`map`](Self::map), yielding results as they finish.
    fn map_unordered<I>(&self, tasks: I) -> impl Iterator<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>;

    /// [`map`](Self::map) as a [`Stream`], for async code.
    fn map_stream<I>(&self, tasks: I) -> impl Stream<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Unpin;

    /// [`map_unordered`](Self::map_unordered) as a [`Stream`].
    fn map_unordered_stream<I>(&self, tasks: I) -> impl Stream<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Unpin;

    /// Tasks waiting in the queue.
    fn queue_size(&self) -> usize;

    /// The queue's bound.
    fn max_queue(&self) -> usize;

    /// True when the queue is full.
    fn needs_drain(&self) -> bool;

    /// Waits until the queue is empty.
    fn wait_drain(&self);

    /// [`wait_drain`](Self::wait_drain) under any executor.
    fn drained(&self) -> impl Future<Output = ()>;

    /// Refuses new tasks and waits until every accepted task resolved.
    fn close(&self);

    /// Refuses new tasks and cancels every accepted one (each resolves `Cancelled`).
    fn destroy(&self);

    /// True once [`close`](Self::close) or [`destroy`](Self::destroy) was called.
    fn is_closed(&self) -> bool;
}

/// What every task handle does: a [`TaskHandle`], and a `RemoteHandle` (the
/// `worker-threads-remote` crate). A handle resolves exactly once; `.await` it under any
/// executor, or [`join`](Self::join) it.
///
/// # Examples
///
/// ```
/// use worker_threads_pool::{Pool, PoolHandle, TaskError};
///
/// /// Waits for the first handle and cancels the rest, whatever the pool.
/// fn first_of<R, H: PoolHandle<R>>(mut handles: Vec<H>) -> Result<R, TaskError> {
///     let first = handles.remove(0);
///     for rest in &handles {
///         rest.cancel_with("not needed");
///     }
///     first.join()
/// }
///
/// let pool = Pool::builder().build(|n: u32| n)?;
/// let handles = vec![pool.run(1)?, pool.run(2)?];
/// assert_eq!(first_of(handles), Ok(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait PoolHandle<R>: Future<Output = Result<R, TaskError>> {
    /// Waits for the task and returns its value.
    ///
    /// # Errors
    ///
    /// [`TaskError`]: how the task failed to give a value.
    fn join(self) -> Result<R, TaskError>;

    /// True once the task has resolved.
    fn is_finished(&self) -> bool;

    /// Cancels the task; false if it had already resolved.
    fn cancel(&self) -> bool;

    /// [`cancel`](Self::cancel), giving a reason that
    /// [`cancel_reason`](Self::cancel_reason) returns afterwards.
    fn cancel_with(&self, reason: impl Into<Arc<str>>) -> bool;

    /// The reason of the first cancel that took effect, if it gave one.
    fn cancel_reason(&self) -> Option<Arc<str>>;

    /// The task's id in its pool (increasing in submission order).
    fn id(&self) -> u64;
}

impl<T: Send + 'static, R: Send + 'static> TaskPool<T, R> for Pool<T, R> {
    type Handle = TaskHandle<R>;

    fn run(&self, task: T) -> Result<TaskHandle<R>, RunError<T>> {
        Pool::run(self, task)
    }

    fn run_wait(&self, task: T) -> Result<TaskHandle<R>, RunError<T>> {
        Pool::run_wait(self, task)
    }

    fn run_async(&self, task: T) -> impl Future<Output = Result<TaskHandle<R>, RunError<T>>> {
        Pool::run_async(self, task)
    }

    fn map<I>(&self, tasks: I) -> impl Iterator<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
    {
        Pool::map(self, tasks)
    }

    fn map_unordered<I>(&self, tasks: I) -> impl Iterator<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
    {
        Pool::map_unordered(self, tasks)
    }

    fn map_stream<I>(&self, tasks: I) -> impl Stream<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Unpin,
    {
        Pool::map_stream(self, tasks)
    }

    fn map_unordered_stream<I>(&self, tasks: I) -> impl Stream<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Unpin,
    {
        Pool::map_unordered_stream(self, tasks)
    }

    fn queue_size(&self) -> usize {
        Pool::queue_size(self)
    }

    fn max_queue(&self) -> usize {
        Pool::max_queue(self)
    }

    fn needs_drain(&self) -> bool {
        Pool::needs_drain(self)
    }

    fn wait_drain(&self) {
        Pool::wait_drain(self);
    }

    fn drained(&self) -> impl Future<Output = ()> {
        Pool::drained(self)
    }

    fn close(&self) {
        Pool::close(self);
    }

    fn destroy(&self) {
        Pool::destroy(self);
    }

    fn is_closed(&self) -> bool {
        Pool::is_closed(self)
    }
}

impl<R> PoolHandle<R> for TaskHandle<R> {
    fn join(self) -> Result<R, TaskError> {
        TaskHandle::join(self)
    }

    fn is_finished(&self) -> bool {
        TaskHandle::is_finished(self)
    }

    fn cancel(&self) -> bool {
        TaskHandle::cancel(self)
    }

    fn cancel_with(&self, reason: impl Into<Arc<str>>) -> bool {
        TaskHandle::cancel_with(self, reason)
    }

    fn cancel_reason(&self) -> Option<Arc<str>> {
        TaskHandle::cancel_reason(self)
    }

    fn id(&self) -> u64 {
        TaskHandle::id(self)
    }
}
