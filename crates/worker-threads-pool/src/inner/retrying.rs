//! Retried tasks ([`Retry`]): each try is an ordinary task of the pool, and one
//! [`Retrying`] keeps the handle's outcome across them.
//!
//! # Exactly once
//!
//! The handle waits on `outcome`, a cell claimed at once and resolved once: by the try
//! that ends the task (a value, or a failure with no try left), by a cancel, or by the
//! pool's end while a try waits for its back-off. Every step that looks at the tries
//! (a try resolved, the back-off ended, a cancel) holds `state`'s lock; the try's
//! resolution reaches us through its waker, and nothing that can resolve a try is called
//! with the lock held (a cancel of a queued try resolves it on the calling thread).
//!
//! # The queue
//!
//! A try that failed with tries left takes a place in the queue at once (`queue_size()`
//! counts a task waiting for its back-off: it is still to run), without waiting for room
//! (it was accepted already). When the back-off ends the pool's keeper thread pushes the
//! next try into that place. A cancel while it waits gives the place back at once; a
//! closed pool resolves the task with its last failure (a destroyed one, `Cancelled`).
//! The pool's counters count tries; a try given up while it waited counts as cancelled.

use std::any::Any;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use worker_threads_wait::sync::Mutex;
use worker_threads_wait::{Stamp, lock};

use crate::error::TaskError;
use crate::inner::handoff::Bound;
use crate::inner::{Inner, Job};
use crate::retry::Retry;
use crate::stats::Resolved;
use crate::task::{Output, PoolHooks, Task, TaskHandle, View};

/// Makes a try's input from the task kept for the next one.
pub(crate) type Cloner<T> = fn(&T) -> T;

/// A pool's or a task's retry policy, with what copies the task for each try.
pub(crate) struct RetryWith<T> {
    pub(crate) policy: Retry,
    pub(crate) clone: Cloner<T>,
}

impl<T> Clone for RetryWith<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for RetryWith<T> {}

/// A task with a retry policy, as its handle sees it.
pub(crate) struct Retrying<T, R> {
    /// The handle's cell: claimed at creation, resolved once.
    outcome: Arc<Task<(), R>>,
    pool: Weak<Inner<T, R>>,
    retry: RetryWith<T>,
    /// The task's deadline, every try's.
    deadline: Option<Instant>,
    state: Mutex<State<T, R>>,
}

struct State<T, R> {
    /// The task, kept for the next try.
    input: T,
    /// Tries made (the one in flight included).
    attempt: u32,
    /// The try in flight; `None` while one waits for its back-off, and at the end.
    current: Option<TaskHandle<R>>,
    /// A place in the queue is held for the next try, which waits for its back-off.
    holding_place: bool,
    /// The last try's failure, while the next waits.
    last: Option<TaskError>,
}

/// What a step decided, to carry out once the lock is released.
enum Step<R> {
    Nothing,
    Resolve(Output<R>),
    /// Queue the next try after this wait.
    Wait(std::time::Duration),
}

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    /// Submits `task` with `retry` (`None`, or one try: as `submit_until` does): its first
    /// try as `submit_until` would, the others as [`Retrying`] decides. The task is copied
    /// for the first try (a refusal gives that copy back).
    pub(crate) fn submit_retrying(
        self: &Arc<Self>,
        task: T,
        retry: Option<RetryWith<T>>,
        on_full: super::OnFull,
        deadline: Option<Instant>,
        precancelled: super::Precancelled,
    ) -> Result<TaskHandle<R>, crate::RunError<T>> {
        let Some(retry) = retry.filter(|retry| retry.policy.max_attempts() > 1) else {
            return self.submit_until(task, on_full, deadline, precancelled);
        };
        let first = self.submit_until(
            (retry.clone)(&task),
            on_full,
            deadline,
            precancelled.clone(),
        )?;
        let id = first.id();
        let outcome = Task::new(id, Stamp::now(), (), 1);
        let _ = outcome.cell.claim();
        let retrying = Arc::new(Retrying {
            outcome,
            pool: Arc::downgrade(self),
            retry,
            deadline,
            state: Mutex::new(State {
                input: task,
                attempt: 1,
                current: Some(first),
                holding_place: false,
                last: None,
            }),
        });
        if let Some(reason) = precancelled {
            // A token cancelled already: the first try never ran; the reason is the task's.
            retrying.cancel_tries(reason);
        }
        retrying.advance();
        Ok(TaskHandle::of_view(retrying, self.hooks.clone()))
    }

    /// Pushes a retried task's next try into the place it holds (no admission: it was
    /// admitted as its back-off began). The input back if the queue is closed (the place
    /// is still held).
    fn push_try(self: &Arc<Self>, input: T, deadline: Option<Instant>) -> Result<TaskHandle<R>, T> {
        let task = self.new_task(Stamp::now(), input, 1);
        self.push_admitted(&task, Job::One)?;
        self.grow_if_needed();
        self.set_deadline_of(&task, deadline);
        Ok(TaskHandle::new(task, self.hooks.clone()))
    }

    /// Takes a place in the queue for a try that waits for its back-off, whatever the
    /// bound (the task was accepted already).
    fn hold_place(&self) {
        let _ = self.handoff.admit(Bound::Unbounded, || 0);
    }

    /// Gives back the place of a try that will not run, counting it as cancelled.
    fn give_place_back(&self) {
        self.stats.shared.add(Resolved::Cancelled, 1);
        self.left_queue_counted();
    }
}

