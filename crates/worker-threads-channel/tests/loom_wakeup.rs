//! A loom model of the async receive protocol (`src/arrival.rs`, `Inbox::recv_async`):
//! a receiver that finds the queue empty listens on the inbox's event, then counts itself
//! a waiter (the high half of `Arrival::gate`), then looks at the queue once more before
//! it sleeps; a poster pushes, then leaves its section with one read-modify-write on the
//! same word, and notifies if that RMW saw a waiter. The model checks that no wake-up is
//! lost: over every interleaving, a receiver waiting for N messages gets all N (a lost
//! wake-up leaves it asleep, which loom reports as a deadlock).
//!
//! The event is modelled as event-listener's contract: a listener made before a notify
//! is woken by it (a generation counter under a mutex, and a condvar).
//!
//! Run as `loom_close.rs` is (`.ci/run`).
#![cfg(worker_threads_loom)]

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

const POSTER: usize = 1;
const WAITER: usize = 1 << 16;

/// event-listener's `Event`: a listener taken before a notify sees it.
#[derive(Default)]
struct Event {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Event {
    fn listen(&self) -> u64 {
        *self.generation.lock().unwrap()
    }

    fn wait(&self, listened: u64) {
        let mut generation = self.generation.lock().unwrap();
        while *generation == listened {
            generation = self.changed.wait(generation).unwrap();
        }
    }

    fn notify(&self) {
        *self.generation.lock().unwrap() += 1;
        self.changed.notify_all();
    }
}

#[derive(Default)]
struct Inbox {
    gate: AtomicUsize,
    event: Event,
    queue: Mutex<VecDeque<u32>>,
}

impl Inbox {
    /// `Outbox::try_post` (an open port) and `Arrival::leave_post`.
    fn post(&self, msg: u32) {
        self.gate.fetch_add(POSTER, SeqCst);
        self.queue.lock().unwrap().push_back(msg);
        if self.gate.fetch_sub(POSTER, SeqCst) >= WAITER {
            self.event.notify();
        }
    }

    /// `Inbox::recv_async`: look, register (listen, then count), look again, sleep.
    fn recv(&self) -> u32 {
        loop {
            if let Some(msg) = self.queue.lock().unwrap().pop_front() {
                return msg;
            }
            let listened = self.event.listen();
            self.gate.fetch_add(WAITER, SeqCst);
            let msg = self.queue.lock().unwrap().pop_front();
            if let Some(msg) = msg {
                self.gate.fetch_sub(WAITER, SeqCst);
                return msg;
            }
            self.event.wait(listened);
            self.gate.fetch_sub(WAITER, SeqCst);
        }
    }
}

#[test]
fn an_async_receiver_is_woken_by_a_post() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::default());
        let poster = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || inbox.post(7))
        };
        assert_eq!(inbox.recv(), 7);
        poster.join().unwrap();
    });
}

#[test]
fn an_async_receiver_gets_both_posts_of_two_posters() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::default());
        let posters: Vec<_> = (1..=2u32)
            .map(|msg| {
                let inbox = Arc::clone(&inbox);
                thread::spawn(move || inbox.post(msg))
            })
            .collect();
        let mut got = [inbox.recv(), inbox.recv()];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        for poster in posters {
            poster.join().unwrap();
        }
    });
}
