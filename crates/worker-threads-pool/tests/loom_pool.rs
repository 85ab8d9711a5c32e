//! loom models of the pool's two protocols whose failure would be silent (the code is in
//! `src/task.rs` and `src/inner.rs`; the models restate it over loom's primitives):
//!
//! - **Exactly once.** A task's slot is resolved by whichever comes first of the worker
//!   (its value), a cancel, and the deadline keeper (`expire`), each under the slot's
//!   lock; a cancel that lands before the worker resolves turns the value into
//!   `Cancelled`. Over every interleaving: exactly one outcome is counted, once, and it is
//!   the outcome the handle sees.
//! - **Drain.** A pop that empties the queue bumps the drain epoch and wakes the drain
//!   waiters (if the count of them says one sleeps); a waiter sleeps while the epoch has
//!   not moved and the queue is not empty. Over every interleaving with a concurrent
//!   submitter: no waiter sleeps forever (loom reports a deadlock).
//!
//! Run as the channel's loom models are (`.ci/run`, `LOOM_MAX_PREEMPTIONS=3`).
#![cfg(worker_threads_loom)]

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicU64, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Value,
    Cancelled,
    TimedOut,
}

#[derive(Default)]
struct SlotState {
    result: Option<Outcome>,
    cancelled: bool,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    counted: [AtomicU64; 3],
}

impl Slot {
    fn count(&self, outcome: Outcome) {
        self.counted[outcome as usize].fetch_add(1, SeqCst);
    }

    /// `Slot::resolve`: the first resolution wins; a cancel before it wins over a value.
    fn resolve(&self, value: Outcome) {
        let mut state = self.state.lock().unwrap();
        if state.result.is_some() {
            return;
        }
        let outcome = if state.cancelled {
            Outcome::Cancelled
        } else {
            value
        };
        self.count(outcome);
        state.result = Some(outcome);
    }

    /// `Slot::cancel`: marks it; the resolution that follows is `Cancelled`.
    fn cancel(&self) -> bool {
        let mut state = self.state.lock().unwrap();
        if state.result.is_some() {
            return false;
        }
        state.cancelled = true;
        true
    }

    /// `Slot::expire`: resolves `TimedOut` if nothing resolved it yet.
    fn expire(&self) {
        let mut state = self.state.lock().unwrap();
        if state.result.is_some() {
            return;
        }
        state.cancelled = true;
        self.count(Outcome::TimedOut);
        state.result = Some(Outcome::TimedOut);
    }
}

#[test]
fn a_value_a_cancel_and_a_deadline_resolve_a_task_exactly_once() {
    loom::model(|| {
        let slot = Arc::new(Slot::default());
        let worker = {
            let slot = Arc::clone(&slot);
            thread::spawn(move || slot.resolve(Outcome::Value))
        };
        let canceller = {
            let slot = Arc::clone(&slot);
            thread::spawn(move || {
                // `TaskHandle::cancel`: mark, then (for a queued task) resolve.
                if slot.cancel() {
                    slot.resolve(Outcome::Cancelled);
                }
            })
        };
        slot.expire();
        worker.join().unwrap();
        canceller.join().unwrap();
        let seen = slot.state.lock().unwrap().result.expect("resolved");
        let counts: Vec<u64> = slot.counted.iter().map(|c| c.load(SeqCst)).collect();
        assert_eq!(counts.iter().sum::<u64>(), 1, "counted once: {counts:?}");
        assert_eq!(
            counts[seen as usize], 1,
            "the count is the outcome seen: {seen:?}"
        );
    });
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<u32>,
    drain_epoch: u64,
    drain_waiters: usize,
}

#[derive(Default)]
struct Pool {
    state: Mutex<Queue>,
    shrunk: Condvar,
}

impl Pool {
    fn submit(&self, job: u32) {
        self.state.lock().unwrap().jobs.push_back(job);
    }

    /// A worker's pop (`next_job` and `popped`).
    fn pop(&self) -> Option<u32> {
        let mut state = self.state.lock().unwrap();
        let job = state.jobs.pop_front()?;
        if state.jobs.is_empty() {
            state.drain_epoch += 1;
            if state.drain_waiters > 0 {
                self.shrunk.notify_all();
            }
        }
        Some(job)
    }

    /// `wait_drain`: returns once the queue is empty or a pop emptied it since the call.
    fn wait_drain(&self) {
        let mut state = self.state.lock().unwrap();
        if state.jobs.is_empty() {
            return;
        }
        let epoch = state.drain_epoch;
        drop(state);
        // (The real code spins on a mirror of the length here, then locks again.)
        state = self.state.lock().unwrap();
        while state.drain_epoch == epoch && !state.jobs.is_empty() {
            state.drain_waiters += 1;
            state = self.shrunk.wait(state).unwrap();
            state.drain_waiters -= 1;
        }
    }
}

#[test]
fn a_drain_waiter_is_never_left_asleep() {
    loom::model(|| {
        let pool = Arc::new(Pool::default());
        pool.submit(1);
        let worker = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let mut done = 0;
                while done < 2 {
                    if pool.pop().is_some() {
                        done += 1;
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        let submitter = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.submit(2))
        };
        pool.wait_drain();
        submitter.join().unwrap();
        worker.join().unwrap();
    });
}
