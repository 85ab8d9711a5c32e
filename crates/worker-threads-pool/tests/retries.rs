//! Retries: a failed try is followed by another after its back-off, until the policy's
//! attempts; the task resolves exactly once, with its value or its last failure and the
//! count of tries.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use worker_threads_pool::{Backoff, MaxQueue, Pool, Retry, TaskError};

/// A task that fails (panics with its try number) until its try number `succeed_on`;
/// `succeed_on` 0 never succeeds. The value is `value`.
#[derive(Clone, Debug)]
struct Flaky {
    succeed_on: u32,
    value: u64,
    tries: Arc<AtomicU32>,
    /// When each try began.
    started: Arc<Mutex<Vec<Instant>>>,
}

impl Flaky {
    fn new(succeed_on: u32, value: u64) -> Self {
        Self {
            succeed_on,
            value,
            tries: Arc::default(),
            started: Arc::default(),
        }
    }

    fn run(self) -> u64 {
        self.started.lock().unwrap().push(Instant::now());
        let attempt = self.tries.fetch_add(1, Ordering::SeqCst) + 1;
        if attempt != self.succeed_on {
            panic!("try {attempt} failed");
        }
        self.value
    }

    fn tries(&self) -> u32 {
        self.tries.load(Ordering::SeqCst)
    }
}

fn panicked(attempt: u32) -> Box<TaskError> {
    Box::new(TaskError::Panicked(format!("try {attempt} failed")))
}

#[test]
fn a_task_that_fails_twice_gives_its_value_on_the_third_try() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(Flaky::run)
        .unwrap()
        .with_retry(Retry::attempts(3));
    let task = Flaky::new(3, 42);
    assert_eq!(pool.run(task.clone()).unwrap().join(), Ok(42));
    assert_eq!(task.tries(), 3);
    pool.close();
    // The counters count tries.
    assert_eq!(
        (pool.panicked(), pool.completed(), pool.cancelled()),
        (2, 1, 0)
    );
}

#[test]
fn a_task_whose_tries_all_fail_resolves_with_the_last_failure_and_the_count() {
    let pool = Pool::builder().build(Flaky::run).unwrap();
    let task = Flaky::new(0, 1);
    let handle = pool
        .run_with_retry(task.clone(), Retry::attempts(4))
        .unwrap();
    let error = handle.join().unwrap_err();
    assert_eq!(
        error,
        TaskError::Retried {
            attempts: 4,
            last: panicked(4)
        }
    );
    assert_eq!(
        error.to_string(),
        "the task failed 4 times; the last: the task panicked: try 4 failed"
    );
    assert_eq!(task.tries(), 4);
    // One try is no retry: the failure itself.
    let once = Flaky::new(0, 1);
    assert_eq!(
        pool.run_with_retry(once, Retry::attempts(1))
            .unwrap()
            .join(),
        Err(*panicked(1))
    );
    // A pool without a policy tries once.
    let plain = Flaky::new(0, 1);
    assert_eq!(pool.run(plain.clone()).unwrap().join(), Err(*panicked(1)));
    assert_eq!(plain.tries(), 1);
    pool.close();
    assert_eq!(pool.panicked(), 6);
}

#[test]
fn each_try_waits_its_back_off_fixed_or_doubling() {
    let ms = Duration::from_millis;
    let pool = Pool::builder().max_threads(2).build(Flaky::run).unwrap();
    let fixed = Flaky::new(3, 7);
    let retry = Retry::attempts(3).backoff(Backoff::Fixed(ms(30)));
    assert_eq!(
        pool.run_with_retry(fixed.clone(), retry).unwrap().join(),
        Ok(7)
    );
    let doubling = Flaky::new(4, 8);
    let retry = Retry::attempts(4).backoff(Backoff::exponential(ms(10)));
    assert_eq!(
        pool.run_with_retry(doubling.clone(), retry).unwrap().join(),
        Ok(8)
    );
    let gaps = |task: &Flaky| -> Vec<Duration> {
        let started = task.started.lock().unwrap();
        started.windows(2).map(|pair| pair[1] - pair[0]).collect()
    };
    let fixed = gaps(&fixed);
    assert_eq!(fixed.len(), 2);
    assert!(fixed.iter().all(|gap| *gap >= ms(30)), "{fixed:?}");
    let doubling = gaps(&doubling);
    assert_eq!(doubling.len(), 3);
    for (gap, least) in doubling.iter().zip([ms(10), ms(20), ms(40)]) {
        assert!(*gap >= least, "{doubling:?}");
    }
}

/// A handler that reports each try's start and then fails.
fn failing(report: mpsc::Sender<()>) -> impl Fn(u32) -> u32 + Send + Sync + 'static {
    let report = Mutex::new(report);
    move |_| {
        let _ = report.lock().unwrap().send(());
        panic!("always")
    }
}

#[test]
fn a_task_waiting_for_its_back_off_holds_its_place_in_the_queue_until_cancelled() {
    let (report, tries) = mpsc::channel();
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(1))
        .build(failing(report))
        .unwrap()
        .with_retry(Retry::attempts(3).backoff(Backoff::Fixed(Duration::from_secs(3600))));
    let handle = pool.run(1).unwrap();
    tries.recv().unwrap();
    // The first try failed: the task waits an hour for its second, in the queue.
    while pool.queue_size() == 0 {
        std::thread::yield_now();
    }
    assert_eq!(pool.queue_size(), 1);
    assert!(pool.needs_drain());
    assert!(matches!(
        pool.run(2),
        Err(worker_threads_pool::RunError::QueueFull(2))
    ));
    assert!(handle.cancel_with("no more"));
    assert_eq!(pool.queue_size(), 0, "the place is given back at once");
    assert_eq!(handle.cancel_reason().as_deref(), Some("no more"));
    assert_eq!(handle.join(), Err(TaskError::Cancelled));
    pool.wait_drain();
    pool.close();
    assert_eq!((pool.panicked(), pool.cancelled()), (1, 1));
    assert!(tries.try_recv().is_err(), "no second try");
}

