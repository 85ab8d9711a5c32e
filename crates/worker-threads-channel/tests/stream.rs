//! Ports and broadcast channels as `Stream`s: every message in order, the end on close,
//! and no message lost when a pending `next()` is dropped (as `tokio::select!` does).

use std::thread;

use tokio_stream::StreamExt;
use worker_threads_channel::{BroadcastChannel, MessageChannel};

#[tokio::test(flavor = "current_thread")]
async fn a_port_streams_every_message_in_order_then_ends_on_close() {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let poster = thread::spawn(move || {
        for n in 0..10_000u32 {
            port1.post_message(n).unwrap();
        }
        // port1 drops here: the pair closes, after the 10,000.
    });
    let got: Vec<u32> = port2.collect().await;
    poster.join().unwrap();
    assert_eq!(got, (0..10_000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_a_pending_next_in_select_loses_no_message() {
    // `next()` is polled first; whenever it is pending (the queue was empty at that poll),
    // the always-ready branch wins and select! drops it, registration and all. 20,000
    // messages still arrive once each, in order.
    let MessageChannel { port1, mut port2 } = MessageChannel::bounded(16);
    let poster = thread::spawn(move || {
        for n in 0..20_000u32 {
            port1.post_message(n).unwrap();
        }
    });
    let mut got = Vec::with_capacity(20_000);
    loop {
        tokio::select! {
            biased;
            next = port2.next() => match next {
                Some(n) => got.push(n),
                None => break,
            },
            () = std::future::ready(()) => {}
        }
    }
    poster.join().unwrap();
    assert_eq!(got, (0..20_000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "current_thread")]
async fn a_broadcast_channel_streams_what_the_others_post() {
    let mut b = BroadcastChannel::<String>::new("stream-test");
    let a = BroadcastChannel::<String>::new("stream-test");
    let poster = thread::spawn(move || {
        for n in 0..100 {
            a.post_message(format!("m{n}")).unwrap();
        }
    });
    let mut got = Vec::new();
    while got.len() < 100 {
        got.push(b.next().await.unwrap());
    }
    poster.join().unwrap();
    assert_eq!(got, (0..100).map(|n| format!("m{n}")).collect::<Vec<_>>());
    b.close();
    assert_eq!(b.next().await, None);
}
