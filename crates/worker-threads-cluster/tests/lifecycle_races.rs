//! Lifecycle races, each run in a loop of trials: `disconnect()` right after `Listening`
//! never makes the worker's `listen()` fail, and `Cluster::disconnect()` returns with
//! `workers()` empty.

mod common;

use common::until;
use worker_threads_cluster::{Cluster, Event};

const TRIALS: usize = 20;

#[test]
fn disconnect_right_after_listening_never_fails_the_workers_listen() {
    if worker_threads_cluster::is_worker() {
        // Exit 0 if listen succeeded (its listener ends at the disconnect), 3 if not.
        match worker_threads_cluster::listen("127.0.0.1:0") {
            Ok(listener) => {
                for stream in listener.incoming() {
                    drop(stream);
                }
                std::process::exit(0);
            }
            Err(_) => std::process::exit(3),
        }
    }
    for trial in 0..TRIALS {
        let cluster = Cluster::<()>::builder()
            .test_harness("disconnect_right_after_listening_never_fails_the_workers_listen")
            .build();
        let worker = cluster.fork().unwrap();
        until(&cluster, |e| {
            matches!(e, Event::Listening { .. }).then_some(())
        });
        cluster.disconnect();
        let code = until(&cluster, |e| match e {
            Event::Exit { code, .. } => Some(code),
            _ => None,
        });
        assert_eq!(code, Some(0), "trial {trial}: the worker's listen failed");
        assert!(worker.exited_after_disconnect());
    }
}

#[test]
fn cluster_disconnect_returns_with_no_workers_left() {
    if worker_threads_cluster::is_worker() {
        let listener = worker_threads_cluster::listen("127.0.0.1:0").unwrap();
        for stream in listener.incoming() {
            drop(stream);
        }
        return;
    }
    for trial in 0..TRIALS {
        let cluster = Cluster::<()>::builder()
            .test_harness("cluster_disconnect_returns_with_no_workers_left")
            .build();
        cluster.fork().unwrap();
        cluster.fork().unwrap();
        let mut listening = 0;
        until(&cluster, |e| {
            listening += usize::from(matches!(e, Event::Listening { .. }));
            (listening == 2).then_some(())
        });
        cluster.disconnect();
        assert!(
            cluster.workers().is_empty(),
            "trial {trial}: workers() after disconnect()"
        );
    }
}
