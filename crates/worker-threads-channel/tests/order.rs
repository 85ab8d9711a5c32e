//! Messages arrive in the order they were posted, in both directions, for symmetric and
//! asymmetric channels, unbounded and bounded.

use std::thread;

use worker_threads_channel::MessageChannel;

#[test]
fn fifo_in_both_directions_across_threads() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
    let peer = thread::spawn(move || {
        let received: Vec<u32> = (0..10_000).map(|_| port2.recv().unwrap()).collect();
        for i in 0..10_000 {
            port2.post_message(i + 1_000_000).unwrap();
        }
        received
    });
    for i in 0..10_000 {
        port1.post_message(i).unwrap();
    }
    let back: Vec<u32> = (0..10_000).map(|_| port1.recv().unwrap()).collect();
    assert_eq!(peer.join().unwrap(), (0..10_000).collect::<Vec<_>>());
    assert_eq!(back, (1_000_000..1_010_000).collect::<Vec<_>>());
}

#[test]
fn asymmetric_channel_carries_each_type_its_way() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32, String>::asymmetric();
    port1.post_message(1).unwrap();
    port1.post_message(2).unwrap();
    port2.post_message("one".into()).unwrap();
    assert_eq!(port2.recv(), Ok(1));
    assert_eq!(port2.recv(), Ok(2));
    assert_eq!(port1.recv().unwrap(), "one");
}

#[test]
fn bounded_channel_keeps_order_under_back_pressure() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::bounded(4);
    let producer = thread::spawn(move || {
        for i in 0..50_000 {
            port1.post_message(i).unwrap();
        }
    });
    let received: Vec<u32> = port2.iter().collect();
    producer.join().unwrap();
    assert_eq!(received, (0..50_000).collect::<Vec<_>>());
}

#[test]
fn rendezvous_channel_hands_over_each_message() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::bounded(0);
    let producer = thread::spawn(move || {
        for i in 0..1_000 {
            port1.post_message(i).unwrap();
        }
    });
    assert_eq!(
        port2.iter().collect::<Vec<_>>(),
        (0..1_000).collect::<Vec<_>>()
    );
    producer.join().unwrap();
}

#[test]
fn try_iter_takes_what_is_waiting_and_stops() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
    for i in 0..5 {
        port1.post_message(i).unwrap();
    }
    assert_eq!(port2.len(), 5);
    assert_eq!(port2.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert!(port2.is_empty());
    // The port is still open: the iterator stopped because nothing was waiting.
    port1.post_message(5).unwrap();
    assert_eq!(port2.recv(), Ok(5));
}

#[test]
fn owned_iterator_ends_when_the_peer_goes() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
    let producer = thread::spawn(move || {
        for i in 0..100 {
            port1.post_message(i).unwrap();
        }
    });
    let all: Vec<u32> = port2.into_iter().collect();
    producer.join().unwrap();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
}
