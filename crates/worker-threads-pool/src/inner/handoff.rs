//! The pool's hand-off: the queue of jobs, how many accepted tasks wait in it, and who
//! sleeps on it. No lock: the queue is the wait crate's closable `List`, the count and
//! the drain epoch are atomics, sleepers are `Waiters` lists.
//!
//! # Exact bound, without a lock
//!
//! `queued` counts accepted tasks that no thread has taken (`queue_size()`). A submitter
//! is admitted by a compare-and-swap that raises it only below the bound, *then* pushes
//! its job; a thread that pops a job claims its task (the task cell's `QUEUED` to
//! `RUNNING`), *then* lowers it; a cancel or a deadline that resolves a queued task
//! lowers it too (its job stays in the list as a tombstone, which takes no room: the
//! thread that pops it finds the task claimed and skips it). So the bound is exact: after
//! `queue_size() < max_queue()`, a lone submitter's `run` succeeds.
//!
//! # Drain
//!
//! Drain means the queue went from non-empty to empty: whoever lowers the count to zero
//! moves the drain epoch and wakes the drain waiters. A waiter returns when the count is
//! zero or the epoch moved, so the Node chapter's loop (`queue_size() == max_queue()`,
//! then wait for drain) cannot hang: a full queue is non-empty, and only a take, a cancel
//! or a deadline can empty it. The count and the epoch are **one word** (the count in the
//! low half, the epoch in the high half), and the step to zero moves both in one
//! compare-and-swap: with two words, a thread that emptied the queue and was preempted
//! before it moved the epoch let a submitter refill the queue, see it full, and then take
//! the late epoch for a drain of the full queue (its next `run` failed with `QueueFull`,
//! against the exact bound).
//!
//! # Close
//!
//! Closing marks the list (the queue's own close mark): a push after it fails (the
//! submitter gets its task back), pops drain what was pushed before, then report
//! `Closed`, which is how a pool thread learns to exit once the work is done. A task is
//! accepted only if its push landed, so no accepted task is left behind by a close.
//!
//! # Sleepers
//!
//! Threads waiting for a job sleep in `work`, submitters waiting for room in `room`, drain
//! waiters in `drain` (threads and async tasks alike). Each side registers, then looks
//! again, then sleeps; each change is made, then looks for sleepers (the protocol of
//! `worker_threads_wait`'s `Waiters`).

use std::task::{Context, Poll};
use worker_threads_wait::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use worker_threads_wait::queue::{List, PopError};
use worker_threads_wait::{Deadline, Token, Waiters};

/// How many tasks may wait in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// At most this many (at least one).
    At(usize),
    /// None: a task is accepted only when a thread can take it now (piscina's "no
    /// queue"); the pool says how many can.
    NoQueue,
    Unbounded,
}

/// Why a task was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// The count's half of `count`: accepted tasks no thread has taken.
const QUEUED: u64 = (1 << 32) - 1;
/// One step of the drain epoch, in `count`'s high half.
const EPOCH: u64 = 1 << 32;

pub(crate) struct Handoff<J> {
    jobs: List<J>,
    /// The queued tasks (low half) and the drain epoch (high half): see the module doc.
    count: CachePadded<AtomicU64>,
    /// Pool threads (and async pool threads) waiting for a job.
    pub(crate) work: Waiters,
    room: Waiters,
    drain: Waiters,
}

impl<J> Handoff<J> {
    pub(crate) fn new() -> Self {
        Self {
            jobs: List::new(),
            count: CachePadded::new(AtomicU64::new(0)),
            work: Waiters::new(),
            room: Waiters::new(),
            drain: Waiters::new(),
        }
    }

    /// Accepted tasks no thread has taken yet.
    #[inline]
    pub(crate) fn queued(&self) -> usize {
        queued_of(self.count.load(Ordering::SeqCst))
    }

    /// Admits one task under the bound (for `Bound::NoQueue`, `can_take()`: the threads
    /// that can take one now; an unbounded queue holds at most `u32::MAX`): true if the
    /// queue is full with it.
    #[inline]
    pub(crate) fn admit(&self, bound: Bound, can_take: impl Fn() -> usize) -> Result<bool, Full> {
        let limit = match bound {
            Bound::Unbounded => QUEUED as usize,
            Bound::At(max) => max.min(QUEUED as usize),
            Bound::NoQueue => can_take().min(QUEUED as usize),
        };
        let mut count = self.count.load(Ordering::SeqCst);
        loop {
            let queued = queued_of(count);
            if queued >= limit {
                return Err(Full);
            }
            match self.count.compare_exchange_weak(
                count,
                count + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Ok(queued + 1 == limit && bound != Bound::Unbounded),
                Err(current) => count = current,
            }
        }
    }

