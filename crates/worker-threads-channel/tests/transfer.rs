//! A port is an ordinary value: posted through another port to a third thread, it lets
//! that thread talk to the original owner directly.

use std::thread;

use worker_threads_channel::{MessageChannel, MessagePort};

#[test]
fn a_port_sent_through_a_port_talks_to_its_original_peer() {
    // main <-> relay: a channel that carries ports.
    let MessageChannel {
        port1: to_relay,
        port2: relay_end,
    } = MessageChannel::<MessagePort<String>>::new();
    // relay -> third: another channel that carries ports.
    let MessageChannel {
        port1: relay_to_third,
        port2: third_end,
    } = MessageChannel::<MessagePort<String>>::new();
    // The port whose ends are the subject: main keeps `mine`.
    let MessageChannel {
        port1: mine,
        port2: theirs,
    } = MessageChannel::<String>::new();

    let relay = thread::spawn(move || {
        let port = relay_end.recv().unwrap();
        relay_to_third.post_message(port).unwrap();
        // The relay no longer has the port, and hears nothing of what follows.
        relay_end.try_recv().is_err()
    });
    let third = thread::spawn(move || {
        let port = third_end.recv().unwrap();
        let hello = port.recv().unwrap();
        port.post_message(format!("{hello}, back from the third thread"))
            .unwrap();
        thread::current().id()
    });

    to_relay.post_message(theirs).unwrap();
    mine.post_message("hello".into()).unwrap();
    assert_eq!(mine.recv().unwrap(), "hello, back from the third thread");
    assert!(relay.join().unwrap());
    assert_ne!(third.join().unwrap(), thread::current().id());
    // The third thread dropped the port when it ended: the pair is closed.
    assert!(mine.recv().is_err());
}
