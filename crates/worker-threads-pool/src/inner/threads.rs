//! The pool's threads: how many count toward its size, which are idle or starting, how
//! it grows, how idle threads retire, how a thread whose task panicked is replaced, and
//! how `close` and `destroy` wait for them all to end.
//!
//! # Counts
//!
//! `counted` is the pool's size: raised by a compare-and-swap only below `max_threads`
//! (growth), lowered by one only above `min_threads` (retirement), so two idle threads
//! whose timeouts end together cannot both retire past the minimum. `alive` counts
//! threads that have not ended yet: `close` waits for it to reach zero, after each
//! thread's `WorkerDestroyed` (so `close` returns after every event).
//!
//! # Growth versus retirement
//!
//! The pool grows while accepted tasks outnumber the idle and starting threads. A thread
//! that retires first leaves the idle and counted threads, *then* looks at the queue once
//! more (and stays if a job is there); a submitter pushes, *then* looks at the counts.
//! One of the two sees the other (both sides are `SeqCst`), so a task is never left in
//! the queue with no thread to take it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use worker_threads_wait::Deadline;

use crate::error::BuildError;
use crate::events::PoolEvent;
use crate::inner::Inner;
use crate::inner::job::Job;
use crate::inner::phase::{CLOSING, DESTROYED, OPEN, Shutdown};
use crate::inner::thread_counts::Idle;

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    /// Starts a new core's `min_threads` threads.
    pub(crate) fn launch(inner: Arc<Self>) -> Result<Arc<Self>, BuildError> {
        for _ in 0..inner.config.min_threads {
            if !inner.threads.grow(inner.config.max_threads) {
                break;
            }
            if let Err(error) = inner.spawn_counted() {
                inner.begin_shut_down(Shutdown::Destroy);
                inner.wait_threads(Deadline::Never);
                return Err(BuildError::spawn(error));
            }
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

    /// Starts a thread for a place already counted (`counted` raised by the caller):
    /// `WorkerCreated`, or on failure the place given back and the error.
    fn spawn_counted(self: &Arc<Self>) -> std::io::Result<()> {
        let name = format!(
            "{}-{}",
            self.config.name,
            self.threads.next.fetch_add(1, Ordering::Relaxed)
        );
        self.threads.starting.fetch_add(1, Ordering::SeqCst);
        self.threads.alive.fetch_add(1, Ordering::SeqCst);
        match (self.spawner)(self, name.clone()) {
            Ok(()) => {
                self.emit(PoolEvent::WorkerCreated { name });
                Ok(())
            }
            Err(error) => {
                self.threads.starting.fetch_sub(1, Ordering::SeqCst);
                self.threads.counted.fetch_sub(1, Ordering::SeqCst);
                self.thread_ended();
                Err(error)
            }
        }
    }

    /// After a push: grows the pool while accepted tasks outnumber the threads that will
    /// take them.
    #[inline]
    pub(crate) fn grow_if_needed(self: &Arc<Self>) {
        let max = self.config.max_threads;
        if self.threads.counted.load(Ordering::SeqCst) >= max {
            return;
        }
        worker_threads_wait::sync::order_point();
        if self.handoff.queued() > self.threads.takers() && self.threads.grow(max) {
            if let Err(error) = self.spawn_counted() {
                tracing::warn!(%error, "pool could not start a thread");
                self.emit(PoolEvent::Error(format!(
                    "could not start a pool thread: {error}"
                )));
            }
        }
    }

    /// A thread whose task panicked hands its place to a fresh one (its `init` state may
    /// be broken): the pool's size does not change. (Called after its `WorkerDestroyed`.)
    pub(crate) fn replace_thread(self: &Arc<Self>) {
        if self.phase.load(Ordering::SeqCst) != DESTROYED {
            if let Err(error) = self.spawn_counted() {
                tracing::warn!(%error, "pool could not replace a thread");
                self.emit(PoolEvent::Error(format!(
                    "could not start a pool thread: {error}"
                )));
            }
        } else {
            self.threads.counted.fetch_sub(1, Ordering::SeqCst);
        }
        self.thread_ended();
    }
}

impl<T, R> Inner<T, R> {
    /// How many tasks the threads could take now (`Bound::NoQueue`'s room): idle threads,
    /// starting ones, and those the pool may still start.
    pub(crate) fn can_take_now(&self) -> usize {
        let spare = self
            .config
            .max_threads
            .saturating_sub(self.threads.counted.load(Ordering::SeqCst));
        self.threads.takers() + spare
    }

    /// The pool's size now (starting threads included, retiring ones not).
    pub(crate) fn threads(&self) -> usize {
        self.threads.counted.load(Ordering::SeqCst)
    }

    /// Waits, idle, for a job: spin, then sleep; a thread above `min_threads` retires
    /// after `idle_timeout` without one.
    pub(crate) fn wait_for_job(&self) -> Idle {
        self.threads.idle.fetch_add(1, Ordering::SeqCst);
        if matches!(self.bound, crate::inner::Bound::NoQueue) {
            // Under "no queue", an idle thread is room.
            self.handoff.room_changed();
        }
        let mut deadline = Deadline::after(self.config.idle_timeout);
        loop {
            let above_min = self.threads.counted.load(Ordering::SeqCst) > self.config.min_threads;
            let until = if above_min { deadline } else { Deadline::Never };
            if self
                .handoff
                .work
                .wait_until(|| self.handoff.has_job(), until)
            {
                self.threads.idle.fetch_sub(1, Ordering::SeqCst);
                return Idle::Look;
            }
            if !deadline.has_passed() {
                continue;
            }
            // Retire: leave the idle and the counted threads, then look once more.
            self.threads.idle.fetch_sub(1, Ordering::SeqCst);
            if !self.threads.shrink(self.config.min_threads) {
                // Others retired first, down to the minimum: this one stays.
                self.threads.idle.fetch_add(1, Ordering::SeqCst);
                deadline = Deadline::Never;
                continue;
            }
            worker_threads_wait::sync::order_point();
            if self.handoff.has_jobs() && self.threads.grow(self.config.max_threads) {
                return Idle::Look;
            }
            return Idle::Retire;
        }
    }

    /// Counts the calling (async) thread idle while `waiting` runs: it takes a job as soon
    /// as one arrives.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) async fn idle_while<F: std::future::Future>(&self, waiting: F) -> F::Output {
        self.threads.idle.fetch_add(1, Ordering::SeqCst);
        if matches!(self.bound, crate::inner::Bound::NoQueue) {
            self.handoff.room_changed();
        }
        let output = waiting.await;
        self.threads.idle.fetch_sub(1, Ordering::SeqCst);
        output
    }

    /// A thread is ending (its `WorkerDestroyed` sent): the last one wakes whoever waits
    /// for the threads.
    pub(crate) fn thread_ended(&self) {
        if self.threads.alive.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.threads.exited.notify_all();
        }
    }

    /// A thread that ends for good (closed, or retired: already uncounted then).
    pub(crate) fn thread_left(&self, retired: bool) {
        if !retired {
            self.threads.counted.fetch_sub(1, Ordering::SeqCst);
        }
        self.thread_ended();
    }

    /// Waits until every pool thread has ended, or `deadline` passes (then false).
    /// Returns at once on one of the pool's own threads (it would wait for itself).
    pub(crate) fn wait_threads(&self, deadline: Deadline) -> bool {
        if self.is_current_worker() {
            return false;
        }
        let ended = self
            .threads
            .exited
            .wait_until(|| self.threads.alive.load(Ordering::SeqCst) == 0, deadline);
        if ended {
            self.deadlines.close();
        }
        ended
    }

    /// Awaits every pool thread's end, under any executor.
    pub(crate) async fn threads_ended(&self) {
        self.threads
            .exited
            .until(|| self.threads.alive.load(Ordering::SeqCst) == 0)
            .await;
        self.deadlines.close();
    }

    /// Stops accepting; then, as asked, lets the queue run out (`Close`), resolves the
    /// queued tasks `Cancelled` and lets the running ones finish (`Force`), or does that
    /// and cancels the running ones too (`Destroy`). Waits for nothing.
    pub(crate) fn begin_shut_down(&self, how: Shutdown) {
        let phase = match how {
            Shutdown::Close | Shutdown::Force => CLOSING,
            Shutdown::Destroy => DESTROYED,
        };
        if how == Shutdown::Destroy {
            self.destroyed.store(true, Ordering::SeqCst);
            self.phase.store(DESTROYED, Ordering::SeqCst);
        } else {
            let _ = self
                .phase
                .compare_exchange(OPEN, phase, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.handoff.close();
        self.shutdown.notify_all();
        if how != Shutdown::Close {
            self.cancel_queued();
        }
        if how == Shutdown::Destroy {
            let hooks = worker_threads_wait::lock(&self.destroy_hooks);
            for stop in hooks.values() {
                stop();
            }
        }
    }

    /// Resolves every task still queued `Cancelled` (the queue is closed: it only empties).
    fn cancel_queued(&self) {
        let mut emptied = false;
        while let Ok(job) = self.handoff.pop() {
            let left = || emptied |= self.handoff.left();
            match job {
                Job::One(task) => task.cancel_counted(None, &self.stats.shared, left),
                Job::Chunk(chunk) => chunk.cancel_counted(None, &self.stats.shared, left),
            };
        }
        if emptied {
            self.emit(PoolEvent::Drain);
        }
    }

    /// Stops accepting, as asked, and waits for the threads to finish.
    pub(crate) fn shut_down(&self, how: Shutdown) {
        self.begin_shut_down(how);
        self.wait_threads(Deadline::Never);
    }

    /// A future ready once the pool stops accepting (an async thread with no room for
    /// more tasks waits on it beside its tasks).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn closing(&self) -> worker_threads_wait::Until<'_, impl Fn() -> bool + '_> {
        self.shutdown.until(|| !self.is_open())
    }
}
