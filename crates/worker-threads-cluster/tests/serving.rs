//! Sharing one port: round-robin spread, every scheduling policy serves, disconnect
//! finishes in-flight work, and rolling restarts lose no request.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{ask, listening, serve_ids, until};
use worker_threads_cluster::{Cluster, Event, SchedulingPolicy};

#[test]
fn round_robin_spreads_a_thousand_connections_evenly_over_three_workers() {
    if worker_threads_cluster::is_worker() {
        serve_ids(&worker_threads_cluster::listen("127.0.0.1:0").unwrap());
        return;
    }
    let cluster = Cluster::<()>::builder()
        .test_harness("round_robin_spreads_a_thousand_connections_evenly_over_three_workers")
        .build();
    let ids: Vec<usize> = (0..3).map(|_| cluster.fork().unwrap().id()).collect();
    let addr = listening(&cluster, 3);
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..1000 {
        *counts.entry(ask(addr).unwrap()).or_insert(0) += 1;
    }
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), ids);
    for (id, n) in counts {
        assert!((333..=334).contains(&n), "worker {id} served {n} of 1000");
    }
}

#[test]
fn every_policy_serves_from_every_worker() {
    if worker_threads_cluster::is_worker() {
        serve_ids(&worker_threads_cluster::listen("127.0.0.1:0").unwrap());
        return;
    }
    for (name, policy) in [
        ("roundrobin", SchedulingPolicy::RoundRobin),
        ("shared", SchedulingPolicy::Shared),
        ("reuseport", SchedulingPolicy::ReusePort),
    ] {
        let cluster = Cluster::<()>::builder()
            .policy(policy)
            .test_harness("every_policy_serves_from_every_worker")
            .build();
        let a = cluster.fork().unwrap();
        let b = cluster.fork().unwrap();
        let addr = listening(&cluster, 2);
        for _ in 0..50 {
            let id = ask(addr).unwrap();
            assert!(id == a.id() || id == b.id(), "{name}: answered by {id}");
        }
        // Graceful stop: both exit 0, as planned.
        cluster.disconnect();
        assert_eq!(a.wait(), (Some(0), None), "{name}");
        assert_eq!(b.wait(), (Some(0), None), "{name}");
    }
}

#[test]
fn disconnect_finishes_the_request_in_flight() {
    if worker_threads_cluster::is_worker() {
        let listener = worker_threads_cluster::listen("127.0.0.1:0").unwrap();
        let primary = worker_threads_cluster::primary::<String>();
        let (stream, _) = listener.accept().unwrap();
        primary.send("accepted".into()).unwrap();
        // The request's line arrives only after the primary has disconnected us.
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        (&stream).write_all(b"finished\n").unwrap();
        // No more connections: once the disconnect arrives, the listener is closed.
        assert_eq!(
            listener.accept().unwrap_err().kind(),
            std::io::ErrorKind::NotConnected
        );
        return;
    }
    let cluster = Cluster::<String>::builder()
        .test_harness("disconnect_finishes_the_request_in_flight")
        .build();
    let worker = cluster.fork().unwrap();
    let addr = listening(&cluster, 1);
    let mut client = TcpStream::connect(addr).unwrap();
    until(&cluster, |e| {
        matches!(e, Event::Message { .. }).then_some(())
    });
    worker.disconnect();
    assert!(worker.exited_after_disconnect());
    // The request completes after the disconnect: in-flight work is finished.
    client.write_all(b"request\n").unwrap();
    let mut answer = String::new();
    BufReader::new(&client).read_line(&mut answer).unwrap();
    assert_eq!(answer, "finished\n");
    let (code, planned) = until(&cluster, |e| match e {
        Event::Exit { code, planned, .. } => Some((code, planned)),
        _ => None,
    });
    assert_eq!((code, planned), (Some(0), true));
    assert!(
        cluster.workers().is_empty(),
        "a planned exit is not restarted"
    );
}

fn rolling_restart_under_load(policy: SchedulingPolicy, name: &str, test: &str) {
    let cluster = Cluster::<()>::builder()
        .policy(policy)
        .test_harness(test)
        .build();
    let old: Vec<usize> = (0..2).map(|_| cluster.fork().unwrap().id()).collect();
    let addr = listening(&cluster, 2);
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut served = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                served.push(ask(addr));
            }
            served
        })
    };
    // Drain events on this thread while the restart runs on another.
    let restarted = std::thread::scope(|s| {
        let restart = s.spawn(|| cluster.rolling_restart());
        restart.join().unwrap()
    });
    restarted.unwrap();
    // A few more requests after the restart, so the new workers are seen serving.
    let after: Vec<usize> = (0..20).map(|_| ask(addr).unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let served = client.join().unwrap();
    let failed: Vec<_> = served.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{name}: {} requests failed: {failed:?}",
        failed.len()
    );
    let new: Vec<usize> = cluster.workers().iter().map(|w| w.id()).collect();
    assert_eq!(new.len(), 2);
    assert!(
        new.iter().all(|id| !old.contains(id)),
        "{name}: {new:?} vs {old:?}"
    );
    assert!(after.iter().all(|id| new.contains(id)), "{name}: {after:?}");
}

#[test]
fn rolling_restart_under_a_steady_client_loses_no_request() {
    if worker_threads_cluster::is_worker() {
        serve_ids(&worker_threads_cluster::listen("127.0.0.1:0").unwrap());
        return;
    }
    let test = "rolling_restart_under_a_steady_client_loses_no_request";
    rolling_restart_under_load(SchedulingPolicy::RoundRobin, "roundrobin", test);
    rolling_restart_under_load(SchedulingPolicy::Shared, "shared", test);
}

#[test]
fn a_worker_that_drops_its_listener_is_handed_no_more_connections() {
    if worker_threads_cluster::is_worker() {
        let listener = worker_threads_cluster::listen("127.0.0.1:0").unwrap();
        if std::env::var("ROLE").as_deref() == Ok("closer") {
            drop(listener);
            // Sent after the drop's notice, on the same socket: the primary reads both
            // in this order.
            let primary = worker_threads_cluster::primary::<String>();
            primary.send("closed".into()).unwrap();
            let _ = primary.recv(); // stay alive until the primary is done
            return;
        }
        serve_ids(&listener);
        return;
    }
    let cluster = Cluster::<String>::builder()
        .test_harness("a_worker_that_drops_its_listener_is_handed_no_more_connections")
        .build();
    let server = cluster.fork().unwrap();
    let closer = cluster.fork_with([("ROLE", "closer")]).unwrap();
    // Both listening, and the closer's notice, in whatever order they come (waiting for
    // the two separately could swallow the notice while looking for a `Listening`).
    let (mut addr, mut listening, mut closed) = (None, 0, false);
    while listening < 2 || !closed {
        match until(&cluster, Some) {
            Event::Listening { address, .. } => {
                addr = Some(address);
                listening += 1;
            }
            Event::Message { .. } => closed = true,
            _ => {}
        }
    }
    let addr = addr.expect("listening");
    for _ in 0..20 {
        assert_eq!(ask(addr).unwrap(), server.id());
    }
    closer.send("done".into()).unwrap();
}
