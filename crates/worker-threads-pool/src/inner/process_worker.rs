//! The body of a process pool's thread: it drives one worker process, starting it on the
//! first job and again after a crash, a kill or (per settings) a recycle.
//!
//! Exactly once: the thread resolves each job it pops: the process's reply, or, if the
//! process ended first, `Cancelled` (a cancel, deadline or destroy killed it: the slot
//! was cancelled first) or `Crashed`. While a task runs, its slot holds a stopper that
//! terminates the process, and the pool a destroy hook that does the same; both are
//! removed before the thread looks at the process again, so neither outlives the task.

use std::sync::Arc;
use std::time::Instant;

use worker_threads_core::process::CallError;
use worker_threads_wait::sync::Mutex;

use super::{ChunkSlot, Inner, Job, Work, resolve_chunk, resolve_one};
use crate::error::TaskError;
use crate::events::PoolEvent;
use crate::process::{ProcessSettings, ProcessSpawner, ProcessWorker, Reply, Request};
use crate::stats::ThreadStats;
use crate::task::Slot;

/// How the process answered.
enum Answer<R> {
    Reply(Reply<R>),
    /// It ended (crashed, or killed by a cancel) before answering, or its answer did not
    /// cross: the task's error.
    Failed(TaskError),
    /// The slot was cancelled before the task was sent.
    NotSent,
}

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    /// The body of a process pool thread.
    pub(crate) fn work_process(
        self: Arc<Self>,
        name: String,
        spawn: &ProcessSpawner<T, R>,
        settings: ProcessSettings,
    ) {
        super::WORKER_OF.with(|worker_of| worker_of.set(Arc::as_ptr(&self) as usize));
        crate::task::set_pool_destroyed_flag(Arc::clone(&self.destroyed));
        self.lock().starting -= 1;
        let thread_stats = self.stats.for_thread();
        let hook_key = std::thread::current().id();
        let mut worker: Option<ProcessWorker<T, R>> = None;
        while let Some(job) = self.next_job() {
            if worker.is_none() {
                match spawn() {
                    Ok(started) => worker = Some(started),
                    Err(error) => {
                        tracing::error!(%error, "pool cannot start a worker process");
                        self.emit(PoolEvent::Error(format!(
                            "cannot start a worker process: {error}"
                        )));
                        Self::resolve_crashed(&self.stats, job.work, None);
                        continue;
                    }
                }
            }
            let Some(mut current) = worker.take() else {
                continue;
            };
            let Job { work, enqueued, .. } = job;
            let started = Instant::now();
            match work {
                Work::One { task, slot } => {
                    let answer = self.exchange(&mut current, &Request::One(task), &slot, hook_key);
                    worker = match answer {
                        Answer::Reply(Reply::One(result)) => {
                            self.record(&thread_stats, started, enqueued, 1);
                            self.cancel_if_destroyed(&slot);
                            resolve_one(&self.stats, &slot, result.map_err(TaskError::Panicked));
                            self.keep(current, settings)
                        }
                        Answer::NotSent => {
                            resolve_one(&self.stats, &slot, Err(TaskError::Cancelled));
                            self.keep(current, settings)
                        }
                        Answer::Reply(Reply::Chunk(_)) | Answer::Failed(_) => {
                            self.record(&thread_stats, started, enqueued, 1);
                            // A cancelled slot (a cancel, a destroy) resolves `Cancelled`
                            // whatever is given here.
                            self.cancel_if_destroyed(&slot);
                            let error = failure(answer);
                            resolve_one(&self.stats, &slot, Err(error));
                            None
                        }
                    };
                }
                Work::Chunk { tasks, slot } => {
                    let items = tasks.len();
                    let answer =
                        self.exchange(&mut current, &Request::Chunk(tasks), &slot, hook_key);
                    worker = match answer {
                        Answer::Reply(Reply::Chunk(results)) if results.len() == items => {
                            self.record(&thread_stats, started, enqueued, items as u64);
                            self.cancel_if_destroyed(&slot);
                            let results = results
                                .into_iter()
                                .map(|result| result.map_err(TaskError::Panicked))
                                .collect();
                            resolve_chunk(&self.stats, &slot, results);
                            self.keep(current, settings)
                        }
                        Answer::NotSent => {
                            let results = (0..items).map(|_| Err(TaskError::Cancelled)).collect();
                            resolve_chunk(&self.stats, &slot, results);
                            self.keep(current, settings)
                        }
                        Answer::Reply(_) | Answer::Failed(_) => {
                            self.record(&thread_stats, started, enqueued, items as u64);
                            self.cancel_if_destroyed(&slot);
                            let error = failure(answer);
                            let results = (0..items).map(|_| Err(error.clone())).collect();
                            resolve_chunk(&self.stats, &slot, results);
                            None
                        }
                    };
                }
            }
        }
        if let Some(worker) = worker {
            worker.close();
        }
        self.emit(PoolEvent::WorkerDestroyed { name });
        self.worker_exited();
    }

    /// Sends a request and waits for its answer, with the slot's stopper and the pool's
    /// destroy hook set to kill the process meanwhile.
    fn exchange<X>(
        &self,
        worker: &mut ProcessWorker<T, R>,
        request: &Request<T>,
        slot: &Arc<Slot<X>>,
        hook_key: std::thread::ThreadId,
    ) -> Answer<R> {
        let killer = worker.killer();
        let stop = move || killer.kill();
        if !slot.set_stopper(Box::new(stop.clone())) {
            return Answer::NotSent;
        }
        self.set_destroy_hook(hook_key, Some(Box::new(stop)));
        let answer = match worker.call(request) {
            Ok(reply) => Answer::Reply(reply),
            Err(CallError::Ended(ended)) => Answer::Failed(TaskError::Crashed {
                signal: ended.signal,
            }),
            // The request or the reply did not cross (a `Serialize` that fails): the
            // task's failure, counted as a panic with the codec's message (a serializer
            // that fails is the task's own code failing); the thread then starts a new
            // process, as after any failed answer.
            Err(error) => Answer::Failed(TaskError::Panicked(error.to_string())),
        };
        slot.clear_stopper();
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

    fn record(&self, stats: &Mutex<ThreadStats>, started: Instant, enqueued: Instant, items: u64) {
        self.record_run(stats, started - enqueued, started.elapsed(), items);
    }

    /// Resolves a job that never reached a process `Crashed`.
    fn resolve_crashed(stats: &crate::stats::Stats, work: Work<T, R>, signal: Option<i32>) {
        match work {
            Work::One { slot, .. } => resolve_one(stats, &slot, Err(TaskError::Crashed { signal })),
            Work::Chunk { tasks, slot } => {
                let slot: Arc<ChunkSlot<R>> = slot;
                let results = tasks
                    .iter()
                    .map(|_| Err(TaskError::Crashed { signal }))
                    .collect();
                resolve_chunk(stats, &slot, results);
            }
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
