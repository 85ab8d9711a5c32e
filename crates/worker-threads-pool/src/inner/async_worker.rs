//! The body of an async pool thread (`build_async`): a tokio current-thread runtime that
//! keeps up to `concurrent_tasks_per_worker` tasks in flight, each a local task on it.
//!
//! The thread takes jobs while it has room (`try_next_job`), and otherwise waits, on the
//! runtime, for either a task to finish or a job to arrive (`listen_jobs`: registered
//! under the pool's lock, so a push after the look wakes it). With nothing in flight it
//! takes the next job the blocking way, as a sync pool thread does (retiring when idle).
//!
//! Exactly once: each task resolves its own slot when its future ends: its value,
//! `Panicked` (a panic while polling it), or `Cancelled`. A cancel or an expiry wakes
//! the task (the slot's runner waker), which then stops at once, dropping the future;
//! `destroy` wakes the thread, which aborts what is in flight and resolves it
//! `Cancelled`. The slot ignores any resolution after the first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use super::{ChunkSlot, Inner, Job, Work, panic_message, resolve_chunk, resolve_one};
use crate::error::TaskError;
use crate::events::PoolEvent;
use crate::stats::ThreadStats;
use crate::task::{Slot, running};

/// The handler of an async pool, boxed: a task in, a future of its result out.
pub(crate) type AsyncHandler<T, R> = dyn Fn(T) -> Pin<Box<dyn Future<Output = R>>> + Send + Sync;

/// A handler future, watched: it stops when its slot is cancelled, catches a panic while
/// polling, and makes `is_cancelled()` answer for its slot while it runs.
struct Watched<'a, R, X> {
    future: Pin<Box<dyn Future<Output = R>>>,
    slot: &'a Arc<Slot<X>>,
}

impl<R, X: 'static> Future for Watched<'_, R, X> {
    type Output = Result<R, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.slot.is_cancelled() {
            return Poll::Ready(Err(TaskError::Cancelled));
        }
        self.slot.set_runner(cx.waker());
        let slot = Arc::clone(self.slot);
        let polled = panic::catch_unwind(AssertUnwindSafe(|| {
            running(&slot, || self.future.as_mut().poll(cx))
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
        super::WORKER_OF.with(|worker_of| worker_of.set(Arc::as_ptr(&self) as usize));
        crate::task::set_pool_destroyed_flag(Arc::clone(&self.destroyed));
        self.lock().starting -= 1;
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "pool thread cannot start its runtime");
                self.emit(PoolEvent::Error(format!("runtime: {error}")));
                self.emit(PoolEvent::WorkerDestroyed { name });
                self.worker_exited();
                return;
            }
        };
        let local = tokio::task::LocalSet::new();
        let thread_stats = self.stats.for_thread();
        local.block_on(&runtime, self.serve(handler, &thread_stats));
        // Whatever is still in flight (a destroy) is dropped with the set.
        drop(local);
        self.emit(PoolEvent::WorkerDestroyed { name });
        self.worker_exited();
    }

    async fn serve(
        self: &Arc<Self>,
        handler: &AsyncHandler<T, R>,
        thread_stats: &Arc<Mutex<ThreadStats>>,
    ) {
        let room = self.config.concurrency.max(1);
        let in_flight: Rc<RefCell<HashMap<u64, InFlight>>> = Rc::default();
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
                        Some(job) => Some(job),
                        None => return,
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
                self.start_task(job, handler, thread_stats, &in_flight, &finished);
            }
            if in_flight.borrow().is_empty() {
                if closing {
                    return;
                }
                continue;
            }
            // Wait for a task to finish, a job to arrive, or a destroy.
            let notified = finished.notified();
            match (in_flight.borrow().len() < room && !closing)
                .then(|| self.listen_jobs())
                .flatten()
            {
                Some((listener, waiter)) => {
                    tokio::select! {
                        () = notified => {}
                        () = listener => {}
                    }
                    drop(waiter);
                }
                None if in_flight.borrow().len() < room && !closing => {} // a job is there
                None => match self.listen_shutdown() {
                    // Full: a task finishing, or the pool shutting down (a destroy aborts
                    // what is in flight).
                    Some(shutdown) => {
                        tokio::select! {
                            () = notified => {}
                            () = shutdown => {}
                        }
                    }
                    None if self.destroyed.load(Ordering::Acquire) => {}
                    None => notified.await,
                },
            }
        }
    }

    /// Records a started task: how to abort it, and to resolve its `items` `Cancelled`.
    fn track<X: 'static>(
        self: &Arc<Self>,
        in_flight: &Rc<RefCell<HashMap<u64, InFlight>>>,
        id: u64,
        abort: tokio::task::AbortHandle,
        slot: Arc<Slot<X>>,
        items: u64,
    ) {
        let pool = Arc::clone(self);
        let cancel = Box::new(move || {
            slot.resolve(Err(TaskError::Cancelled), |resolved| {
                pool.stats.count(resolved, items);
            });
        });
        in_flight
            .borrow_mut()
            .insert(id, InFlight { abort, cancel });
    }

    /// Starts one job as a local task.
    fn start_task(
        self: &Arc<Self>,
        job: Job<T, R>,
        handler: &AsyncHandler<T, R>,
        thread_stats: &Arc<Mutex<ThreadStats>>,
        in_flight: &Rc<RefCell<HashMap<u64, InFlight>>>,
        finished: &Rc<tokio::sync::Notify>,
    ) {
        let Job { id, work, enqueued } = job;
        let (pool, stats) = (Arc::clone(self), Arc::clone(thread_stats));
        let (done, tasks) = (Rc::clone(finished), Rc::clone(in_flight));
        let started = Instant::now();
        match work {
            Work::One { task, slot } => {
                if slot.is_cancelled() {
                    resolve_one(&self.stats, &slot, Err(TaskError::Cancelled));
                    return;
                }
                let future = handler(task);
                let watched_slot = Arc::clone(&slot);
                let handle = tokio::task::spawn_local(async move {
                    let result = Watched {
                        future,
                        slot: &watched_slot,
                    }
                    .await;
                    pool.record_run(&stats, started - enqueued, started.elapsed(), 1);
                    pool.cancel_if_destroyed(&watched_slot);
                    resolve_one(&pool.stats, &watched_slot, result);
                    tasks.borrow_mut().remove(&id);
                    done.notify_one();
                });
                self.track(in_flight, id, handle.abort_handle(), slot, 1);
            }
            Work::Chunk { tasks: items, slot } => {
                if slot.is_cancelled() {
                    Work::Chunk { tasks: items, slot }.resolve_cancelled(&self.stats);
                    return;
                }
                let futures: Vec<_> = items.into_iter().map(handler).collect();
                let watched_slot: Arc<ChunkSlot<R>> = Arc::clone(&slot);
                let count = futures.len() as u64;
                let handle = tokio::task::spawn_local(async move {
                    let mut results = Vec::with_capacity(futures.len());
                    for future in futures {
                        results.push(
                            Watched {
                                future,
                                slot: &watched_slot,
                            }
                            .await,
                        );
                    }
                    pool.record_run(&stats, started - enqueued, started.elapsed(), count);
                    pool.cancel_if_destroyed(&watched_slot);
                    resolve_chunk(&pool.stats, &watched_slot, results);
                    tasks.borrow_mut().remove(&id);
                    done.notify_one();
                });
                self.track(in_flight, id, handle.abort_handle(), slot, count);
            }
        }
    }
}
