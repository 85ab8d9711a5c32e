//! The body of a process pool's thread: it drives one worker process, starting it on the
//! first job and again after a crash, a kill or (per settings) a recycle.
//!
//! Exactly once: the thread resolves each job it pops: the process's reply, or, if the
//! process ended first, `Cancelled` (a cancel, deadline or destroy killed it: the slot
//! was cancelled first) or `Crashed`. While a task runs, its slot holds a stopper that
//! terminates the process, and the pool a destroy hook that does the same; both are
//! removed before the thread looks at the process again, so neither outlives the task.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use worker_threads_core::WorkerError;

use super::{ChunkSlot, Inner, Job, Work, resolve_chunk, resolve_one};
use crate::error::TaskError;
use crate::events::PoolEvent;
use crate::process::{ProcessSettings, ProcessSpawner, ProcessWorker, Reply, Request};
use crate::stats::ThreadStats;
use crate::task::Slot;

/// How the process answered.
enum Answer<R> {
    Reply(Reply<R>),
    /// It ended (crashed, or killed by a cancel) before answering.
    Ended,
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
            let Some(current) = worker.take() else {
                continue;
            };
            let Job { work, enqueued, .. } = job;
            let started = Instant::now();
            let current = Arc::new(current);
            match work {
                Work::One { task, slot } => {
                    let answer = self.exchange(&current, Request::One(task), &slot, hook_key);
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
                        Answer::Reply(Reply::Chunk(_)) | Answer::Ended => {
                            self.record(&thread_stats, started, enqueued, 1);
                            // A cancelled slot (a cancel, a destroy) resolves `Cancelled`
                            // whatever is given here.
                            self.cancel_if_destroyed(&slot);
                            let error = ended(current);
                            resolve_one(&self.stats, &slot, Err(error));
                            None
                        }
                    };
                }
                Work::Chunk { tasks, slot } => {
                    let items = tasks.len();
                    let answer = self.exchange(&current, Request::Chunk(tasks), &slot, hook_key);
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
                        Answer::Reply(_) | Answer::Ended => {
                            self.record(&thread_stats, started, enqueued, items as u64);
                            self.cancel_if_destroyed(&slot);
                            let error = ended(current);
                            let results = (0..items).map(|_| Err(error.clone())).collect();
                            resolve_chunk(&self.stats, &slot, results);
                            None
                        }
                    };
                }
            }
        }
        if let Some(worker) = worker {
            worker.port().close();
            let _ = worker.join();
        }
        self.emit(PoolEvent::WorkerDestroyed { name });
        self.worker_exited();
    }

    /// Sends a request and waits for its answer, with the slot's stopper and the pool's
    /// destroy hook set to terminate the process meanwhile.
    fn exchange<X>(
        &self,
        worker: &Arc<ProcessWorker<T, R>>,
        request: Request<T>,
        slot: &Arc<Slot<X>>,
        hook_key: std::thread::ThreadId,
    ) -> Answer<R> {
        let stop = {
            let weak = Arc::downgrade(worker);
            move || {
                if let Some(worker) = weak.upgrade() {
                    worker.terminate();
                }
            }
        };
        if !slot.set_stopper(Box::new(stop.clone())) {
            return Answer::NotSent;
        }
        self.set_destroy_hook(hook_key, Some(Box::new(stop)));
        let answer = match worker.post_message(request) {
            Ok(()) => match worker.recv() {
                Ok(reply) => Answer::Reply(reply),
                Err(_) => Answer::Ended,
            },
            Err(_) => Answer::Ended,
        };
        slot.clear_stopper();
        self.set_destroy_hook(hook_key, None);
        answer
    }

    /// The process after a task that answered: kept, or (isolated workers, over
    /// `max_memory`) ended gracefully and `None`, for a new one at the next task.
    fn keep(
        &self,
        worker: Arc<ProcessWorker<T, R>>,
        settings: ProcessSettings,
    ) -> Option<ProcessWorker<T, R>> {
        // The stopper and the hook are gone: this is the only reference.
        let worker = Arc::into_inner(worker)?;
        let over_memory = settings
            .max_memory
            .zip(worker.pid())
            .is_some_and(|(max, pid)| resident_bytes(pid).is_some_and(|rss| rss > max));
        if settings.isolate_workers || over_memory {
            if over_memory {
                tracing::debug!(
                    pid = worker.pid(),
                    "worker process over max_memory: replaced"
                );
            }
            worker.port().close();
            let _ = worker.join();
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

/// The task error for a process that ended under its task, read from its outcome.
fn ended<T, R>(worker: Arc<ProcessWorker<T, R>>) -> TaskError {
    // The stopper and the hook are gone: this is the only reference.
    let outcome = Arc::into_inner(worker).map(ProcessWorker::join);
    match outcome {
        Some(Err(WorkerError::Crashed { signal })) => TaskError::Crashed {
            signal: Some(signal),
        },
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
