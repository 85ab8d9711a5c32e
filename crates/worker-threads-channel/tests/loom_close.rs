//! A loom model of the port's close-versus-post protocol (`src/queue.rs`, module doc):
//! a post is a counted critical section (enter, look at the closed flag, send, leave),
//! and a receiver that finds the queue empty after a close waits until no post is inside,
//! then looks once more. The model checks, over every interleaving loom explores, that
//! every post that returned `Ok` is received exactly once and that a failed post kept its
//! message. The queue itself (crossbeam's, linearizable) is a mutex-guarded `VecDeque`.
//!
//! Loom treats `SeqCst` loads and stores as `AcqRel` (its documented limitation), which
//! would report false alarms for exactly this Dekker-style pair. So the model states the
//! ordering the real code's `SeqCst` operations give (all of them in one total order) with
//! `SeqCst` fences, which loom does model: the poster fences between entering and looking
//! at the flag, the receiver between seeing the close and reading the count. Without
//! either fence, loom finds the lost post that the protocol exists to prevent.
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-channel
//! --test loom_close --release` (`.ci/run` does, with `LOOM_MAX_PREEMPTIONS=3`).
#![cfg(worker_threads_loom)]

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst, fence};
use loom::sync::{Arc, Mutex};
use loom::thread;

const OPEN: u8 = 0;
const CLOSED: u8 = 1;

#[derive(Default)]
struct Port {
    /// Posters inside their critical section (the poster half of `worker_threads_wait::Gate`).
    gate: AtomicUsize,
    state: AtomicU8,
    queue: Mutex<VecDeque<u32>>,
}

impl Port {
    /// `Outbox::try_post`: `Err(msg)` hands the message back.
    fn post(&self, msg: u32) -> Result<(), u32> {
        self.gate.fetch_add(1, SeqCst);
        fence(SeqCst);
        if self.state.load(SeqCst) != OPEN {
            self.gate.fetch_sub(1, SeqCst);
            return Err(msg);
        }
        self.queue.lock().unwrap().push_back(msg);
        self.gate.fetch_sub(1, SeqCst);
        Ok(())
    }

    /// `CloseSignal::close`.
    fn close(&self) {
        let _ = self.state.compare_exchange(OPEN, CLOSED, SeqCst, SeqCst);
    }

    /// `Inbox::try_recv`: `Ok(Some)` a message, `Ok(None)` empty, `Err(())` closed.
    fn try_recv(&self) -> Result<Option<u32>, ()> {
        if let Some(msg) = self.queue.lock().unwrap().pop_front() {
            return Ok(Some(msg));
        }
        if self.state.load(SeqCst) == OPEN {
            return Ok(None);
        }
        // `Gate::wait_for_posters`, then one more look.
        fence(SeqCst);
        while self.gate.load(SeqCst) != 0 {
            thread::yield_now();
        }
        self.queue.lock().unwrap().pop_front().map(Some).ok_or(())
    }

    /// Receives until closed, as a receiver that closed (or saw the close) drains.
    fn drain(&self) -> Vec<u32> {
        let mut got = Vec::new();
        loop {
            match self.try_recv() {
                Ok(Some(msg)) => got.push(msg),
                Ok(None) => thread::yield_now(),
                Err(()) => return got,
            }
        }
    }
}

/// Every accepted post is received once; every refused one came back.
fn check(accepted: &[u32], received: &[u32]) {
    let mut received = received.to_vec();
    received.sort_unstable();
    let mut accepted = accepted.to_vec();
    accepted.sort_unstable();
    assert_eq!(received, accepted, "received == accepted");
}

#[test]
fn the_receiver_closes_while_a_producer_posts() {
    loom::model(|| {
        let port = Arc::new(Port::default());
        let producer = {
            let port = Arc::clone(&port);
            thread::spawn(move || {
                let mut accepted = Vec::new();
                for msg in 1..=2 {
                    match port.post(msg) {
                        Ok(()) => accepted.push(msg),
                        Err(back) => assert_eq!(back, msg, "a failed post keeps its message"),
                    }
                }
                accepted
            })
        };
        port.close();
        let received = port.drain();
        let accepted = producer.join().unwrap();
        check(&accepted, &received);
    });
}

#[test]
fn two_producers_and_a_third_thread_that_closes() {
    loom::model(|| {
        let port = Arc::new(Port::default());
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let port = Arc::clone(&port);
                thread::spawn(move || port.post(p + 1).ok().map(|()| p + 1))
            })
            .collect();
        let closer = {
            let port = Arc::clone(&port);
            thread::spawn(move || port.close())
        };
        closer.join().unwrap();
        let received = port.drain();
        let accepted: Vec<u32> = producers
            .into_iter()
            .filter_map(|p| p.join().unwrap())
            .collect();
        check(&accepted, &received);
    });
}
