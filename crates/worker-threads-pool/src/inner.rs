//! The pool's shared core: the queue, the threads, and the signals between them.
//!
//! # State and waits
//!
//! Everything that decides who waits and who wakes lives in one `Mutex<State>`: the
//! queue, and the counts of threads, idle workers, sleeping workers, and submitters or
//! drain waiters asleep. A notify is sent only when such a count says somebody sleeps on
//! that condition (a std `Condvar` notify is a system call even with no waiter), and since
//! a sleeper increments its count and goes to sleep under the same lock, no wake-up is lost.
//! Async waiters (`drained().await`, `run_async`) register an event-listener under the lock
//! too, and are notified under it.
//!
//! Before sleeping, workers and submitters spin briefly on `queue_len`, a mirror of the
//! queue's length written under the lock, so that a busy pool hands tasks over without a
//! kernel wake-up (about 50-80 us on a small VM).
//!
//! # Drain
//!
//! Drain means the queue went from non-empty to empty: every pop that empties the queue
//! bumps `drain_epoch` and wakes drain waiters. A waiter returns when the queue is empty
//! or the epoch moved, so the submission loop of the Node chapter (`queue_size() == max_queue()`, then wait for
//! drain) can never hang: a full queue is non-empty, and only a pop can empty it.
//!
//! # Exactly once
//!
//! A task is accepted when its job enters the queue. From there exactly one of these
//! resolves its slot: the worker that pops it (value, `Panicked`, or `Cancelled` if it was
//! cancelled meanwhile), `cancel` (which removes it from the queue under the lock), or
//! `destroy` (which empties the queue under the lock). A slot ignores any later
//! resolution anyway.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Instant;

use event_listener::Event;
use worker_threads_wait::sync::{Condvar, Mutex, MutexGuard};
use worker_threads_wait::{Deadline, lock, spin_while, wait, wait_until};

use crate::config::{Config, EventHook};
use crate::error::{BuildError, RunError, TaskError};
use crate::events::PoolEvent;
use crate::stats::Stats;
use crate::task::{PoolHooks, Resolved, Slot, TaskHandle, running};

pub(crate) struct Job<T, R> {
    pub(crate) id: u64,
    pub(crate) work: Work<T, R>,
    pub(crate) enqueued: Instant,
}

/// The result slot of a chunk: one result per item, in order.
pub(crate) type ChunkSlot<R> = Slot<Vec<Result<R, TaskError>>>;
/// The handle of a chunk.
pub(crate) type ChunkHandle<R> = TaskHandle<Vec<Result<R, TaskError>>>;
/// A worker's per-thread state maker.
type Init<S> = dyn Fn() -> S + Send + Sync;
/// A worker's task handler.
type Handler<S, T, R> = dyn Fn(&mut S, T) -> R + Send + Sync;

/// What a job runs: one task (`run`), or a chunk of `map`'s items sharing one queue entry
/// and one result slot (so a fast `map` pays one hand-off per chunk, not per item).
pub(crate) enum Work<T, R> {
    One {
        task: T,
        slot: Arc<Slot<R>>,
    },
    Chunk {
        tasks: Vec<T>,
        slot: Arc<ChunkSlot<R>>,
    },
}

impl<T, R> Work<T, R> {
    /// The tasks it holds (what `completed` and `cancelled` count).
    fn len(&self) -> u64 {
        match self {
            Work::One { .. } => 1,
            Work::Chunk { tasks, .. } => tasks.len() as u64,
        }
    }

    /// Resolves every task it holds `Cancelled` (unless already resolved), counted.
    fn resolve_cancelled(self, stats: &Stats) {
        let items = self.len();
        let count = |resolved| stats.count(resolved, items);
        match self {
            Work::One { slot, .. } => slot.resolve(Err(TaskError::Cancelled), count),
            Work::Chunk { slot, .. } => slot.resolve(Err(TaskError::Cancelled), count),
        }
    }
}

