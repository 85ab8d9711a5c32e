//! Process isolation: real worker processes (this test binary started again; the test
//! `process::test_support!` defines is where they take the worker's path).
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use worker_threads_core::Process;
use worker_threads_pool::{MaxQueue, Pool, PoolHandle, RunError, TaskError, TaskPool};

worker_threads_core::process::test_support!();

/// 0: a value; 1: spin forever; 2: abort the process; 3: panic.
fn handler(task: (u8, u64)) -> u64 {
    match task.0 {
        1 =>
        {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        2 => std::process::abort(),
        3 => panic!("task panicked in its process"),
        _ => task.1 * 2,
    }
}

fn pool(threads: usize) -> Pool<(u8, u64), u64> {
    Pool::builder()
        .max_threads(threads)
        .isolation(Process)
        .build(handler)
        .unwrap()
}

#[test]
fn tasks_run_in_worker_processes_and_panics_are_their_own() {
    let pool = pool(2);
    let handles: Vec<_> = (0..100).map(|i| pool.run_wait((0, i)).unwrap()).collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join(), Ok(i as u64 * 2));
    }
    assert_eq!(
        pool.run_wait((3, 0)).unwrap().join(),
        Err(TaskError::Panicked("task panicked in its process".into()))
    );
    assert_eq!(pool.run_wait((0, 21)).unwrap().join(), Ok(42));
    pool.close();
    assert_eq!((pool.completed(), pool.panicked()), (101, 1));
}

#[test]
fn cancelling_a_task_in_loop_kills_its_process_and_the_pool_serves_on() {
    let pool = pool(1);
    let stuck = pool.run((1, 0)).unwrap();
    // Wait until it runs (the queue is empty again), then cancel it.
    pool.wait_drain();
    assert!(stuck.cancel());
    assert_eq!(stuck.join(), Err(TaskError::Cancelled));
    assert_eq!(pool.run_wait((0, 5)).unwrap().join(), Ok(10));
    pool.close();
    assert_eq!((pool.completed(), pool.cancelled()), (1, 1));
}

#[test]
fn a_crashing_task_costs_itself_only_while_a_hundred_siblings_complete() {
    let pool = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Unbounded)
        .isolation(Process)
        .build(handler)
        .unwrap();
    let crash = pool.run((2, 0)).unwrap();
    let siblings: Vec<_> = (0..100).map(|i| pool.run((0, i)).unwrap()).collect();
    assert_eq!(crash.join(), Err(TaskError::Crashed { signal: Some(6) }));
    for (i, handle) in siblings.into_iter().enumerate() {
        assert_eq!(handle.join(), Ok(i as u64 * 2));
    }
    pool.close();
    assert_eq!((pool.completed(), pool.crashed()), (100, 1));
}

#[test]
fn a_deadline_kills_a_running_task_in_process_mode() {
    let pool = pool(1);
    let handle = pool
        .run_with_deadline((1, 0), Instant::now() + Duration::from_millis(50))
        .unwrap();
    assert_eq!(handle.join(), Err(TaskError::TimedOut));
    assert_eq!(pool.run_wait((0, 1)).unwrap().join(), Ok(2));
    pool.close();
    assert_eq!((pool.timed_out(), pool.completed()), (1, 1));
}

#[test]
fn destroy_kills_the_processes_running_tasks() {
    let pool = pool(2);
    let stuck: Vec<_> = (0..2).map(|_| pool.run((1, 0)).unwrap()).collect();
    pool.wait_drain();
    pool.destroy();
    for handle in stuck {
        assert_eq!(handle.join(), Err(TaskError::Cancelled));
    }
    assert_eq!(pool.cancelled(), 2);
}

#[test]
fn isolated_workers_give_exact_statistics_over_many_tasks() {
    let pool = Pool::builder()
        .max_threads(2)
        .isolation(Process)
        .isolate_workers(true)
        .build(handler)
        .unwrap();
    const N: u64 = 10_000;
    let handles: Vec<_> = (0..N).map(|i| pool.run_wait((0, i)).unwrap()).collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..N).map(|i| i * 2).sum());
    pool.close();
    assert_eq!(pool.completed(), N);
    assert_eq!(pool.run_time().count(), N);
}

#[test]
fn map_runs_chunks_in_worker_processes() {
    let pool = pool(2);
    let doubled: Vec<u64> = pool
        .map((0..10_000).map(|i| (0, i)))
        .map(Result::unwrap)
        .collect();
    assert_eq!(doubled, (0..10_000).map(|i| i * 2).collect::<Vec<_>>());
    pool.close();
    assert_eq!(pool.completed(), 10_000);
}

