//! Many workers, nested workers, and siblings that talk through a transferred port.

use worker_threads_channel::{MessageChannel, MessagePort, TryPostError};
use worker_threads_core::{Worker, WorkerOptions, is_main_thread, thread_id, worker_data};

#[test]
fn a_thousand_workers_spawn_answer_and_join() {
    let workers: Vec<Worker<u32>> = (0..1_000)
        .map(|_| {
            Worker::spawn(WorkerOptions::new().stack_size(64 * 1024), |ctx| {
                let port = ctx.parent_port();
                let n = port.recv().unwrap();
                port.post_message(n + 1).unwrap();
            })
            .unwrap()
        })
        .collect();
    for (i, worker) in workers.iter().enumerate() {
        worker.post_message(i as u32).unwrap();
    }
    for (i, worker) in workers.into_iter().enumerate() {
        assert_eq!(worker.recv(), Ok(i as u32 + 1));
        assert_eq!(worker.join().unwrap(), 0);
    }
}

#[test]
fn a_worker_spawns_a_worker() {
    let outer: Worker<(), String> = Worker::spawn(WorkerOptions::new(), |ctx| {
        let outer_id = thread_id();
        let inner: Worker<(), u64> = Worker::spawn(WorkerOptions::new(), |inner_ctx| {
            assert!(!is_main_thread());
            inner_ctx.parent_port().post_message(thread_id()).unwrap();
        })
        .unwrap();
        let inner_id = inner.recv().unwrap();
        let code = inner.join().unwrap();
        ctx.parent_port()
            .post_message(format!("{outer_id} {inner_id} {code}"))
            .unwrap();
    })
    .unwrap();
    let report = outer.recv().unwrap();
    let ids: Vec<u64> = report.split(' ').map(|s| s.parse().unwrap()).collect();
    assert_eq!(ids[0], outer.thread_id());
    assert!(
        ids[1] > ids[0],
        "the inner worker was spawned later: {report}"
    );
    assert_eq!(ids[2], 0);
    assert_eq!(outer.join().unwrap(), 0);
}

#[test]
fn siblings_talk_directly_through_a_transferred_port() {
    let MessageChannel { port1, port2 } = MessageChannel::<u64>::new();
    // Each sibling gets one end in its worker data; main never relays.
    let pinger: Worker<(), u64> = Worker::spawn(WorkerOptions::new().worker_data(port1), |ctx| {
        let sibling = worker_data::<MessagePort<u64>>();
        let mut n = 0;
        for _ in 0..1_000 {
            sibling.post_message(n).unwrap();
            n = sibling.recv().unwrap();
        }
        ctx.parent_port().post_message(n).unwrap();
    })
    .unwrap();
    let ponger: Worker<()> = Worker::spawn(WorkerOptions::new().worker_data(port2), |ctx| {
        for n in ctx.worker_data().iter() {
            if ctx.worker_data().post_message(n + 1).is_err() {
                break;
            }
        }
    })
    .unwrap();
    assert_eq!(pinger.recv(), Ok(1_000));
    assert_eq!(pinger.join().unwrap(), 0);
    // The pinger's end closed when it ended: the ponger's loop ends too.
    assert_eq!(ponger.join().unwrap(), 0);
}

#[test]
fn a_bounded_parent_port_applies_back_pressure() {
    let worker: Worker<u32> = Worker::spawn(WorkerOptions::new().port_capacity(2), |ctx| {
        // Wait for the go, then drain.
        let port = ctx.parent_port();
        let total: u32 = port.iter().sum();
        total as i32
    })
    .unwrap();
    assert_eq!(worker.port().capacity(), Some(2));
    let mut posted = 0;
    // The worker may take some as we go; post until the port is full once.
    loop {
        match worker.try_post_message(1) {
            Ok(()) => posted += 1,
            Err(TryPostError::Full(msg)) => {
                assert_eq!(msg, 1);
                break;
            }
            Err(TryPostError::Closed(_)) => unreachable!("the worker is receiving"),
        }
    }
    worker.port().close();
    assert_eq!(worker.join().unwrap(), posted);
}

#[test]
fn a_refused_thread_is_a_spawn_error() {
    // No machine has a petabyte of address space for one stack.
    let result: Result<Worker<()>, _> =
        Worker::spawn(WorkerOptions::new().stack_size(1 << 50), |_| ());
    let err = result.unwrap_err();
    assert_eq!(err.to_string(), "failed to start a worker");
    assert!(std::error::Error::source(&err).is_some());
}
