//! The primitives everything here is built on: std's, or loom's under
//! `--cfg worker_threads_loom` (see the crate doc).

#[cfg(not(worker_threads_loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};

#[cfg(worker_threads_loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard, atomic};

/// Threads: std's, or loom's under `--cfg worker_threads_loom`.
pub mod thread {
    #[cfg(not(worker_threads_loom))]
    pub use std::thread::{Thread, current, park, spawn, yield_now};

    #[cfg(worker_threads_loom)]
    pub use loom::thread::{Thread, current, park, spawn, yield_now};
}

/// A spin-loop hint: std's, or under loom a yield to its scheduler.
#[inline]
pub fn spin_loop() {
    #[cfg(not(worker_threads_loom))]
    std::hint::spin_loop();
    #[cfg(worker_threads_loom)]
    loom::hint::spin_loop();
}

/// The point where a store and a later load of another location must be ordered (the
/// two sides of a "publish, then look for a sleeper" / "register, then look for the
/// thing" pair). In a normal build the operations on both sides are `SeqCst` (a `SeqCst`
/// read-modify-write or store, then a `SeqCst` load), which the memory model orders
/// through its single total order, and this is only a compiler fence; loom treats
/// `SeqCst` accesses as acquire/release, so under loom this is the `SeqCst` fence that
/// makes the model check the same order.
#[inline]
pub fn order_point() {
    #[cfg(not(worker_threads_loom))]
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    #[cfg(worker_threads_loom)]
    loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// An `UnsafeCell` with loom's closure API (`with`, `with_mut`), so that code written
/// once is checked by loom (which tracks every access) and costs nothing otherwise.
///
/// # Examples
///
/// ```
/// use worker_threads_wait::sync::UnsafeCell;
///
/// let cell = UnsafeCell::new(1);
/// // SAFETY: no other reference to the cell's value exists while these run.
/// cell.with_mut(|value| unsafe { *value += 1 });
/// assert_eq!(cell.with(|value| unsafe { *value }), 2);
/// ```
#[derive(Debug)]
pub struct UnsafeCell<T> {
    #[cfg(not(worker_threads_loom))]
    inner: std::cell::UnsafeCell<T>,
    #[cfg(worker_threads_loom)]
    inner: loom::cell::UnsafeCell<T>,
}

impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = worker_threads_wait::sync::UnsafeCell::new(String::from("kept"));
    /// // SAFETY: the only access.
    /// assert_eq!(cell.with(|value| unsafe { (&*value).len() }), 4);
    /// ```
    pub fn new(value: T) -> Self {
        Self {
            #[cfg(not(worker_threads_loom))]
            inner: std::cell::UnsafeCell::new(value),
            #[cfg(worker_threads_loom)]
            inner: loom::cell::UnsafeCell::new(value),
        }
    }

    /// Runs `f` with a pointer for reading.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(worker_threads_loom))]
        return f(self.inner.get());
        #[cfg(worker_threads_loom)]
        return self.inner.with(f);
    }

    /// Runs `f` with a pointer for writing.
    #[inline]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(worker_threads_loom))]
        return f(self.inner.get());
        #[cfg(worker_threads_loom)]
        return self.inner.with_mut(f);
    }
}
