//! The cluster's async side: `Cluster` is a `Stream` of its events and has `recv_async`;
//! a worker's `Primary` has `recv_async` and is a `Stream` of messages. Both handles stay
//! `Send + Sync`.

mod common;

use tokio_stream::StreamExt;
use worker_threads_cluster::{Cluster, Event, Primary};

#[test]
fn the_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Cluster<String>>();
    send_sync::<Primary<String>>();
}

#[test]
fn events_and_messages_stream_both_ways() {
    if worker_threads_cluster::is_worker() {
        // Echo each message with recv_async, then the rest through the stream, until "bye".
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut primary = worker_threads_cluster::primary::<String>();
            let first = primary.recv_async().await.unwrap();
            primary.send(format!("echo {first}")).unwrap();
            while let Some(msg) = primary.next().await {
                let msg = msg.unwrap();
                primary.send(format!("echo {msg}")).unwrap();
                if msg == "bye" {
                    break;
                }
            }
        });
        return;
    }
    let mut cluster = Cluster::<String>::builder()
        .test_harness("events_and_messages_stream_both_ways")
        .build();
    let worker = cluster.fork().unwrap();
    for msg in ["one", "two", "bye"] {
        worker.send(msg.to_string()).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (echoes, exit) = runtime.block_on(async {
        let mut echoes = Vec::new();
        // The first event through recv_async, the rest through the stream.
        let first = cluster.recv_async().await;
        assert!(matches!(first, Event::Fork { .. }), "{first:?}");
        let exit = loop {
            let event = tokio::time::timeout(std::time::Duration::from_secs(60), cluster.next())
                .await
                .expect("an event within the patience bound")
                .expect("the stream never ends while the cluster lives");
            match event {
                Event::Message { message, .. } => echoes.push(message),
                Event::Exit { code, .. } => break code,
                _ => {}
            }
        };
        (echoes, exit)
    });
    assert_eq!(echoes, ["echo one", "echo two", "echo bye"]);
    assert_eq!(exit, Some(0));
}
