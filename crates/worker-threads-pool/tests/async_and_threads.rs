//! Submitting from many threads at once, and async use under tokio.

use std::sync::Arc;

use worker_threads_pool::{MaxQueue, Pool, TaskError};

#[test]
fn run_from_many_threads_at_once() {
    let pool = Arc::new(
        Pool::builder()
            .max_threads(2)
            .build(|n: u64| n * 3)
            .unwrap(),
    );
    let submitters: Vec<_> = (0..4u64)
        .map(|t| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let handles: Vec<_> = (0..10_000)
                    .map(|i| pool.run_wait(t * 1_000_000 + i).unwrap())
                    .collect();
                handles
                    .into_iter()
                    .enumerate()
                    .all(|(i, h)| h.join() == Ok((t * 1_000_000 + i as u64) * 3))
            })
        })
        .collect();
    for submitter in submitters {
        assert!(submitter.join().unwrap());
    }
    assert_eq!(pool.completed(), 40_000);
    let run_time = pool.run_time();
    assert_eq!(run_time.count(), 40_000);
    assert!(run_time.percentile(50.0) <= run_time.max());
    assert_eq!(pool.wait_time().count(), 40_000);
    let utilization = pool.utilization();
    assert!((0.0..=1.0).contains(&utilization), "{utilization}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_submission_and_awaited_handles() {
    let pool = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(2))
        .build(|n: u32| n + 1)
        .unwrap();
    let mut handles = Vec::new();
    for n in 0..1_000 {
        // Awaits room instead of failing with QueueFull.
        handles.push(pool.run_async(n).await.unwrap());
    }
    pool.drained().await;
    assert_eq!(pool.queue_size(), 0);
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await, Ok(n as u32 + 1));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_awaited_cancelled_task_says_so() {
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Unbounded)
        .build(|n: u32| n)
        .unwrap();
    let handles: Vec<_> = (0..100).map(|n| pool.run(n).unwrap()).collect();
    let cancelled: Vec<bool> = handles.iter().map(|h| h.cancel()).collect();
    for (handle, was_cancelled) in handles.into_iter().zip(cancelled) {
        let result = handle.await;
        if was_cancelled {
            assert_eq!(result, Err(TaskError::Cancelled));
        } else {
            assert!(result.is_ok());
        }
    }
}
