//! Closing without blocking: dropping a pool never waits (accepted tasks still resolve),
//! `close_async` / `destroy_async` await the threads under an executor, and
//! `destroy_timeout` bounds the wait for a task that never looks at `is_cancelled()`;
//! `close_timeout` finishes the work in time or destroys the pool.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::Gate;
use worker_threads_pool::{MaxQueue, Pool, ShutdownTimedOut, TaskError};

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

/// A handler that says on the receiver when it starts a task, then waits at `gate`
/// without ever looking at `is_cancelled()`.
fn reporting_gated(
    gate: &Gate,
) -> (
    impl Fn(u32) -> u32 + Send + Sync + 'static,
    mpsc::Receiver<()>,
) {
    let (started_tx, started) = mpsc::channel();
    let gate = gate.clone();
    let handler = move |n: u32| {
        started_tx.send(()).unwrap();
        gate.wait();
        n
    };
    (handler, started)
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
    let (handler, started) = reporting_gated(&gate);
    let pool = Pool::builder().max_threads(1).build(handler).unwrap();
    let running = pool.run(1).unwrap();
    started.recv().unwrap();
    assert_eq!(
        pool.destroy_timeout(Duration::from_millis(20)),
        Err(ShutdownTimedOut::Destroy),
        "the thread is still busy"
    );
    // Destroyed all the same: the running task resolves Cancelled once it returns.
    gate.open();
    assert_eq!(running.join(), Err(TaskError::Cancelled));
    assert_eq!(
        pool.destroy_timeout(PATIENCE),
        Ok(()),
        "the thread ended after its task"
    );
    assert_eq!(pool.threads(), 0);
}

#[test]
fn close_timeout_returns_ok_once_every_accepted_task_finished_with_its_value() {
    let pool = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Unbounded)
        .build(|n: u64| n * 3)
        .unwrap();
    let handles: Vec<_> = (0..1_000).map(|n| pool.run(n).unwrap()).collect();
    assert_eq!(pool.close_timeout(PATIENCE), Ok(()));
    assert_eq!(pool.threads(), 0);
    for (n, handle) in (0..).zip(handles) {
        assert_eq!(handle.join(), Ok(n * 3));
    }
    assert_eq!(pool.completed(), 1_000);
}

#[test]
fn close_timeout_destroys_the_pool_when_a_task_outlives_it() {
    let gate = Gate::default();
    let (handler, started) = reporting_gated(&gate);
    let (events_tx, events) = mpsc::channel();
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Unbounded)
        .on_event(move |event| {
            if let worker_threads_pool::PoolEvent::Error(message) = event {
                let _ = events_tx.send(message.clone());
            }
        })
        .build(handler)
        .unwrap();
    let running = pool.run(1).unwrap();
    let queued = pool.run(2).unwrap();
    started.recv().unwrap();
    let timeout = Duration::from_millis(30);
    let start = std::time::Instant::now();
    assert_eq!(pool.close_timeout(timeout), Err(ShutdownTimedOut::Close));
    assert!(
        start.elapsed() >= timeout,
        "gave up after {:?}",
        start.elapsed()
    );
    assert_eq!(
        events.try_recv().as_deref(),
        Ok("close operation timed out")
    );
    // Destroyed before it returned: the queued task resolved Cancelled then (it never
    // runs); the running one resolves Cancelled once it returns, and the thread ends.
    assert!(queued.is_finished(), "the queue was cancelled");
    assert_eq!(queued.join(), Err(TaskError::Cancelled));
    gate.open();
    assert_eq!(running.join(), Err(TaskError::Cancelled));
    assert_eq!(
        pool.destroy_timeout(PATIENCE),
        Ok(()),
        "the thread ended after its task"
    );
    assert!(started.try_recv().is_err(), "the queued task never started");
    assert_eq!(pool.completed() + pool.cancelled(), 2);
}

#[test]
fn close_timeout_racing_the_last_tasks_resolves_each_once_and_ok_means_all_values() {
    // 1,000 rounds of tasks that take about as long as the timeout: each task resolves
    // once, with its exact value or Cancelled; an `Ok` from close_timeout means every one
    // gave its value; nothing hangs.
    for round in 0..1_000_u64 {
        let pool = Pool::builder()
            .max_threads(2)
            .max_queue(MaxQueue::Unbounded)
            .build(|micros: u64| {
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_micros(micros)
                    && !worker_threads_pool::is_cancelled()
                {
                    std::hint::spin_loop();
                }
                micros
            })
            .unwrap();
        let work: Vec<u64> = (0..4).map(|i| (round * 7 + i * 13) % 60).collect();
        let handles: Vec<_> = work.iter().map(|&w| pool.run(w).unwrap()).collect();
        let closed = pool.close_timeout(Duration::from_micros(round % 80));
        let mut values = 0;
        for (&w, handle) in work.iter().zip(handles) {
            match handle.join() {
                Ok(value) => {
                    assert_eq!(value, w, "round {round}");
                    values += 1;
                }
                Err(TaskError::Cancelled) => {
                    assert!(
                        closed.is_err(),
                        "round {round}: cancelled after an Ok close"
                    );
                }
                Err(other) => panic!("round {round}: {other}"),
            }
        }
        assert_eq!(pool.destroy_timeout(PATIENCE), Ok(()), "round {round}");
        assert_eq!(pool.completed(), values, "round {round}");
        assert_eq!(pool.completed() + pool.cancelled(), 4, "round {round}");
    }
}
