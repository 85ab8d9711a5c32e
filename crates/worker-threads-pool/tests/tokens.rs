//! Cancellation tokens given at submission (piscina's `signal`): a token cancels every
//! task it was given to, queued or running, exactly once; a token already cancelled means
//! the task never runs; cancelling races the end of a task without double counting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use worker_threads_pool::{CancelToken, MaxQueue, Pool, TaskError};

#[test]
fn a_cancelled_token_stops_queued_and_running_tasks_and_later_ones_never_run() {
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(8))
        .build({
            let ran = Arc::clone(&ran);
            move |(): ()| {
                ran.fetch_add(1, Ordering::SeqCst);
                while !worker_threads_pool::is_cancelled() {
                    std::hint::spin_loop();
                }
            }
        })
        .unwrap();
    let token = CancelToken::new();
    let handles: Vec<_> = (0..4)
        .map(|_| pool.run_with_token((), &token).unwrap())
        .collect();
    while ran.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    token.cancel();
    for handle in handles {
        assert_eq!(handle.join(), Err(TaskError::Cancelled));
    }
    let late = pool.run_with_token((), &token).unwrap();
    assert_eq!(late.join(), Err(TaskError::Cancelled));
    pool.close();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "only the first task ever ran"
    );
    assert_eq!((pool.cancelled(), pool.completed()), (5, 0));
}

#[test]
fn a_token_racing_the_end_of_tasks_counts_each_once() {
    let pool = Pool::builder().max_threads(2).build(|n: u64| n).unwrap();
    let (mut values, mut cancels) = (0u64, 0u64);
    for round in 0..500u64 {
        let token = CancelToken::new();
        let handles: Vec<_> = (0..4)
            .map(|i| pool.run_with_token(round * 4 + i, &token))
            .filter_map(Result::ok)
            .collect();
        let accepted = handles.len() as u64;
        std::thread::scope(|scope| {
            scope.spawn(|| token.cancel());
        });
        let mut seen = 0;
        for handle in handles {
            match handle.join() {
                Ok(_) => values += 1,
                Err(TaskError::Cancelled) => cancels += 1,
                Err(other) => panic!("{other:?}"),
            }
            seen += 1;
        }
        assert_eq!(seen, accepted);
        pool.wait_drain();
    }
    assert_eq!((pool.completed(), pool.cancelled()), (values, cancels));
}
