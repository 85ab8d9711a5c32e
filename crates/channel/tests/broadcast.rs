//! BroadcastChannel: fan-out to every other instance of the same name and type, never to
//! the poster; `close` leaves the group.

use std::thread;

use channel::{BroadcastChannel, PostError, RecvError, TryRecvError};

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
fn close_leaves_the_group_after_delivering_what_arrived() {
    let a = BroadcastChannel::<u32>::new("leave");
    let b = BroadcastChannel::<u32>::new("leave");
    let c = BroadcastChannel::<u32>::new("leave");
    a.post_message(1).unwrap();
    b.close();
    a.post_message(2).unwrap();
    assert_eq!(b.recv(), Ok(1));
    assert_eq!(b.recv(), Err(RecvError::Closed));
    assert_eq!(b.post_message(3), Err(PostError::Closed(3)));
    assert_eq!(c.try_iter().collect::<Vec<_>>(), [1, 2]);
    drop(c);
    // Only `a` is left: posting to nobody is fine.
    a.post_message(4).unwrap();
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
