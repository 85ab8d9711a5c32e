//! The pool's shared core: its hand-off (the queue and its counts: `handoff.rs`), its
//! threads (`threads.rs`), how tasks are accepted (`submit.rs`), the bodies of its
//! threads (`worker.rs`, `async_worker.rs`, `process_worker.rs`), and its deadlines
//! (`deadline.rs`).
//!
//! # Exactly once
//!
//! A task is accepted when its job is in the queue (or, refused for room on one of the
//! pool's own threads, when it runs there). From then on its [`Task`]'s cell decides who
//! resolves it, with one compare-and-swap per step: the thread that claims it (`QUEUED`
//! to `RUNNING`) runs it and resolves it, unless a deadline resolved it first; a cancel
//! or a deadline that finds it queued resolves it there; `destroy` resolves what it finds
//! queued. A resolution is counted by whoever makes it, before the handle can see it. A
//! task that left the queue unrun leaves a tombstone in the list, which the thread that
//! pops it skips.

use std::any::Any;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread;

use worker_threads_wait::sync::Mutex;
use worker_threads_wait::{Waiters, lock};

use crate::config::{Config, EventHook};
use crate::error::TaskError;
use crate::events::PoolEvent;
use crate::stats::Resolved;
use crate::stats::{Counts, Stats};
use crate::task::{Chunk, Output, PoolHooks, Task, running};

pub(crate) use crate::inner::handoff::Bound;
use crate::inner::handoff::Handoff;
pub(crate) use crate::inner::job::{ChunkHandle, Job};
use crate::inner::phase::OPEN;
pub(crate) use crate::inner::phase::Shutdown;
pub(crate) use crate::inner::retrying::RetryWith;
pub(crate) use crate::inner::submit::{OnFull, Precancelled};
use crate::inner::thread_counts::Threads;

/// A worker's per-thread state maker.
type Init<S> = dyn Fn() -> S + Send + Sync;
/// A worker's task handler.
type Handler<S, T, R> = dyn Fn(&mut S, T) -> R + Send + Sync;
/// Runs one task to completion on the calling thread, with a state of its own.
type InlineRunner<T, R> = dyn Fn(T) -> R + Send + Sync;
/// Starts one worker thread for the pool.
type Spawner<T, R> = dyn Fn(&Arc<Inner<T, R>>, String) -> std::io::Result<()> + Send + Sync;

pub(crate) struct Inner<T, R> {
    pub(crate) handoff: Handoff<Job<T, R>>,
    threads: Threads,
    /// `OPEN`, then `CLOSING` or `DESTROYED` (once).
    phase: AtomicU8,
    pub(crate) config: Config,
    bound: Bound,
    pub(crate) stats: Stats,
    on_event: Option<EventHook>,
    /// On a line of its own: submitters add to it on every task, and the fields around
    /// it are read by the pool's threads.
    next_id: crossbeam_utils::CachePadded<AtomicU64>,
    /// Raised by `destroy`: running tasks see `is_cancelled()` and resolve `Cancelled`.
    pub(crate) destroyed: Arc<AtomicBool>,
    /// Async pool threads with no room for another task wait here for `close` or
    /// `destroy`.
    shutdown: Waiters,
    /// Tasks' deadlines and their keeper thread (`deadline.rs`).
    deadlines: Arc<deadline::Keeper>,
    spawner: Box<Spawner<T, R>>,
    inline: Box<InlineRunner<T, R>>,
    /// This pool as its handles see it, made once (a handle clones it: one atomic add).
    hooks: Weak<dyn PoolHooks>,
    /// What `destroy` calls to stop running work that cannot look at a flag (a process
    /// pool's threads: kill the process running a task), by thread.
    destroy_hooks: Mutex<HashMap<thread::ThreadId, Box<dyn Fn() + Send>>>,
}