/// Resolves one task's slot with `result`, counting the outcome it resolves with.
fn resolve_one<R>(stats: &Stats, slot: &Slot<R>, result: Result<R, TaskError>) {
    slot.resolve(result, |resolved| stats.count(resolved, 1));
}

/// Resolves a chunk's slot with its items' results, counting each item: a value or a
/// panic each, or every item `Cancelled` if the chunk was cancelled.
fn resolve_chunk<R>(stats: &Stats, slot: &ChunkSlot<R>, results: Vec<Result<R, TaskError>>) {
    let items = results.len() as u64;
    let crashed = results
        .iter()
        .filter(|result| matches!(result, Err(TaskError::Crashed { .. })))
        .count() as u64;
    let panicked = results.iter().filter(|result| result.is_err()).count() as u64 - crashed;
    slot.resolve(Ok(results), |resolved| match resolved {
        Resolved::Cancelled => stats.count(Resolved::Cancelled, items),
        Resolved::Value | Resolved::Panicked | Resolved::TimedOut | Resolved::Crashed => {
            stats.count(Resolved::Value, items - panicked - crashed);
            stats.count(Resolved::Panicked, panicked);
            stats.count(Resolved::Crashed, crashed);
        }
    });
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Open,
    Closing,
    Destroyed,
}

pub(crate) struct State<T, R> {
    queue: VecDeque<Job<T, R>>,
    threads: usize,
    /// Threads spawned that have not yet looked at the queue.
    starting: usize,
    idle: usize,
    sleeping: usize,
    room_waiters: usize,
    drain_waiters: usize,
    async_waiters: usize,
    /// Async pool threads waiting on `job_event` for a job (they also count as idle).
    job_waiters: usize,
    drain_epoch: u64,
    phase: Phase,
    next_thread: usize,
}

/// How a submitter behaves on a full queue.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFull {
    Refuse,
    Wait,
}

/// Runs one task to completion on the calling thread, with a state of its own.
type InlineRunner<T, R> = dyn Fn(T) -> R + Send + Sync;
/// Starts one worker thread for the pool.
type Spawner<T, R> = dyn Fn(&Arc<Inner<T, R>>, String) -> std::io::Result<()> + Send + Sync;

pub(crate) struct Inner<T, R> {
    state: Mutex<State<T, R>>,
    work: Condvar,
    shrunk: Condvar,
    exited: Condvar,
    async_event: Event,
    /// Async pool threads with room for another task wait on it: notified by each push
    /// (when one waits) and by shutting down.
    job_event: Event,
    /// Notified once, by `close` or `destroy`: async pool threads without room wait on it
    /// beside their tasks.
    shutdown_event: Event,
    pub(crate) queue_len: AtomicUsize,
    pub(crate) config: Config,
    pub(crate) stats: Stats,
    on_event: Option<EventHook>,
    next_id: AtomicU64,
    /// Raised by `destroy`: running tasks see `is_cancelled()` and resolve `Cancelled`.
    pub(crate) destroyed: Arc<AtomicBool>,
    /// Tasks' deadlines and their keeper thread's condvar (`inner/deadline.rs`).
    deadlines: Arc<deadline::Keeper>,
    spawner: Box<Spawner<T, R>>,
    inline: Box<InlineRunner<T, R>>,
    /// This pool as its handles see it, made once (a handle clones it: one atomic add).
    hooks: Weak<dyn PoolHooks>,
    /// What `destroy` calls to stop running work that cannot look at a flag (a process
    /// pool's threads: kill the process running a task), by thread.
    destroy_hooks: Mutex<std::collections::HashMap<thread::ThreadId, Box<dyn Fn() + Send>>>,
}

