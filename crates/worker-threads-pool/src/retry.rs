//! How a failed task is tried again: BullMQ's `attempts` and `backoff`, one meaning for a
//! local [`Pool`](crate::Pool) and a `RemotePool`.

use std::time::Duration;

use crate::error::TaskError;

/// How many times a task is tried, and how long it waits between tries (BullMQ's
/// `attempts` and `backoff`). A try that fails with a panic of the handler
/// ([`TaskError::Panicked`]) or the end of its worker process ([`TaskError::Crashed`],
/// [`TaskError::LimitExceeded`]) is followed by another, after the back-off, until
/// `attempts` tries were made; then the task resolves [`TaskError::Retried`] with the
/// last failure and the number of tries. A cancel, a deadline, or an error a new try
/// cannot change (`BadTask`, `BadResult`) ends the task at once.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_pool::{Backoff, Retry};
///
/// // Three tries in all: the second 100 ms after the first failed, the third 200 ms
/// // after the second did.
/// let retry = Retry::attempts(3).backoff(Backoff::exponential(Duration::from_millis(100)));
/// assert_eq!(retry.delay_before(2), Some(Duration::from_millis(100)));
/// assert_eq!(retry.delay_before(3), Some(Duration::from_millis(200)));
/// assert_eq!(retry.delay_before(4), None, "no fourth try");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    attempts: u32,
    backoff: Backoff,
}

/// The wait before each new try of a [`Retry`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_pool::Backoff;
///
/// let fixed = Backoff::Fixed(Duration::from_millis(50));
/// assert_eq!(fixed.delay(1), Duration::from_millis(50));
/// assert_eq!(fixed.delay(5), Duration::from_millis(50));
/// let doubling = Backoff::exponential(Duration::from_millis(50)).max(Duration::from_millis(120));
/// assert_eq!(doubling.delay(1), Duration::from_millis(50));
/// assert_eq!(doubling.delay(2), Duration::from_millis(100));
/// assert_eq!(doubling.delay(3), Duration::from_millis(120), "capped");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backoff {
    /// The next try is queued as soon as one fails.
    Immediate,
    /// The same wait before every new try.
    Fixed(Duration),
    /// `first` before the second try, twice that before the third, and so on, never more
    /// than `max` (BullMQ's `exponential`: `delay * 2^(attemptsMade - 1)`).
    Exponential {
        /// The wait after the first failure.
        first: Duration,
        /// The longest wait.
        max: Duration,
    },
}

/// The longest wait [`Backoff::exponential`] leaves by default: an hour.
const LONGEST: Duration = Duration::from_secs(3600);

impl Backoff {
    /// Doubling waits from `first`, at most an hour (change it with [`max`](Self::max)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_pool::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1));
    /// assert_eq!(backoff.delay(4), Duration::from_secs(8));
    /// assert_eq!(backoff.delay(30), Duration::from_secs(3600), "an hour at most");
    /// ```
    pub const fn exponential(first: Duration) -> Self {
        Self::Exponential {
            first,
            max: LONGEST,
        }
    }

    /// The same back-off with its waits capped at `max` (a fixed one is capped too).
    #[must_use]
    pub fn max(self, max: Duration) -> Self {
        match self {
            Self::Immediate => Self::Immediate,
            Self::Fixed(delay) => Self::Fixed(delay.min(max)),
            Self::Exponential { first, .. } => Self::Exponential { first, max },
        }
    }

    /// The wait after the `failures`-th failure (1 for the first), before the next try.
    pub fn delay(&self, failures: u32) -> Duration {
        match *self {
            Self::Immediate => Duration::ZERO,
            Self::Fixed(delay) => delay,
            Self::Exponential { first, max } => {
                let doublings = failures.saturating_sub(1).min(63);
                let factor = 1u64 << doublings;
                let nanos = first.as_nanos().saturating_mul(u128::from(factor));
                let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
                Duration::from_nanos(nanos).min(max)
            }
        }
    }
}

