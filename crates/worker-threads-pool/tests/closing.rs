//! Closing without blocking: dropping a pool never waits (accepted tasks still resolve),
//! `close_async` / `destroy_async` await the threads under an executor, and
//! `destroy_timeout` bounds the wait for a task that never looks at `is_cancelled()`.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::Gate;
use worker_threads_pool::{MaxQueue, Pool, TaskError};

/// A bound against hangs (the test fails instead of hanging), not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(60);

fn gated_pool(gate: &Gate) -> Pool<u32, u32> {
    let gate = gate.clone();
    Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Unbounded)
        .build(move |n: u32| {
            gate.wait();
            n
        })
        .unwrap()
}

#[test]
fn dropping_a_pool_does_not_wait_and_its_tasks_still_resolve() {
    let gate = Gate::default();
    let pool = gated_pool(&gate);
    let handles: Vec<_> = (0..10).map(|n| pool.run(n).unwrap()).collect();
    // Drop on another thread: it must return while every task is still blocked.
    let (dropped_tx, dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(pool);
        dropped_tx.send(()).unwrap();
    });
    dropped
        .recv_timeout(PATIENCE)
        .expect("drop returned while the tasks were blocked");
    gate.open();
    for (n, handle) in (0..).zip(handles) {
        assert_eq!(handle.join(), Ok(n));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn close_async_awaits_the_queue_without_blocking_the_executor() {
    let gate = Gate::default();
    let pool = gated_pool(&gate);
    let handles: Vec<_> = (0..10).map(|n| pool.run(n).unwrap()).collect();
    // The executor's only thread opens the gate from another task while close awaits.
    let opener = {
        let gate = gate.clone();
        tokio::spawn(async move { gate.open() })
    };
    pool.close_async().await;
    opener.await.unwrap();
    assert_eq!(pool.threads(), 0);
    assert_eq!(pool.completed(), 10);
    for (n, handle) in (0..).zip(handles) {
        assert_eq!(handle.await, Ok(n));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn destroy_async_cancels_and_awaits() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(|(): ()| {
            while !worker_threads_pool::is_cancelled() {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    let running: Vec<_> = (0..2).map(|_| pool.run(()).unwrap()).collect();
    pool.destroy_async().await;
    assert_eq!(pool.threads(), 0);
    for handle in running {
        assert_eq!(handle.await, Err(TaskError::Cancelled));
    }
}

#[test]
fn destroy_timeout_gives_up_on_a_task_that_never_looks() {
    let gate = Gate::default();
    let (started_tx, started) = mpsc::channel();
    let pool = Pool::builder()
        .max_threads(1)
        .build({
            let gate = gate.clone();
            move |n: u32| {
                started_tx.send(()).unwrap();
                gate.wait(); // never looks at is_cancelled()
                n
            }
        })
        .unwrap();
    let running = pool.run(1).unwrap();
    started.recv().unwrap();
    assert!(
        !pool.destroy_timeout(Duration::from_millis(20)),
        "the thread is still busy"
    );
    // Destroyed all the same: the running task resolves Cancelled once it returns.
    gate.open();
    assert_eq!(running.join(), Err(TaskError::Cancelled));
    assert!(
        pool.destroy_timeout(PATIENCE),
        "the thread ended after its task"
    );
    assert_eq!(pool.threads(), 0);
}
