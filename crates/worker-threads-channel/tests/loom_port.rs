//! Loom models of a port's promises, on the real `MessageChannel`: under
//! `--cfg worker_threads_loom` its queues (`worker_threads_wait::queue`), the lists its
//! receivers and posters sleep in (`Waiters`), its parking and its close state are loom's,
//! so loom explores this code itself, not a restatement of it.
//!
//! - **A close loses no accepted post**: whatever the timing of a close from a third
//!   thread, the receiver gets exactly the posts that returned `Ok`, in order, then
//!   `Closed`; a refused post hands its message back. Unbounded, and bounded with a poster
//!   that waits for room.
//! - **No lost wake-up**: a blocking receive that parked is woken by a post or a close (a
//!   lost wake-up leaves it parked: loom reports a deadlock); so is an `async` receive.
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-channel
//! --test loom_port --release` alone;
//! `cargo xtask loom` runs every model, as `.ci/run` does.
#![cfg(worker_threads_loom)]

use std::sync::Arc;

use loom::thread;
use worker_threads_channel::{MessageChannel, PostError, RecvError};

/// Posts `0..n` (each posts waits for room on a bounded port), returning what was
/// accepted; a refused post must hand its message back.
fn post_all(port: &worker_threads_channel::MessagePort<u32>, n: u32) -> Vec<u32> {
    let mut accepted = Vec::new();
    for msg in 0..n {
        match port.post_message(msg) {
            Ok(()) => accepted.push(msg),
            Err(PostError::Closed(back)) => assert_eq!(back, msg),
        }
    }
    accepted
}

/// Receives (blocking) until `Closed`.
fn receive_all(port: &worker_threads_channel::MessagePort<u32>) -> Vec<u32> {
    let mut received = Vec::new();
    loop {
        match port.recv() {
            Ok(msg) => received.push(msg),
            Err(RecvError::Closed) => return received,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

fn close_race(cap: Option<usize>, posts: u32) {
    loom::model(move || {
        let MessageChannel { port1, port2 } = match cap {
            None => MessageChannel::<u32>::new(),
            Some(cap) => MessageChannel::bounded(cap),
        };
        let port1 = Arc::new(port1);
        let poster = thread::spawn({
            let port1 = Arc::clone(&port1);
            move || post_all(&port1, posts)
        });
        let closer = thread::spawn(move || port1.close());
        let received = receive_all(&port2);
        let accepted = poster.join().unwrap();
        closer.join().unwrap();
        assert_eq!(received, accepted, "exactly the accepted posts, in order");
    });
}

#[test]
fn a_close_loses_no_accepted_post_unbounded() {
    close_race(None, 2);
}

#[test]
fn a_close_loses_no_accepted_post_bounded_with_a_waiting_poster() {
    close_race(Some(1), 2);
}

#[test]
fn a_parked_receiver_is_woken_by_each_post() {
    loom::model(|| {
        let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
        let poster = thread::spawn(move || {
            port1.post_message(1).unwrap();
            port1.post_message(2).unwrap();
            port1
        });
        assert_eq!(port2.recv(), Ok(1));
        assert_eq!(port2.recv(), Ok(2));
        drop(poster.join().unwrap());
    });
}

#[test]
fn an_async_receiver_is_woken_by_a_post_and_by_a_close() {
    loom::model(|| {
        let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
        let poster = thread::spawn(move || {
            port1.post_message(7).unwrap();
            // Dropping the port closes the pair.
        });
        assert_eq!(loom::future::block_on(port2.recv_async()), Ok(7));
        assert_eq!(
            loom::future::block_on(port2.recv_async()),
            Err(RecvError::Closed)
        );
        poster.join().unwrap();
    });
}

/// **A close that returned is a close**: the port's own `close()` races the peer's drop on
/// another thread; whichever wins, once `close()` returned a post is refused and handed
/// back (the loser used to return while the winner was still closing the queues).
#[test]
fn a_close_racing_the_peers_drop_refuses_the_next_post() {
    loom::model(|| {
        let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
        let dropper = thread::spawn(move || drop(port2));
        port1.close();
        assert_eq!(port1.post_message(7), Err(PostError::Closed(7)));
        dropper.join().unwrap();
    });
}
