//! Close racing posts: a post that returned `Ok` is delivered, whatever the timing of the
//! close; a post that failed handed its message back. Thousands of trials each, since the
//! window is a few instructions wide.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use worker_threads_channel::{MessageChannel, MessagePort, PostError, TryPostError};

/// How a producer posts.
#[derive(Clone, Copy, Debug)]
enum Posting {
    /// `post_message`: waits for room (the parked path when the queue stays full).
    Blocking,
    /// `try_post_message`, retried while the queue is full.
    Trying,
}

/// Posts `0..limit` tagged with `producer` until a post fails; returns how many were
/// accepted. A failed post must hand back exactly the message it was given.
fn produce(port: &MessagePort<(usize, u64)>, producer: usize, limit: u64, how: Posting) -> u64 {
    for n in 0..limit {
        let msg = (producer, n);
        let failed = match how {
            Posting::Blocking => match port.post_message(msg) {
                Ok(()) => None,
                Err(PostError::Closed(back)) => Some(back),
            },
            Posting::Trying => loop {
                match port.try_post_message(msg) {
                    Ok(()) => break None,
                    Err(TryPostError::Full(_)) => thread::yield_now(),
                    Err(TryPostError::Closed(back)) => break Some(back),
                }
            },
        };
        if let Some(back) = failed {
            assert_eq!(back, msg, "a failed post hands its own message back");
            return n;
        }
    }
    limit
}

/// One trial: `producers` post into a port of capacity `cap`; the receiver closes after
/// `close_after` messages and drains. Every accepted post is delivered once, in order per
/// producer.
fn trial(cap: usize, producers: usize, limit: u64, close_after: u64, how: Posting) {
    let MessageChannel { port1, port2 } = MessageChannel::<(usize, u64)>::bounded(cap);
    let accepted: Vec<u64> = thread::scope(|scope| {
        let posting: Vec<_> = (0..producers)
            .map(|producer| {
                let port = &port1;
                scope.spawn(move || produce(port, producer, limit, how))
            })
            .collect();
        let mut next = vec![0u64; producers];
        let mut received = 0u64;
        let closed = AtomicBool::new(false);
        while let Ok((producer, n)) = port2.recv() {
            assert_eq!(
                n, next[producer],
                "in order, once, from producer {producer}"
            );
            next[producer] += 1;
            received += 1;
            if received == close_after && !closed.swap(true, Ordering::Relaxed) {
                port2.close();
            }
        }
        let accepted: Vec<u64> = posting.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            next, accepted,
            "delivered per producer == accepted per producer ({how:?}, cap {cap}, close after {close_after})"
        );
        accepted
    });
    assert!(accepted.iter().sum::<u64>() >= close_after.min(limit * producers as u64));
}

#[test]
fn a_single_producer_on_a_full_port_loses_nothing_to_close() {
    // The shape: bounded(1), a producer posting in a loop, the receiver closing
    // after 50 messages. It lost about 5 posts in 2,000 trials.
    for round in 0..2_000u64 {
        let how = if round % 2 == 0 {
            Posting::Blocking
        } else {
            Posting::Trying
        };
        trial(1, 1, 10_000, 50, how);
    }
}

#[test]
fn four_producers_with_a_random_close_lose_nothing() {
    // 4 producers x 2,000 messages, the close at a pseudo-random point.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..300u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let close_after = 1 + seed % 8_000;
        let cap = [1, 2, 16][(round % 3) as usize];
        let how = if round % 2 == 0 {
            Posting::Blocking
        } else {
            Posting::Trying
        };
        trial(cap, 4, 2_000, close_after, how);
    }
}

#[test]
fn a_close_racing_the_peers_drop_refuses_every_post_after_it_returns() {
    // Both ends close at once: the port's own `close()` and the peer's drop on another
    // thread. Whichever wins, once `close()` returned no post is accepted (it was: the
    // loser returned while the winner was still closing the queues).
    for round in 0..20_000u64 {
        let MessageChannel { port1, port2 } = MessageChannel::<u64>::new();
        let start = std::sync::Barrier::new(2);
        thread::scope(|scope| {
            scope.spawn(|| {
                start.wait();
                drop(port2);
            });
            start.wait();
            port1.close();
            assert_eq!(
                port1.post_message(round),
                Err(PostError::Closed(round)),
                "round {round}: a post after close() returned was accepted"
            );
        });
    }
}
