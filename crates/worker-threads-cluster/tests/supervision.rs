//! Supervision: a crashed worker is reported with its signal and restarted with
//! back-off; planned exits are not restarted.

mod common;

use std::time::Duration;

use common::{ask, listening, serve_ids, until};
use worker_threads_cluster::{Backoff, Cluster, Event, Restart, Signal};

fn fast_restarts() -> Restart {
    Restart::OnCrash(Backoff {
        initial: Duration::from_millis(1),
        ..Backoff::default()
    })
}

#[test]
fn a_worker_killed_with_sigkill_is_reported_and_restarted_and_the_port_serves_on() {
    if worker_threads_cluster::is_worker() {
        serve_ids(&worker_threads_cluster::listen("127.0.0.1:0").unwrap());
        return;
    }
    let cluster = Cluster::<()>::builder()
        .restart(fast_restarts())
        .test_harness(
            "a_worker_killed_with_sigkill_is_reported_and_restarted_and_the_port_serves_on",
        )
        .build();
    let first = cluster.fork().unwrap();
    let addr = listening(&cluster, 1);
    assert_eq!(ask(addr).unwrap(), first.id());

    // Killed from outside (not `ClusterWorker::kill`): a crash.
    let pid = rustix::process::Pid::from_raw(first.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let mut seen = Vec::new();
    let exit = until(&cluster, |e| match e {
        Event::Exit {
            worker,
            code,
            signal,
            planned,
        } => Some((worker, code, signal, planned)),
        e => {
            seen.push(format!("{e:?}"));
            None
        }
    });
    assert_eq!(exit, (first.id(), None, Some(Signal::KILL), false));
    assert!(seen.iter().any(|e| e.starts_with("Disconnect")), "{seen:?}");
    let second = until(&cluster, |e| match e {
        Event::Fork { worker } => Some(worker),
        _ => None,
    });
    assert_ne!(second, first.id());
    listening(&cluster, 1);
    assert_eq!(ask(addr).unwrap(), second);

    // `ClusterWorker::kill` is planned: reported, not restarted.
    let worker = cluster.worker(second).unwrap();
    worker.kill(Signal::TERM).unwrap();
    assert_eq!(worker.wait(), (None, Some(Signal::TERM)));
    let planned = until(&cluster, |e| match e {
        Event::Exit { planned, .. } => Some(planned),
        _ => None,
    });
    assert!(planned);
    assert!(cluster.workers().is_empty());
}

#[test]
fn a_crash_loop_backs_off_exponentially() {
    assert_eq!(
        Backoff::default().delay(0),
        Duration::from_millis(100),
        "the first restart waits `initial`"
    );
    let backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        reset_after: Duration::from_secs(1),
    };
    let delays: Vec<u128> = (0..5).map(|n| backoff.delay(n).as_millis()).collect();
    assert_eq!(delays, [10, 20, 40, 50, 50]);
    assert_eq!(backoff.delay(u32::MAX), Duration::from_millis(50));
}

