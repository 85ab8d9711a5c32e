//! Atomics wait/notify: NotEqual, TimedOut, woken counts with k sleepers, a 100,000-round
//! ping-pong with no lost wake-up, the 64-bit forms, and wait_async.

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use worker_threads_shared::SharedArrayBuffer;
use worker_threads_shared::atomics::{self, WaitResult};

#[test]
fn a_changed_value_is_not_equal_at_once() {
    let cell = AtomicI32::new(5);
    assert_eq!(atomics::wait(&cell, 4, None), WaitResult::NotEqual);
    let cell = AtomicI64::new(5);
    assert_eq!(atomics::wait64(&cell, 4, None), WaitResult::NotEqual);
}

#[test]
fn an_unchanged_value_times_out() {
    let cell = AtomicI32::new(0);
    let short = Some(Duration::from_millis(2));
    assert_eq!(atomics::wait(&cell, 0, short), WaitResult::TimedOut);
    assert_eq!(
        atomics::wait(&cell, 0, Some(Duration::ZERO)),
        WaitResult::TimedOut
    );
    let cell = AtomicI64::new(0);
    assert_eq!(atomics::wait64(&cell, 0, short), WaitResult::TimedOut);
}

#[test]
fn notify_with_no_sleeper_wakes_nobody() {
    let cell = AtomicI32::new(0);
    assert_eq!(atomics::notify(&cell, 1), 0);
    assert_eq!(atomics::notify_all(&cell), 0);
    assert_eq!(atomics::notify64(&AtomicI64::new(0), 1), 0);
}

/// The kernel's word on whether thread `tid` of this process sleeps in a futex.
#[cfg(target_os = "linux")]
fn sleeps_in_futex(tid: &str) -> bool {
    let wchan = std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next());
    wchan.contains("futex") && state == Some("S")
}

#[cfg(target_os = "linux")]
fn my_tid() -> String {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_string_lossy().into_owned()
}

/// Starts `k` threads that wait on cell 0 of `sab` (which holds 0), and returns once
/// every one of them sleeps in the kernel.
#[cfg(target_os = "linux")]
fn sleepers(sab: &SharedArrayBuffer, k: usize) -> Vec<thread::JoinHandle<WaitResult>> {
    let (tids_tx, tids_rx) = mpsc::channel();
    let handles: Vec<_> = (0..k)
        .map(|_| {
            let sab = sab.clone();
            let tids_tx = tids_tx.clone();
            thread::spawn(move || {
                tids_tx.send(my_tid()).unwrap();
                atomics::wait(&sab.as_i32()[0], 0, None)
            })
        })
        .collect();
    let tids: Vec<String> = (0..k).map(|_| tids_rx.recv().unwrap()).collect();
    for tid in &tids {
        while !sleeps_in_futex(tid) {
            thread::yield_now();
        }
    }
    handles
}

#[cfg(target_os = "linux")]
#[test]
fn notify_one_wakes_one_of_k_sleepers_and_notify_all_the_rest() {
    let sab = SharedArrayBuffer::new(4);
    let handles = sleepers(&sab, 4);
    let cell = &sab.as_i32()[0];
    assert_eq!(atomics::notify(cell, 1), 1);
    assert_eq!(atomics::notify(cell, 2), 2);
    assert_eq!(atomics::notify_all(cell), 1);
    assert_eq!(atomics::notify_all(cell), 0);
    for handle in handles {
        assert_eq!(handle.join().unwrap(), WaitResult::Ok);
    }
}

#[cfg(target_os = "linux")]
#[test]
fn notify_zero_wakes_nobody_and_a_notify_without_a_store_still_wakes() {
    let sab = SharedArrayBuffer::new(4);
    let handles = sleepers(&sab, 2);
    let cell = &sab.as_i32()[0];
    assert_eq!(atomics::notify(cell, 0), 0);
    // The value never changed: the sleepers wake because they were notified.
    assert_eq!(atomics::notify_all(cell), 2);
    for handle in handles {
        assert_eq!(handle.join().unwrap(), WaitResult::Ok);
    }
}

