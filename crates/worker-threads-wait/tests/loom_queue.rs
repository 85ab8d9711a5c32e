//! Loom models of the queues (`src/queue/`) and of sleeping on them (`src/waiters.rs`),
//! on the real code: under `--cfg worker_threads_loom` their atomics, cells, locks and
//! spins are loom's, and a block of the unbounded queue holds two slots, so that a few
//! messages cross blocks (install, move of the head, destruction).
//!
//! What is checked, in every interleaving loom explores:
//!
//! - **Close versus push**: a push that returned `Ok` is popped exactly once before the
//!   pop reports `Closed`, whatever the timing of the close; a push that failed got its
//!   message back. (A mutation that checks the mark outside the claim's compare-and-swap
//!   loses a message here.)
//! - **No lost wake-up**: a receiver that found the queue empty, registered, looked again
//!   and parked is woken by a push followed by `notify_one`, or by a close followed by
//!   `notify_all`. A lost wake-up leaves it parked, which loom reports as a deadlock.
//! - **Freeing**: every message and block is dropped once (loom reports a leaked or
//!   doubly freed cell access; the drop counter checks the messages).
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-wait
//! --test loom_queue --release` alone;
//! `cargo xtask loom` runs every model, as `.ci/run` does.
#![cfg(worker_threads_loom)]

use loom::sync::Arc;
// The models' own tallies (drops, resolutions) are std's atomics: they are not part of the
// protocol under test, loom runs one thread at a time, and a loom atomic would add its
// operations to the interleavings loom explores.
use loom::thread;
use std::sync::atomic::{AtomicUsize, Ordering};
use worker_threads_wait::queue::{Array, List, PopError, PushError};
use worker_threads_wait::{Deadline, Parker, Waiters};

/// A message that counts its drops.
#[derive(Debug)]
struct Counted(u32, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// Pops until `Closed`, returning what came out.
fn drain_list(list: &List<Counted>) -> Vec<u32> {
    let mut seen = Vec::new();
    loop {
        match list.pop() {
            Ok(msg) => seen.push(msg.0),
            Err(PopError::Empty) => thread::yield_now(),
            Err(PopError::Closed) => return seen,
        }
    }
}

#[test]
fn list_a_push_that_returned_ok_is_popped_once_before_closed_whatever_the_close() {
    loom::model(|| {
        let list = Arc::new(List::new());
        let drops = Arc::new(AtomicUsize::new(0));
        // Three pushes cross a block (two slots each under loom).
        let pusher = thread::spawn({
            let (list, drops) = (Arc::clone(&list), Arc::clone(&drops));
            move || {
                let mut accepted = Vec::new();
                for n in 0..3 {
                    match list.push(Counted(n, Arc::clone(&drops))) {
                        Ok(()) => accepted.push(n),
                        Err(back) => assert_eq!(back.0, n, "the refused message comes back"),
                    }
                }
                accepted
            }
        });
        let closer = thread::spawn({
            let list = Arc::clone(&list);
            move || {
                list.close();
            }
        });
        let popped = drain_list(&list);
        let accepted = pusher.join().unwrap();
        closer.join().unwrap();
        assert_eq!(popped, accepted, "exactly the accepted messages, in order");
        drop(list);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            3,
            "every message dropped once"
        );
    });
}

