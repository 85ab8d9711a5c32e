//! Spinning before parking: a peer on another core usually answers within a microsecond,
//! far sooner than a futex wake-up. crossbeam's `Backoff` paces the spin; under loom each
//! round is one look and a yield, so that loom explores the other threads instead of the
//! spin.

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
        backoff.snooze();
    }
}

/// crossbeam's `Backoff` for the queues' retry loops (`spin` after a lost race, `snooze`
/// while another thread finishes a step); under loom each is a yield, so that loom runs
/// the thread being waited for.
pub struct Backoff {
    #[cfg(not(worker_threads_loom))]
    inner: crossbeam_utils::Backoff,
}

impl Backoff {
    /// A fresh backoff.
    #[inline]
    pub fn new() -> Self {
        Self {
            #[cfg(not(worker_threads_loom))]
            inner: crossbeam_utils::Backoff::new(),
        }
    }

    /// After a lost compare-and-swap: a few spins, growing.
    #[inline]
    pub fn spin(&self) {
        #[cfg(not(worker_threads_loom))]
        self.inner.spin();
        #[cfg(worker_threads_loom)]
        crate::sync::thread::yield_now();
    }

    /// While another thread completes a step this one needs: spins, then yields.
    #[inline]
    pub fn snooze(&self) {
        #[cfg(not(worker_threads_loom))]
        self.inner.snooze();
        #[cfg(worker_threads_loom)]
        crate::sync::thread::yield_now();
    }

    /// True once spinning longer is no longer worth it (the caller parks next). Under
    /// loom, at once.
    #[inline]
    pub fn is_completed(&self) -> bool {
        #[cfg(not(worker_threads_loom))]
        return self.inner.is_completed();
        #[cfg(worker_threads_loom)]
        return true;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}