#[test]
fn a_crash_inside_a_map_chunk_fails_that_chunk_and_counts_each_item_crashed() {
    // 100 items fit one chunk (process chunks start at 1,024): item 50 aborts the
    // process, so every item of the chunk resolves Crashed, and is counted so.
    let pool = pool(1);
    let results: Vec<_> = pool
        .map((0..100).map(|i| (if i == 50 { 2 } else { 0 }, i)))
        .collect();
    assert_eq!(results.len(), 100);
    assert!(
        results
            .iter()
            .all(|r| *r == Err(TaskError::Crashed { signal: Some(6) })),
        "{:?}",
        &results[..3]
    );
    // The pool serves on with a new process.
    assert_eq!(pool.run_wait((0, 4)).unwrap().join(), Ok(8));
    pool.close();
    assert_eq!(
        (pool.crashed(), pool.completed(), pool.panicked()),
        (100, 1, 0)
    );
}

#[test]
fn task_timeout_kills_a_map_item_in_loop_and_the_rest_of_the_map_completes() {
    // Item 3 loops forever: only its deadline ends it (its process is killed). Items go
    // one by one under a timeout, so none of the others shares its fate.
    let pool = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(1))
        .task_timeout(Duration::from_millis(300))
        .isolation(Process)
        .build(handler)
        .unwrap();
    let results: Vec<_> = pool
        .map((0..10).map(|i| (if i == 3 { 1 } else { 0 }, i)))
        .collect();
    let expected: Vec<_> = (0..10)
        .map(|i| {
            if i == 3 {
                Err(TaskError::TimedOut)
            } else {
                Ok(i * 2)
            }
        })
        .collect();
    assert_eq!(results, expected);
    pool.close();
    assert_eq!((pool.timed_out(), pool.completed()), (1, 9));
}

/// A task whose `Serialize` fails when it says so: it cannot reach a worker process.
#[derive(Debug)]
struct Fragile(bool);

impl serde::Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 {
            return Err(serde::ser::Error::custom("this task refuses to serialize"));
        }
        serializer.serialize_bool(false)
    }
}

impl<'de> serde::Deserialize<'de> for Fragile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bool::deserialize(deserializer).map(Fragile)
    }
}

fn fragile_handler(task: Fragile) -> u8 {
    u8::from(task.0) + 7
}

