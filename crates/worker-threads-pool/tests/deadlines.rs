//! Deadlines: `run_with_deadline` and `task_timeout` resolve a task `TimedOut` at its
//! deadline, queued or running, exactly once, and the pool serves on.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Gate;
use worker_threads_pool::{MaxQueue, Pool, TaskError};

#[test]
fn a_running_task_past_its_deadline_times_out_and_its_thread_serves_on() {
    let pool = Pool::builder()
        .max_threads(1)
        .build(|spin: bool| {
            while spin && !worker_threads_pool::is_cancelled() {
                std::hint::spin_loop();
            }
            7
        })
        .unwrap();
    let late = pool
        .run_with_deadline(true, Instant::now() + Duration::from_millis(10))
        .unwrap();
    assert_eq!(late.join(), Err(TaskError::TimedOut));
    // The thread saw is_cancelled() and returned: the next task runs.
    assert_eq!(pool.run_wait(false).unwrap().join(), Ok(7));
    assert_eq!((pool.timed_out(), pool.completed()), (1, 1));
}

#[test]
fn a_queued_task_past_its_deadline_leaves_the_queue_without_running() {
    let gate = Gate::default();
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(4))
        .build({
            let (gate, ran) = (gate.clone(), Arc::clone(&ran));
            move |n: u32| {
                ran.fetch_add(1, Ordering::SeqCst);
                gate.wait();
                n
            }
        })
        .unwrap();
    let first = pool.run(0).unwrap();
    common::eventually("the first task runs", || ran.load(Ordering::SeqCst) == 1);
    let queued = pool
        .run_with_deadline(1, Instant::now() + Duration::from_millis(10))
        .unwrap();
    assert_eq!(queued.join(), Err(TaskError::TimedOut));
    assert_eq!(pool.queue_size(), 0, "the timed-out task left the queue");
    gate.open();
    assert_eq!(first.join(), Ok(0));
    pool.close();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the timed-out task never ran"
    );
    assert_eq!((pool.timed_out(), pool.completed()), (1, 1));
}

#[tokio::test(flavor = "current_thread")]
async fn task_timeout_applies_to_run_run_wait_and_run_async() {
    // Tasks that can only end by being cancelled: each resolves TimedOut, however slow
    // the machine is.
    let pool = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(4))
        .task_timeout(Duration::from_millis(10))
        .build(|(): ()| {
            while !worker_threads_pool::is_cancelled() {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    let handles = vec![
        pool.run(()).unwrap(),
        pool.run_wait(()).unwrap(),
        pool.run_async(()).await.unwrap(),
    ];
    for handle in handles {
        assert_eq!(handle.await, Err(TaskError::TimedOut));
    }
    assert_eq!(pool.timed_out(), 3);
}

#[test]
fn a_task_that_finishes_in_time_is_never_counted_timed_out() {
    // A timeout no task here comes near (a bound against hangs, not a threshold).
    let pool = Pool::builder()
        .max_threads(2)
        .task_timeout(Duration::from_secs(60))
        .build(|n: u32| n * 2)
        .unwrap();
    let handles: Vec<_> = (0..100).map(|n| pool.run_wait(n).unwrap()).collect();
    for (n, handle) in (0..).zip(handles) {
        assert_eq!(handle.join(), Ok(n * 2));
    }
    assert_eq!((pool.timed_out(), pool.completed()), (0, 100));
}

#[test]
fn a_deadline_racing_the_end_of_a_task_resolves_it_exactly_once() {
    // Deadlines from 0 to ~50 us against tasks of about that length: each handle
    // resolves once, as a value or TimedOut, and the counters say the same. 2,000 tasks.
    let pool = Pool::builder()
        .max_threads(2)
        .build(|n: u64| {
            let until = Instant::now() + Duration::from_micros(n % 50);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            n
        })
        .unwrap();
    let (mut values, mut timed_out) = (0u64, 0u64);
    for n in 0..2_000u64 {
        let deadline = Instant::now() + Duration::from_micros((n * 7) % 60);
        let handle = loop {
            match pool.run_with_deadline(n, deadline) {
                Ok(handle) => break handle,
                Err(err) => {
                    assert!(err.is_full());
                    pool.wait_drain();
                }
            }
        };
        match handle.join() {
            Ok(value) => {
                assert_eq!(value, n);
                values += 1;
            }
            Err(TaskError::TimedOut) => timed_out += 1,
            Err(other) => panic!("task {n}: {other:?}"),
        }
    }
    assert_eq!(values + timed_out, 2_000);
    assert_eq!((pool.completed(), pool.timed_out()), (values, timed_out));
}

#[test]
fn task_timeout_holds_for_each_map_item_and_only_the_late_ones_time_out() {
    // Two items wait (sleeping, leaving the CPU free) until they are cancelled, so they
    // can only end by timing out; the others return at once. Three threads: a free one
    // always serves the quick items, so none of them waits out its own deadline behind a
    // late one. With chunks, a late item would take its chunk-mates down with it.
    let pool = Pool::builder()
        .max_threads(3)
        .max_queue(MaxQueue::Bounded(1))
        .task_timeout(Duration::from_millis(300))
        .build(|(n, late): (u32, bool)| {
            while late && !worker_threads_pool::is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            n * 3
        })
        .unwrap();
    let items: Vec<(u32, bool)> = (0..20).map(|n| (n, n % 10 == 3)).collect();
    let expected: Vec<_> = items
        .iter()
        .map(|&(n, late)| {
            if late {
                Err(TaskError::TimedOut)
            } else {
                Ok(n * 3)
            }
        })
        .collect();
    let results: Vec<_> = pool.map(items.clone()).collect();
    assert_eq!(results, expected);
    let mut unordered: Vec<_> = pool.map_unordered(items).collect();
    let mut expected_unordered = expected;
    unordered.sort_by_key(|r| format!("{r:?}"));
    expected_unordered.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(unordered, expected_unordered);
    pool.close();
    assert_eq!((pool.timed_out(), pool.completed()), (4, 36));
}
