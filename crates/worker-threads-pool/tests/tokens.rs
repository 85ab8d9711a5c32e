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

#[test]
fn a_task_given_a_cancelled_token_never_reaches_its_handler_even_with_idle_threads() {
    // Idle threads pick a queued task up at once: the task must be cancelled before it is
    // queued, not after (the window this test loops over).
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Unbounded)
        .build({
            let ran = Arc::clone(&ran);
            move |(): ()| {
                ran.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    let token = CancelToken::new();
    token.cancel_with("gone before it started");
    for _ in 0..2_000 {
        let handle = pool.run_with_token((), &token).unwrap();
        assert_eq!(
            handle.cancel_reason().as_deref(),
            Some("gone before it started")
        );
        assert_eq!(handle.join(), Err(TaskError::Cancelled));
    }
    pool.close();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(pool.cancelled(), 2_000);
    assert_eq!(pool.completed(), 0);
}

#[test]
fn a_cancelled_handle_says_why_and_the_first_reason_stays() {
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(8))
        .build(|(): ()| {
            while !worker_threads_pool::is_cancelled() {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    // Through the handle: queued and running alike; a second cancel changes nothing.
    let running = pool.run(()).unwrap();
    let queued = pool.run(()).unwrap();
    assert!(queued.cancel_with("queued: not needed"));
    assert!(running.cancel_with("running: too slow"));
    // Whether or not the task has resolved by now, the reason stays the first one.
    let _ = running.cancel_with("a later reason");
    assert_eq!(
        queued.cancel_reason().as_deref(),
        Some("queued: not needed")
    );
    assert_eq!(
        running.cancel_reason().as_deref(),
        Some("running: too slow")
    );
    assert_eq!(queued.join(), Err(TaskError::Cancelled));
    assert_eq!(running.join(), Err(TaskError::Cancelled));

    // Through a token: every task it was given learns the token's reason, and the token
    // keeps it (AbortSignal.reason); a plain cancel first means no reason.
    let token = CancelToken::new();
    let mut handles: Vec<_> = (0..3)
        .map(|_| pool.run_with_token((), &token).unwrap())
        .collect();
    assert_eq!(token.reason(), None);
    token.cancel_with("shutting down");
    token.cancel_with("ignored");
    assert_eq!(token.reason().as_deref(), Some("shutting down"));
    for handle in &mut handles {
        let outcome = block_on(handle);
        assert_eq!(outcome, Err(TaskError::Cancelled));
    }
    for handle in &handles {
        assert_eq!(handle.cancel_reason().as_deref(), Some("shutting down"));
    }
    let plain = pool.run(()).unwrap();
    assert!(plain.cancel());
    let _ = plain.cancel_with("too late to give a reason");
    assert_eq!(plain.cancel_reason(), None);
    assert_eq!(plain.join(), Err(TaskError::Cancelled));
    pool.close();
    assert_eq!(pool.cancelled(), 6);
    assert_eq!(pool.completed(), 0);
}

/// Awaits a handle by reference (so it can still be asked why), on this thread.
fn block_on<F: std::future::Future + Unpin>(future: &mut F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = std::pin::Pin::new(&mut *future).poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
