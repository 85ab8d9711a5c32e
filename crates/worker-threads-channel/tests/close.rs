//! Closing: posts after a close fail and hand the message back, messages posted before
//! are still delivered, dropping a port closes the pair, and blocked threads wake.

use std::sync::{Arc, Barrier};
use std::thread;

use worker_threads_channel::{MessageChannel, PostError, RecvError, TryPostError, TryRecvError};

#[test]
fn posted_before_close_is_delivered_then_closed() {
    let MessageChannel { port1, port2 } = MessageChannel::<String>::new();
    port1.post_message("a".into()).unwrap();
    port1.post_message("b".into()).unwrap();
    port2.post_message("c".into()).unwrap();
    port1.close();
    assert!(port1.is_closed() && port2.is_closed());
    assert_eq!(port2.recv().unwrap(), "a");
    assert_eq!(port2.recv().unwrap(), "b");
    assert_eq!(port2.recv(), Err(RecvError::Closed));
    // The closing side drains too.
    assert_eq!(port1.recv().unwrap(), "c");
    assert_eq!(port1.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn a_failed_post_returns_the_message_on_both_ends() {
    let MessageChannel { port1, port2 } = MessageChannel::<Vec<u8>>::new();
    port2.close();
    assert_eq!(
        port1.post_message(vec![1, 2]),
        Err(PostError::Closed(vec![1, 2]))
    );
    assert_eq!(
        port2.try_post_message(vec![3]),
        Err(TryPostError::Closed(vec![3]))
    );
    let err = port1
        .post_timeout(vec![4], std::time::Duration::from_secs(1))
        .unwrap_err();
    assert!(err.is_closed());
    assert_eq!(err.into_inner(), [4]);
}

#[test]
fn dropping_a_port_closes_the_pair() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    port1.post_message(7).unwrap();
    drop(port1);
    assert!(port2.is_closed());
    assert_eq!(port2.recv(), Ok(7));
    assert_eq!(port2.recv(), Err(RecvError::Closed));
    assert_eq!(port2.post_message(8), Err(PostError::Closed(8)));
}

#[test]
fn close_is_idempotent() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    port1.close();
    port1.close();
    port2.close();
    assert_eq!(port2.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn close_wakes_a_receiver_blocked_on_the_other_end() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    let port2 = Arc::new(port2);
    let barrier = Arc::new(Barrier::new(2));
    let receiver = {
        let (port2, barrier) = (Arc::clone(&port2), Arc::clone(&barrier));
        thread::spawn(move || {
            barrier.wait();
            port2.recv()
        })
    };
    barrier.wait();
    port1.close();
    assert_eq!(receiver.join().unwrap(), Err(RecvError::Closed));
}

#[test]
fn close_wakes_a_receiver_blocked_on_the_same_end() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    let port1 = Arc::new(port1);
    let receiver = {
        let port1 = Arc::clone(&port1);
        thread::spawn(move || port1.recv())
    };
    port1.close();
    assert_eq!(receiver.join().unwrap(), Err(RecvError::Closed));
    drop(port2);
}

#[test]
fn close_wakes_every_blocked_receiver() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    let port2 = Arc::new(port2);
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let port2 = Arc::clone(&port2);
            thread::spawn(move || port2.recv())
        })
        .collect();
    drop(port1);
    for receiver in receivers {
        assert_eq!(receiver.join().unwrap(), Err(RecvError::Closed));
    }
}

#[test]
fn close_wakes_a_sender_blocked_on_a_full_port_and_returns_its_message() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::bounded(1);
    port1.post_message(1).unwrap();
    let port1 = Arc::new(port1);
    let sender = {
        let port1 = Arc::clone(&port1);
        thread::spawn(move || port1.post_message(2))
    };
    port2.close();
    assert_eq!(sender.join().unwrap(), Err(PostError::Closed(2)));
    // The message accepted before the close is still there.
    assert_eq!(port2.recv(), Ok(1));
    assert_eq!(port2.recv(), Err(RecvError::Closed));
}

#[test]
fn no_message_is_lost_when_a_close_races_with_posts() {
    // Every post that returned Ok is received; every other one came back.
    for _ in 0..200 {
        let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
        let poster = thread::spawn(move || {
            let mut accepted = Vec::new();
            for i in 0..100 {
                match port1.post_message(i) {
                    Ok(()) => accepted.push(i),
                    Err(err) => assert_eq!(err.into_inner(), i),
                }
            }
            accepted
        });
        let mut received = Vec::new();
        while received.len() < 10 {
            match port2.recv() {
                Ok(msg) => received.push(msg),
                Err(_) => break,
            }
        }
        port2.close();
        let accepted = poster.join().unwrap();
        received.extend(port2.iter());
        assert_eq!(received, accepted);
    }
}

#[test]
fn terminate_fails_receives_at_once_on_both_ends_and_refuses_posts() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    port1.post_message(1).unwrap();
    port2.post_message(2).unwrap();
    port1.terminate();
    assert!(port1.is_terminated() && port2.is_terminated());
    // What was waiting is dropped: a terminated worker processes nothing more.
    assert_eq!(port2.recv(), Err(RecvError::Terminated));
    assert_eq!(port1.try_recv(), Err(TryRecvError::Terminated));
    assert_eq!(port2.post_message(3), Err(PostError::Closed(3)));
}

#[test]
fn terminate_wakes_a_blocked_receiver_with_terminated() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    let port2 = Arc::new(port2);
    let receiver = {
        let port2 = Arc::clone(&port2);
        thread::spawn(move || port2.recv_timeout(std::time::Duration::from_secs(3600)))
    };
    port1.terminate();
    assert_eq!(
        receiver.join().unwrap(),
        Err(worker_threads_channel::RecvTimeoutError::Terminated)
    );
}

#[test]
fn a_closed_pair_stays_closed_when_terminated_later() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    port1.post_message(1).unwrap();
    port1.close();
    port2.terminate();
    assert!(!port2.is_terminated());
    assert_eq!(port2.recv(), Ok(1));
    assert_eq!(port2.recv(), Err(RecvError::Closed));
}

#[test]
fn a_raised_termination_signal_fails_blocking_receives_even_with_a_message_waiting() {
    // The thread's signal (a terminated worker's), not the port's: the message stays
    // queued, `try_recv` (which does not look at the signal) still finds it, and another
    // thread receives normally.
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    let signal = worker_threads_channel::TerminationSignal::new();
    port1.post_message(1).unwrap();
    port1.post_message(2).unwrap();
    thread::scope(|scope| {
        scope.spawn(|| {
            let installed = signal.install();
            signal.terminate();
            assert_eq!(port2.recv(), Err(RecvError::Terminated));
            assert_eq!(
                port2.recv_timeout(std::time::Duration::from_secs(3600)),
                Err(worker_threads_channel::RecvTimeoutError::Terminated)
            );
            assert_eq!(port2.iter().next(), None);
            assert!(installed.saw_termination());
            assert_eq!(port2.try_recv(), Ok(1));
        });
    });
    assert!(!port2.is_terminated());
    assert_eq!(port2.recv(), Ok(2));
}
