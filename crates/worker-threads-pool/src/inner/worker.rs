//! The body of a pool thread: `init` once, then jobs from the queue until it closes (or
//! the thread retires); each task claimed, run under `catch_unwind`, timed, and resolved
//! exactly once.
//!
//! # One clock read per task
//!
//! A thread reads the clock once per job, when it finishes. The job's start is taken as
//! the later of the thread's previous finish and the job's acceptance (the submitter's one
//! clock read): never after the true start (the thread was busy with the previous job
//! until then, and the job did not exist before its acceptance), so a recorded run time
//! is never below the true one, and a recorded wait never above the true wait.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use worker_threads_wait::queue::PopError;

use crate::error::TaskError;
use crate::events::PoolEvent;
use crate::inner::thread_counts::Idle;
use crate::inner::{Handler, Init, Inner, Job, count_chunk, panic_message};
use crate::stats::Resolved;
use crate::stats::ThreadStats;
use crate::task::{Chunk, Task, run_owned};
use worker_threads_wait::Stamp;

/// What ended a thread's loop.
pub(crate) enum Ended {
    /// The queue closed and drained.
    Closed,
    /// Idle past `idle_timeout`, above `min_threads`: already uncounted.
    Retired,
    /// A task panicked: the thread is replaced.
    Panicked,
}

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    /// The next job, waiting for one: `Err` once the thread should end.
    pub(crate) fn next_job(&self) -> Result<Job<T, R>, Ended> {
        loop {
            match self.handoff.pop() {
                Ok(job) => return Ok(job),
                Err(PopError::Closed) => return Err(Ended::Closed),
                Err(PopError::Empty) => {}
            }
            if self.wait_for_job() == Idle::Retire {
                return Err(Ended::Retired);
            }
        }
    }

    /// A thread took a job's task from the queue: it no longer counts there.
    #[inline]
    pub(crate) fn took(&self) {
        self.left_queue_counted();
    }

    /// The body of a worker thread: `init` once, then jobs until told to stop.
    pub(crate) fn work<S>(
        self: Arc<Self>,
        name: String,
        init: &Init<S>,
        handler: &Handler<S, T, R>,
    ) {
        self.enter_thread();
        let stats = self.stats.for_thread();
        let ended = match panic::catch_unwind(AssertUnwindSafe(init)) {
            Ok(mut state) => self.serve_jobs(&mut state, init, handler, &stats),
            Err(payload) => {
                let message = panic_message(&*payload);
                tracing::error!(%message, "pool thread init panicked");
                self.emit(PoolEvent::Error(format!("init panicked: {message}")));
                Ended::Closed
            }
        };
        self.end_thread(name, ended);
    }

    /// Reports the thread's end, then uncounts it (or replaces it after a panic): `close`
    /// returns once every thread reported.
    pub(crate) fn end_thread(self: &Arc<Self>, name: String, ended: Ended) {
        self.emit(PoolEvent::WorkerDestroyed { name });
        match ended {
            Ended::Panicked => self.replace_thread(),
            Ended::Retired => self.thread_left(true),
            Ended::Closed => self.thread_left(false),
        }
    }

    fn serve_jobs<S>(
        &self,
        state: &mut S,
        init: &Init<S>,
        handler: &Handler<S, T, R>,
        stats: &ThreadStats,
    ) -> Ended {
        // When this thread last finished a job (the lower bound of the next one's start).
        let mut last = Stamp::now();
        loop {
            let healthy = match self.next_job() {
                Ok(Job::One(task)) => self.run_one(task, state, handler, stats, &mut last),
                Ok(Job::Chunk(chunk)) => {
                    self.run_chunk(chunk, state, init, handler, stats, &mut last)
                }
                Err(ended) => return ended,
            };
            if !healthy {
                return Ended::Panicked;
            }
        }
    }

    /// Claims and runs one task; false if the handler panicked (the thread is replaced).
    fn run_one<S>(
        &self,
        task: Arc<Task<T, R>>,
        state: &mut S,
        handler: &Handler<S, T, R>,
        stats: &ThreadStats,
        last: &mut Stamp,
    ) -> bool {
        // A tombstone (cancelled, expired, or run inline) is skipped: it left the queue.
        let Some(input) = task.cell.claim() else {
            return true;
        };
        self.took();
        let count = |output: &Result<R, TaskError>| stats.counts.add(Resolved::of(output), 1);
        if self.destroyed.load(std::sync::atomic::Ordering::Acquire) {
            task.resolve(Err(TaskError::Cancelled), count);
            return true;
        }
        let _span = tracing::trace_span!("task", id = task.id).entered();
        let (result, task) = run_owned(task, || handler(state, input));
        *last = stats.record_job(task.enqueued, *last, 1);
        self.cancel_if_destroyed(&task);
        match result {
            Ok(value) => {
                task.resolve(Ok(value), count);
                true
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                tracing::debug!(id = task.id, %message, "task panicked");
                task.resolve(Err(TaskError::Panicked(message)), count);
                false
            }
        }
    }

    /// Claims and runs a chunk of `map`'s items; false if an item panicked (the rest of
    /// the chunk runs on a fresh `init` state, then the thread is replaced). Statistics
    /// count items.
    fn run_chunk<S>(
        &self,
        chunk: Arc<Chunk<T, R>>,
        state: &mut S,
        init: &Init<S>,
        handler: &Handler<S, T, R>,
        stats: &ThreadStats,
        last: &mut Stamp,
    ) -> bool {
        let Some(items) = chunk.cell.claim() else {
            return true;
        };
        self.took();
        let items_count = chunk.items;
        let count = |output: &_| count_chunk(&stats.counts, output, items_count);
        if self.destroyed.load(std::sync::atomic::Ordering::Acquire) {
            chunk.resolve(Err(TaskError::Cancelled), count);
            return true;
        }
        let _span = tracing::trace_span!("chunk", id = chunk.id, items = chunk.items).entered();
        let mut healthy = true;
        let id = chunk.id;
        // The chunk is the thread's running task for all its items: installed once.
        let (results, chunk) = run_owned(chunk, || {
            items
                .into_iter()
                .map(|item| {
                    panic::catch_unwind(AssertUnwindSafe(|| handler(state, item))).map_err(
                        |payload| {
                            let message = panic_message(&*payload);
                            tracing::debug!(id, %message, "task of a chunk panicked");
                            // The state may be broken: the rest of the chunk gets a fresh one.
                            if let Ok(fresh) = panic::catch_unwind(AssertUnwindSafe(init)) {
                                *state = fresh;
                            }
                            healthy = false;
                            TaskError::Panicked(message)
                        },
                    )
                })
                .collect::<Vec<_>>()
        });
        // Each item caught its own panic: the chunk's closure does not unwind.
        let results = results.unwrap_or_default();
        *last = stats.record_job(chunk.enqueued, *last, chunk.items);
        self.cancel_if_destroyed(&chunk);
        chunk.resolve(Ok(results), count);
        healthy
    }
}
