//! Spinning before parking: a peer on another core usually answers within a microsecond,
//! far sooner than a futex wake-up. crossbeam's `Backoff` paces the spin; under loom each
//! round is one look and a yield, so that loom explores the other threads instead of the
//! spin.

use crossbeam_utils::Backoff;

/// Spins briefly while `unchanged()`; true if it stayed unchanged throughout (the caller
/// parks next), false as soon as it changed.
pub fn spin_while(mut unchanged: impl FnMut() -> bool) -> bool {
    if cfg!(worker_threads_loom) {
        return unchanged();
    }
    let backoff = Backoff::new();
    while !backoff.is_completed() {
        backoff.snooze();
        if !unchanged() {
            return false;
        }
    }
    true
}

/// Spins, then yields, until `done()`: for a wait that is known to be short (a peer
/// inside a section that never blocks), where parking would cost more than it saves.
pub fn snooze_until(mut done: impl FnMut() -> bool) {
    let backoff = Backoff::new();
    while !done() {
        if cfg!(worker_threads_loom) {
            crate::sync::thread::yield_now();
        } else {
            backoff.snooze();
        }
    }
}
