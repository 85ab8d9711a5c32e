//! The counts of a pool's threads (see `threads.rs` for what they promise and how they
//! move), and how an idle thread's wait for a job ends.

use std::sync::atomic::{AtomicUsize, Ordering};

use worker_threads_wait::Waiters;

/// How many threads count toward the pool's size, are alive, idle or starting.
pub(crate) struct Threads {
    pub(super) counted: AtomicUsize,
    pub(super) alive: AtomicUsize,
    pub(super) idle: AtomicUsize,
    pub(super) starting: AtomicUsize,
    /// The next thread's number, for its name.
    pub(super) next: AtomicUsize,
    /// Who waits for every thread to end (`close`, `destroy`, their async forms).
    pub(super) exited: Waiters,
}

impl Threads {
    pub(crate) fn new() -> Self {
        Self {
            counted: AtomicUsize::new(0),
            alive: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            starting: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            exited: Waiters::new(),
        }
    }

    /// A new thread began its loop.
    pub(crate) fn started(&self) {
        self.starting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Threads that take a job soon: idle ones and starting ones.
    pub(super) fn takers(&self) -> usize {
        self.idle.load(Ordering::SeqCst) + self.starting.load(Ordering::SeqCst)
    }

    /// Raises `counted` by one if it is below `max`.
    pub(super) fn grow(&self, max: usize) -> bool {
        self.counted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Lowers `counted` by one if it is above `min`.
    pub(super) fn shrink(&self, min: usize) -> bool {
        self.counted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > min).then_some(n - 1)
            })
            .is_ok()
    }
}

/// How an idle thread's wait for a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Look at the queue again.
    Look,
    /// Retired: the thread ends (it no longer counts).
    Retire,
}
