//! Spinning before parking: a peer on another core usually answers within a microsecond,
//! far sooner than a futex wake-up. Most waits spin, then yield, then park (crossbeam's
//! `Backoff` paces [`spin_while`]): the yield lets a peer that shares this core run. A
//! wait for a thread to start or end spins only, then parks ([`SpinWait`]): that report
//! comes from a thread the scheduler is still placing or tearing down, and on a virtual
//! machine a yield there can cost tens of microseconds where parking hands the core over.
//! Under loom each round is one look and a yield, so that loom explores the other
//! threads instead of the spin.

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

/// Looks up to `rounds` times for what `look` finds, yielding the CPU after each miss;
/// `None` if it found nothing (the caller blocks next). For a hand-over from a thread
/// that is usually running on another core: a receiver that yields a few times is often
/// still awake when the value comes, where a parked one costs a futex wake and a
/// reschedule. Under loom, one look.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// std::thread::spawn(move || tx.send(7).unwrap());
/// let value = worker_threads_wait::yield_for(64, || rx.try_recv().ok())
///     .unwrap_or_else(|| rx.recv().unwrap());
/// assert_eq!(value, 7);
/// ```
pub fn yield_for<T>(rounds: usize, mut look: impl FnMut() -> Option<T>) -> Option<T> {
    let rounds = if cfg!(worker_threads_loom) { 1 } else { rounds };
    for _ in 0..rounds {
        if let Some(found) = look() {
            return Some(found);
        }
        crate::sync::thread::yield_now();
    }
    None
}

/// Paces a wait that parks when it ends, without yielding (see the module doc): seven
/// rounds of pauses that double, about a microsecond in all.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use worker_threads_wait::SpinWait;
///
/// let ready = AtomicBool::new(false);
/// let mut spin = SpinWait::new();
/// while !ready.load(Ordering::Acquire) && !spin.is_completed() {
///     spin.spin();
/// }
/// // Not ready after a short spin: the caller parks now.
/// assert!(spin.is_completed());
/// ```
#[derive(Debug, Default)]
pub struct SpinWait {
    step: u32,
}

impl SpinWait {
    /// Rounds of spinning before a waiter parks (2^0 + ... + 2^6 pauses).
    const ROUNDS: u32 = 7;

    /// A fresh wait.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!worker_threads_wait::SpinWait::new().is_completed());
    /// ```
    #[inline]
    pub fn new() -> Self {
        Self { step: 0 }
    }

    /// One round: 2^round pauses. Under loom, a yield.
    #[inline]
    pub fn spin(&mut self) {
        #[cfg(not(worker_threads_loom))]
        for _ in 0..1u32 << self.step.min(Self::ROUNDS - 1) {
            std::hint::spin_loop();
        }
        #[cfg(worker_threads_loom)]
        crate::sync::thread::yield_now();
        self.step += 1;
    }

    /// True once the caller should park. Under loom, at once.
    #[inline]
    pub fn is_completed(&self) -> bool {
        cfg!(worker_threads_loom) || self.step >= Self::ROUNDS
    }
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
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use worker_threads_wait::Backoff;
///
/// /// Adds one with a compare-and-swap loop, backing off after each lost race.
/// fn increment(counter: &AtomicUsize) -> usize {
///     let backoff = Backoff::new();
///     let mut current = counter.load(Ordering::Relaxed);
///     loop {
///         match counter.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Relaxed) {
///             Ok(previous) => return previous,
///             Err(seen) => {
///                 current = seen;
///                 backoff.spin();
///             }
///         }
///     }
/// }
///
/// let counter = AtomicUsize::new(41);
/// assert_eq!(increment(&counter), 41);
/// assert_eq!(counter.load(Ordering::Relaxed), 42);
/// ```
pub struct Backoff {
    #[cfg(not(worker_threads_loom))]
    inner: crossbeam_utils::Backoff,
}

impl Backoff {
    /// A fresh backoff.
    ///
    /// # Examples
    ///
    /// ```
    /// let backoff = worker_threads_wait::Backoff::new();
    /// backoff.spin(); // after a lost compare-and-swap
    /// assert!(!backoff.is_completed());
    /// ```
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

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use super::SpinWait;

    #[test]
    fn a_spin_wait_completes_after_its_seven_rounds_and_not_before() {
        let mut spin = SpinWait::new();
        let mut rounds = 0;
        while !spin.is_completed() {
            spin.spin();
            rounds += 1;
            assert!(rounds <= 7, "still spinning after {rounds} rounds");
        }
        assert_eq!(rounds, 7);
    }
}
