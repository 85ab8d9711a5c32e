//! Deadlines: one keeper thread per pool, started with its first deadline, that resolves
//! a task `TimedOut` when its deadline passes (and takes it out of the queue if it is
//! still there), and queues a retried task's next try when its back-off ends. The keeper
//! sleeps on a condvar until the earliest deadline, and ends when the pool has shut down
//! (calling every retry still waiting, which then resolves).
//!
//! Exactly once holds as everywhere: `Task::expire` resolves only a task that has not
//! resolved (one compare-and-swap on its cell) and counts it `timed_out` there; a thread
//! that later returns a value for it finds it resolved and changes nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};

use std::time::Instant;
use worker_threads_wait::sync::{Condvar, Mutex, MutexGuard};
use worker_threads_wait::{Deadline as Until, lock, wait_until};

use super::Inner;
use crate::task::Expire;

/// One task's (or one chunk of `map`'s) deadline, or a retry's next try.
pub(crate) struct Deadline {
    at: Instant,
    id: u64,
    due: Due,
}

/// What happens at a deadline.
enum Due {
    /// The task times out (if it has not resolved).
    Expire(Weak<dyn Expire>),
    /// A retried task's next try is queued (`retrying.rs`): always called, even when the
    /// pool is gone or closed, so that the task resolves.
    Call(Box<dyn FnOnce() + Send>),
}

impl Due {
    /// Whether it still has something to do (pruning drops the rest).
    fn is_live(&self) -> bool {
        match self {
            Due::Expire(task) => task.upgrade().is_some_and(|task| !task.is_done()),
            Due::Call(_) => true,
        }
    }
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.id) == (other.at, other.id)
    }
}

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.id).cmp(&(other.at, other.id))
    }
}

/// The pending deadlines, earliest first, and whether the keeper runs.
struct Deadlines {
    heap: BinaryHeap<Reverse<Deadline>>,
    keeper: bool,
    /// The pool has shut down and its threads are gone (or the pool is dropped): the
    /// keeper ends.
    closed: bool,
}

/// Below this many deadlines the heap is never pruned.
const PRUNE_FROM: usize = 1024;

impl Deadlines {
    /// Drops the deadlines of tasks that already resolved, whenever the heap reaches a
    /// power of two from [`PRUNE_FROM`] on: amortised O(1) per deadline, and the heap stays
    /// within twice the unresolved tasks (or `PRUNE_FROM`). Without it, a long
    /// `task_timeout` on a busy pool kept one entry per task for the whole timeout
    /// (a minute at a million tasks a second is sixty million entries).
    fn prune(&mut self) {
        let len = self.heap.len();
        if len >= PRUNE_FROM && len.is_power_of_two() {
            self.heap.retain(|Reverse(deadline)| deadline.due.is_live());
        }
    }
}

/// What the keeper thread holds: the deadlines and the condvar it sleeps on. Apart from
/// the pool, so that a sleeping keeper keeps no pool alive.
pub(crate) struct Keeper {
    deadlines: Mutex<Deadlines>,
    changed: Condvar,
}