thread_local! {
    /// The address of the `Inner` whose worker the calling thread is, or 0.
    static WORKER_OF: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl<T, R> Inner<T, R> {
    pub(crate) fn emit(&self, event: PoolEvent) {
        if let Some(hook) = &self.on_event {
            hook(&event);
        }
    }

    pub(crate) fn is_current_worker(&self) -> bool {
        WORKER_OF.with(|worker_of| worker_of.get() == std::ptr::from_ref(self) as usize)
    }

    /// True while the pool accepts tasks.
    fn is_open(&self) -> bool {
        self.phase.load(Ordering::SeqCst) == OPEN
    }

    /// True once the pool stopped accepting tasks.
    pub(crate) fn is_closed(&self) -> bool {
        !self.is_open()
    }

    /// An accepted task left the queue (taken by a thread, cancelled, expired):
    /// `PoolEvent::Drain` if that emptied it.
    #[inline]
    fn left_queue_counted(&self) {
        if self.handoff.left() {
            self.emit(PoolEvent::Drain);
        }
    }

    /// Marks the calling thread one of this pool's, as it starts.
    fn enter_thread(&self) {
        WORKER_OF.with(|worker_of| worker_of.set(std::ptr::from_ref(self) as usize));
        crate::task::set_pool_destroyed_flag(Arc::clone(&self.destroyed));
        self.threads.started();
    }

    /// Sets (or with `None` removes) the calling thread's destroy hook. A destroy that
    /// raised the flag before the hook was set is seen by the hook's owner through
    /// `destroyed`; one after it calls the hook.
    #[cfg_attr(not(feature = "process"), allow(dead_code))]
    pub(crate) fn set_destroy_hook(
        &self,
        key: thread::ThreadId,
        hook: Option<Box<dyn Fn() + Send>>,
    ) {
        let mut hooks = lock(&self.destroy_hooks);
        match hook {
            // The destroy may have run the hooks before this one was in: run it now.
            // (`begin_shut_down` raises the flag before it takes this lock.)
            Some(hook) if self.destroyed.load(Ordering::Acquire) => {
                hook();
                hooks.insert(key, hook);
            }
            Some(hook) => {
                hooks.insert(key, hook);
            }
            None => {
                hooks.remove(&key);
            }
        }
    }

    /// A task that was running when the pool was destroyed resolves `Cancelled`, whatever
    /// it returned: `destroy` cancels every running task (they saw `is_cancelled()`).
    #[inline]
    pub(super) fn cancel_if_destroyed<I, X>(&self, task: &Task<I, X>) {
        if self.destroyed.load(Ordering::Acquire) {
            task.cancel_counted(None, &self.stats.shared, || {});
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    fn new(
        config: Config,
        on_event: Option<EventHook>,
        spawner: Box<Spawner<T, R>>,
        inline: Box<InlineRunner<T, R>>,
    ) -> Arc<Self> {
        let bound = match config.max_queue {
            None => Bound::Unbounded,
            Some(0) => Bound::NoQueue,
            Some(max) => Bound::At(max),
        };
        Arc::new_cyclic(|weak: &Weak<Self>| Self {
            handoff: Handoff::new(),
            threads: Threads::new(),
            phase: AtomicU8::new(OPEN),
            config,
            bound,
            stats: Stats::new(),
            on_event,
            next_id: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            destroyed: Arc::new(AtomicBool::new(false)),
            shutdown: Waiters::new(),
            deadlines: Arc::default(),
            spawner,
            inline,
            hooks: weak.clone() as Weak<dyn PoolHooks>,
            destroy_hooks: Mutex::default(),
        })
    }

    /// Makes a pool's core and starts its `min_threads` threads.
    pub(crate) fn start<S, I, F>(
        config: Config,
        on_event: Option<EventHook>,
        init: I,
        handler: F,
    ) -> Result<Arc<Self>, crate::error::BuildError>
    where
        S: 'static,
        I: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> R + Send + Sync + 'static,
    {
        let init = Arc::new(init);
        let handler = Arc::new(handler);
        let stack_size = config.stack_size;
        let spawner = {
            let (init, handler) = (Arc::clone(&init), Arc::clone(&handler));
            Box::new(move |inner: &Arc<Self>, name: String| {
                let (inner, init, handler) =
                    (Arc::clone(inner), Arc::clone(&init), Arc::clone(&handler));
                let mut thread = thread::Builder::new().name(name.clone());
                if let Some(bytes) = stack_size {
                    thread = thread.stack_size(bytes);
                }
                thread
                    .spawn(move || inner.work(name, &*init, &*handler))
                    .map(drop)
            })
        };
        let inline = Box::new(move |task: T| handler(&mut init(), task));
        Self::launch(Self::new(config, on_event, spawner, inline))
    }

    /// Makes an async pool's core (`build_async`) and starts its `min_threads` threads.
    #[cfg(feature = "tokio")]
    pub(crate) fn start_async(
        config: Config,
        on_event: Option<EventHook>,
        handler: Arc<async_worker::AsyncHandler<T, R>>,
    ) -> Result<Arc<Self>, crate::error::BuildError> {
        let stack_size = config.stack_size;
        let spawner = {
            let handler = Arc::clone(&handler);
            Box::new(move |inner: &Arc<Self>, name: String| {
                let (inner, handler) = (Arc::clone(inner), Arc::clone(&handler));
                let mut thread = thread::Builder::new().name(name.clone());
                if let Some(bytes) = stack_size {
                    thread = thread.stack_size(bytes);
                }
                thread
                    .spawn(move || inner.work_async(name, &*handler))
                    .map(drop)
            })
        };
        // A queued task joined from one of the pool's own threads runs to completion on a
        // thread of its own (a runtime cannot be started inside this thread's runtime).
        let inline = Box::new(move |task: T| {
            let handler = Arc::clone(&handler);
            thread::scope(|scope| {
                scope
                    .spawn(move || {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map(|runtime| runtime.block_on(handler(task)))
                    })
                    .join()
            })
            .unwrap_or_else(|payload| panic::resume_unwind(payload))
            .unwrap_or_else(|error| panic!("cannot start a runtime to run a task inline: {error}"))
        });
        Self::launch(Self::new(config, on_event, spawner, inline))
    }

    /// Runs a claimed task on the calling thread with a fresh `init` state (the pool's
    /// inline runner), and resolves it, counted in the shared counters.
    fn run_one_inline(&self, task: &Arc<Task<T, R>>, input: T) {
        let result =
            panic::catch_unwind(AssertUnwindSafe(|| running(task, || (self.inline)(input))))
                .map_err(|payload| TaskError::Panicked(panic_message(&*payload)));
        task.resolve(result, |output| {
            self.stats.shared.add(Resolved::of(output), 1)
        });
    }

    /// Runs a claimed chunk on the calling thread, each item with a fresh `init` state.
    fn run_chunk_inline(&self, chunk: &Arc<Chunk<T, R>>, items: Vec<T>) {
        let results = items
            .into_iter()
            .map(|item| {
                panic::catch_unwind(AssertUnwindSafe(|| running(chunk, || (self.inline)(item))))
                    .map_err(|payload| TaskError::Panicked(panic_message(&*payload)))
            })
            .collect();
        chunk.resolve(Ok(results), |output| {
            count_chunk(&self.stats.shared, output, chunk.items)
        });
    }
}

/// Counts a chunk's items as its output says: each item's value, panic or crash, or every
/// item as the chunk's error.
pub(crate) fn count_chunk<R>(counts: &Counts, output: &Output<Vec<Output<R>>>, items: u64) {
    match output {
        Ok(results) => {
            for result in results {
                counts.add(Resolved::of(result), 1);
            }
        }
        Err(error) => counts.add(Resolved::of::<()>(&Err(error.clone())), items),
    }
}

impl<T, R> Drop for Inner<T, R> {
    fn drop(&mut self) {
        // The keeper thread holds only the deadlines: tell it the pool is gone.
        self.deadlines.close();
    }
}

impl<T: Send + 'static, R: Send + 'static> PoolHooks for Inner<T, R> {
    fn left_queue(&self) -> bool {
        self.handoff.left()
    }

    fn emptied(&self) {
        self.emit(PoolEvent::Drain);
    }

    fn counts(&self) -> &Counts {
        &self.stats.shared
    }

    fn run_inline_if_worker(&self, task: Arc<dyn Any + Send + Sync>) -> bool {
        if !self.is_current_worker() {
            return false;
        }
        match task.downcast::<Task<T, R>>() {
            Ok(task) => {
                let Some(input) = task.cell.claim() else {
                    return false;
                };
                self.left_queue_counted();
                self.run_one_inline(&task, input);
                true
            }
            Err(task) => match task.downcast::<Chunk<T, R>>() {
                Ok(chunk) => {
                    let Some(items) = chunk.cell.claim() else {
                        return false;
                    };
                    self.left_queue_counted();
                    self.run_chunk_inline(&chunk, items);
                    true
                }
                Err(_) => false,
            },
        }
    }
}

pub(crate) use worker_threads_wait::panic_message;

#[cfg(feature = "tokio")]
pub(crate) mod async_worker;
mod deadline;
mod handoff;
mod job;
#[cfg(all(test, worker_threads_loom))]
mod loom_model;
mod phase;
#[cfg(all(feature = "process", target_os = "linux"))]
pub(crate) mod process_worker;
mod retrying;
mod submit;
#[cfg(test)]
mod tests;
mod thread_counts;
mod threads;
mod worker;
