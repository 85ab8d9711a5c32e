//! BroadcastChannel: fan-out to every other instance of the same name and type, never to
//! the poster; `close` leaves the group and discards what was queued; a terminated
//! thread cannot post.

use std::thread;

use worker_threads_channel::{
    BroadcastChannel, PostError, RecvError, RecvTimeoutError, TerminationSignal, TryRecvError,
};

#[test]
fn fan_out_reaches_every_other_instance_and_never_the_poster() {
    let members: Vec<BroadcastChannel<String>> =
        (0..3).map(|_| BroadcastChannel::new("fan-out")).collect();
    for (i, member) in members.iter().enumerate() {
        member.post_message(format!("from {i}")).unwrap();
    }
    for (i, member) in members.iter().enumerate() {
        let mut got: Vec<String> = member.try_iter().collect();
        got.sort();
        let expected: Vec<String> = (0..3)
            .filter(|&j| j != i)
            .map(|j| format!("from {j}"))
            .collect();
        assert_eq!(got, expected, "instance {i}");
    }
}

#[test]
fn instances_on_other_threads_receive_in_order() {
    let tx = BroadcastChannel::<u32>::new("threads");
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let rx = BroadcastChannel::<u32>::new("threads");
            thread::spawn(move || rx.iter().take(1_000).collect::<Vec<_>>())
        })
        .collect();
    for i in 0..1_000 {
        tx.post_message(i).unwrap();
    }
    for receiver in receivers {
        assert_eq!(receiver.join().unwrap(), (0..1_000).collect::<Vec<_>>());
    }
}

#[test]
fn names_separate_groups() {
    let a = BroadcastChannel::<u32>::new("group-a");
    let b = BroadcastChannel::<u32>::new("group-b");
    let a2 = BroadcastChannel::<u32>::new("group-a");
    a.post_message(1).unwrap();
    assert_eq!(a2.try_recv(), Ok(1));
    assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(a.name(), "group-a");
}

#[test]
fn a_name_in_use_refuses_another_message_type() {
    let _numbers = BroadcastChannel::<u32>::new("one-type");
    let err = BroadcastChannel::<String>::try_new("one-type").unwrap_err();
    assert_eq!(err.name(), "one-type");
    assert_eq!(err.carries(), "u32");
    assert_eq!(err.requested(), "alloc::string::String");
    assert_eq!(
        err.to_string(),
        "broadcast channel `one-type` carries `u32`, not `alloc::string::String`"
    );
}

#[test]
#[should_panic(expected = "carries `u32`, not `i64`")]
fn new_panics_on_another_message_type() {
    let _numbers = BroadcastChannel::<u32>::new("one-type-panics");
    let _ = BroadcastChannel::<i64>::new("one-type-panics");
}

#[test]
fn close_leaves_the_group_and_discards_what_arrived() {
    // The web platform's tests: nothing is delivered to an instance after its close(),
    // not even what was queued for it before.
    let a = BroadcastChannel::<u32>::new("leave");
    let b = BroadcastChannel::<u32>::new("leave");
    let c = BroadcastChannel::<u32>::new("leave");
    a.post_message(1).unwrap();
    assert_eq!(b.len(), 1);
    b.close();
    a.post_message(2).unwrap();
    assert_eq!(b.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(b.recv(), Err(RecvError::Closed));
    assert_eq!(
        b.recv_timeout(std::time::Duration::from_secs(5)),
        Err(RecvTimeoutError::Closed)
    );
    assert_eq!(block_on(b.recv_async()), Err(RecvError::Closed));
    assert_eq!(b.iter().count(), 0);
    assert_eq!(b.post_message(3), Err(PostError::Closed(3)));
    assert_eq!(c.try_iter().collect::<Vec<_>>(), [1, 2]);
    drop(c);
    // Only `a` is left: posting to nobody is fine.
    a.post_message(4).unwrap();
}

#[test]
fn a_terminated_threads_posts_reach_nobody() {
    // A worker that was terminated but keeps running (threads cannot be killed) must not
    // go on broadcasting: in Node it would have stopped.
    let a = BroadcastChannel::<u32>::new("terminated-poster");
    let b = BroadcastChannel::<u32>::new("terminated-poster");
    let signal = TerminationSignal::new();
    thread::scope(|scope| {
        scope.spawn(|| {
            let _installed = signal.install();
            a.post_message(1).unwrap();
            signal.terminate();
            assert_eq!(a.post_message(2), Err(PostError::Closed(2)));
        });
    });
    assert_eq!(b.try_iter().collect::<Vec<_>>(), [1]);
    // Another thread may still use the same instance.
    a.post_message(3).unwrap();
    assert_eq!(b.recv(), Ok(3));
}

/// Polls a future to completion on this thread (the tests need no runtime).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        thread::yield_now();
    }
}

#[test]
fn a_group_is_new_again_once_every_instance_is_gone() {
    let first = BroadcastChannel::<u32>::new("reborn");
    drop(first);
    let a = BroadcastChannel::<u32>::new("reborn");
    let b = BroadcastChannel::<u32>::new("reborn");
    a.post_message(5).unwrap();
    assert_eq!(b.try_recv(), Ok(5));
}

#[test]
fn on_message_runs_until_close() {
    let tx = BroadcastChannel::<u32>::new("broadcast-listener");
    let rx = BroadcastChannel::<u32>::new("broadcast-listener");
    let echo = BroadcastChannel::<u32>::new("broadcast-echo");
    let listener = rx
        .on_message({
            let back = BroadcastChannel::<u32>::new("broadcast-echo");
            move |msg, _| back.post_message(msg * 10).unwrap()
        })
        .unwrap();
    tx.post_message(4).unwrap();
    assert_eq!(echo.recv(), Ok(40));
    listener.stop().unwrap();
}
