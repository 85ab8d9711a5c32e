//! `on_message`: the handler runs for every message on its own thread and stops when the
//! port closes, from either end.

use std::sync::{Arc, Mutex};

use worker_threads_channel::MessageChannel;

#[test]
fn handler_sees_every_message_then_stops_when_the_peer_closes() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = port2
        .on_message({
            let seen = Arc::clone(&seen);
            move |msg, _| seen.lock().unwrap().push(msg)
        })
        .unwrap();
    for i in 0..1_000 {
        port1.post_message(i).unwrap();
    }
    port1.close();
    listener.join().unwrap();
    assert_eq!(*seen.lock().unwrap(), (0..1_000).collect::<Vec<_>>());
}

#[test]
fn stop_closes_the_port_and_joins_the_thread() {
    let MessageChannel { port1, port2 } = MessageChannel::<String>::new();
    let listener = port2
        .on_message(|msg, port| port.post_message(msg.to_uppercase()).unwrap())
        .unwrap();
    port1.post_message("hello".into()).unwrap();
    assert_eq!(port1.recv().unwrap(), "HELLO");
    listener.stop().unwrap();
    assert!(port1.is_closed());
    assert!(port1.post_message("late".into()).is_err());
}

#[test]
fn a_panicking_handler_is_reported_by_join_and_closes_the_port() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
    let listener = port2
        .on_message(|msg, _| assert_ne!(msg, 3, "three is not allowed"))
        .unwrap();
    for i in 0..5 {
        let _ = port1.post_message(i);
    }
    assert!(listener.join().is_err());
    // The port went down with the handler's thread.
    assert!(port1.is_closed());
}
