//! A loom model of the order promise of a [`Sink`](worker_threads_channel::remote::Sink)
//! as a process worker's port implements it (`worker-threads-core`'s
//! `src/process/direct.rs`): a post takes the `behind` lock; if nothing it queued before
//! is still waiting it tries the socket, and when that fails (the peer is not reading) it
//! sets `behind` and queues the message, still under the lock; the writer thread takes
//! the queue's front, sends it (waiting for room), and clears `behind` under the lock once
//! the queue is empty. The model checks, over every interleaving loom explores, that what
//! one thread posts reaches the socket in the order it was posted, and that nothing is
//! lost. The socket holds one record (so the direct path fails whenever the reader is
//! behind), the queue is a mutex-guarded `VecDeque`.
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-channel
//! --test loom_remote --release` (`.ci/run` does, with `LOOM_MAX_PREEMPTIONS=3`).
#![cfg(worker_threads_loom)]

use std::collections::VecDeque;

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// A message: (poster, its sequence number).
type Msg = (u8, u8);

#[derive(Default)]
struct Queue {
    messages: VecDeque<Msg>,
    /// The port closed: the writer stops once the queue is empty.
    closed: bool,
}

#[derive(Default)]
struct Wire {
    /// The socket: one record in flight at most.
    socket: Mutex<Option<Msg>>,
    socket_changed: Condvar,
    /// The port's queue, read by the writer.
    queue: Mutex<Queue>,
    queued: Condvar,
    /// `Outgoing::behind`.
    behind: Mutex<bool>,
}

impl Wire {
    /// A non-blocking send: false when the record in flight was not read yet.
    fn try_send(&self, msg: Msg) -> bool {
        let mut socket = self.socket.lock().unwrap();
        if socket.is_some() {
            return false;
        }
        *socket = Some(msg);
        self.socket_changed.notify_all();
        true
    }

    /// A blocking send: waits for room.
    fn send(&self, msg: Msg) {
        let mut socket = self.socket.lock().unwrap();
        while socket.is_some() {
            socket = self.socket_changed.wait(socket).unwrap();
        }
        *socket = Some(msg);
        self.socket_changed.notify_all();
    }

    /// The peer: reads `count` records.
    fn read(&self, count: usize) -> Vec<Msg> {
        let mut read = Vec::new();
        let mut socket = self.socket.lock().unwrap();
        while read.len() < count {
            match socket.take() {
                Some(msg) => {
                    read.push(msg);
                    self.socket_changed.notify_all();
                }
                None => socket = self.socket_changed.wait(socket).unwrap(),
            }
        }
        read
    }

    /// `Outgoing::post` (the port's `queue` closure is called under the `behind` lock).
    fn post(&self, msg: Msg) {
        let mut behind = self.behind.lock().unwrap();
        if !*behind && self.try_send(msg) {
            return;
        }
        *behind = true;
        self.queue.lock().unwrap().messages.push_back(msg);
        self.queued.notify_all();
    }

    fn close(&self) {
        self.queue.lock().unwrap().closed = true;
        self.queued.notify_all();
    }

    /// The writer thread (`write_to_child`, the child's `forward`) with `Outgoing::caught_up`.
    fn write(&self) {
        loop {
            let msg = {
                let mut queue = self.queue.lock().unwrap();
                loop {
                    if let Some(msg) = queue.messages.pop_front() {
                        break msg;
                    }
                    if queue.closed {
                        return;
                    }
                    queue = self.queued.wait(queue).unwrap();
                }
            };
            self.send(msg);
            let mut behind = self.behind.lock().unwrap();
            if *behind && self.queue.lock().unwrap().messages.is_empty() {
                *behind = false;
            }
        }
    }
}

#[test]
fn what_one_thread_posts_reaches_the_peer_in_order_and_whole() {
    loom::model(|| {
        let wire = Arc::new(Wire::default());
        let writer = {
            let wire = Arc::clone(&wire);
            thread::spawn(move || wire.write())
        };
        let reader = {
            let wire = Arc::clone(&wire);
            thread::spawn(move || wire.read(4))
        };
        for seq in 0..4 {
            wire.post((0, seq));
        }
        wire.close();
        writer.join().unwrap();
        let read = reader.join().unwrap();
        assert_eq!(read, [(0, 0), (0, 1), (0, 2), (0, 3)]);
    });
}