#[test]
fn ping_pong_of_100_000_rounds_loses_no_wake_up() {
    const ROUNDS: i32 = if cfg!(miri) { 100 } else { 100_000 };
    // Cell 0 holds whose turn it is: even for main, odd for the other thread.
    let sab = SharedArrayBuffer::new(4);
    let other = sab.clone();
    let peer = thread::spawn(move || {
        let turn = &other.as_i32()[0];
        for round in 0..ROUNDS {
            let mine = 2 * round + 1;
            while turn.load(Ordering::SeqCst) != mine {
                atomics::wait(turn, mine - 1, None);
            }
            turn.store(mine + 1, Ordering::SeqCst);
            atomics::notify(turn, 1);
        }
    });
    let turn = &sab.as_i32()[0];
    for round in 0..ROUNDS {
        let mine = 2 * round;
        while turn.load(Ordering::SeqCst) != mine {
            atomics::wait(turn, mine - 1, None);
        }
        turn.store(mine + 1, Ordering::SeqCst);
        atomics::notify(turn, 1);
    }
    peer.join().unwrap();
    assert_eq!(turn.load(Ordering::SeqCst), 2 * ROUNDS);
}

#[test]
fn ping_pong_64_bit_loses_no_wake_up() {
    const ROUNDS: i64 = if cfg!(miri) { 100 } else { 20_000 };
    let sab = SharedArrayBuffer::new(8);
    let other = sab.clone();
    let peer = thread::spawn(move || {
        let turn = &other.as_i64()[0];
        for round in 0..ROUNDS {
            let mine = 2 * round + 1;
            while turn.load(Ordering::SeqCst) != mine {
                atomics::wait64(turn, mine - 1, None);
            }
            turn.store(mine + 1, Ordering::SeqCst);
            atomics::notify64(turn, 1);
        }
    });
    let turn = &sab.as_i64()[0];
    for round in 0..ROUNDS {
        let mine = 2 * round;
        while turn.load(Ordering::SeqCst) != mine {
            atomics::wait64(turn, mine - 1, None);
        }
        turn.store(mine + 1, Ordering::SeqCst);
        atomics::notify64(turn, 1);
    }
    peer.join().unwrap();
    assert_eq!(turn.load(Ordering::SeqCst), 2 * ROUNDS);
}

#[tokio::test(flavor = "current_thread")]
async fn wait_async_resolves_on_notify_and_not_equal_at_once() {
    let sab = SharedArrayBuffer::new(8);
    assert_eq!(
        atomics::wait_async(&sab, 0, 7, None).unwrap().await,
        WaitResult::NotEqual
    );
    let waiting = atomics::wait_async(&sab, 1, 0, None).unwrap();
    let other = sab.clone();
    thread::spawn(move || {
        other.as_i32()[1].store(1, Ordering::SeqCst);
        atomics::notify(&other.as_i32()[1], 1);
    });
    assert_eq!(waiting.await, WaitResult::Ok);
    assert_eq!(
        atomics::wait_async(&sab, 0, 0, Some(Duration::from_millis(1)))
            .unwrap()
            .await,
        WaitResult::TimedOut
    );
    assert!(atomics::wait_async(&sab, 2, 0, None).is_err());
}

#[tokio::test(flavor = "current_thread")]
async fn wait_async_counts_a_change_after_the_call_as_a_wake_up() {
    // Node checks the value when waitAsync is called; a store and notify that come before
    // the helper thread gets to wait must still resolve the promise with "ok".
    for _ in 0..100 {
        let sab = SharedArrayBuffer::new(4);
        let waiting = atomics::wait_async(&sab, 0, 0, None).unwrap();
        sab.as_i32()[0].store(1, Ordering::SeqCst);
        atomics::notify(&sab.as_i32()[0], 1);
        assert_eq!(waiting.await, WaitResult::Ok);
    }
}
