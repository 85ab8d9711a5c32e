//! Locks and condvar waits that survive poisoning: a panic while a lock was held (a
//! user's handler, a hook) must not turn every later caller's lock into a second panic.
//! The state under our locks is kept consistent at every await point, so the guard of a
//! poisoned lock is used as it is.

use std::sync::{LockResult, PoisonError};

use crate::deadline::Deadline;
use crate::sync::{Condvar, Mutex, MutexGuard};

/// The guard of a lock result, poisoned or not: the one poison recovery of the workspace,
/// for any lock (std's or loom's `Mutex` and `RwLock`, whose results are std's
/// `LockResult`).
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, RwLock};
/// use worker_threads_wait::Unpoison;
///
/// let shared = Arc::new(RwLock::new(vec![1]));
/// let poisoner = Arc::clone(&shared);
/// let _ = std::thread::spawn(move || {
///     let _guard = poisoner.write().unwrap();
///     panic!("a handler panicked while holding the lock");
/// })
/// .join();
/// assert!(shared.is_poisoned());
/// shared.write().unpoison().push(2); // the state stays usable
/// assert_eq!(*shared.read().unpoison(), [1, 2]);
/// ```
pub trait Unpoison<G> {
    /// The guard, whether or not another thread panicked while holding the lock.
    fn unpoison(self) -> G;
}

impl<G> Unpoison<G> for LockResult<G> {
    #[inline]
    fn unpoison(self) -> G {
        self.unwrap_or_else(PoisonError::into_inner)
    }
}

/// Locks `mutex`, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unpoison()
}

/// Waits on `condvar` (spurious wake-ups included: callers loop on their condition).
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unpoison()
}

/// Waits on `condvar` until `deadline`; the guard, and true if the deadline has passed
/// (callers loop on their condition, and on false).
pub fn wait_until<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Deadline,
) -> (MutexGuard<'a, T>, bool) {
    match deadline.remaining() {
        None => (wait(condvar, guard), false),
        Some(remaining) if remaining.is_zero() => (guard, true),
        Some(remaining) => {
            let (guard, _) = condvar.wait_timeout(guard, remaining).unpoison();
            (guard, deadline.has_passed())
        }
    }
}

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_poisoned_lock_still_locks_with_its_value() {
        let mutex = Arc::new(Mutex::new(7));
        let poisoner = Arc::clone(&mutex);
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 7);
    }

    #[test]
    fn wait_until_a_passed_deadline_returns_at_once_and_says_so() {
        let (mutex, condvar) = (Mutex::new(()), Condvar::new());
        let (_guard, passed) = wait_until(&condvar, lock(&mutex), Deadline::after(Duration::ZERO));
        assert!(passed);
    }

    #[test]
    fn wait_until_a_short_deadline_waits_at_least_that_long() {
        let (mutex, condvar) = (Mutex::new(()), Condvar::new());
        let start = std::time::Instant::now();
        let deadline = Deadline::after(Duration::from_millis(20));
        let mut guard = lock(&mutex);
        loop {
            let (next, passed) = wait_until(&condvar, guard, deadline);
            guard = next;
            if passed {
                break;
            }
        }
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
