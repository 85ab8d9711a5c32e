//! A cheap clock for statistics read on every task: monotonic nanoseconds in a `u64`.
//! `std::time::Instant` reads the same clock (`CLOCK_MONOTONIC`), but each subtraction
//! normalises a `timespec` with checks: a hundred instructions per task that a `u64`
//! difference does not need. (Through libc, whose `clock_gettime` is the vDSO's: one call,
//! no system call, and tools such as valgrind that replace the vDSO see it.)

/// A point in time: nanoseconds of the monotonic clock.
///
/// # Examples
///
/// ```
/// use worker_threads_wait::Stamp;
///
/// let (a, b) = (Stamp::now(), Stamp::now());
/// assert!(b >= a);
/// assert_eq!(a.nanos_since(b), 0); // never negative
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

impl Stamp {
    /// Now.
    ///
    /// # Examples
    ///
    /// ```
    /// let start = worker_threads_wait::Stamp::now();
    /// std::thread::sleep(std::time::Duration::from_millis(1));
    /// assert!(worker_threads_wait::Stamp::now().nanos_since(start) >= 1_000_000);
    /// ```
    #[cfg(unix)]
    #[inline]
    pub fn now() -> Self {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable `timespec`; `CLOCK_MONOTONIC` always exists
        // on the systems libc supports, so the call cannot fail (if it did, `now` stays
        // zero: a stamp at the origin, never a fault).
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
        Self(seconds.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// Now (see the Unix form's example).
    #[cfg(not(unix))]
    #[inline]
    pub fn now() -> Self {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let origin = *ORIGIN.get_or_init(std::time::Instant::now);
        Self(u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Nanoseconds from `earlier` to this (zero if `earlier` is later).
    #[inline]
    pub fn nanos_since(self, earlier: Stamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use super::Stamp;

    #[test]
    fn a_stamp_measures_at_least_what_instant_measures_around_it() {
        let outer = std::time::Instant::now();
        let start = Stamp::now();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let end = Stamp::now();
        let outer = outer.elapsed();
        let measured = end.nanos_since(start);
        assert!(measured >= 3_000_000, "{measured} ns for a 3 ms sleep");
        assert!(
            u128::from(measured) <= outer.as_nanos(),
            "{measured} ns within {outer:?}"
        );
        assert_eq!(start.nanos_since(end), 0);
    }
}
