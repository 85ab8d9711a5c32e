//! [`RemoteHandle`]: one remote task's result, to `join`, `.await` or `cancel`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::core::{Answer, Core};
use worker_threads_pool::TaskError;

/// The handle of a task in a [`RemotePool`](crate::RemotePool): [`join`](Self::join)
/// blocks for its result, `.await` waits for it under any executor,
/// [`cancel`](Self::cancel) cancels it. It resolves exactly once. Dropping the handle does
/// not cancel the task.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_remote::RemotePool;
///
/// let pool: RemotePool<u64, u64> = RemotePool::builder("nats://127.0.0.1:4222", "square").connect()?;
/// let first = pool.run(3)?;
/// let second = pool.run(4)?;
/// assert_eq!(first.join()?, 9);
/// second.cancel(); // resolves `Cancelled` at once; the task leaves the queue
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a RemoteHandle lets the task run but loses its result"]
pub struct RemoteHandle<R> {
    id: u64,
    rx: oneshot::Receiver<Answer<R>>,
    core: Arc<Core<R>>,
    runtime: tokio::runtime::Handle,
    /// The reason of the cancel that resolved the task, if it gave one.
    reason: OnceLock<Arc<str>>,
}

impl<R: Send + 'static> RemoteHandle<R> {
    pub(crate) fn new(
        id: u64,
        rx: oneshot::Receiver<Answer<R>>,
        core: Arc<Core<R>>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            id,
            rx,
            core,
            runtime,
            reason: OnceLock::new(),
        }
    }

    /// Waits for the task and returns its value.
    ///
    /// # Errors
    ///
    /// [`TaskError`]: the worker's `Panicked`, `TimedOut`, `Crashed`; `Cancelled`;
    /// `MaxDeliveries`; `BadTask` / `BadResult`; `Disconnected`; `Closed`.
    pub fn join(self) -> Result<R, TaskError> {
        worker_threads_wait::block_on(self)
    }

    /// True once the task has resolved.
    pub fn is_finished(&self) -> bool {
        !self.core.is_pending(self.id)
    }

    /// Cancels the task: its handle resolves `Cancelled` at once. A task still queued is
    /// removed from the queue; a running one is told (its handler sees
    /// [`is_cancelled`](worker_threads_pool::is_cancelled) turn true), and its result, if
    /// it comes, is dropped. Returns false if the task had already resolved.
    pub fn cancel(&self) -> bool {
        self.cancel_because(None)
    }

    /// Cancels the task as [`cancel`](Self::cancel) does, giving a reason that
    /// [`cancel_reason`](Self::cancel_reason) returns afterwards
    /// (`AbortController.abort(reason)`). If the task had resolved already, nothing
    /// changes and the reason is not kept.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use worker_threads_remote::{RemotePool, TaskError};
    ///
    /// let pool: RemotePool<u64, u64> =
    ///     RemotePool::builder("nats://127.0.0.1:4222", "slow").connect()?;
    /// let task = pool.run(1)?;
    /// if task.cancel_with("the user left") {
    ///     assert_eq!(task.cancel_reason().as_deref(), Some("the user left"));
    ///     assert_eq!(task.join(), Err(TaskError::Cancelled));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_with(&self, reason: impl Into<Arc<str>>) -> bool {
        self.cancel_because(Some(reason.into()))
    }

    fn cancel_because(&self, reason: Option<Arc<str>>) -> bool {
        // Kept before the task resolves, so a caller that sees `Cancelled` sees the reason;
        // only the cancel that resolves it can get here first (`resolve` succeeds once).
        let Some(entry) = self.core.take(self.id) else {
            return false;
        };
        if let Some(reason) = reason {
            let _ = self.reason.set(reason);
        }
        let seq = self.core.finish(entry, Err(TaskError::Cancelled));
        let (core, id) = (Arc::clone(&self.core), self.id);
        self.runtime
            .spawn(async move { core.withdraw(id, seq).await });
        true
    }

    /// Why the task was cancelled: the reason given to [`cancel_with`](Self::cancel_with).
    /// `None` if it was not cancelled through this handle with a reason (a
    /// [`cancel`](Self::cancel), a `destroy`).
    pub fn cancel_reason(&self) -> Option<Arc<str>> {
        self.reason.get().cloned()
    }

    /// The task's id in its pool (increasing in submission order).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<R> Future for RemoteHandle<R> {
    type Output = Result<R, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|answer| match answer {
            Ok(Ok(results)) => {
                let mut results = results.into_iter();
                match (results.next(), results.next()) {
                    (Some(result), None) => result,
                    _ => Err(TaskError::BadResult(
                        "a reply for one task did not hold exactly one result".into(),
                    )),
                }
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(TaskError::Closed),
        })
    }
}

impl<R: Send + 'static> std::fmt::Debug for RemoteHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
