//! Bounded ports: back-pressure, `Full`, timeouts, and `Empty` versus `Closed`.

use std::thread;
use std::time::{Duration, Instant};

use worker_threads_channel::{
    MessageChannel, PostTimeoutError, RecvTimeoutError, TryPostError, TryRecvError,
};

#[test]
fn a_full_port_refuses_try_post_and_gives_the_message_back() {
    let MessageChannel { port1, port2 } = MessageChannel::<String>::bounded(2);
    port1.try_post_message("1".into()).unwrap();
    port1.try_post_message("2".into()).unwrap();
    let err = port1.try_post_message("3".into()).unwrap_err();
    assert!(err.is_full());
    assert_eq!(err, TryPostError::Full("3".to_string()));
    assert_eq!(port1.capacity(), Some(2));
    assert_eq!(port2.len(), 2);
    assert_eq!(port2.recv().unwrap(), "1");
    port1.try_post_message("3".into()).unwrap();
}

#[test]
fn a_blocking_post_waits_for_room() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::bounded(1);
    port1.post_message(0).unwrap();
    let producer = thread::spawn(move || {
        // Each of these waits until the consumer has taken the one before.
        for i in 1..100 {
            port1.post_message(i).unwrap();
        }
    });
    let all: Vec<u32> = port2.iter().collect();
    producer.join().unwrap();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
}

#[test]
fn post_timeout_times_out_on_a_full_port() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::bounded(1);
    port1.post_message(1).unwrap();
    assert_eq!(
        port1.post_timeout(2, Duration::from_millis(5)),
        Err(PostTimeoutError::Timeout(2))
    );
    assert_eq!(
        port1.post_deadline(3, Instant::now()),
        Err(PostTimeoutError::Timeout(3))
    );
    assert_eq!(port2.recv(), Ok(1));
    assert_eq!(port2.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn try_recv_tells_empty_from_closed() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
    assert_eq!(port2.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        worker_threads_channel::receive_message_on_port(&port2),
        None
    );
    port1.post_message(1).unwrap();
    drop(port1);
    assert_eq!(
        worker_threads_channel::receive_message_on_port(&port2),
        Some(1)
    );
    assert_eq!(port2.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn recv_timeout_and_deadline_time_out_then_still_receive() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
    assert_eq!(
        port2.recv_timeout(Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(
        port2.recv_deadline(Instant::now()),
        Err(RecvTimeoutError::Timeout)
    );
    port1.post_message(9).unwrap();
    assert_eq!(port2.recv_timeout(Duration::from_secs(60)), Ok(9));
    drop(port1);
    assert_eq!(
        port2.recv_timeout(Duration::from_secs(60)),
        Err(RecvTimeoutError::Closed)
    );
}

#[test]
fn a_huge_timeout_means_wait_forever_not_overflow() {
    let MessageChannel { port1, port2 } = MessageChannel::<u32>::new();
    port1.post_message(1).unwrap();
    assert_eq!(port2.recv_timeout(Duration::MAX), Ok(1));
    assert_eq!(port1.post_timeout(2, Duration::MAX), Ok(()));
}
