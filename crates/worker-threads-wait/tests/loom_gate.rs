//! A loom model of the async receive protocol on the real [`Gate`] (`src/gate.rs`, module
//! doc): a receiver that finds the queue empty listens, then counts itself a waiter, then
//! looks at the queue once more before it sleeps; a poster pushes, then leaves its section
//! with one read-modify-write on the same word and notifies if that RMW saw a waiter. Under
//! `--cfg worker_threads_loom` the gate's atomics and its event are loom's, so loom explores
//! this crate's code itself. The queue (crossbeam's in the channel crate, linearizable) is a
//! mutex-guarded `VecDeque`. A lost wake-up leaves the receiver asleep, which loom reports
//! as a deadlock.
//!
//! Both steps that matter are RMWs on one word, which loom models exactly (its `SeqCst`
//! loads and stores are weaker than the real ones, which is why the close-versus-post model
//! in the channel crate states its fences; this protocol needs none).
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-wait
//! --test loom_gate --release` (`.ci/run` does, with `LOOM_MAX_PREEMPTIONS=3`).
#![cfg(worker_threads_loom)]

use std::collections::VecDeque;
use std::sync::Arc;

use loom::thread;
use worker_threads_wait::sync::Mutex;
use worker_threads_wait::{AsyncWait, Gate, Waiting, lock};

struct Inbox {
    gate: Arc<Gate>,
    queue: Mutex<VecDeque<u32>>,
}

impl Inbox {
    fn new() -> Self {
        Self {
            gate: Gate::new(),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    /// `Outbox::try_post` on an open port: enter, push, leave.
    fn post(&self, msg: u32) {
        self.gate.enter_post();
        lock(&self.queue).push_back(msg);
        self.gate.leave_post(true);
    }

    fn pop(&self) -> Option<u32> {
        lock(&self.queue).pop_front()
    }

    /// `Inbox::recv_async`: look, register (listen, then count), look again, sleep.
    async fn recv(&self) -> u32 {
        loop {
            if let Some(msg) = self.pop() {
                return msg;
            }
            let (_waiting, listener) = Waiting::register(&self.gate);
            if let Some(msg) = self.pop() {
                return msg;
            }
            listener.await;
        }
    }

    /// A stream's receive (`Inbox::poll_recv`): the registration outlives the await.
    async fn recv_registered(&self) -> u32 {
        let mut registered: Option<AsyncWait> = None;
        loop {
            if let Some(msg) = self.pop() {
                return msg;
            }
            match registered.as_mut() {
                None => registered = Some(AsyncWait::register(&self.gate)),
                Some(wait) => {
                    (&mut wait.listener).await;
                    // Notified: the listener is spent; look again, and register anew.
                    registered = None;
                }
            }
        }
    }
}

#[test]
fn an_async_receiver_is_woken_by_a_post() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let poster = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || inbox.post(7))
        };
        assert_eq!(loom::future::block_on(inbox.recv()), 7);
        poster.join().unwrap();
    });
}

#[test]
fn an_async_receiver_gets_both_posts_of_two_posters() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let posters: Vec<_> = (1..=2u32)
            .map(|msg| {
                let inbox = Arc::clone(&inbox);
                thread::spawn(move || inbox.post(msg))
            })
            .collect();
        let mut got = loom::future::block_on(async { [inbox.recv().await, inbox.recv().await] });
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        for poster in posters {
            poster.join().unwrap();
        }
    });
}

#[test]
fn a_stream_receiver_keeping_its_registration_is_woken_by_a_post() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let poster = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || inbox.post(9))
        };
        assert_eq!(loom::future::block_on(inbox.recv_registered()), 9);
        poster.join().unwrap();
    });
}
