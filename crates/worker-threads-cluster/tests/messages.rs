//! Typed messages between the primary and a worker, both ways, and bad frames.

mod common;

use common::{ask, listening, serve_ids, until};
use serde::{Deserialize, Serialize};
use worker_threads_cluster::{Cluster, Event};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Text(String),
    Blob(Vec<u8>),
    Done,
}

#[test]
fn messages_cross_both_ways_including_one_mebibyte() {
    if worker_threads_cluster::is_worker() {
        // Echo every message back, then say Done. The first one is waited for with the
        // longest timeout there is (it once overflowed an `Instant` and panicked).
        let primary = worker_threads_cluster::primary::<Msg>();
        let first = primary.recv_timeout(std::time::Duration::MAX).unwrap();
        for msg in std::iter::once(first).chain(primary.iter()) {
            let last = msg == Msg::Done;
            primary.send(msg).unwrap();
            if last {
                break;
            }
        }
        return;
    }
    let cluster = Cluster::<Msg>::builder()
        .test_harness("messages_cross_both_ways_including_one_mebibyte")
        .build();
    let worker = cluster.fork().unwrap();
    let blob: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let sent = vec![
        Msg::Text("hello from the primary".into()),
        Msg::Blob(blob),
        Msg::Text(String::new()),
        Msg::Done,
    ];
    for msg in &sent {
        worker.send(msg.clone()).unwrap();
    }
    let mut got = Vec::new();
    let mut order = Vec::new();
    let (code, planned) = until(&cluster, |e| {
        order.push(std::mem::discriminant(&e));
        match e {
            Event::Message { worker: w, message } => {
                assert_eq!(w, worker.id());
                got.push(message);
                None
            }
            Event::Exit { code, planned, .. } => Some((code, planned)),
            _ => None,
        }
    });
    assert_eq!(got, sent);
    assert_eq!((code, planned), (Some(0), false));
    // Fork, Online, 4 messages, Disconnect, Exit.
    assert_eq!(order.len(), 8, "{order:?}");
    assert!(worker.is_dead());
}

#[test]
fn a_worker_that_sends_garbage_is_cut_off_and_the_others_serve_on() {
    if worker_threads_cluster::is_worker() {
        let listener = worker_threads_cluster::listen("127.0.0.1:0").unwrap();
        match std::env::var("ROLE").as_deref() {
            // Not a `Msg`: the primary cannot decode it.
            Ok("garbage") => worker_threads_cluster::primary::<(u8, u8)>()
                .send((7, 200))
                .unwrap(),
            // Over the primary's frame cap of 1 KiB.
            Ok("oversize") => worker_threads_cluster::primary::<Msg>()
                .send(Msg::Blob(vec![1; 4096]))
                .unwrap(),
            _ => {}
        }
        serve_ids(&listener);
        return;
    }
    let cluster = Cluster::<Msg>::builder()
        .max_frame(1024)
        .test_harness("a_worker_that_sends_garbage_is_cut_off_and_the_others_serve_on")
        .build();
    let good = cluster.fork().unwrap();
    let addr = listening(&cluster, 1);
    for role in ["garbage", "oversize"] {
        let bad = cluster.fork_with([("ROLE", role)]).unwrap();
        let error = until(&cluster, |e| match e {
            Event::Error { worker, error } if worker == bad.id() => Some(error),
            _ => None,
        });
        match role {
            "garbage" => assert!(
                matches!(error, worker_threads_cluster::IpcError::Decode(_)),
                "{error}"
            ),
            _ => assert!(
                matches!(
                    error,
                    worker_threads_cluster::IpcError::TooLarge { max: 1024, .. }
                ),
                "{error}"
            ),
        }
        let signal = until(&cluster, |e| match e {
            Event::Exit { worker, signal, .. } if worker == bad.id() => Some(signal),
            _ => None,
        });
        assert_eq!(signal, Some(worker_threads_cluster::Signal::KILL));
        // The good worker still serves every request (the bad one is out of the rotation).
        for _ in 0..10 {
            assert_eq!(ask(addr).unwrap(), good.id());
        }
    }
}

#[test]
fn a_worker_that_stops_mid_frame_is_cut_off_after_the_frame_timeout() {
    if worker_threads_cluster::is_worker() {
        // The first record of a two-record frame, written straight to the channel, and
        // then nothing: the primary's reader must not wait for the rest forever.
        let marker = std::env::var("WORKER_THREADS_CLUSTER_WORKER").unwrap();
        let fd: i32 = marker.split(',').next().unwrap().parse().unwrap(); // fd,parent,id
        // SAFETY: the marker names this process's channel descriptor, which the cluster
        // runtime (started by `is_worker` above) owns and keeps open for the process's life.
        let channel = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let len = 100_000u32; // tag + body, more than one 64 KiB record
        let mut record = len.to_le_bytes().to_vec();
        record.push(1); // a message tag
        record.extend(std::iter::repeat_n(0u8, 65_536 - record.len()));
        rustix::net::send(channel, &record, rustix::net::SendFlags::NOSIGNAL).unwrap();
        loop {
            std::thread::park();
        }
    }
    let cluster = Cluster::<Msg>::builder()
        .frame_timeout(std::time::Duration::from_millis(100))
        .test_harness("a_worker_that_stops_mid_frame_is_cut_off_after_the_frame_timeout")
        .build();
    let stalled = cluster.fork().unwrap();
    let error = until(&cluster, |e| match e {
        Event::Error { worker, error } if worker == stalled.id() => Some(error),
        _ => None,
    });
    assert!(
        matches!(error, worker_threads_cluster::IpcError::Stalled),
        "{error}"
    );
    let signal = until(&cluster, |e| match e {
        Event::Exit { worker, signal, .. } if worker == stalled.id() => Some(signal),
        _ => None,
    });
    assert_eq!(signal, Some(worker_threads_cluster::Signal::KILL));
}