#[test]
fn a_task_that_does_not_serialize_fails_alone_as_panicked_and_the_pool_serves_on() {
    let pool = Pool::builder()
        .max_threads(1)
        .isolation(Process)
        .build(fragile_handler)
        .unwrap();
    match pool.run_wait(Fragile(true)).unwrap().join() {
        Err(TaskError::Panicked(why)) => {
            assert!(why.contains("request does not encode"), "{why}")
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(pool.run_wait(Fragile(false)).unwrap().join(), Ok(7));
    pool.close();
    assert_eq!(
        (pool.panicked(), pool.completed(), pool.crashed()),
        (1, 1, 0)
    );
}

/// 0: a value; 1: 4 GiB (refused under a 1 GiB address-space cap); 2: abort; 3: spin.
fn capped(task: (u8, u64)) -> u64 {
    match task.0 {
        1 => vec![1u8; 4 << 30].len() as u64,
        2 => std::process::abort(),
        3 =>
        {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        _ => task.1 * 2,
    }
}

#[test]
fn a_task_over_the_memory_cap_fails_with_the_limit_and_an_abort_stays_a_crash() {
    use worker_threads_core::{Limit, process::ResourceLimits};
    let pool = Pool::builder()
        .max_threads(1)
        .isolation(Process)
        .resource_limits(ResourceLimits::new().max_memory(1 << 30))
        .build(capped)
        .unwrap();
    assert_eq!(
        pool.run_wait((1, 0)).unwrap().join(),
        Err(TaskError::LimitExceeded {
            limit: Limit::Memory
        })
    );
    // An abort under the same cap is not the cap's: no allocation failed.
    assert_eq!(
        pool.run_wait((2, 0)).unwrap().join(),
        Err(TaskError::Crashed { signal: Some(6) })
    );
    // Each cost its task only: a new process serves the next one.
    assert_eq!(pool.run_wait((0, 21)).unwrap().join(), Ok(42));
    assert_eq!((pool.crashed(), pool.completed()), (2, 1));
}

#[test]
fn a_task_over_the_cpu_cap_fails_with_the_limit_and_a_cancel_stays_a_cancel() {
    use worker_threads_core::{Limit, process::ResourceLimits};
    let pool = Pool::builder()
        .max_threads(1)
        .isolation(Process)
        .resource_limits(ResourceLimits::new().max_cpu_time(Duration::from_secs(1)))
        .build(capped)
        .unwrap();
    assert_eq!(
        pool.run_wait((3, 0)).unwrap().join(),
        Err(TaskError::LimitExceeded {
            limit: Limit::CpuTime
        })
    );
    // The cancel of a running task (a kill of ours) under the CPU cap stays a cancel.
    let spinning = pool.run_wait((3, 0)).unwrap();
    pool.wait_drain();
    assert!(spinning.cancel());
    assert_eq!(spinning.join(), Err(TaskError::Cancelled));
    assert_eq!(pool.run_wait((0, 5)).unwrap().join(), Ok(10));
    assert_eq!(
        (pool.crashed(), pool.cancelled(), pool.completed()),
        (1, 1, 1)
    );
}

/// The Node chapter's loop, `map` and `map_unordered`, and a cancel with a reason, written
/// once against `TaskPool`: the exact values on whichever pool it is given.
fn through_any_pool<P: TaskPool<(u8, u64), u64>>(pool: &P) {
    let mut handles = Vec::new();
    for i in 0..200 {
        if pool.queue_size() >= pool.max_queue() {
            pool.wait_drain();
        }
        handles.push(pool.run((0, i)).expect("the pool is open"));
    }
    let looped: Vec<u64> = handles
        .into_iter()
        .map(PoolHandle::join)
        .collect::<Result<_, _>>()
        .expect("every value");
    assert_eq!(looped, (0..200).map(|i| i * 2).collect::<Vec<_>>());
    let mapped: Vec<u64> = pool
        .map((0..300).map(|i| (0, i)))
        .collect::<Result<_, _>>()
        .expect("every value");
    assert_eq!(mapped, (0..300).map(|i| i * 2).collect::<Vec<_>>());
    let mut unordered: Vec<u64> = pool
        .map_unordered((0..300).map(|i| (0, i)))
        .collect::<Result<_, _>>()
        .expect("every value");
    unordered.sort_unstable();
    assert_eq!(unordered, mapped);

    // A task that never ends: cancelled with a reason, it resolves `Cancelled`.
    let spinning = pool.run((1, 0)).expect("the pool is open");
    assert!(spinning.cancel_with("enough"));
    assert_eq!(spinning.cancel_reason().as_deref(), Some("enough"));
    assert_eq!(PoolHandle::join(spinning), Err(TaskError::Cancelled));

    pool.close();
    assert!(pool.is_closed());
    assert!(matches!(pool.run((0, 1)), Err(RunError::Closed((0, 1)))));
}

#[test]
fn the_same_generic_code_runs_on_a_thread_pool_and_a_process_pool() {
    let threads = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(8))
        .build(|task: (u8, u64)| {
            if task.0 == 1 {
                while !worker_threads_pool::is_cancelled() {
                    std::hint::spin_loop();
                }
            }
            task.1 * 2
        })
        .unwrap();
    through_any_pool(&threads);
    let processes = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(8))
        .isolation(Process)
        .build(handler)
        .unwrap();
    through_any_pool(&processes);
}

/// Aborts its process unless the file at `path` exists, which it makes first: the first
/// try crashes, the second gives the file's length.
fn crash_once(path: String) -> u64 {
    if std::fs::metadata(&path).is_err() {
        std::fs::write(&path, b"tried").expect("the marker");
        std::process::abort();
    }
    std::fs::metadata(&path).map_or(0, |meta| meta.len())
}

#[test]
fn a_crashed_try_is_tried_again_in_a_new_process() {
    use worker_threads_pool::Retry;
    let dir = std::env::temp_dir().join(format!("wt-crash-once-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pool = Pool::builder()
        .max_threads(2)
        .isolation(Process)
        .build(crash_once)
        .unwrap()
        .with_retry(Retry::attempts(2));
    let paths: Vec<String> = (0..4)
        .map(|i| dir.join(format!("task-{i}")).to_string_lossy().into_owned())
        .collect();
    let handles: Vec<_> = paths
        .iter()
        .map(|path| pool.run_wait(path.clone()).unwrap())
        .collect();
    for handle in handles {
        assert_eq!(handle.join(), Ok(5), "the second try read the marker");
    }
    pool.close();
    assert_eq!((pool.crashed(), pool.completed()), (4, 4));
    // Without retries the same crash is the task's end.
    let once = Pool::builder()
        .max_threads(1)
        .isolation(Process)
        .build(crash_once)
        .unwrap();
    let fresh = dir.join("fresh").to_string_lossy().into_owned();
    assert_eq!(
        once.run_wait(fresh).unwrap().join(),
        Err(TaskError::Crashed { signal: Some(6) })
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
