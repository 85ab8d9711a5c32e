//! The body of a pool thread: `init` once, then jobs from the queue until told to stop;
//! each job run under `catch_unwind`, timed, and resolved exactly once.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::time::{Duration, Instant};
use worker_threads_wait::lock;
use worker_threads_wait::sync::Mutex;

use super::{
    ChunkSlot, Handler, Init, Inner, Job, Phase, WORKER_OF, Work, panic_message, resolve_chunk,
    resolve_one,
};
use crate::error::TaskError;
use crate::events::PoolEvent;
use crate::stats::ThreadStats;
use crate::task::{Slot, running, set_pool_destroyed_flag};

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    /// The body of a worker thread: `init` once, then jobs until told to stop.
    pub(crate) fn work<S>(
        self: Arc<Self>,
        name: String,
        init: &Init<S>,
        handler: &Handler<S, T, R>,
    ) {
        WORKER_OF.with(|worker_of| worker_of.set(Arc::as_ptr(&self) as usize));
        set_pool_destroyed_flag(Arc::clone(&self.destroyed));
        self.lock().starting -= 1;
        let thread_stats = self.stats.for_thread();
        let mut state = match panic::catch_unwind(AssertUnwindSafe(init)) {
            Ok(state) => state,
            Err(payload) => {
                let message = panic_message(&*payload);
                tracing::error!(%message, "pool thread init panicked");
                self.emit(PoolEvent::Error(format!("init panicked: {message}")));
                self.emit(PoolEvent::WorkerDestroyed { name });
                self.worker_exited();
                return;
            }
        };
        let mut replace = false;
        while let Some(job) = self.next_job() {
            let Job { id, work, enqueued } = job;
            let healthy = match work {
                Work::One { task, slot } => {
                    self.run_job(id, task, slot, enqueued, &mut state, handler, &thread_stats)
                }
                Work::Chunk { tasks, slot } => self.run_chunk(
                    id,
                    tasks,
                    &slot,
                    enqueued,
                    &mut state,
                    init,
                    handler,
                    &thread_stats,
                ),
            };
            if !healthy {
                replace = true;
                break;
            }
        }
        drop(state);
        // Report before uncounting: `close` returns once the count is 0.
        self.emit(PoolEvent::WorkerDestroyed { name });
        if replace {
            self.replace_worker();
        } else {
            self.worker_exited();
        }
    }

    /// Runs one job; false if the handler panicked (the thread is then replaced).
    #[allow(clippy::too_many_arguments)]
    fn run_job<S>(
        &self,
        id: u64,
        task: T,
        slot: Arc<Slot<R>>,
        enqueued: Instant,
        state: &mut S,
        handler: &Handler<S, T, R>,
        thread_stats: &Mutex<ThreadStats>,
    ) -> bool {
        if slot.is_cancelled() {
            resolve_one(&self.stats, &slot, Err(TaskError::Cancelled));
            return true;
        }
        let _span = tracing::trace_span!("task", id).entered();
        let started = Instant::now();
        let result =
            panic::catch_unwind(AssertUnwindSafe(|| running(&slot, || handler(state, task))));
        self.record_run(thread_stats, started - enqueued, started.elapsed(), 1);
        self.cancel_if_destroyed(&slot);
        match result {
            Ok(value) => {
                resolve_one(&self.stats, &slot, Ok(value));
                true
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                tracing::debug!(id, %message, "task panicked");
                resolve_one(&self.stats, &slot, Err(TaskError::Panicked(message)));
                false
            }
        }
    }

    /// Runs a chunk of `map`'s items; false if an item panicked (the rest of the chunk runs
    /// on a fresh `init` state, then the thread is replaced). Statistics count items.
    #[allow(clippy::too_many_arguments)]
    fn run_chunk<S>(
        &self,
        id: u64,
        tasks: Vec<T>,
        slot: &Arc<ChunkSlot<R>>,
        enqueued: Instant,
        state: &mut S,
        init: &Init<S>,
        handler: &Handler<S, T, R>,
        thread_stats: &Mutex<ThreadStats>,
    ) -> bool {
        let items = tasks.len() as u64;
        if slot.is_cancelled() {
            Work::Chunk {
                tasks,
                slot: Arc::clone(slot),
            }
            .resolve_cancelled(&self.stats);
            return true;
        }
        let _span = tracing::trace_span!("chunk", id, items).entered();
        let started = Instant::now();
        let mut healthy = true;
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            let result =
                panic::catch_unwind(AssertUnwindSafe(|| running(slot, || handler(state, task))));
            results.push(result.map_err(|payload| {
                let message = panic_message(&*payload);
                tracing::debug!(id, %message, "task of a chunk panicked");
                // The state may be broken: the rest of the chunk gets a fresh one.
                if let Ok(fresh) = panic::catch_unwind(AssertUnwindSafe(init)) {
                    *state = fresh;
                }
                healthy = false;
                TaskError::Panicked(message)
            }));
        }
        self.record_run(thread_stats, started - enqueued, started.elapsed(), items);
        self.cancel_if_destroyed(slot);
        resolve_chunk(&self.stats, slot, results);
        healthy
    }

    /// Records `items` tasks that waited `wait` and together ran `run`: the busy time and
    /// this thread's histograms (each item at the mean). How they resolved is counted
    /// when their slot resolves.
    pub(super) fn record_run(
        &self,
        thread_stats: &Mutex<ThreadStats>,
        wait: Duration,
        run: Duration,
        items: u64,
    ) {
        let each = run / u32::try_from(items.max(1)).unwrap_or(u32::MAX);
        lock(thread_stats).record_n(wait, each, items);
        self.stats.run_nanos.fetch_add(
            u64::try_from(run.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// A worker whose task panicked hands its place to a fresh thread (its `init` state may
    /// be broken): the pool's size does not change.
    fn replace_worker(self: &Arc<Self>) {
        let mut state = self.lock();
        state.threads -= 1;
        let spawned = (state.phase != Phase::Destroyed).then(|| self.spawn_worker(&mut state));
        if state.threads == 0 {
            self.exited.notify_all();
            self.async_event.notify(usize::MAX);
        }
        drop(state);
        if let Some(spawned) = spawned {
            self.report_spawn(spawned);
        }
    }

    /// A task that was running when the pool was destroyed resolves `Cancelled`, whatever
    /// it returned: `destroy` cancels every running task (they saw `is_cancelled()`).
    pub(super) fn cancel_if_destroyed<X>(&self, slot: &Slot<X>) {
        if self.destroyed.load(Ordering::Acquire) {
            slot.cancel();
        }
    }
}