impl<T: Send + 'static, R: Send + 'static> Retrying<T, R> {
    /// Looks at the try in flight: if it resolved, ends the task or waits for the next.
    fn advance(self: &Arc<Self>) {
        let step = {
            let mut state = lock(&self.state);
            let Some(current) = state.current.as_mut() else {
                return;
            };
            let waker = Waker::from(Arc::clone(self));
            let output = match Pin::new(current).poll(&mut Context::from_waker(&waker)) {
                Poll::Pending => return,
                Poll::Ready(output) => output,
            };
            state.current = None;
            match output {
                Err(error) if Retry::retries(&error) && !self.outcome.is_cancelled() => {
                    let next = state.attempt.saturating_add(1);
                    match (self.retry.policy.delay_before(next), self.pool.upgrade()) {
                        (Some(wait), Some(pool)) => {
                            pool.hold_place();
                            state.holding_place = true;
                            state.last = Some(error);
                            Step::Wait(wait)
                        }
                        _ => Step::Resolve(Err(self.retry.policy.give_up(state.attempt, error))),
                    }
                }
                output => Step::Resolve(output),
            }
        };
        match step {
            Step::Nothing => {}
            Step::Resolve(output) => self.outcome.resolve(output, |_| {}),
            Step::Wait(wait) => {
                let Some(pool) = self.pool.upgrade() else {
                    return self.next_try();
                };
                if wait.is_zero() {
                    self.next_try();
                } else {
                    let this = Arc::clone(self);
                    let id = self.outcome.id;
                    pool.call_at(id, Instant::now() + wait, Box::new(move || this.next_try()));
                }
            }
        }
    }

    /// The back-off ended (or the pool's keeper ended): queues the next try into the
    /// place held for it, or ends the task if it was cancelled or the pool closed.
    fn next_try(self: &Arc<Self>) {
        let step = {
            let mut state = lock(&self.state);
            if !std::mem::take(&mut state.holding_place) {
                return; // A cancel gave the place back and resolved the task.
            }
            let last = state.last.take().unwrap_or(TaskError::Cancelled);
            match self.pool.upgrade() {
                None => Step::Resolve(Err(self.retry.policy.give_up(state.attempt, last))),
                Some(pool) if self.outcome.is_cancelled() => {
                    pool.give_place_back();
                    Step::Resolve(Err(TaskError::Cancelled))
                }
                Some(pool) if pool.destroyed.load(std::sync::atomic::Ordering::Acquire) => {
                    pool.give_place_back();
                    Step::Resolve(Err(TaskError::Cancelled))
                }
                Some(pool) => {
                    match pool.push_try((self.retry.clone)(&state.input), self.deadline) {
                        Ok(handle) => {
                            state.attempt += 1;
                            state.current = Some(handle);
                            Step::Nothing
                        }
                        Err(_closed) => {
                            // The queue closed during the back-off: no more tries.
                            pool.give_place_back();
                            Step::Resolve(Err(self.retry.policy.give_up(state.attempt, last)))
                        }
                    }
                }
            }
        };
        match step {
            Step::Resolve(output) => self.outcome.resolve(output, |_| {}),
            _ => self.advance(),
        }
    }

    /// Cancels the task: the try in flight, or the next one waiting for its back-off.
    /// False if the task had resolved.
    fn cancel_tries(&self, reason: Option<Arc<str>>) -> bool {
        if !self.outcome.cancel(reason, None) {
            return false;
        }
        let (current, gave_place_back) = {
            let mut state = lock(&self.state);
            match &state.current {
                Some(current) => (Some(current.canceller()), false),
                None => (None, std::mem::take(&mut state.holding_place)),
            }
        };
        match current {
            // Its resolution (`Cancelled`, now or when it returns) resolves the task.
            Some(cancel) => cancel(None),
            None => {
                if gave_place_back {
                    if let Some(pool) = self.pool.upgrade() {
                        pool.give_place_back();
                    }
                }
                self.outcome.resolve(Err(TaskError::Cancelled), |_| {});
            }
        }
        true
    }
}

impl<T: Send + 'static, R: Send + 'static> Wake for Retrying<T, R> {
    fn wake(self: Arc<Self>) {
        self.advance();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.advance();
    }
}

impl<T: Send + 'static, R: Send + 'static> View<R> for Retrying<T, R> {
    fn task_id(&self) -> u64 {
        self.outcome.id
    }

    fn done(&self) -> bool {
        self.outcome.cell.is_done()
    }

    fn wait(&self) -> Output<R> {
        View::wait(&*self.outcome)
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<Output<R>> {
        View::poll(&*self.outcome, cx)
    }

    fn forget(&self) {
        View::forget(&*self.outcome);
    }

    fn cancel(&self, reason: Option<Arc<str>>, _pool: Option<&dyn PoolHooks>) -> bool {
        self.cancel_tries(reason)
    }

    fn cancel_reason(&self) -> Option<Arc<str>> {
        View::cancel_reason(&*self.outcome)
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
