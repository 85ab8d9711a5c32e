//! Accepting tasks: admission under the bound (`handoff.rs`), then the push; a task or a
//! `map` chunk, refusing, waiting for room (blocking or awaited), or, refused for room on
//! one of the pool's own threads, running it there.

use std::sync::Arc;
use std::time::Instant;

use crate::error::RunError;
use crate::events::PoolEvent;
use crate::inner::handoff::{Bound, Full};
use crate::inner::{ChunkHandle, Inner, Job};
use crate::task::{PoolHooks, Task, TaskHandle};
use worker_threads_wait::Stamp;

/// How a submitter behaves on a full queue.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFull {
    Refuse,
    Wait,
}

/// A cancel that came before the task (a `CancelToken` cancelled already): its reason.
pub(crate) type Precancelled = Option<Option<Arc<str>>>;

/// Makes a task's job (`Job::One`, `Job::Chunk`).
type Wrap<T, R, I, X> = fn(Arc<Task<I, X>>) -> Job<T, R>;
/// Runs a claimed task on the calling thread (`run_one_inline`, `run_chunk_inline`).
type Here<T, R, I, X> = fn(&Inner<T, R>, &Arc<Task<I, X>>, I);

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    /// Whether a task would be admitted now.
    pub(crate) fn has_room(&self) -> bool {
        match self.bound {
            Bound::Unbounded => true,
            Bound::At(max) => self.handoff.queued() < max,
            Bound::NoQueue => self.handoff.queued() < self.can_take_now(),
        }
    }

    /// Admits one task: `Ok(true)` if the queue is full with it.
    #[inline]
    fn admit(&self) -> Result<bool, Full> {
        self.handoff.admit(self.bound, || self.can_take_now())
    }

    /// The deadline `task_timeout` gives a task accepted now.
    pub(crate) fn default_deadline(&self) -> Option<Instant> {
        worker_threads_wait::Deadline::after(self.config.task_timeout?).instant()
    }

    /// Submits `task` with a deadline (`None`: none); `precancelled`, it resolves
    /// `Cancelled` at once (a token cancelled before the task), as accepted.
    pub(crate) fn submit_until(
        self: &Arc<Self>,
        task: T,
        on_full: OnFull,
        deadline: Option<Instant>,
        precancelled: Precancelled,
    ) -> Result<TaskHandle<R>, RunError<T>> {
        let task = self.accept(
            task,
            1,
            on_full,
            precancelled,
            Job::One,
            Self::run_one_inline,
        )?;
        self.set_deadline_of(&task, deadline);
        Ok(TaskHandle::new(task, self.hooks.clone()))
    }

    /// Accepts a chunk of `map`'s items as one job, waiting for room as asked.
    pub(crate) fn submit_chunk(
        self: &Arc<Self>,
        tasks: Vec<T>,
        on_full: OnFull,
    ) -> Result<ChunkHandle<R>, RunError<Vec<T>>> {
        let items = tasks.len() as u64;
        let chunk = self.accept(
            tasks,
            items,
            on_full,
            None,
            Job::Chunk,
            Self::run_chunk_inline,
        )?;
        // `task_timeout` holds for map items too, from their acceptance (a map waits for
        // room on purpose); with a timeout, chunks hold one item (`Config::chunk_bounds`),
        // so each item has its own deadline as a task has.
        self.set_deadline_of(&chunk, self.default_deadline());
        Ok(TaskHandle::new(chunk, self.hooks.clone()))
    }

    /// Awaits room in the queue (or its close): `Pool::run_async` submits again then.
    pub(crate) async fn room(&self) {
        self.handoff.room(|| self.has_room()).await;
    }

    /// Registers `task`'s deadline, if it has one and has not resolved yet.
    pub(super) fn set_deadline_of<I: Send + 'static, X: Send + 'static>(
        self: &Arc<Self>,
        task: &Arc<Task<I, X>>,
        at: Option<Instant>,
    ) {
        if let Some(at) = at {
            if !task.cell.is_done() {
                self.set_deadline(task.id, Arc::clone(task) as _, at);
            }
        }
    }

    /// Accepts `input` as the job `wrap` makes of its task: admitted under the bound,
    /// then pushed. On a full queue it refuses, waits for room, or (waiting on one of the
    /// pool's own threads, which could starve the pool) runs it there with `here`.
    fn accept<I: Send + 'static, X: Send + 'static>(
        self: &Arc<Self>,
        input: I,
        items: u64,
        on_full: OnFull,
        precancelled: Precancelled,
        wrap: Wrap<T, R, I, X>,
        here: Here<T, R, I, X>,
    ) -> Result<Arc<Task<I, X>>, RunError<I>> {
        // The one clock read of a submission, before anything is shared.
        let enqueued = Stamp::now();
        let became_full = loop {
            if !self.is_open() {
                return Err(RunError::Closed(input));
            }
            match self.admit() {
                Ok(full) => break full,
                Err(Full) => match on_full {
                    OnFull::Refuse => return Err(RunError::QueueFull(input)),
                    OnFull::Wait if self.is_current_worker() => {
                        let task = self.new_task(enqueued, input, items);
                        if let Some(input) = task.cell.claim() {
                            here(self, &task, input);
                        }
                        return Ok(task);
                    }
                    OnFull::Wait => self.handoff.wait_room(|| self.has_room()),
                },
            }
        };
        let task = self.new_task(enqueued, input, items);
        if let Some(reason) = precancelled {
            // Accepted, and cancelled at once: it never runs (and leaves the queue).
            let pool: &dyn PoolHooks = &**self;
            task.cancel(reason, Some(pool));
            return Ok(task);
        }
        if let Err(input) = self.push_admitted(&task, wrap) {
            // Closed since the admission: not accepted; give the admission back.
            self.handoff.left();
            return Err(RunError::Closed(input));
        }
        if became_full {
            self.emit(PoolEvent::NeedsDrain);
        }
        self.grow_if_needed();
        Ok(task)
    }

    /// Pushes the job `wrap` makes of an admitted `task`; on a closed queue, the task's
    /// input back (the caller gives the admission back).
    pub(super) fn push_admitted<I, X>(
        &self,
        task: &Arc<Task<I, X>>,
        wrap: Wrap<T, R, I, X>,
    ) -> Result<(), I> {
        if self.handoff.push(wrap(Arc::clone(task))).is_ok() {
            return Ok(());
        }
        let input = task.cell.claim();
        Err(input.unwrap_or_else(|| {
            unreachable!("a task that was never pushed is claimed by nobody else")
        }))
    }

    pub(super) fn new_task<I, X>(&self, enqueued: Stamp, input: I, items: u64) -> Arc<Task<I, X>> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Task::new(id, enqueued, input, items)
    }
}
