//! The body of an async pool thread (`build_async`): a tokio current-thread runtime that
//! keeps up to `concurrent_tasks_per_worker` tasks in flight, each a local task on it.
//!
//! The thread takes jobs while it has room (`try_next_job`), and otherwise waits, on the
//! runtime, for either a task to finish or a job to arrive (a future registered in the
//! queue's `work` list, which looks again after registering, so a push after the look
//! wakes it). With nothing in flight it takes the next job the blocking way, as a sync
//! pool thread does (retiring when idle).
//!
//! Exactly once: each task resolves itself when its future ends: its value, `Panicked` (a
//! panic while polling it), or `Cancelled`. A cancel or an expiry wakes the task (its
//! runner waker), which then stops at once, dropping the future; `destroy` wakes the
//! thread, which aborts what is in flight and resolves it `Cancelled`. A task ignores any
//! resolution after the first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use worker_threads_wait::queue::PopError;

use super::worker::Ended;
use super::{Inner, Job, count_chunk, panic_message};
use crate::error::TaskError;
use crate::events::PoolEvent;
use crate::stats::Resolved;
use crate::stats::ThreadStats;
use crate::task::{Task, running};
use worker_threads_wait::Stamp;

/// The handler of an async pool, boxed: a task in, a future of its result out.
pub(crate) type AsyncHandler<T, R> = dyn Fn(T) -> Pin<Box<dyn Future<Output = R>>> + Send + Sync;

/// A handler future, watched: it stops when its task is cancelled, catches a panic while
/// polling, and makes `is_cancelled()` answer for its task while it runs.
struct Watched<'a, R, I, X> {
    future: Pin<Box<dyn Future<Output = R>>>,
    task: &'a Arc<Task<I, X>>,
}

impl<R, I: Send + 'static, X: Send + 'static> Future for Watched<'_, R, I, X> {
    type Output = Result<R, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.task.is_cancelled() {
            return Poll::Ready(Err(TaskError::Cancelled));
        }
        self.task.set_runner(cx.waker());
        let task = Arc::clone(self.task);
        let polled = panic::catch_unwind(AssertUnwindSafe(|| {
            running(&task, || self.future.as_mut().poll(cx))
        }));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(TaskError::Panicked(panic_message(&*payload)))),
        }
    }
}