    /// Pushes an admitted task's job and wakes a thread waiting for work; the job back if
    /// the queue is closed (then the caller takes the admission back with
    /// [`left`](Self::left)).
    #[inline]
    pub(crate) fn push(&self, job: J) -> Result<(), J> {
        self.jobs.push(job)?;
        self.work.notify_one();
        Ok(())
    }

    /// The next job, if any: `Closed` once the queue is closed and drained.
    #[inline]
    pub(crate) fn pop(&self) -> Result<J, PopError> {
        self.jobs.pop()
    }

    /// Whether a thread that registered in `work` should look again rather than sleep.
    pub(crate) fn has_job(&self) -> bool {
        self.jobs.is_ready()
    }

    /// Whether a job is waiting (a snapshot).
    pub(crate) fn has_jobs(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// An admitted task left the queue (taken, cancelled, expired, or refused by a close
    /// after its admission): lowers the count, wakes a submitter waiting for room, and, if
    /// it emptied the queue, moves the drain epoch in the same step and wakes the drain
    /// waiters. True if it emptied the queue.
    #[inline]
    pub(crate) fn left(&self) -> bool {
        let mut count = self.count.load(Ordering::SeqCst);
        let emptied = loop {
            let emptied = queued_of(count) == 1;
            let next = if emptied {
                (count & !QUEUED).wrapping_add(EPOCH)
            } else {
                count - 1
            };
            match self
                .count
                .compare_exchange_weak(count, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break emptied,
                Err(current) => count = current,
            }
        };
        self.room.notify_one();
        if emptied {
            self.drain.notify_all();
        }
        emptied
    }

    /// Closes the queue: pushes fail from now on; everybody asleep on it looks again.
    pub(crate) fn close(&self) {
        self.jobs.close();
        self.work.notify_all();
        self.room.notify_all();
        self.drain.notify_all();
    }

    /// The drain epoch now: a drain waiter is done once it moved (or the queue is empty).
    pub(crate) fn drain_epoch(&self) -> u64 {
        self.count.load(Ordering::SeqCst) & !QUEUED
    }

    /// Whether a drain waiter that started at `epoch` is done: the queue is empty, it was
    /// emptied since, or it closed (one load of the count and the epoch together).
    pub(crate) fn drained_since(&self, epoch: u64) -> bool {
        let count = self.count.load(Ordering::SeqCst);
        queued_of(count) == 0 || count & !QUEUED != epoch || self.jobs.is_closed()
    }

    /// Waits until the queue is empty, or drained since the call, or closed.
    pub(crate) fn wait_drain(&self) {
        let epoch = self.drain_epoch();
        self.drain
            .wait_until(|| self.drained_since(epoch), Deadline::Never);
    }

    /// Awaits what [`wait_drain`](Self::wait_drain) waits for.
    pub(crate) async fn drained(&self) {
        let epoch = self.drain_epoch();
        self.drain.until(|| self.drained_since(epoch)).await;
    }

    /// Waits until `room()` says there is room (or the queue closed).
    pub(crate) fn wait_room(&self, room: impl Fn() -> bool) {
        self.room
            .wait_until(|| room() || self.jobs.is_closed(), Deadline::Never);
    }

    /// Awaits what [`wait_room`](Self::wait_room) waits for.
    pub(crate) async fn room(&self, room: impl Fn() -> bool) {
        self.room.until(|| room() || self.jobs.is_closed()).await;
    }

    /// The poll form of [`wait_room`](Self::wait_room), for a stream that keeps `token`
    /// between polls (and withdraws it with [`forget_room`](Self::forget_room)).
    pub(crate) fn poll_room(
        &self,
        room: impl Fn() -> bool,
        token: &mut Option<Token>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let settled = || room() || self.jobs.is_closed();
        if !settled() {
            self.room.register_waker(cx.waker(), token);
            if !settled() {
                return Poll::Pending;
            }
        }
        self.forget_room(token);
        Poll::Ready(())
    }

    pub(crate) fn forget_room(&self, token: &mut Option<Token>) {
        if let Some(token) = token.take() {
            self.room.unregister(token);
        }
    }

    /// Whether a drain waiter sleeps (for white-box tests).
    #[cfg(test)]
    pub(crate) fn has_drain_waiter(&self) -> bool {
        self.drain.has_sleepers()
    }

    /// Wakes every submitter waiting for room: the room may have grown without a task
    /// leaving the queue (a thread went idle, under `Bound::NoQueue`).
    pub(crate) fn room_changed(&self) {
        self.room.notify_all();
    }
}

/// The queued tasks of a count word.
#[inline]
fn queued_of(count: u64) -> usize {
    (count & QUEUED) as usize
}