thread_local! {
    /// The address of the `Inner` whose worker the calling thread is, or 0.
    static WORKER_OF: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl<T, R> Inner<T, R> {
    fn lock(&self) -> MutexGuard<'_, State<T, R>> {
        lock(&self.state)
    }

    pub(crate) fn emit(&self, event: PoolEvent) {
        if let Some(hook) = &self.on_event {
            hook(&event);
        }
    }

    fn is_full(&self, state: &State<T, R>) -> bool {
        self.config
            .max_queue
            .is_some_and(|max| state.queue.len() >= max)
    }

    pub(crate) fn is_current_worker(&self) -> bool {
        WORKER_OF.with(|worker_of| worker_of.get() == std::ptr::from_ref(self) as usize)
    }

    /// Starts a worker thread, counting it, and returns its name (for the caller to report
    /// as `WorkerCreated` once it has released the lock); on failure, uncounts it.
    pub(crate) fn spawn_worker(
        self: &Arc<Self>,
        state: &mut State<T, R>,
    ) -> std::io::Result<String> {
        let name = format!("{}-{}", self.config.name, state.next_thread);
        state.next_thread += 1;
        state.threads += 1;
        state.starting += 1;
        match (self.spawner)(self, name.clone()) {
            Ok(()) => Ok(name),
            Err(err) => {
                state.threads -= 1;
                state.starting -= 1;
                Err(err)
            }
        }
    }

    /// Reports the result of `spawn_worker`, outside the lock.
    pub(crate) fn report_spawn(&self, spawned: std::io::Result<String>) {
        match spawned {
            Ok(name) => self.emit(PoolEvent::WorkerCreated { name }),
            Err(err) => {
                tracing::warn!(%err, "pool could not start a thread");
                self.emit(PoolEvent::Error(format!(
                    "could not start a pool thread: {err}"
                )));
            }
        }
    }

    /// After a pop: mirror the length, and signal drain and room.
    fn popped(&self, state: &mut State<T, R>) -> bool {
        self.queue_len.store(state.queue.len(), Ordering::Release);
        let drained = state.queue.is_empty();
        if drained {
            state.drain_epoch += 1;
        }
        if state.room_waiters > 0 || (drained && state.drain_waiters > 0) {
            self.shrunk.notify_all();
        }
        if state.async_waiters > 0 {
            self.async_event.notify(usize::MAX);
        }
        drained
    }

    /// The next job for a worker, or `None` when the worker should exit.
    pub(crate) fn next_job(self: &Arc<Self>) -> Option<Job<T, R>> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                let drained = self.popped(&mut state);
                drop(state);
                if drained {
                    self.emit(PoolEvent::Drain);
                }
                return Some(job);
            }
            if state.phase != Phase::Open {
                return None;
            }
            state.idle += 1;
            drop(state);
            spin_while(|| self.queue_len.load(Ordering::Acquire) == 0);
            state = self.lock();
            if state.queue.is_empty() && state.phase == Phase::Open {
                let can_retire = state.threads > self.config.min_threads;
                state.sleeping += 1;
                let timed_out;
                (state, timed_out) = if can_retire {
                    wait_until(&self.work, state, Deadline::after(self.config.idle_timeout))
                } else {
                    (wait(&self.work, state), false)
                };
                state.sleeping -= 1;
                let retire =
                    timed_out && state.queue.is_empty() && state.threads > self.config.min_threads;
                if retire {
                    state.idle -= 1;
                    return None;
                }
            }
            state.idle -= 1;
        }
    }

    #[cfg(feature = "tokio")]
    /// The next job if one is queued, without waiting (an async pool thread with tasks in
    /// flight); `Err(())` once the pool no longer gives out jobs.
    pub(crate) fn try_next_job(&self) -> Result<Option<Job<T, R>>, ()> {
        let mut state = self.lock();
        if let Some(job) = state.queue.pop_front() {
            let drained = self.popped(&mut state);
            drop(state);
            if drained {
                self.emit(PoolEvent::Drain);
            }
            return Ok(Some(job));
        }
        if state.phase == Phase::Open {
            Ok(None)
        } else {
            Err(())
        }
    }

    #[cfg(feature = "tokio")]
    /// Listens for `close` or `destroy`: `None` if the pool is closing already.
    pub(crate) fn listen_shutdown(&self) -> Option<event_listener::EventListener> {
        let state = self.lock();
        (state.phase == Phase::Open).then(|| self.shutdown_event.listen())
    }

    #[cfg(feature = "tokio")]
    /// Registers an async pool thread as waiting for a job: the listener fires on the next
    /// push or on shutting down. `None` if there is a job already, or the pool is closing
    /// (look again instead of waiting).
    pub(crate) fn listen_jobs(
        &self,
    ) -> Option<(event_listener::EventListener, JobWaiter<'_, T, R>)> {
        let mut state = self.lock();
        if !state.queue.is_empty() || state.phase != Phase::Open {
            return None;
        }
        let listener = self.job_event.listen();
        state.job_waiters += 1;
        state.idle += 1;
        Some((listener, JobWaiter(self)))
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

    /// A worker is leaving: uncount it, and wake `close` when it was the last.
    pub(crate) fn worker_exited(&self) {
        let mut state = self.lock();
        state.threads -= 1;
        if state.threads == 0 {
            self.exited.notify_all();
            self.async_event.notify(usize::MAX);
        }
    }

    /// Waits until the queue is empty (drained), or the pool is closed and empty.
    pub(crate) fn wait_drain(&self) {
        let mut state = self.lock();
        if state.queue.is_empty() {
            return;
        }
        let epoch = state.drain_epoch;
        drop(state);
        spin_while(|| self.queue_len.load(Ordering::Acquire) != 0);
        state = self.lock();
        while state.drain_epoch == epoch && !state.queue.is_empty() {
            state.drain_waiters += 1;
            state = wait(&self.shrunk, state);
            state.drain_waiters -= 1;
        }
    }

    /// Registers an async waiter on the queue shrinking; the guard unregisters it.
    pub(crate) fn listen_shrunk(
        &self,
        state: &mut State<T, R>,
    ) -> (event_listener::EventListener, AsyncWaiter<'_, T, R>) {
        let listener = self.async_event.listen();
        state.async_waiters += 1;
        (listener, AsyncWaiter(self))
    }

    /// Awaits the queue draining (`Pool::drained`): at once if it is empty, else when a
    /// pop empties it (the drain epoch moves).
    pub(crate) async fn drained(&self) {
        let mut epoch = None;
        loop {
            let (listener, waiter) = {
                let mut state = self.lock();
                let now = state.drain_epoch;
                if state.queue.is_empty() || epoch.is_some_and(|epoch| epoch != now) {
                    return;
                }
                epoch.get_or_insert(now);
                self.listen_shrunk(&mut state)
            };
            listener.await;
            drop(waiter);
        }
    }

    /// True once the pool stopped accepting tasks.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().phase != Phase::Open
    }

    /// The pool's threads now, starting ones included.
    pub(crate) fn threads(&self) -> usize {
        self.lock().threads
    }

    /// Polls for room in the queue (or the pool closing), keeping `waiting` registered
    /// between polls: the poll form of waiting for room, for `map`'s stream.
    pub(crate) fn poll_room<'a>(
        &'a self,
        waiting: &mut Option<(event_listener::EventListener, AsyncWaiter<'a, T, R>)>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        use std::future::Future;
        use std::task::Poll;
        loop {
            match waiting {
                None => {
                    // Register before looking, so that a pop after the look is seen.
                    let mut state = self.lock();
                    let registered = self.listen_shrunk(&mut state);
                    let room = !self.is_full(&state) || state.phase != Phase::Open;
                    // Unlock before the registration can drop: its drop takes the lock.
                    drop(state);
                    if room {
                        return Poll::Ready(());
                    }
                    *waiting = Some(registered);
                }
                Some((listener, _)) => match std::pin::Pin::new(listener).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => *waiting = None,
                },
            }
        }
    }

    /// Removes task `id` from the queue, if it is there, signalling a drain it causes.
    fn take_queued(&self, id: u64) -> Option<Job<T, R>> {
        let mut state = self.lock();
        let at = state.queue.iter().position(|job| job.id == id)?;
        let job = state.queue.remove(at);
        let drained = self.popped(&mut state);
        drop(state);
        if drained {
            self.emit(PoolEvent::Drain);
        }
        job
    }

    /// Stops accepting; with `destroy`, resolves every queued task `Cancelled`. Then waits
    /// for the threads to finish, unless called from one of them.
    pub(crate) fn shut_down(self: &Arc<Self>, destroy: bool) {
        self.begin_shut_down(destroy);
        self.wait_threads(None);
    }

    /// Stops accepting; with `destroy`, resolves every queued task `Cancelled` and cancels
    /// the running ones. Waits for nothing.
    pub(crate) fn begin_shut_down(&self, destroy: bool) {
        let mut state = self.lock();
        let cancelled: Vec<Job<T, R>> = if destroy {
            state.phase = Phase::Destroyed;
            self.destroyed.store(true, Ordering::Release);
            let jobs = state.queue.drain(..).collect();
            self.popped(&mut state);
            jobs
        } else {
            if state.phase == Phase::Open {
                state.phase = Phase::Closing;
            }
            Vec::new()
        };
        self.work.notify_all();
        self.shrunk.notify_all();
        self.async_event.notify(usize::MAX);
        self.job_event.notify(usize::MAX);
        self.shutdown_event.notify(usize::MAX);
        drop(state);
        if destroy {
            let hooks = lock(&self.destroy_hooks);
            for stop in hooks.values() {
                stop();
            }
        }
        for job in cancelled {
            job.work.resolve_cancelled(&self.stats);
        }
    }

    /// Waits until every pool thread has ended, or `deadline` passes (then false). Returns
    /// at once on one of the pool's own threads (it would wait for itself).
    pub(crate) fn wait_threads(&self, deadline: Option<Instant>) -> bool {
        if self.is_current_worker() {
            return false;
        }
        let deadline = Deadline::from_instant(deadline);
        let mut state = self.lock();
        while state.threads > 0 {
            let passed;
            (state, passed) = wait_until(&self.exited, state, deadline);
            if passed && state.threads > 0 {
                return false;
            }
        }
        drop(state);
        self.deadlines.close();
        true
    }

    /// Awaits every pool thread's end, under any executor.
    pub(crate) async fn threads_ended(&self) {
        loop {
            let (listener, waiter) = {
                let mut state = self.lock();
                if state.threads == 0 {
                    drop(state);
                    self.deadlines.close();
                    return;
                }
                self.listen_shrunk(&mut state)
            };
            listener.await;
            drop(waiter);
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    pub(crate) fn new(
        config: Config,
        on_event: Option<EventHook>,
        spawner: Box<Spawner<T, R>>,
        inline: Box<InlineRunner<T, R>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|weak: &Weak<Self>| Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                starting: 0,
                idle: 0,
                sleeping: 0,
                room_waiters: 0,
                drain_waiters: 0,
                async_waiters: 0,
                job_waiters: 0,
                drain_epoch: 0,
                phase: Phase::Open,
                next_thread: 0,
            }),
            work: Condvar::new(),
            shrunk: Condvar::new(),
            exited: Condvar::new(),
            async_event: Event::new(),
            job_event: Event::new(),
            shutdown_event: Event::new(),
            queue_len: AtomicUsize::new(0),
            config,
            stats: Stats::new(),
            on_event,
            next_id: AtomicU64::new(0),
            destroyed: Arc::new(AtomicBool::new(false)),
            deadlines: Arc::default(),
            spawner,
            inline,
            hooks: weak.clone() as Weak<dyn PoolHooks>,
            destroy_hooks: Mutex::default(),
        })
    }

    /// Makes an async pool's core (`build_async`) and starts its `min_threads` threads.
    #[cfg(feature = "tokio")]
    pub(crate) fn start_async(
        config: Config,
        on_event: Option<EventHook>,
        handler: Arc<async_worker::AsyncHandler<T, R>>,
    ) -> Result<Arc<Self>, BuildError> {
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

    /// Makes a process pool's core and starts its `min_threads` threads.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn start_process(
        config: Config,
        on_event: Option<EventHook>,
        spawn: Box<crate::process::ProcessSpawner<T, R>>,
        settings: crate::process::ProcessSettings,
    ) -> Result<Arc<Self>, BuildError> {
        let spawn: Arc<crate::process::ProcessSpawner<T, R>> = Arc::from(spawn);
        let stack_size = config.stack_size;
        let spawner = Box::new(move |inner: &Arc<Self>, name: String| {
            let (inner, spawn) = (Arc::clone(inner), Arc::clone(&spawn));
            let mut thread = thread::Builder::new().name(name.clone());
            if let Some(bytes) = stack_size {
                thread = thread.stack_size(bytes);
            }
            thread
                .spawn(move || inner.work_process(name, &*spawn, settings))
                .map(drop)
        });
        // A queued task joined from one of the pool's own threads cannot run inline in a
        // process pool: the handler is in the worker processes.
        let inline = Box::new(|_task: T| -> R {
            panic!("a process pool cannot run a task on one of its own threads")
        });
        Self::launch(Self::new(config, on_event, spawner, inline))
    }

    /// Makes a pool's core and starts its `min_threads` threads.
    pub(crate) fn start<S, I, F>(
        config: Config,
        on_event: Option<EventHook>,
        init: I,
        handler: F,
    ) -> Result<Arc<Self>, BuildError>
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

    /// Starts a new core's `min_threads` threads.
    fn launch(inner: Arc<Self>) -> Result<Arc<Self>, BuildError> {
        let mut state = inner.lock();
        let mut names = Vec::new();
        for _ in 0..inner.config.min_threads {
            match inner.spawn_worker(&mut state) {
                Ok(name) => names.push(name),
                Err(err) => {
                    drop(state);
                    inner.shut_down(true);
                    return Err(BuildError::spawn(err));
                }
            }
        }
        drop(state);
        for name in names {
            inner.report_spawn(Ok(name));
        }
        tracing::debug!(
            name = %inner.config.name,
            min_threads = inner.config.min_threads,
            max_threads = inner.config.max_threads,
            max_queue = ?inner.config.max_queue,
            "pool started"
        );
        Ok(inner)
    }

    /// Submits `task`, awaiting room in the queue (`Pool::run_async`).
    pub(crate) async fn submit_async(
        self: &Arc<Self>,
        mut task: T,
    ) -> Result<TaskHandle<R>, RunError<T>> {
        loop {
            // Register before looking, so that a pop between the look and the await is seen.
            let (listener, waiter) = {
                let mut state = self.lock();
                let registered = self.listen_shrunk(&mut state);
                match self.try_enqueue(state, task)? {
                    Ok(handle) => {
                        drop(registered);
                        let deadline = self.default_deadline();
                        return Ok(self.with_deadline(handle, deadline));
                    }
                    Err(back) => {
                        task = back;
                        registered
                    }
                }
            };
            listener.await;
            drop(waiter);
        }
    }

    pub(crate) fn submit(
        self: &Arc<Self>,
        task: T,
        on_full: OnFull,
    ) -> Result<TaskHandle<R>, RunError<T>> {
        let deadline = self.default_deadline();
        self.submit_until(task, on_full, deadline, Slot::new())
    }

    /// Submits `task` with a deadline (`None`: none), to resolve in `slot` (a new one; it
    /// may be cancelled already, and then the task never runs).
    pub(crate) fn submit_until(
        self: &Arc<Self>,
        task: T,
        on_full: OnFull,
        deadline: Option<Instant>,
        slot: Arc<Slot<R>>,
    ) -> Result<TaskHandle<R>, RunError<T>> {
        let handle = self.submit_work(
            task,
            slot,
            on_full,
            |task, slot| Work::One { task, slot },
            |inner, task, slot| inner.run_inline(task, slot),
        )?;
        Ok(self.with_deadline(handle, deadline))
    }

    /// The deadline `task_timeout` gives a task accepted now.
    pub(crate) fn default_deadline(&self) -> Option<Instant> {
        Deadline::after(self.config.task_timeout?).instant()
    }

    /// Registers `handle`'s deadline, if it has one and has not resolved yet.
    fn with_deadline(
        self: &Arc<Self>,
        handle: TaskHandle<R>,
        at: Option<Instant>,
    ) -> TaskHandle<R> {
        if let Some(at) = at {
            if !handle.is_finished() {
                self.set_deadline(handle.id(), Arc::clone(handle.slot()) as _, 1, at);
            }
        }
        handle
    }

    /// Accepts a chunk of `map`'s items as one job, waiting for room.
    pub(crate) fn submit_chunk(
        self: &Arc<Self>,
        tasks: Vec<T>,
        on_full: OnFull,
    ) -> Result<ChunkHandle<R>, RunError<Vec<T>>> {
        let items = tasks.len() as u64;
        let handle = self.submit_work(
            tasks,
            Slot::new(),
            on_full,
            |tasks, slot| Work::Chunk { tasks, slot },
            |inner, tasks, slot| inner.run_chunk_inline(tasks, slot),
        )?;
        // `task_timeout` holds for map items too, from their acceptance (a map waits for
        // room on purpose); with a timeout, chunks hold one item (`Config::chunk_bounds`), so each
        // item has its own deadline as a task has.
        if let Some(at) = self.default_deadline() {
            if !handle.is_finished() {
                self.set_deadline(handle.id(), Arc::clone(handle.slot()) as _, items, at);
            }
        }
        Ok(handle)
    }

    /// Accepts `payload` as the job `wrap` makes of it; on a full queue refuses it, waits
    /// for room, or (waiting on one of our own workers, which could starve the pool) runs
    /// it here with `here`.
    fn submit_work<P, X: 'static>(
        self: &Arc<Self>,
        payload: P,
        slot: Arc<Slot<X>>,
        on_full: OnFull,
        wrap: fn(P, Arc<Slot<X>>) -> Work<T, R>,
        here: fn(&Self, P, &Arc<Slot<X>>),
    ) -> Result<TaskHandle<X>, RunError<P>> {
        // Allocate (the caller) and read the clock before taking the lock, to hold it briefly.
        let now = Instant::now();
        let mut state = self.lock();
        loop {
            if state.phase != Phase::Open {
                return Err(RunError::Closed(payload));
            }
            if !self.is_full(&state) {
                break;
            }
            match on_full {
                OnFull::Refuse => return Err(RunError::QueueFull(payload)),
                OnFull::Wait if self.is_current_worker() => {
                    drop(state);
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    here(self, payload, &slot);
                    return Ok(TaskHandle::new(id, slot, self.hooks.clone()));
                }
                OnFull::Wait => state = self.wait_for_room(state),
            }
        }
        let id = self.enqueue(state, wrap(payload, Arc::clone(&slot)), now);
        Ok(TaskHandle::new(id, slot, self.hooks.clone()))
    }

    /// Puts `work` in the queue (the caller checked the room); its id.
    fn enqueue(
        self: &Arc<Self>,
        mut state: MutexGuard<'_, State<T, R>>,
        work: Work<T, R>,
        enqueued: Instant,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        state.queue.push_back(Job { id, work, enqueued });
        self.queue_len.store(state.queue.len(), Ordering::Release);
        let became_full = self.config.max_queue == Some(state.queue.len());
        if state.sleeping > 0 {
            self.work.notify_one();
        }
        if state.job_waiters > 0 {
            self.job_event.notify(usize::MAX);
        }
        // Grow while queued tasks outnumber the threads that will take them.
        let takers = state.idle + state.starting;
        let grow = state.queue.len() > takers && state.threads < self.config.max_threads;
        let spawned = grow.then(|| self.spawn_worker(&mut state));
        drop(state);
        if became_full {
            self.emit(PoolEvent::NeedsDrain);
        }
        if let Some(spawned) = spawned {
            self.report_spawn(spawned);
        }
        id
    }

    /// Runs `task` on the calling thread with a fresh `init` state, and resolves `slot`.
    fn run_inline(&self, task: T, slot: &Arc<Slot<R>>) {
        let result =
            panic::catch_unwind(AssertUnwindSafe(|| running(slot, || (self.inline)(task))));
        let result = result.map_err(|payload| TaskError::Panicked(panic_message(&*payload)));
        resolve_one(&self.stats, slot, result);
    }

    /// Runs a chunk on the calling thread, each item with a fresh `init` state, and
    /// resolves `slot`.
    fn run_chunk_inline(&self, tasks: Vec<T>, slot: &Arc<ChunkSlot<R>>) {
        let results = tasks
            .into_iter()
            .map(|task| {
                panic::catch_unwind(AssertUnwindSafe(|| running(slot, || (self.inline)(task))))
                    .map_err(|payload| TaskError::Panicked(panic_message(&*payload)))
            })
            .collect();
        resolve_chunk(&self.stats, slot, results);
    }

    /// Runs a job taken from the queue on the calling thread, with fresh `init` states.
    fn run_work_inline(&self, work: Work<T, R>) {
        match work {
            Work::One { task, slot } => self.run_inline(task, &slot),
            Work::Chunk { tasks, slot } => self.run_chunk_inline(tasks, &slot),
        }
    }

    /// Accepts `task` if there is room now; `Ok(Err(task))` if the queue is full.
    pub(crate) fn try_enqueue(
        self: &Arc<Self>,
        state: MutexGuard<'_, State<T, R>>,
        task: T,
    ) -> Result<Result<TaskHandle<R>, T>, RunError<T>> {
        if state.phase != Phase::Open {
            return Err(RunError::Closed(task));
        }
        if self.is_full(&state) {
            return Ok(Err(task));
        }
        let slot = Slot::new();
        let id = self.enqueue(
            state,
            Work::One {
                task,
                slot: Arc::clone(&slot),
            },
            Instant::now(),
        );
        Ok(Ok(TaskHandle::new(id, slot, self.hooks.clone())))
    }

    fn wait_for_room<'a>(
        &'a self,
        state: MutexGuard<'a, State<T, R>>,
    ) -> MutexGuard<'a, State<T, R>> {
        let max = self.config.max_queue.unwrap_or(usize::MAX);
        drop(state);
        spin_while(|| self.queue_len.load(Ordering::Acquire) >= max);
        let mut state = self.lock();
        if self.is_full(&state) && state.phase == Phase::Open {
            state.room_waiters += 1;
            state = wait(&self.shrunk, state);
            state.room_waiters -= 1;
        }
        state
    }
}