#[test]
fn list_two_pushers_and_two_poppers_move_each_message_once() {
    loom::model(|| {
        let list = Arc::new(List::new());
        let drops = Arc::new(AtomicUsize::new(0));
        let pushers: Vec<_> = (0..2)
            .map(|p| {
                let (list, drops) = (Arc::clone(&list), Arc::clone(&drops));
                thread::spawn(move || {
                    list.push(Counted(p, Arc::clone(&drops))).unwrap();
                })
            })
            .collect();
        let popper = thread::spawn({
            let list = Arc::clone(&list);
            move || list.pop().ok().map(|msg| msg.0)
        });
        let mut seen: Vec<u32> = popper.join().unwrap().into_iter().collect();
        for pusher in pushers {
            pusher.join().unwrap();
        }
        while let Ok(msg) = list.pop() {
            seen.push(msg.0);
        }
        seen.sort_unstable();
        assert_eq!(seen, [0, 1]);
        assert_eq!(list.len(), 0);
        drop(list);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}

/// A queue with a list of sleeping receivers beside it, as a port keeps them.
struct Inbox {
    list: List<u32>,
    receivers: Waiters,
}

impl Inbox {
    /// A receive: pop; else register, look again, park; then look again.
    fn recv(&self) -> Result<u32, PopError> {
        loop {
            match self.list.pop() {
                Err(PopError::Empty) => {}
                done => return done,
            }
            let parker = Parker::current();
            let token = self.receivers.register(&parker);
            if !self.list.is_ready() {
                parker.park(Deadline::Never);
            }
            self.receivers.unregister(token);
        }
    }

    fn post(&self, msg: u32) {
        self.list.push(msg).unwrap();
        self.receivers.notify_one();
    }

    fn close(&self) {
        self.list.close();
        self.receivers.notify_all();
    }
}

#[test]
fn a_parked_receiver_is_woken_by_a_push() {
    loom::model(|| {
        let inbox = Arc::new(Inbox {
            list: List::new(),
            receivers: Waiters::new(),
        });
        let poster = thread::spawn({
            let inbox = Arc::clone(&inbox);
            move || inbox.post(7)
        });
        assert_eq!(inbox.recv(), Ok(7));
        poster.join().unwrap();
    });
}

#[test]
fn a_parked_receiver_is_woken_by_a_close() {
    loom::model(|| {
        let inbox = Arc::new(Inbox {
            list: List::new(),
            receivers: Waiters::new(),
        });
        let closer = thread::spawn({
            let inbox = Arc::clone(&inbox);
            move || inbox.close()
        });
        assert_eq!(inbox.recv(), Err(PopError::Closed));
        closer.join().unwrap();
    });
}

#[test]
fn two_parked_receivers_are_both_woken_by_two_pushes() {
    loom::model(|| {
        let inbox = Arc::new(Inbox {
            list: List::new(),
            receivers: Waiters::new(),
        });
        let other = thread::spawn({
            let inbox = Arc::clone(&inbox);
            move || inbox.recv()
        });
        let poster = thread::spawn({
            let inbox = Arc::clone(&inbox);
            move || {
                inbox.post(1);
                inbox.post(2);
            }
        });
        let mine = inbox.recv().unwrap();
        let theirs = other.join().unwrap().unwrap();
        poster.join().unwrap();
        assert_eq!(mine + theirs, 3);
    });
}

#[test]
fn array_a_push_that_returned_ok_is_popped_once_before_closed() {
    loom::model(|| {
        let ring = Arc::new(Array::new(1));
        let pusher = thread::spawn({
            let ring = Arc::clone(&ring);
            move || {
                let mut accepted = Vec::new();
                for n in 0..2u32 {
                    let mut msg = n;
                    loop {
                        match ring.push(msg) {
                            Ok(()) => {
                                accepted.push(n);
                                break;
                            }
                            Err(PushError::Full(back)) => {
                                msg = back;
                                thread::yield_now();
                            }
                            Err(PushError::Closed(back)) => {
                                assert_eq!(back, n);
                                return accepted;
                            }
                        }
                    }
                }
                accepted
            }
        });
        let closer = thread::spawn({
            let ring = Arc::clone(&ring);
            move || {
                ring.close();
            }
        });
        let mut popped = Vec::new();
        loop {
            match ring.pop() {
                Ok(msg) => popped.push(msg),
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => break,
            }
        }
        assert_eq!(popped, pusher.join().unwrap());
        closer.join().unwrap();
    });
}

#[test]
fn array_a_sender_waiting_for_room_is_woken_by_a_pop() {
    loom::model(|| {
        let ring = Arc::new(Array::new(1));
        let senders = Arc::new(Waiters::new());
        ring.push(1u32).unwrap();
        let sender = thread::spawn({
            let (ring, senders) = (Arc::clone(&ring), Arc::clone(&senders));
            move || {
                let mut msg = 2;
                loop {
                    match ring.push(msg) {
                        Ok(()) => return,
                        Err(PushError::Full(back)) => msg = back,
                        Err(PushError::Closed(_)) => panic!("not closed"),
                    }
                    let parker = Parker::current();
                    let token = senders.register(&parker);
                    if !ring.has_room() {
                        parker.park(Deadline::Never);
                    }
                    senders.unregister(token);
                }
            }
        });
        assert_eq!(ring.pop(), Ok(1));
        senders.notify_one();
        sender.join().unwrap();
        assert_eq!(ring.pop(), Ok(2));
    });
}

/// The outputs of a pool task, as the pool decides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Value(u32),
    Cancelled,
    TimedOut,
}

#[test]
fn task_cell_a_worker_a_cancel_and_a_deadline_resolve_it_exactly_once_and_wake_the_joiner() {
    use worker_threads_wait::{Cancel, TaskCell};
    loom::model(|| {
        let cell = Arc::new(TaskCell::<u32, Outcome>::new(6));
        let resolutions = Arc::new(AtomicUsize::new(0));
        let worker = thread::spawn({
            let (cell, resolutions) = (Arc::clone(&cell), Arc::clone(&resolutions));
            move || {
                if let Some(input) = cell.claim() {
                    cell.resolve(false, |found| {
                        resolutions.fetch_add(1, Ordering::SeqCst);
                        if found.cancelled {
                            Outcome::Cancelled
                        } else {
                            Outcome::Value(input * 7)
                        }
                    });
                }
            }
        });
        let canceller = thread::spawn({
            let (cell, resolutions) = (Arc::clone(&cell), Arc::clone(&resolutions));
            move || {
                cell.cancel(|| {
                    resolutions.fetch_add(1, Ordering::SeqCst);
                    Outcome::Cancelled
                })
            }
        });
        let deadline = thread::spawn({
            let (cell, resolutions) = (Arc::clone(&cell), Arc::clone(&resolutions));
            move || {
                cell.resolve(true, |_| {
                    resolutions.fetch_add(1, Ordering::SeqCst);
                    Outcome::TimedOut
                })
            }
        });
        let outcome = cell.wait(Deadline::Never).expect("resolved");
        worker.join().unwrap();
        let cancel = canceller.join().unwrap();
        let expired = deadline.join().unwrap();
        assert_eq!(
            resolutions.load(Ordering::SeqCst),
            1,
            "resolved exactly once"
        );
        match outcome {
            Outcome::Value(value) => {
                assert_eq!(value, 42);
                assert_eq!(
                    cancel,
                    Cancel::TooLate,
                    "a value means no cancel came first"
                );
                assert!(expired.is_none());
            }
            Outcome::Cancelled => assert!(expired.is_none()),
            Outcome::TimedOut => assert!(expired.is_some()),
        }
    });
}

#[test]
fn task_cell_an_async_joiner_is_woken_by_the_resolution() {
    use worker_threads_wait::TaskCell;
    loom::model(|| {
        let cell = Arc::new(TaskCell::<u32, u32>::new(2));
        let worker = thread::spawn({
            let cell = Arc::clone(&cell);
            move || {
                let input = cell.claim().unwrap();
                cell.resolve(false, |_| input + 40);
            }
        });
        let output = loom::future::block_on(std::future::poll_fn(|cx| cell.poll(cx)));
        assert_eq!(output, Some(42));
        worker.join().unwrap();
    });
}
