//! Async handlers (`build_async`): several tasks per thread, and the pool's promises
//! (queue bound, cancel, deadlines, destroy, panics, statistics, map) as for sync ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use worker_threads_pool::{Pool, TaskError};

/// Bounds a wait that must end: never reached unless something is broken.
const PATIENCE: Duration = Duration::from_secs(60);

/// Counts tasks in flight and remembers the most at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl InFlight {
    fn enter(&self) -> usize {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        now
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn four_threads_of_sixteen_tasks_hold_sixty_four_at_once() {
    // Each task waits until all 64 are in flight: only 4 x 16 concurrent tasks can get
    // there (fewer would wait forever, and PATIENCE would fail the test).
    let flight = Arc::new(InFlight::default());
    let all_in = Arc::new(tokio::sync::Notify::new());
    let pool = {
        let (flight, all_in) = (Arc::clone(&flight), Arc::clone(&all_in));
        Pool::builder()
            .max_threads(4)
            .concurrent_tasks_per_worker(16)
            .build_async(move |i: u64| {
                let (flight, all_in) = (Arc::clone(&flight), Arc::clone(&all_in));
                async move {
                    let notified = all_in.notified();
                    if flight.enter() == 64 {
                        all_in.notify_waiters();
                    } else {
                        // The notify may have come before this task registered: look.
                        if flight.peak.load(Ordering::SeqCst) < 64 {
                            tokio::time::timeout(PATIENCE, notified).await.ok();
                        }
                    }
                    flight.leave();
                    i
                }
            })
            .unwrap()
    };
    let handles: Vec<_> = (0..64).map(|i| pool.run_wait(i).unwrap()).collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, (0..64).sum());
    assert_eq!(flight.peak.load(Ordering::SeqCst), 64);
    assert_eq!(pool.completed(), 64);
}

#[test]
fn sixty_four_timers_of_50_ms_run_in_at_most_two_batches() {
    // The program: 4 threads x 16 tasks, each awaiting a 50 ms timer. One batch
    // would hold all 64 at once; two sequential batches at least 32.
    let flight = Arc::new(InFlight::default());
    let pool = {
        let flight = Arc::clone(&flight);
        Pool::builder()
            .max_threads(4)
            .concurrent_tasks_per_worker(16)
            .build_async(move |i: u64| {
                let flight = Arc::clone(&flight);
                async move {
                    flight.enter();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    flight.leave();
                    i
                }
            })
            .unwrap()
    };
    let handles: Vec<_> = (0..64).map(|i| pool.run_wait(i).unwrap()).collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join().unwrap(), i as u64);
    }
    assert!(
        flight.peak.load(Ordering::SeqCst) >= 32,
        "peak {:?}",
        flight.peak
    );
    // Each task's recorded run time is at least its timer.
    assert!(
        pool.run_time().percentile(0.0) >= Duration::from_millis(50),
        "{:?}",
        pool.run_time()
    );
    assert_eq!(pool.run_time().count(), 64);
}

/// Sets its flag when dropped: a future that was dropped mid-await.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn cancelling_a_running_task_drops_its_future_and_the_thread_goes_on() {
    let dropped = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let started_tx = std::sync::Mutex::new(started_tx);
    let pool = {
        let dropped = Arc::clone(&dropped);
        Pool::builder()
            .max_threads(1)
            .concurrent_tasks_per_worker(4)
            .build_async(move |forever: bool| {
                let flag = DropFlag(Arc::clone(&dropped));
                let _ = started_tx.lock().unwrap().send(());
                async move {
                    let _flag = flag;
                    if forever {
                        std::future::pending::<()>().await;
                    }
                    7u32
                }
            })
            .unwrap()
    };
    let stuck = pool.run(true).unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    assert!(stuck.cancel());
    assert_eq!(stuck.join(), Err(TaskError::Cancelled));
    assert!(dropped.load(Ordering::SeqCst), "the future was not dropped");
    assert_eq!(pool.run(false).unwrap().join(), Ok(7));
    assert_eq!((pool.completed(), pool.cancelled()), (1, 1));
}

#[test]
fn a_panicking_task_is_its_own_and_the_others_complete() {
    let pool = Pool::builder()
        .max_threads(1)
        .concurrent_tasks_per_worker(8)
        .build_async(|i: u32| async move {
            tokio::task::yield_now().await;
            assert!(i != 3, "task three fails");
            i
        })
        .unwrap();
    let handles: Vec<_> = (0..8).map(|i| pool.run_wait(i).unwrap()).collect();
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(v) => assert_eq!(v, i as u32),
            Err(TaskError::Panicked(message)) => {
                assert_eq!(i, 3);
                assert_eq!(message, "task three fails");
            }
            Err(other) => panic!("task {i}: {other}"),
        }
    }
    assert_eq!((pool.completed(), pool.panicked()), (7, 1));
}

#[test]
fn a_deadline_drops_a_running_task_and_resolves_it_timed_out() {
    let pool = Pool::builder()
        .max_threads(1)
        .concurrent_tasks_per_worker(2)
        .build_async(|()| async { std::future::pending::<u8>().await })
        .unwrap();
    let handle = pool
        .run_with_deadline((), Instant::now() + Duration::from_millis(20))
        .unwrap();
    assert_eq!(handle.join(), Err(TaskError::TimedOut));
    assert_eq!(pool.timed_out(), 1);
}

#[test]
fn destroy_cancels_what_is_in_flight_and_everything_adds_up() {
    for _ in 0..50 {
        let pool = Pool::builder()
            .max_threads(2)
            .concurrent_tasks_per_worker(4)
            .build_async(|i: u64| async move {
                if i % 2 == 0 {
                    std::future::pending::<()>().await;
                }
                i
            })
            .unwrap();
        // Half the tasks never end: submit without waiting for room, keep what was taken.
        let handles: Vec<_> = (0..16).filter_map(|i| pool.run(i).ok()).collect();
        let accepted = handles.len() as u64;
        pool.destroy();
        let (mut ok, mut cancelled) = (0, 0);
        for handle in handles {
            match handle.join() {
                Ok(_) => ok += 1,
                Err(TaskError::Cancelled) => cancelled += 1,
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(ok + cancelled, accepted);
        assert_eq!((pool.completed(), pool.cancelled()), (ok, cancelled));
    }
}

#[test]
fn map_runs_async_items_in_order() {
    let pool = Pool::builder()
        .max_threads(2)
        .concurrent_tasks_per_worker(4)
        .build_async(|i: u64| async move {
            tokio::task::yield_now().await;
            i * i
        })
        .unwrap();
    let squares: Vec<u64> = pool.map(0..1_000).map(Result::unwrap).collect();
    assert_eq!(squares, (0..1_000).map(|i| i * i).collect::<Vec<_>>());
    assert_eq!(pool.completed(), 1_000);
}

#[test]
fn a_cancel_racing_an_async_task_resolves_it_once_and_counts_it_once() {
    let pool = Pool::builder()
        .max_threads(2)
        .concurrent_tasks_per_worker(4)
        .build_async(|i: u64| async move {
            tokio::task::yield_now().await;
            i
        })
        .unwrap();
    let (mut ok, mut cancelled) = (0u64, 0u64);
    for i in 0..2_000 {
        let handle = pool.run_wait(i).unwrap();
        if i % 3 != 0 {
            handle.cancel();
        }
        match handle.join() {
            Ok(v) => {
                assert_eq!(v, i);
                ok += 1;
            }
            Err(TaskError::Cancelled) => cancelled += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(ok + cancelled, 2_000);
    assert_eq!((pool.completed(), pool.cancelled()), (ok, cancelled));
}
