//! The engine's side of a process pool: what crosses to a worker process (`Request`,
//! `Reply`, and `serve`, which answers in the process), how a pool thread starts one
//! (`ProcessSpawner`, `ProcessSettings`), and the body of a process pool's thread: it
//! drives one worker process, starting it on the first job and again after a crash, a
//! kill or (per settings) a recycle. The public builder (`crate::process`) only
//! configures.
//!
//! Exactly once: the thread resolves each task it claims: the process's reply, or, if
//! the process ended first, `Cancelled` (a cancel, deadline or destroy killed it: the task
//! was marked cancelled first) or `Crashed`. While a task runs, it holds a stopper that
//! terminates the process, and the pool a destroy hook that does the same; both are
//! removed before the thread looks at the process again, so neither outlives the task.

use std::sync::Arc;
use std::thread;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker_threads_core::SpawnError;
use worker_threads_core::process::{CallError, Killer, ProcessFn, ResourceLimits};

use super::{Inner, Job, count_chunk};
use crate::config::{Config, EventHook};
use crate::error::TaskError;
use crate::events::PoolEvent;
use crate::stats::Counts;
use crate::stats::Resolved;
use crate::task::Task;
use worker_threads_wait::Stamp;

/// How the process answered.
enum Answer<R> {
    Reply(Reply<R>),
    /// It ended (crashed, or killed by a cancel) before answering, or its answer did not
    /// cross: the task's error.
    Failed(TaskError),
    /// The slot was cancelled before the task was sent.
    NotSent,
}

/// A task for a worker process.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request<T> {
    One(T),
    Chunk(Vec<T>),
}

/// A worker process's answer: a value, or the message of the handler's panic.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply<R> {
    One(Result<R, String>),
    Chunk(Vec<Result<R, String>>),
}

/// The worker process of a process pool: the pool thread calls it directly (a
/// [`ProcessFn`]: one socket round trip per job, no bridge threads). Boxed, so that the
/// pool's core needs no serde bounds: the spawner, which has them, makes it.
pub(crate) type ProcessWorker<T, R> = Box<dyn Served<T, R>>;

/// A [`ProcessFn`] serving a pool's requests, type-erased.
pub(crate) trait Served<T, R>: Send {
    /// [`ProcessFn::call`].
    fn call(&mut self, request: &Request<T>) -> Result<Reply<R>, CallError>;
    /// [`ProcessFn::killer`].
    fn killer(&self) -> Killer;
    /// [`ProcessFn::pid`].
    fn pid(&self) -> u32;
    /// [`ProcessFn::close`].
    fn close(self: Box<Self>);
}

impl<T, R> Served<T, R> for ProcessFn<Request<T>, Reply<R>>
where
    T: Serialize + Send,
    R: DeserializeOwned + Send,
{
    fn call(&mut self, request: &Request<T>) -> Result<Reply<R>, CallError> {
        ProcessFn::call(self, request)
    }

    fn killer(&self) -> Killer {
        ProcessFn::killer(self)
    }

    fn pid(&self) -> u32 {
        ProcessFn::pid(self)
    }

    fn close(self: Box<Self>) {
        ProcessFn::close(*self);
    }
}

/// How a pool thread starts its worker process.
pub(crate) type ProcessSpawner<T, R> =
    dyn Fn() -> Result<ProcessWorker<T, R>, SpawnError> + Send + Sync;

