//! `recv_async` under tokio, mixed with blocking posts from plain threads.

use std::sync::Arc;
use std::thread;

use worker_threads_channel::{BroadcastChannel, MessageChannel, RecvError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_receiver_gets_every_blocking_post_in_order() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::bounded(16);
    let producer = thread::spawn(move || {
        for i in 0..100_000 {
            port1.post_message(i).unwrap();
        }
    });
    let mut expected = 0;
    while let Ok(msg) = port2.recv_async().await {
        assert_eq!(msg, expected);
        expected += 1;
    }
    assert_eq!(expected, 100_000);
    producer.join().unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn async_and_blocking_ends_talk_both_ways() {
    let MessageChannel { port1, port2 } = MessageChannel::<u64>::new();
    let echo = thread::spawn(move || {
        for msg in &port2 {
            port2.post_message(msg * 3).unwrap();
        }
    });
    for i in 0..1_000 {
        port1.post_message(i).unwrap();
        assert_eq!(port1.recv_async().await, Ok(i * 3));
    }
    drop(port1);
    echo.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_wakes_an_awaiting_receiver() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    let port2 = Arc::new(port2);
    let waiting = tokio::spawn({
        let port2 = Arc::clone(&port2);
        async move { port2.recv_async().await }
    });
    tokio::task::yield_now().await;
    thread::spawn(move || drop(port1)).join().unwrap();
    assert_eq!(waiting.await.unwrap(), Err(RecvError::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_async_receivers_on_one_port_share_the_messages() {
    // Two quick posts must wake two receivers: no message waits for a later post.
    for _ in 0..50 {
        let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
        let port2 = Arc::new(port2);
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let port2 = Arc::clone(&port2);
                tokio::spawn(async move { port2.recv_async().await })
            })
            .collect();
        let poster = thread::spawn(move || {
            for i in 0..4 {
                port1.post_message(i).unwrap();
            }
            port1
        });
        let mut got: Vec<u32> = Vec::new();
        for receiver in receivers {
            got.push(receiver.await.unwrap().unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3]);
        drop(poster.join().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_receives_asynchronously() {
    let rx = BroadcastChannel::<u32>::new("async-broadcast");
    let tx = BroadcastChannel::<u32>::new("async-broadcast");
    let poster = thread::spawn(move || {
        for i in 0..1_000 {
            tx.post_message(i).unwrap();
        }
    });
    for i in 0..1_000 {
        assert_eq!(rx.recv_async().await, Ok(i));
    }
    poster.join().unwrap();
}