#[test]
fn a_worker_that_exits_with_an_error_is_restarted_until_it_succeeds() {
    if worker_threads_cluster::is_worker() {
        // Ask the primary which exit code to use: it says 3 twice, then 0.
        let primary = worker_threads_cluster::primary::<u32>();
        primary.send(0).unwrap();
        let failures = primary.recv().unwrap();
        std::process::exit(if failures > 0 { 3 } else { 0 });
    }
    let cluster = Cluster::<u32>::builder()
        .restart(fast_restarts())
        .test_harness("a_worker_that_exits_with_an_error_is_restarted_until_it_succeeds")
        .build();
    cluster.fork().unwrap();
    let mut failures_left = 2u32;
    let mut exits = Vec::new();
    loop {
        match until(&cluster, Some) {
            Event::Message { worker, .. } => {
                let w = cluster.worker(worker).unwrap();
                w.send(failures_left).unwrap();
                failures_left = failures_left.saturating_sub(1);
            }
            Event::Exit { code, .. } => {
                exits.push(code);
                if code == Some(0) {
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(exits, [Some(3), Some(3), Some(0)]);
    assert!(
        cluster.workers().is_empty(),
        "a clean exit is not restarted"
    );
}

#[test]
fn dropping_the_cluster_abandons_a_pending_restart() {
    if worker_threads_cluster::is_worker() {
        std::process::exit(1);
    }
    let cluster = Cluster::<()>::builder()
        .restart(Restart::OnCrash(Backoff {
            initial: Duration::from_secs(3600),
            ..Backoff::default()
        }))
        .test_harness("dropping_the_cluster_abandons_a_pending_restart")
        .build();
    cluster.fork().unwrap();
    let code = until(&cluster, |e| match e {
        Event::Exit { code, .. } => Some(code),
        _ => None,
    });
    assert_eq!(code, Some(1));
    // The restart waits an hour; dropping the cluster must not (this test would hang).
    drop(cluster);
}

#[test]
fn a_worker_that_leaves_a_child_behind_is_seen_exiting_at_once() {
    // The worker starts a long-lived child, tells the primary its pid, and exits. The
    // child must not hold the worker's channel open (it did: the primary saw `Exit` only
    // when the child ended).
    if worker_threads_cluster::is_worker() {
        let primary = worker_threads_cluster::primary::<u32>();
        let child = std::process::Command::new("sleep")
            .arg("3600")
            .spawn()
            .unwrap();
        primary.send(child.id()).unwrap();
        std::process::exit(0);
    }
    let cluster = Cluster::<u32>::builder()
        .test_harness("a_worker_that_leaves_a_child_behind_is_seen_exiting_at_once")
        .build();
    let worker = cluster.fork().unwrap();
    let child = until(&cluster, |e| match e {
        Event::Message { message, .. } => Some(message),
        _ => None,
    });
    let exit = until(&cluster, |e| match e {
        Event::Exit {
            worker: w, code, ..
        } => Some((w, code)),
        _ => None,
    });
    // The child is still alive here: an `Exit` that waited for it would have taken an hour.
    let child = rustix::process::Pid::from_raw(child as i32).unwrap();
    let alive = rustix::process::test_kill_process(child).is_ok();
    let _ = rustix::process::kill_process(child, rustix::process::Signal::KILL);
    assert_eq!(exit, (worker.id(), Some(0)));
    assert!(alive, "the child outlived its worker");
}

#[test]
fn a_worker_at_its_descriptor_limit_crashes_and_is_restarted() {
    // The worker keeps every connection it is handed and lowers its descriptor limit, so
    // a round-robin hand-off soon arrives truncated (the kernel cannot install the
    // descriptor). That must end the worker as a crash (code 1), which the restart
    // policy replaces; it used to exit 0, a planned exit, and the worker was lost.
    if worker_threads_cluster::is_worker() {
        let listener = worker_threads_cluster::listen("127.0.0.1:0").unwrap();
        let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        let mut limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        limit.current = Some(open + 4);
        rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
        let mut kept = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => kept.push(stream),
                Err(_) => continue,
            }
        }
        return;
    }
    let cluster = Cluster::<()>::builder()
        .restart(fast_restarts())
        .test_harness("a_worker_at_its_descriptor_limit_crashes_and_is_restarted")
        .build();
    let first = cluster.fork().unwrap();
    let addr = listening(&cluster, 1);
    // Connect until the worker dies; keep the clients open so its descriptors stay used.
    let mut clients = Vec::new();
    let exit = loop {
        if let Ok(client) = std::net::TcpStream::connect(addr) {
            clients.push(client);
        }
        if let Ok(Event::Exit {
            worker,
            code,
            signal,
            planned,
        }) = cluster.try_recv()
        {
            break (worker, code, signal, planned);
        }
        assert!(clients.len() < 10_000, "the worker never reached its limit");
    };
    assert_eq!(exit, (first.id(), Some(1), None, false));
    // Restarted: a new worker forks and listens.
    let restarted = until(&cluster, |e| match e {
        Event::Fork { worker } => Some(worker),
        _ => None,
    });
    assert_ne!(restarted, first.id());
}
