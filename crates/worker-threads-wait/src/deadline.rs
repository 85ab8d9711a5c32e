//! Deadlines: a timeout turned into an instant once, that cannot overflow. A timeout too
//! long for `Instant` to hold (`Duration::MAX`, say) is no deadline at all, never a panic.

use std::time::{Duration, Instant};

/// When a wait gives up: never, or at an instant.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_wait::Deadline;
///
/// assert_eq!(Deadline::from_timeout(None), Deadline::Never);
/// assert!(Deadline::after(Duration::ZERO).has_passed());
/// assert!(!Deadline::after(Duration::from_secs(60)).has_passed());
/// assert_eq!(Deadline::Never.remaining(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// Wait as long as it takes.
    Never,
    /// Give up at this instant.
    At(Instant),
}

impl Deadline {
    /// `timeout` from now; [`Never`](Self::Never) if that instant cannot be represented.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_wait::Deadline;
    ///
    /// assert!(Deadline::after(Duration::from_secs(1)).instant().is_some());
    /// assert_eq!(Deadline::after(Duration::MAX), Deadline::Never); // past what an Instant holds
    /// ```
    pub fn after(timeout: Duration) -> Self {
        Instant::now()
            .checked_add(timeout)
            .map_or(Self::Never, Self::At)
    }

    /// [`after`](Self::after) for an optional timeout (`None`: never).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_wait::Deadline;
    ///
    /// assert_eq!(Deadline::from_timeout(None), Deadline::Never);
    /// assert!(matches!(Deadline::from_timeout(Some(Duration::from_secs(1))), Deadline::At(_)));
    /// ```
    pub fn from_timeout(timeout: Option<Duration>) -> Self {
        timeout.map_or(Self::Never, Self::after)
    }

    /// An optional instant as a deadline (`None`: never).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use worker_threads_wait::Deadline;
    ///
    /// let now = Instant::now();
    /// assert_eq!(Deadline::from_instant(Some(now)), Deadline::At(now));
    /// assert_eq!(Deadline::from_instant(None), Deadline::Never);
    /// ```
    pub fn from_instant(at: Option<Instant>) -> Self {
        at.map_or(Self::Never, Self::At)
    }

    /// The instant, if there is one.
    pub fn instant(self) -> Option<Instant> {
        match self {
            Self::Never => None,
            Self::At(at) => Some(at),
        }
    }

    /// True once the deadline is now or past.
    pub fn has_passed(self) -> bool {
        match self {
            Self::Never => false,
            Self::At(at) => Instant::now() >= at,
        }
    }

    /// The time left: `None` for no deadline, zero once it has passed.
    pub fn remaining(self) -> Option<Duration> {
        match self {
            Self::Never => None,
            Self::At(at) => Some(at.saturating_duration_since(Instant::now())),
        }
    }
}

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_past_what_an_instant_holds_is_no_deadline() {
        assert_eq!(Deadline::after(Duration::MAX), Deadline::Never);
        assert_eq!(Deadline::from_timeout(Some(Duration::MAX)), Deadline::Never);
        assert_eq!(Deadline::Never.remaining(), None);
        assert!(!Deadline::Never.has_passed());
    }

    #[test]
    fn a_deadline_counts_down_to_zero_and_stays_there() {
        let deadline = Deadline::after(Duration::from_secs(3600));
        let left = deadline.remaining().unwrap();
        assert!(left <= Duration::from_secs(3600) && left > Duration::from_secs(3500));
        assert!(!deadline.has_passed());
        let passed = Deadline::At(Instant::now() - Duration::from_millis(1));
        assert_eq!(passed.remaining(), Some(Duration::ZERO));
        assert!(passed.has_passed());
        assert_eq!(Deadline::from_instant(None), Deadline::Never);
    }
}