impl Retry {
    /// `attempts` tries in all, the first included (BullMQ's `attempts`; 0 counts as 1),
    /// each queued again as soon as the last one failed. Choose a wait with
    /// [`backoff`](Self::backoff).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_pool::Retry;
    ///
    /// let retry = Retry::attempts(2);
    /// assert_eq!(retry.max_attempts(), 2);
    /// assert_eq!(retry.delay_before(2), Some(Duration::ZERO), "at once");
    /// assert_eq!(Retry::attempts(0).max_attempts(), 1, "the first try is always made");
    /// ```
    pub const fn attempts(attempts: u32) -> Self {
        Self {
            attempts: if attempts == 0 { 1 } else { attempts },
            backoff: Backoff::Immediate,
        }
    }

    /// The same tries, waiting `backoff` before each new one.
    #[must_use]
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The tries in all, the first included.
    pub const fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait before each new try.
    pub const fn delays(&self) -> Backoff {
        self.backoff
    }

    /// The wait before try number `attempt` (2 for the first retry), or `None` if the
    /// policy makes no such try.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        (attempt >= 2 && attempt <= self.attempts).then(|| self.backoff.delay(attempt - 1))
    }

    /// Whether a try that failed with `error` is tried again (when tries are left): a
    /// panic, or the end of the worker process. Anything else ends the task.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_pool::{Retry, TaskError};
    ///
    /// assert!(Retry::retries(&TaskError::Panicked("boom".into())));
    /// assert!(Retry::retries(&TaskError::Crashed { signal: Some(9) }));
    /// assert!(!Retry::retries(&TaskError::Cancelled));
    /// assert!(!Retry::retries(&TaskError::TimedOut));
    /// ```
    pub fn retries(error: &TaskError) -> bool {
        match error {
            TaskError::Panicked(_) | TaskError::Crashed { .. } => true,
            #[cfg(feature = "process")]
            TaskError::LimitExceeded { .. } => true,
            _ => false,
        }
    }

    /// What a task resolves with when its try number `attempt` failed with `error` and no
    /// try follows: the error itself for a task with one try, else
    /// [`TaskError::Retried`].
    pub fn give_up(&self, attempt: u32, error: TaskError) -> TaskError {
        if self.attempts == 1 || !Self::retries(&error) {
            error
        } else {
            TaskError::Retried {
                attempts: attempt,
                last: Box::new(error),
            }
        }
    }
}

impl Default for Retry {
    /// One try, no retry.
    fn default() -> Self {
        Self::attempts(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_the_first_and_stop_at_the_cap() {
        let ms = Duration::from_millis;
        let retry = Retry::attempts(5).backoff(Backoff::exponential(ms(10)).max(ms(50)));
        let waits: Vec<_> = (1..=6).map(|attempt| retry.delay_before(attempt)).collect();
        assert_eq!(
            waits,
            vec![
                None,
                Some(ms(10)),
                Some(ms(20)),
                Some(ms(40)),
                Some(ms(50)),
                None
            ]
        );
        // Huge attempt numbers saturate instead of overflowing.
        assert_eq!(Backoff::exponential(ms(1)).delay(u32::MAX), LONGEST);
        assert_eq!(Retry::attempts(0).max_attempts(), 1);
        assert_eq!(Retry::attempts(3).delay_before(2), Some(Duration::ZERO));
        assert_eq!(
            Retry::attempts(3)
                .backoff(Backoff::Fixed(ms(7)))
                .delay_before(3),
            Some(ms(7))
        );
    }

    #[test]
    fn a_panic_is_retried_and_given_up_with_the_count_a_cancel_is_not() {
        let retry = Retry::attempts(3);
        let panic = TaskError::Panicked("boom".into());
        assert!(Retry::retries(&panic));
        assert!(Retry::retries(&TaskError::Crashed { signal: Some(9) }));
        assert!(!Retry::retries(&TaskError::Cancelled));
        assert!(!Retry::retries(&TaskError::TimedOut));
        assert!(!Retry::retries(&TaskError::BadTask("x".into())));
        assert_eq!(
            retry.give_up(3, panic.clone()),
            TaskError::Retried {
                attempts: 3,
                last: Box::new(panic.clone())
            }
        );
        assert_eq!(Retry::attempts(1).give_up(1, panic.clone()), panic);
        assert_eq!(retry.give_up(2, TaskError::Cancelled), TaskError::Cancelled);
    }
}
