//! `AbortSignal` for pool tasks: a [`CancelToken`] given at submission cancels every task
//! it was given to, queued or running, when it is cancelled.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use worker_threads_wait::sync::{Mutex, MutexGuard};

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

/// A task's way to be cancelled (its handle's `cancel_with`, type-erased).
pub(crate) type Canceller = Box<dyn Fn(Option<Arc<str>>) + Send + Sync>;

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    tasks: Mutex<Registered>,
}

#[derive(Default)]
struct Registered {
    cancellers: Vec<Canceller>,
    /// The reason of the first cancel (`AbortSignal.reason`).
    reason: Option<Arc<str>>,
}

impl CancelToken {
    /// A token not cancelled yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = worker_threads_pool::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// token.cancel_with("the user left");
    /// assert!(token.is_cancelled());
    /// assert_eq!(token.reason().as_deref(), Some("the user left"));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every task given this token, and every task given it from now on.
    pub fn cancel(&self) {
        self.cancel_because(None);
    }

    /// Cancels as [`cancel`](Self::cancel) does, with a reason each of its tasks' handles
    /// return from [`TaskHandle::cancel_reason`](crate::TaskHandle::cancel_reason)
    /// (`AbortController.abort(reason)`). A token cancelled already keeps its first reason.
    pub fn cancel_with(&self, reason: impl Into<Arc<str>>) {
        self.cancel_because(Some(reason.into()));
    }

    fn cancel_because(&self, reason: Option<Arc<str>>) {
        let (cancellers, reason) = {
            let mut tasks = self.lock();
            if !self.inner.cancelled.load(Ordering::Acquire) {
                tasks.reason = reason;
            }
            self.inner.cancelled.store(true, Ordering::Release);
            (std::mem::take(&mut tasks.cancellers), tasks.reason.clone())
        };
        for cancel in cancellers {
            cancel(reason.clone());
        }
    }

    /// The reason the token was cancelled with (`AbortSignal.reason`), if it was given one.
    pub fn reason(&self) -> Option<Arc<str>> {
        self.lock().reason.clone()
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Registers a task's canceller; runs it at once if the token is cancelled already.
    pub(crate) fn register(&self, cancel: Canceller) {
        let mut tasks = self.lock();
        if self.inner.cancelled.load(Ordering::Acquire) {
            let reason = tasks.reason.clone();
            drop(tasks);
            cancel(reason);
        } else {
            tasks.cancellers.push(cancel);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registered> {
        worker_threads_wait::lock(&self.inner.tasks)
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}