/// An async pool thread's registration as waiting for a job; unregisters on drop.
#[cfg(feature = "tokio")]
pub(crate) struct JobWaiter<'a, T, R>(&'a Inner<T, R>);

#[cfg(feature = "tokio")]
impl<T, R> Drop for JobWaiter<'_, T, R> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.job_waiters -= 1;
        state.idle -= 1;
    }
}

/// An async waiter's registration; unregisters on drop (also when its future is dropped).
pub(crate) struct AsyncWaiter<'a, T, R>(&'a Inner<T, R>);

impl<T, R> Drop for AsyncWaiter<'_, T, R> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.async_waiters -= 1;
    }
}

impl<T, R> Drop for Inner<T, R> {
    fn drop(&mut self) {
        // The keeper thread holds only the deadlines: tell it the pool is gone.
        self.deadlines.close();
    }
}

impl<T: Send + 'static, R: Send + 'static> PoolHooks for Inner<T, R> {
    fn cancel_queued(&self, id: u64) -> bool {
        let Some(job) = self.take_queued(id) else {
            return false;
        };
        job.work.resolve_cancelled(&self.stats);
        true
    }

    fn run_inline_if_worker(&self, id: u64) -> bool {
        let ours = WORKER_OF.with(|worker_of| worker_of.get() == std::ptr::from_ref(self) as usize);
        if !ours {
            return false;
        }
        let Some(job) = self.take_queued(id) else {
            return false;
        };
        self.run_work_inline(job.work);
        true
    }
}

pub(crate) use worker_threads_wait::panic_message;

#[cfg(feature = "tokio")]
pub(crate) mod async_worker;
mod deadline;
#[cfg(all(feature = "process", target_os = "linux"))]
mod process_worker;
#[cfg(test)]
mod tests;
mod worker;
