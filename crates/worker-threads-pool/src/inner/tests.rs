//! White-box tests of the pool's core: what black-box tests cannot force.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{MaxQueue, Pool};

/// Polls `condition` until it holds; fails the test after a minute instead of hanging.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        thread::yield_now();
    }
}

#[test]
fn a_drain_that_is_refilled_before_the_waiter_wakes_still_ends_the_wait() {
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let pool = Arc::new(
        Pool::builder()
            .max_threads(1)
            .max_queue(MaxQueue::Bounded(1))
            .build({
                let gate = Arc::clone(&gate);
                move |_: u32| {
                    let (open, cv) = &*gate;
                    let mut open = open.lock().unwrap();
                    while !*open {
                        open = cv.wait(open).unwrap();
                    }
                }
            })
            .unwrap(),
    );
    let running = pool.run(1).unwrap();
    eventually("the first task runs", || {
        pool.queue_size() == 0 && pool.threads() == 1
    });
    let queued = pool.run(2).unwrap();
    let returned = Arc::new(AtomicBool::new(false));
    let waiter = thread::spawn({
        let (pool, returned) = (Arc::clone(&pool), Arc::clone(&returned));
        move || {
            pool.wait_drain();
            returned.store(true, Ordering::SeqCst);
        }
    });
    let inner = &pool.inner;
    eventually("the waiter sleeps", || inner.lock().drain_waiters == 1);
    {
        // Drain and refill in one hold of the lock: the waiter never sees an empty queue.
        let mut state = inner.lock();
        let job = state.queue.pop_front().expect("task 2 is queued");
        assert!(inner.popped(&mut state), "the pop emptied the queue");
        state.queue.push_back(job);
        inner.queue_len.store(state.queue.len(), Ordering::Release);
    }
    eventually("the waiter returns after the drain", || {
        returned.load(Ordering::SeqCst)
    });
    waiter.join().unwrap();
    let (open, cv) = &*gate;
    *open.lock().unwrap() = true;
    cv.notify_all();
    assert!(running.join().is_ok());
    assert!(queued.join().is_ok());
}

#[test]
fn deadlines_of_resolved_tasks_do_not_pile_up() {
    // A timeout none of these tasks comes near: without pruning, every one of the 20,000
    // would keep its heap entry for the whole minute.
    let pool = Pool::builder()
        .max_threads(2)
        .task_timeout(Duration::from_secs(60))
        .build(|n: u64| n)
        .unwrap();
    for n in 0..20_000u64 {
        assert_eq!(pool.run_wait(n).unwrap().join(), Ok(n));
    }
    let kept = pool.inner.deadlines.len();
    assert!(
        kept <= 1024,
        "{kept} deadlines kept for 20,000 resolved tasks"
    );
    assert_eq!(pool.timed_out(), 0);
}
