//! The bounded queue: the exact `Auto` bound, `QueueFull` with the task handed back,
//! drain, and the Node chapter's loop.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Gate, eventually};
use worker_threads_pool::{MaxQueue, Pool, RunError, TaskError};

#[test]
fn auto_is_max_threads_squared_exactly() {
    let gate = Gate::default();
    let started = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder()
        .max_threads(3)
        .build({
            let (gate, started) = (gate.clone(), Arc::clone(&started));
            move |n: u32| {
                started.fetch_add(1, Ordering::SeqCst);
                gate.wait();
                n
            }
        })
        .unwrap();
    assert_eq!(pool.max_queue(), 9);
    // Three tasks occupy the three threads...
    let mut handles: Vec<_> = (0..3).map(|n| pool.run(n).unwrap()).collect();
    eventually("3 tasks running", || started.load(Ordering::SeqCst) == 3);
    // ...then exactly nine fit in the queue.
    for n in 3..12 {
        assert!(!pool.needs_drain());
        handles.push(pool.run(n).unwrap());
    }
    assert_eq!(pool.queue_size(), 9);
    assert!(pool.needs_drain());
    match pool.run(12) {
        Err(RunError::QueueFull(task)) => assert_eq!(task, 12),
        other => panic!("expected QueueFull, got {other:?}"),
    }
    gate.open();
    let values: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(values, (0..12).collect::<Vec<_>>());
}

#[test]
fn bounded_and_unbounded_queues() {
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(5))
        .build(|n: u8| n)
        .unwrap();
    assert_eq!(pool.max_queue(), 5);
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Unbounded)
        .build(|n: u8| n)
        .unwrap();
    assert_eq!(pool.max_queue(), usize::MAX);
    let err = Pool::builder()
        .min_threads(3)
        .max_threads(2)
        .build(|n: u8| n)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "min_threads (3) is more than max_threads (2)"
    );
}

#[test]
fn a_pool_without_a_queue_accepts_only_what_a_thread_can_take_now() {
    // piscina's `maxQueue: 0`: a task is accepted only if a thread (running, or one the
    // pool may still start) can take it at once; otherwise `QueueFull` hands it back.
    let gate = Gate::default();
    let started = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(0))
        .build({
            let (gate, started) = (gate.clone(), Arc::clone(&started));
            move |n: u32| {
                started.fetch_add(1, Ordering::SeqCst);
                gate.wait();
                n
            }
        })
        .unwrap();
    assert_eq!(pool.max_queue(), 0);
    let first = pool.run(1).unwrap();
    let second = pool.run(2).unwrap();
    eventually("both running", || started.load(Ordering::SeqCst) == 2);
    assert_eq!(pool.queue_size(), 0);
    match pool.run(3) {
        Err(RunError::QueueFull(3)) => {}
        other => panic!("expected QueueFull(3), got {other:?}"),
    }
    gate.open();
    assert_eq!(first.join(), Ok(1));
    assert_eq!(second.join(), Ok(2));
    // A thread is free again: the next task is accepted, and runs.
    eventually("a thread is idle", || {
        pool.run(4).map(|h| h.join()).is_ok_and(|r| r == Ok(4))
    });
    assert_eq!(pool.completed(), 3);
}

#[test]
fn wait_drain_returns_when_the_queue_empties() {
    let gate = Gate::default();
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(4))
        .build({
            let gate = gate.clone();
            move |n: u32| {
                gate.wait();
                n
            }
        })
        .unwrap();
    // Empty: returns at once.
    pool.wait_drain();
    let handles: Vec<_> = (0..5).map(|n| pool.run_wait(n).unwrap()).collect();
    let opener = std::thread::spawn({
        let gate = gate.clone();
        move || gate.open()
    });
    pool.wait_drain();
    assert_eq!(pool.queue_size(), 0);
    opener.join().unwrap();
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join().unwrap(), n as u32);
    }
}

#[test]
fn the_chapters_loop_completes_and_stays_bounded() {
    const N: u64 = 100_000;
    let pool = Pool::builder()
        .max_queue(MaxQueue::Auto)
        .build(|i: u64| (i as f64).sqrt())
        .unwrap();
    let mut handles = std::collections::VecDeque::new();
    let mut largest = 0;
    for i in 0..N {
        if pool.queue_size() == pool.max_queue() {
            pool.wait_drain();
        }
        handles.push_back(pool.run(i).unwrap());
        largest = largest.max(pool.queue_size());
        while handles.front().is_some_and(|h| h.is_finished()) {
            assert!(handles.pop_front().unwrap().join().unwrap().is_finite());
        }
    }
    for handle in handles {
        assert!(handle.join().unwrap().is_finite());
    }
    assert!(largest <= pool.max_queue());
    assert_eq!(pool.completed(), N);
}

#[test]
fn map_keeps_order_and_map_unordered_loses_nothing() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(|n: u64| n * 2)
        .unwrap();
    let doubled: Vec<u64> = pool.map(0..10_000).map(Result::unwrap).collect();
    assert_eq!(doubled, (0..10_000).map(|n| n * 2).collect::<Vec<_>>());
    let mut unordered: Vec<u64> = pool.map_unordered(0..10_000).map(Result::unwrap).collect();
    unordered.sort_unstable();
    assert_eq!(unordered, doubled);
}

#[test]
fn a_map_yields_every_item_in_order_and_counts_each_one() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(|n: u64| n + 1)
        .unwrap();
    let mut expected = 1;
    for result in pool.map(0..100_000) {
        assert_eq!(result, Ok(expected));
        expected += 1;
    }
    assert_eq!(expected, 100_001);
    // Items travel in chunks, but statistics are per item.
    assert_eq!(pool.completed(), 100_000);
    assert_eq!(pool.run_time().count(), 100_000);
    assert_eq!(pool.wait_time().count(), 100_000);
}

#[test]
fn a_panicking_item_of_a_map_fails_alone_and_its_thread_is_replaced() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(|n: u64| {
            assert!(n % 100 != 7, "item {n}");
            n
        })
        .unwrap();
    let results: Vec<_> = pool.map(0..10_000).collect();
    for (n, result) in (0u64..).zip(&results) {
        if n % 100 == 7 {
            assert_eq!(result, &Err(TaskError::Panicked(format!("item {n}"))));
        } else {
            assert_eq!(result, &Ok(n));
        }
    }
    assert_eq!(results.len(), 10_000);
    // Each item is counted once: 100 panics, the other 9,900 completed.
    assert_eq!(pool.panicked(), 100);
    assert_eq!(pool.completed(), 9_900);
    eventually("capacity back to 2 threads", || pool.threads() == 2);
}
