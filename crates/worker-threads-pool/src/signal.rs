//! `AbortSignal` for pool tasks: a [`CancelToken`] given at submission cancels every task
//! it was given to, queued or running, when it is cancelled.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Cancels the tasks it was given to ([`Pool::run_with_token`](crate::Pool::run_with_token)):
/// piscina's `signal` option, with [`cancel`](CancelToken::cancel) as
/// `AbortController.abort()`. A clone is the same token. Cancelling a token cancels each of
/// its tasks as [`TaskHandle::cancel`](crate::TaskHandle::cancel) would (a queued task
/// leaves the queue, a running one sees [`is_cancelled`](crate::is_cancelled)); a task
/// submitted with a token already cancelled never runs and resolves `Cancelled`.
///
/// # Examples
///
/// ```
/// use worker_threads_pool::{CancelToken, MaxQueue, Pool, TaskError};
///
/// let pool = Pool::builder().max_threads(1).max_queue(MaxQueue::Bounded(4)).build(|(): ()| {
///     while !worker_threads_pool::is_cancelled() {
///         std::hint::spin_loop();
///     }
/// })?;
/// let token = CancelToken::new();
/// let a = pool.run_with_token((), &token)?;
/// let b = pool.run_with_token((), &token)?; // queued behind `a`
/// token.cancel();
/// assert_eq!(a.join(), Err(TaskError::Cancelled));
/// assert_eq!(b.join(), Err(TaskError::Cancelled));
/// // Already cancelled: the task never runs.
/// assert_eq!(pool.run_with_token((), &token)?.join(), Err(TaskError::Cancelled));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

/// A task's way to be cancelled (its handle's `cancel`, type-erased).
pub(crate) type Canceller = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    tasks: Mutex<Vec<Canceller>>,
}

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every task given this token, and every task given it from now on.
    pub fn cancel(&self) {
        let tasks = {
            let mut tasks = self.lock();
            self.inner.cancelled.store(true, Ordering::Release);
            std::mem::take(&mut *tasks)
        };
        for cancel in tasks {
            cancel();
        }
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Registers a task's canceller; runs it at once if the token is cancelled already.
    pub(crate) fn register(&self, cancel: Canceller) {
        let mut tasks = self.lock();
        if self.inner.cancelled.load(Ordering::Acquire) {
            drop(tasks);
            cancel();
        } else {
            tasks.push(cancel);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Canceller>> {
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}
