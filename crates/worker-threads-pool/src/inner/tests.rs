//! White-box tests of the pool's core: what black-box tests cannot force.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::Pool;
use crate::inner::handoff::{Bound, Full, Handoff};

#[test]
fn a_drain_that_is_refilled_before_the_waiter_looks_still_ends_the_wait() {
    let handoff = Arc::new(Handoff::<u32>::new());
    assert_eq!(handoff.admit(Bound::At(1), || 0), Ok(true));
    handoff.push(1).unwrap();
    let returned = Arc::new(AtomicBool::new(false));
    let waiter = thread::spawn({
        let (handoff, returned) = (Arc::clone(&handoff), Arc::clone(&returned));
        move || {
            handoff.wait_drain();
            returned.store(true, Ordering::SeqCst);
        }
    });
    // Wait until the waiter sleeps (registered in the drain list), so that the drain and
    // the refill both happen before it looks again.
    while !handoff.has_drain_waiter() {
        thread::yield_now();
    }
    assert_eq!(handoff.pop(), Ok(1));
    assert!(handoff.left(), "the take emptied the queue");
    assert_eq!(
        handoff.admit(Bound::At(1), || 0),
        Ok(true),
        "refilled at once"
    );
    handoff.push(2).unwrap();
    waiter.join().unwrap();
    assert!(returned.load(Ordering::SeqCst));
    assert_eq!(handoff.queued(), 1, "the refill is still queued");
}

#[test]
fn the_bound_is_exact_and_a_task_that_left_frees_its_place() {
    let handoff = Handoff::<u32>::new();
    assert_eq!(handoff.admit(Bound::At(2), || 0), Ok(false));
    assert_eq!(handoff.admit(Bound::At(2), || 0), Ok(true));
    assert_eq!(handoff.admit(Bound::At(2), || 0), Err(Full));
    // A cancelled task leaves (its job stays as a tombstone): its place is free at once.
    assert!(!handoff.left());
    assert_eq!(handoff.queued(), 1);
    assert_eq!(handoff.admit(Bound::At(2), || 0), Ok(true));
    // "No queue": only as many as can be taken now.
    let none = Handoff::<u32>::new();
    assert_eq!(none.admit(Bound::NoQueue, || 0), Err(Full));
    assert_eq!(none.admit(Bound::NoQueue, || 1), Ok(true));
    assert_eq!(none.admit(Bound::NoQueue, || 1), Err(Full));
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