impl Default for Keeper {
    fn default() -> Self {
        Self {
            deadlines: Mutex::new(Deadlines {
                heap: BinaryHeap::new(),
                keeper: false,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }
}

impl Keeper {
    fn lock(&self) -> MutexGuard<'_, Deadlines> {
        lock(&self.deadlines)
    }

    /// How many deadlines are kept (for white-box tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().heap.len()
    }

    /// Ends the keeper (the pool's threads are gone, or the pool is).
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

impl<T: Send + 'static, R: Send + 'static> Inner<T, R> {
    /// Gives task `id` a deadline, starting the keeper if it does not run yet.
    pub(crate) fn set_deadline(self: &Arc<Self>, id: u64, task: Arc<dyn Expire>, at: Instant) {
        // An expiry is never refused (a closed keeper gives it back only for a call).
        let _ = self.keep_until(id, at, Due::Expire(Arc::downgrade(&task)));
    }

    /// Calls `call` at `at` on the keeper thread (a retry's next try). Called at once on
    /// this thread instead if the keeper has ended or cannot start.
    pub(crate) fn call_at(self: &Arc<Self>, id: u64, at: Instant, call: Box<dyn FnOnce() + Send>) {
        if let Some(Due::Call(call)) = self.keep_until(id, at, Due::Call(call)) {
            call();
        }
    }

    /// Keeps `due` until `at`, starting the keeper if it does not run yet; gives it back if
    /// nobody will keep it (the keeper ended, or could not start).
    fn keep_until(self: &Arc<Self>, id: u64, at: Instant, due: Due) -> Option<Due> {
        let keeper = &self.deadlines;
        let mut deadlines = keeper.lock();
        if deadlines.closed {
            return Some(due);
        }
        deadlines.prune();
        deadlines.heap.push(Reverse(Deadline { at, id, due }));
        let start = !deadlines.keeper;
        deadlines.keeper = true;
        drop(deadlines);
        keeper.changed.notify_one();
        if start {
            let (pool, keeper) = (Arc::downgrade(self), Arc::clone(keeper));
            let spawned = std::thread::Builder::new()
                .name(format!("{}-deadlines", self.config.name))
                .spawn(move || keep_deadlines(&keeper, &pool));
            if let Err(error) = spawned {
                // No keeper: deadlines are not enforced; say so rather than fail the task.
                // What must be called is called now.
                tracing::error!(%error, "the pool's deadline thread could not start");
                let mut deadlines = self.deadlines.lock();
                deadlines.keeper = false;
                let calls = take_calls(&mut deadlines);
                drop(deadlines);
                calls.into_iter().for_each(|call| call());
            }
        }
        None
    }

    /// Resolves task `id` `TimedOut` if it has not resolved (a queued task leaves the
    /// queue, unrun; a running one is marked cancelled).
    fn expire(&self, id: u64, task: &dyn Expire) {
        if task.expire(self) {
            tracing::debug!(id, "task timed out");
        }
    }
}

/// The keeper's loop: sleep until the earliest deadline, expire what is due, until the
/// pool is gone or closed.
fn keep_deadlines<T: Send + 'static, R: Send + 'static>(keeper: &Keeper, pool: &Weak<Inner<T, R>>) {
    loop {
        let mut deadlines = keeper.lock();
        let now = Instant::now();
        let mut due = Vec::new();
        while deadlines.heap.peek().is_some_and(|next| next.0.at <= now) {
            if let Some(Reverse(deadline)) = deadlines.heap.pop() {
                due.push(deadline);
            }
        }
        if due.is_empty() {
            if deadlines.closed {
                // Nothing times out any more; every retry waiting for its try is told now.
                let calls = take_calls(&mut deadlines);
                drop(deadlines);
                calls.into_iter().for_each(|call| call());
                return;
            }
            let next = Until::from_instant(deadlines.heap.peek().map(|next| next.0.at));
            drop(wait_until(&keeper.changed, deadlines, next));
            continue;
        }
        drop(deadlines);
        let inner = pool.upgrade();
        for deadline in due {
            match deadline.due {
                Due::Call(call) => call(),
                Due::Expire(task) => {
                    if let (Some(inner), Some(task)) = (&inner, task.upgrade()) {
                        inner.expire(deadline.id, &*task);
                    }
                }
            }
        }
    }
}

/// Takes every call out of the heap (the deadlines stay: nobody expires them any more).
fn take_calls(deadlines: &mut Deadlines) -> Vec<Box<dyn FnOnce() + Send>> {
    std::mem::take(&mut deadlines.heap)
        .into_iter()
        .filter_map(|Reverse(deadline)| match deadline.due {
            Due::Call(call) => Some(call),
            Due::Expire(_) => None,
        })
        .collect()
}
