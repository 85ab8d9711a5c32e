//! Many producers through one port: nothing lost, nothing duplicated, each producer's
//! messages in its own order.

use std::thread;

use worker_threads_channel::{MessageChannel, MessagePort};

const PRODUCERS: usize = 4;
const PER_PRODUCER: u32 = if cfg!(miri) { 100 } else { 250_000 };

fn run(port1: MessagePort<(usize, u32)>, port2: MessagePort<(usize, u32)>) {
    let mut next = [0u32; PRODUCERS];
    thread::scope(|s| {
        for producer in 0..PRODUCERS {
            let port1 = &port1;
            s.spawn(move || {
                for seq in 0..PER_PRODUCER {
                    port1.post_message((producer, seq)).unwrap();
                }
            });
        }
        for _ in 0..PRODUCERS as u64 * u64::from(PER_PRODUCER) {
            let (producer, seq) = port2.recv().unwrap();
            assert_eq!(seq, next[producer], "producer {producer} out of order");
            next[producer] += 1;
        }
    });
    assert_eq!(next, [PER_PRODUCER; PRODUCERS]);
    // Everything was received exactly once: nothing more is waiting.
    drop(port1);
    assert!(port2.recv().is_err());
}

#[test]
fn four_producers_a_million_messages_unbounded() {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    run(port1, port2);
}

#[test]
fn four_producers_a_million_messages_bounded() {
    let MessageChannel { port1, port2 } = MessageChannel::bounded(64);
    run(port1, port2);
}