/// What the thread keeps of a task in flight: how to stop it and resolve it.
struct InFlight {
    abort: tokio::task::AbortHandle,
    cancel: Box<dyn FnOnce()>,
}

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    /// The body of an async pool thread.
    pub(crate) fn work_async(self: Arc<Self>, name: String, handler: &AsyncHandler<T, R>) {
        self.enter_thread();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "pool thread cannot start its runtime");
                self.emit(PoolEvent::Error(format!("runtime: {error}")));
                self.end_thread(name, Ended::Closed);
                return;
            }
        };
        let local = tokio::task::LocalSet::new();
        let thread_stats = self.stats.for_thread();
        let ended = local.block_on(&runtime, self.serve(handler, &thread_stats));
        // Whatever is still in flight (a destroy) is dropped with the set.
        drop(local);
        self.end_thread(name, ended);
    }

    /// The next job if one is queued, without waiting; `Err` once the queue closed and
    /// drained.
    fn try_next_job(&self) -> Result<Option<Job<T, R>>, ()> {
        match self.handoff.pop() {
            Ok(job) => Ok(Some(job)),
            Err(PopError::Empty) => Ok(None),
            Err(PopError::Closed) => Err(()),
        }
    }

    async fn serve(
        self: &Arc<Self>,
        handler: &AsyncHandler<T, R>,
        thread_stats: &Arc<ThreadStats>,
    ) -> Ended {
        let room = self.config.concurrency.max(1);
        let in_flight: Rc<RefCell<HashMap<u64, InFlight>>> = Rc::default();
        // The thread's last clock read: a task's start is taken as the later of it and
        // the task's acceptance (never after the true start), so each task costs one
        // clock read here, at its end.
        let last = Rc::new(std::cell::Cell::new(Stamp::now()));
        let finished = Rc::new(tokio::sync::Notify::new());
        let mut closing = false;
        loop {
            if self.destroyed.load(Ordering::Acquire) {
                for (_, task) in in_flight.borrow_mut().drain() {
                    task.abort.abort();
                    (task.cancel)();
                }
            }
            // Take jobs while there is room.
            while in_flight.borrow().len() < room && !closing {
                let job = if in_flight.borrow().is_empty() {
                    // Nothing in flight: wait the blocking way (and retire when idle).
                    match self.next_job() {
                        Ok(job) => Some(job),
                        Err(ended) => return ended,
                    }
                } else {
                    match self.try_next_job() {
                        Ok(job) => job,
                        Err(()) => {
                            closing = true;
                            None
                        }
                    }
                };
                let Some(job) = job else { break };
                self.start_task(job, handler, thread_stats, &in_flight, &finished, &last);
            }
            if in_flight.borrow().is_empty() {
                if closing {
                    return Ended::Closed;
                }
                continue;
            }
            // Wait for a task to finish, a job to arrive, or a destroy.
            let notified = finished.notified();
            if in_flight.borrow().len() < room && !closing {
                // Room: an idle taker until a job arrives or a task finishes.
                let arrived = self.handoff.work.until(|| self.handoff.has_job());
                self.idle_while(async {
                    tokio::select! {
                        () = notified => {}
                        () = arrived => {}
                    }
                })
                .await;
            } else if !self.destroyed.load(Ordering::Acquire) {
                // Full: a task finishing, or the pool shutting down (a destroy aborts
                // what is in flight).
                tokio::select! {
                    () = notified => {}
                    () = self.closing() => {}
                }
            }
        }
    }

    /// Records a started task: how to abort it, and to resolve it `Cancelled`.
    fn track<I: 'static, X: 'static>(
        in_flight: &Rc<RefCell<HashMap<u64, InFlight>>>,
        abort: tokio::task::AbortHandle,
        task: Arc<Task<I, X>>,
        stats: &Arc<ThreadStats>,
    ) {
        let stats = Arc::clone(stats);
        let id = task.id;
        let cancel = Box::new(move || {
            task.resolve(Err(TaskError::Cancelled), |_| {
                stats.counts.add(Resolved::Cancelled, task.items);
            });
        });
        in_flight
            .borrow_mut()
            .insert(id, InFlight { abort, cancel });
    }

    /// Claims one job's task and starts it as a local task.
    fn start_task(
        self: &Arc<Self>,
        job: Job<T, R>,
        handler: &AsyncHandler<T, R>,
        thread_stats: &Arc<ThreadStats>,
        in_flight: &Rc<RefCell<HashMap<u64, InFlight>>>,
        finished: &Rc<tokio::sync::Notify>,
        last: &Rc<std::cell::Cell<Stamp>>,
    ) {
        let (stats, done, tasks) = (
            Arc::clone(thread_stats),
            Rc::clone(finished),
            Rc::clone(in_flight),
        );
        let pool = Arc::clone(self);
        let started = last.get();
        let last = Rc::clone(last);
        match job {
            Job::One(task) => {
                let Some(input) = task.cell.claim() else {
                    return;
                };
                self.took();
                let future = handler(input);
                let watched = Arc::clone(&task);
                let handle = tokio::task::spawn_local(async move {
                    let result = Watched {
                        future,
                        task: &watched,
                    }
                    .await;
                    last.set(stats.record_job(watched.enqueued, started, 1));
                    pool.cancel_if_destroyed(&watched);
                    watched.resolve(result, |output| stats.counts.add(Resolved::of(output), 1));
                    tasks.borrow_mut().remove(&watched.id);
                    done.notify_one();
                });
                Self::track(in_flight, handle.abort_handle(), task, thread_stats);
            }
            Job::Chunk(chunk) => {
                let Some(items) = chunk.cell.claim() else {
                    return;
                };
                self.took();
                let futures: Vec<_> = items.into_iter().map(handler).collect();
                let watched = Arc::clone(&chunk);
                let handle = tokio::task::spawn_local(async move {
                    let mut results = Vec::with_capacity(futures.len());
                    for future in futures {
                        results.push(
                            Watched {
                                future,
                                task: &watched,
                            }
                            .await,
                        );
                    }
                    last.set(stats.record_job(watched.enqueued, started, watched.items));
                    pool.cancel_if_destroyed(&watched);
                    watched.resolve(Ok(results), |output| {
                        count_chunk(&stats.counts, output, watched.items);
                    });
                    tasks.borrow_mut().remove(&watched.id);
                    done.notify_one();
                });
                Self::track(in_flight, handle.abort_handle(), chunk, thread_stats);
            }
        }
    }
}