/// What the process pool's threads do besides running tasks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcessSettings {
    pub(crate) isolate_workers: bool,
    pub(crate) max_memory: Option<u64>,
    pub(crate) limits: ResourceLimits,
}

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    /// Makes a process pool's core and starts its `min_threads` threads.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn start_process(
        config: Config,
        on_event: Option<EventHook>,
        spawn: Box<ProcessSpawner<T, R>>,
        settings: ProcessSettings,
    ) -> Result<Arc<Self>, crate::error::BuildError> {
        let spawn: Arc<ProcessSpawner<T, R>> = Arc::from(spawn);
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

    /// The body of a process pool thread.
    pub(crate) fn work_process(
        self: Arc<Self>,
        name: String,
        spawn: &ProcessSpawner<T, R>,
        settings: ProcessSettings,
    ) {
        self.enter_thread();
        let stats = self.stats.for_thread();
        let hook_key = std::thread::current().id();
        let mut worker: Option<ProcessWorker<T, R>> = None;
        let mut last = Stamp::now();
        let ended = loop {
            let job = match self.next_job() {
                Ok(job) => job,
                Err(ended) => break ended,
            };
            // Claim first: a tombstone costs no process.
            let (request, items) = match &job {
                Job::One(task) => match task.cell.claim() {
                    Some(input) => (Request::One(input), 1),
                    None => continue,
                },
                Job::Chunk(chunk) => match chunk.cell.claim() {
                    Some(inputs) => (Request::Chunk(inputs), chunk.items),
                    None => continue,
                },
            };
            self.took();
            if worker.is_none() {
                match spawn() {
                    Ok(started) => worker = Some(started),
                    Err(error) => {
                        tracing::error!(%error, "pool cannot start a worker process");
                        self.emit(PoolEvent::Error(format!(
                            "cannot start a worker process: {error}"
                        )));
                        resolve_failed(&job, TaskError::Crashed { signal: None }, &stats.counts);
                        continue;
                    }
                }
            }
            let Some(mut current) = worker.take() else {
                continue;
            };
            let answer = match &job {
                Job::One(task) => self.exchange(&mut current, &request, task, hook_key),
                Job::Chunk(chunk) => self.exchange(&mut current, &request, chunk, hook_key),
            };
            let enqueued = match &job {
                Job::One(task) => task.enqueued,
                Job::Chunk(chunk) => chunk.enqueued,
            };
            if !matches!(answer, Answer::NotSent) {
                last = stats.record_job(enqueued, last, items);
            }
            worker = self.settle(&job, answer, current, settings, &stats.counts);
        };
        if let Some(worker) = worker {
            worker.close();
        }
        self.end_thread(name, ended);
    }

    /// Resolves `job` with the process's answer; the process to keep, or `None` (it
    /// failed, or the settings recycle it).
    fn settle(
        &self,
        job: &Job<T, R>,
        answer: Answer<R>,
        current: ProcessWorker<T, R>,
        settings: ProcessSettings,
        counts: &Counts,
    ) -> Option<ProcessWorker<T, R>> {
        match (job, answer) {
            (Job::One(task), Answer::Reply(Reply::One(result))) => {
                self.cancel_if_destroyed(task);
                task.resolve(result.map_err(TaskError::Panicked), |output| {
                    counts.add(Resolved::of(output), 1);
                });
                self.keep(current, settings)
            }
            (Job::Chunk(chunk), Answer::Reply(Reply::Chunk(results)))
                if results.len() as u64 == chunk.items =>
            {
                self.cancel_if_destroyed(chunk);
                let results = results
                    .into_iter()
                    .map(|result| result.map_err(TaskError::Panicked))
                    .collect();
                chunk.resolve(Ok(results), |output| {
                    count_chunk(counts, output, chunk.items)
                });
                self.keep(current, settings)
            }
            (job, Answer::NotSent) => {
                resolve_failed(job, TaskError::Cancelled, counts);
                self.keep(current, settings)
            }
            (job, answer) => {
                // A cancelled task (a cancel, a destroy) resolves `Cancelled` whatever is
                // given here.
                match job {
                    Job::One(task) => self.cancel_if_destroyed(task),
                    Job::Chunk(chunk) => self.cancel_if_destroyed(chunk),
                }
                resolve_failed(job, failure(answer), counts);
                None
            }
        }
    }

    /// Sends a request and waits for its answer, with the slot's stopper and the pool's
    /// destroy hook set to kill the process meanwhile.
    fn exchange<I, X>(
        &self,
        worker: &mut ProcessWorker<T, R>,
        request: &Request<T>,
        task: &Arc<Task<I, X>>,
        hook_key: std::thread::ThreadId,
    ) -> Answer<R> {
        let killer = worker.killer();
        let stop = move || killer.kill();
        if !task.set_stopper(Box::new(stop.clone())) {
            return Answer::NotSent;
        }
        self.set_destroy_hook(hook_key, Some(Box::new(stop)));
        let answer = match worker.call(request) {
            Ok(reply) => Answer::Reply(reply),
            Err(CallError::Ended(ended)) => Answer::Failed(TaskError::Crashed {
                signal: ended.signal,
            }),
            Err(CallError::LimitExceeded { limit, .. }) => {
                Answer::Failed(TaskError::LimitExceeded { limit })
            }
            // The request or the reply did not cross (a `Serialize` that fails): the
            // task's failure, counted as a panic with the codec's message (a serializer
            // that fails is the task's own code failing); the thread then starts a new
            // process, as after any failed answer.
            Err(error) => Answer::Failed(TaskError::Panicked(error.to_string())),
        };
        task.clear_stopper();
        self.set_destroy_hook(hook_key, None);
        answer
    }

    /// The process after a task that answered: kept, or (isolated workers, over
    /// `max_memory`) closed and `None`, for a new one at the next task.
    fn keep(
        &self,
        worker: ProcessWorker<T, R>,
        settings: ProcessSettings,
    ) -> Option<ProcessWorker<T, R>> {
        let over_memory = settings
            .max_memory
            .is_some_and(|max| resident_bytes(worker.pid()).is_some_and(|rss| rss > max));
        if settings.isolate_workers || over_memory {
            if over_memory {
                tracing::debug!(
                    pid = worker.pid(),
                    "worker process over max_memory: replaced"
                );
            }
            worker.close();
            return None;
        }
        Some(worker)
    }
}

/// Resolves a job that got no answer with `error` (each item of a chunk).
fn resolve_failed<T, R>(job: &Job<T, R>, error: TaskError, counts: &Counts) {
    match job {
        Job::One(task) => task.resolve(Err(error), |output| counts.add(Resolved::of(output), 1)),
        Job::Chunk(chunk) => {
            let results = (0..chunk.items).map(|_| Err(error.clone())).collect();
            chunk.resolve(Ok(results), |output| {
                count_chunk(counts, output, chunk.items)
            });
        }
    }
}

/// The task error of an answer that gave no value.
fn failure<R>(answer: Answer<R>) -> TaskError {
    match answer {
        Answer::Failed(error) => error,
        // A reply of the wrong shape: the process broke the protocol.
        _ => TaskError::Crashed { signal: None },
    }
}

/// A process's resident memory, from `/proc/<pid>/status`.
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// One request, in the worker process: a panic caught per task (a chunk's other items
/// still run).
pub(crate) fn serve<T, R, F>(request: Request<T>, handler: F) -> Reply<R>
where
    F: Fn(T) -> R,
{
    let run = |task: T| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(task)))
            .map_err(|payload| crate::inner::panic_message(&*payload))
    };
    match request {
        Request::One(task) => Reply::One(run(task)),
        Request::Chunk(tasks) => Reply::Chunk(tasks.into_iter().map(run).collect()),
    }
}
