//! A loom model of the pool's drain protocol, whose failure would be silent (the code is
//! in `src/inner.rs`; the model restates it over loom's primitives, since the real queue
//! lives in a pool whose threads are std's): a pop that empties the queue bumps the drain
//! epoch and wakes the drain waiters (if the count of them says one sleeps); a waiter
//! sleeps while the epoch has not moved and the queue is not empty. Over every
//! interleaving with a concurrent submitter: no waiter sleeps forever (loom reports a
//! deadlock).
//!
//! The slot's exactly-once resolution and its wake-ups are modelled on the real `Slot`
//! (`src/task/loom_model.rs`).
//!
//! Run as the channel's loom models are (`.ci/run`, `LOOM_MAX_PREEMPTIONS=3`).
#![cfg(worker_threads_loom)]

use std::collections::VecDeque;

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

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