#[test]
fn close_ends_a_back_off_with_the_tries_made_and_destroy_with_cancelled() {
    for destroy in [false, true] {
        let (report, tries) = mpsc::channel();
        let pool = Pool::builder()
            .max_threads(1)
            .build(failing(report))
            .unwrap()
            .with_retry(Retry::attempts(5).backoff(Backoff::Fixed(Duration::from_secs(3600))));
        let handle = pool.run(1).unwrap();
        tries.recv().unwrap();
        while pool.queue_size() == 0 {
            std::thread::yield_now();
        }
        let expected = if destroy {
            pool.destroy();
            TaskError::Cancelled
        } else {
            pool.close();
            TaskError::Retried {
                attempts: 1,
                last: Box::new(TaskError::Panicked("always".into())),
            }
        };
        assert_eq!(handle.join(), Err(expected));
        assert_eq!(pool.queue_size(), 0);
        assert_eq!((pool.panicked(), pool.cancelled()), (1, 1));
    }
}

#[test]
fn a_timeout_or_a_cancel_is_not_tried_again() {
    let pool = Pool::builder()
        .max_threads(1)
        .task_timeout(Duration::from_millis(20))
        .build(|(): ()| {
            while !worker_threads_pool::is_cancelled() {
                std::thread::yield_now();
            }
        })
        .unwrap()
        .with_retry(Retry::attempts(3));
    assert_eq!(pool.run(()).unwrap().join(), Err(TaskError::TimedOut));
    pool.close();
    assert_eq!((pool.timed_out(), pool.completed()), (1, 0));
}

#[test]
fn map_tries_each_item_on_its_own() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(Flaky::run)
        .unwrap()
        .with_retry(Retry::attempts(2));
    // Even items fail once; odd ones at once. Results come back in order.
    let tasks: Vec<Flaky> = (0..200)
        .map(|i| Flaky::new(if i % 2 == 0 { 2 } else { 1 }, i))
        .collect();
    let results: Vec<u64> = pool.map(tasks.clone()).map(Result::unwrap).collect();
    assert_eq!(results, (0..200).collect::<Vec<_>>());
    for (i, task) in tasks.iter().enumerate() {
        assert_eq!(task.tries(), if i % 2 == 0 { 2 } else { 1 }, "item {i}");
    }
    pool.close();
    assert_eq!((pool.panicked(), pool.completed()), (100, 200));
}

#[test]
fn run_async_and_a_token_keep_the_policy() {
    let pool = Pool::builder()
        .build(Flaky::run)
        .unwrap()
        .with_retry(Retry::attempts(2));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let task = Flaky::new(2, 5);
    let value = runtime.block_on(async { pool.run_async(task.clone()).await.unwrap().await });
    assert_eq!((value, task.tries()), (Ok(5), 2));
    let token = worker_threads_pool::CancelToken::new();
    token.cancel_with("before");
    let never = Flaky::new(1, 6);
    let handle = pool.run_with_token(never.clone(), &token).unwrap();
    assert_eq!(handle.cancel_reason().as_deref(), Some("before"));
    assert_eq!(handle.join(), Err(TaskError::Cancelled));
    assert_eq!(never.tries(), 0, "a token cancelled already: no try runs");
}

/// Cancel against the tries, a few thousand times: every task resolves exactly once, as
/// `Cancelled` or with its value, and the counters add up to the tries made.
#[test]
fn cancel_while_retrying_resolves_once_and_counts_every_try() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(Flaky::run)
        .unwrap()
        .with_retry(Retry::attempts(3));
    let rounds = 3_000u64;
    let mut tries = 0;
    let (mut values, mut cancels) = (0, 0);
    for round in 0..rounds {
        let task = Flaky::new(3, round);
        let handle = pool.run_wait(task.clone()).unwrap();
        if round % 3 != 0 {
            // Spread the cancel over the tries.
            for _ in 0..(round % 7) * 10 {
                std::hint::spin_loop();
            }
            handle.cancel();
        }
        match handle.join() {
            Ok(value) => {
                assert_eq!(value, round);
                values += 1;
            }
            Err(TaskError::Cancelled) => cancels += 1,
            other => panic!("round {round}: {other:?}"),
        }
        tries += u64::from(task.tries());
    }
    pool.close();
    assert_eq!(values + cancels, rounds);
    assert!(values >= rounds / 3, "every third round is not cancelled");
    assert_eq!(pool.queue_size(), 0);
    // Every try that ran ended as exactly one of these (a cancelled one as cancelled);
    // a cancelled task counts at most one cancel (its try, queued or running, or the place
    // its back-off held), and nothing else resolves `Cancelled` here.
    let (completed, panicked, cancelled) = (pool.completed(), pool.panicked(), pool.cancelled());
    assert!(completed >= values && completed <= values + cancels);
    assert!(cancelled <= cancels, "{cancelled} > {cancels}");
    assert!(completed + panicked <= tries && tries <= completed + panicked + cancelled);
}
