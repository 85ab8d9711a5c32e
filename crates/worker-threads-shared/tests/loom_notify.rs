//! A loom model of `Atomics.wait` / `Atomics.notify` (`src/atomics/mod.rs`, module doc):
//! a waiter compares the cell with `expected` (`NotEqual` if it differs), spins watching
//! it (`worker_threads_wait::spin_while`, the real one: one look under loom), then sleeps
//! on the futex, which compares the cell again atomically with going to sleep; a notifier
//! stores, then wakes up to `count` sleepers and returns how many it woke.
//!
//! The futex is the kernel's, so the model states its contract over loom's primitives: a
//! wait list under one lock; `FUTEX_WAIT` puts the caller on the list only if the word
//! still holds `expected` under that lock; `FUTEX_WAKE(n)` takes up to `n` sleepers off
//! the list and returns how many. Over every interleaving loom explores:
//!
//! - store-then-notify never leaves a waiter asleep (loom reports a deadlock if it does);
//! - `notify(count)` never reports more than `count`, and the reports of all notifies add
//!   up to exactly the waiters that were woken from sleep (a waiter that saw the store
//!   while spinning, or at the futex's compare, is not counted: the module doc's second
//!   departure from the letter of `Atomics.notify`).
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-shared
//! --test loom_notify --release` alone;
//! `cargo xtask loom` runs every model, as `.ci/run` does.
#![cfg(worker_threads_loom)]

use loom::sync::atomic::{AtomicI32, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use worker_threads_wait::spin_while;

/// How one wait ended, as the model tells it apart (the real `wait` reports both
/// `Slept` and `SawChange` as `WaitResult::Ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    NotEqual,
    SawChange,
    Slept,
}

/// The kernel futex on one word: its wait list.
#[derive(Default)]
struct Futex {
    sleepers: Mutex<Vec<(usize, bool)>>,
    woken: Condvar,
}

struct Cell {
    value: AtomicI32,
    futex: Futex,
}

impl Cell {
    fn new() -> Self {
        Self {
            value: AtomicI32::new(0),
            futex: Futex::default(),
        }
    }

    /// `atomics::wait(cell, expected, None)` for waiter `id`.
    fn wait(&self, id: usize, expected: i32) -> Ended {
        if self.value.load(SeqCst) != expected {
            return Ended::NotEqual;
        }
        if !spin_while(|| self.value.load(SeqCst) == expected) {
            return Ended::SawChange;
        }
        // FUTEX_WAIT: compare under the wait list's lock, then sleep until taken off.
        let mut sleepers = self.futex.sleepers.lock().unwrap();
        if self.value.load(SeqCst) != expected {
            return Ended::SawChange;
        }
        sleepers.push((id, false));
        loop {
            let taken = sleepers
                .iter()
                .position(|&(sleeper, woken)| sleeper == id && woken);
            if let Some(at) = taken {
                sleepers.remove(at);
                return Ended::Slept;
            }
            sleepers = self.futex.woken.wait(sleepers).unwrap();
        }
    }

    /// `atomics::notify(cell, count)`: FUTEX_WAKE(count); how many it woke.
    fn notify(&self, count: usize) -> usize {
        let mut sleepers = self.futex.sleepers.lock().unwrap();
        let mut woke = 0;
        for (_, woken) in sleepers.iter_mut().filter(|(_, woken)| !*woken) {
            if woke == count {
                break;
            }
            *woken = true;
            woke += 1;
        }
        drop(sleepers);
        self.futex.woken.notify_all();
        woke
    }
}

fn waiters(cell: &Arc<Cell>, n: usize) -> Vec<thread::JoinHandle<Ended>> {
    (0..n)
        .map(|id| {
            let cell = Arc::clone(cell);
            thread::spawn(move || cell.wait(id, 0))
        })
        .collect()
}

#[test]
fn store_then_notify_all_wakes_every_sleeper_and_counts_exactly_them() {
    loom::model(|| {
        let cell = Arc::new(Cell::new());
        let waiting = waiters(&cell, 2);
        cell.value.store(1, SeqCst);
        let woke = cell.notify(usize::MAX);
        let ended: Vec<Ended> = waiting.into_iter().map(|w| w.join().unwrap()).collect();
        let slept = ended.iter().filter(|&&e| e == Ended::Slept).count();
        assert_eq!(
            woke, slept,
            "notify counted the sleepers it woke: {ended:?}"
        );
    });
}

#[test]
fn notify_one_twice_wakes_both_sleepers_and_never_counts_more_than_one_each() {
    loom::model(|| {
        let cell = Arc::new(Cell::new());
        let waiting = waiters(&cell, 2);
        cell.value.store(1, SeqCst);
        let first = cell.notify(1);
        let second = cell.notify(1);
        assert!(first <= 1 && second <= 1, "{first} {second}");
        let ended: Vec<Ended> = waiting.into_iter().map(|w| w.join().unwrap()).collect();
        let slept = ended.iter().filter(|&&e| e == Ended::Slept).count();
        assert_eq!(first + second, slept, "{ended:?}");
    });
}
