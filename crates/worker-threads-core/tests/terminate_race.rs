//! `terminate` against a worker that ends by itself, and the bounded `join_timeout`.

use std::sync::mpsc;
use std::time::Duration;

use worker_threads_core::{JoinTimeoutError, Worker, WorkerOptions};

/// Bounds a wait that must end: never reached unless something is broken.
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn a_terminate_the_entry_never_saw_leaves_its_own_exit_code() {
    // The entry waits on a std channel (which termination does not touch) and returns 7:
    // it ends by itself, after `terminate`, without noticing it.
    let (go, wait) = mpsc::channel::<()>();
    let worker = Worker::<()>::spawn(WorkerOptions::new(), move |_ctx| {
        wait.recv().unwrap();
        7
    })
    .unwrap();
    worker.terminate();
    go.send(()).unwrap();
    assert_eq!(worker.join().unwrap(), 7);
}

#[test]
fn terminate_racing_a_natural_end_reports_code_1_exactly_when_the_entry_saw_it() {
    let (mut saw, mut natural) = (0, 0);
    for trial in 0..2_000 {
        let (tx, rx) = mpsc::channel();
        let worker = Worker::<()>::spawn(WorkerOptions::new(), move |ctx| {
            tx.send(ctx.is_terminating()).unwrap();
            5
        })
        .unwrap();
        worker.terminate();
        let seen = rx.recv().unwrap();
        let code = worker.join().unwrap();
        assert_eq!(code, if seen { 1 } else { 5 }, "trial {trial}");
        if seen { saw += 1 } else { natural += 1 }
    }
    assert_eq!(saw + natural, 2_000);
}

#[test]
fn join_timeout_gives_up_on_a_running_worker_and_keeps_the_handle() {
    let (go, wait) = mpsc::channel::<()>();
    let mut worker = Worker::<()>::spawn(WorkerOptions::new(), move |_ctx| {
        wait.recv().unwrap();
        3
    })
    .unwrap();
    // It cannot end before `go`: the bounded wait must come back empty-handed.
    assert!(matches!(
        worker.join_timeout(Duration::from_millis(5)),
        Err(JoinTimeoutError::Timeout)
    ));
    assert!(matches!(
        worker.join_deadline(std::time::Instant::now()),
        Err(JoinTimeoutError::Timeout)
    ));
    go.send(()).unwrap();
    assert_eq!(worker.join_timeout(PATIENCE).unwrap(), 3);
    // Asked again, the outcome is kept.
    assert_eq!(worker.join_timeout(Duration::ZERO).unwrap(), 3);
}

#[test]
fn join_timeout_reports_the_worker_error() {
    let mut worker = Worker::<()>::spawn(WorkerOptions::new(), |_ctx| -> () {
        panic!("boom");
    })
    .unwrap();
    match worker.join_timeout(PATIENCE) {
        Err(JoinTimeoutError::Worker(error)) => assert_eq!(error.panic_message(), Some("boom")),
        other => panic!("expected the worker's panic, got {other:?}"),
    }
}
