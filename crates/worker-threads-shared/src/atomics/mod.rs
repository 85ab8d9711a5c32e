//! `Atomics.wait` / `Atomics.notify` / `Atomics.waitAsync` on the cells of a
//! [`SharedArrayBuffer`] (or any `AtomicI32`/`AtomicI64`).
//!
//! # Protocol
//!
//! [`wait`] compares the cell with `expected` (`NotEqual` at once if it differs), then
//! spins briefly (`worker_threads_wait::spin_while`, about a microsecond) watching the cell, then
//! sleeps in the kernel: the futex on Linux (`FUTEX_WAIT` compares the cell with
//! `expected` atomically with going to sleep, so a change made before the sleep is never
//! missed), a parking table elsewhere (which re-checks under its lock). [`notify`] wakes
//! sleepers. The documented idiom, store then notify, never loses a wake-up: a waiter that
//! is still spinning sees the store, and one that is asleep gets the notify.
//!
//! Two departures from the letter of `Atomics.wait`, both the futex's: `Ok` means "look
//! at the cell again" (a spinning waiter returns `Ok` when it sees the cell change, before
//! any notify; the kernel may wake spuriously), and [`notify`] counts the sleepers it woke,
//! not the waiters still spinning (they need no wake-up).
//!
//! The 32-bit forms use a shared (not private) futex, so they also work across processes
//! on a shared mapping. The 64-bit forms use a process-local parking table: the futex
//! watches 32 bits, and watching half of a 64-bit cell would be a mixed-size access.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use worker_threads_wait::sync::{Mutex, MutexGuard};
use worker_threads_wait::{Deadline, spin_while};

use crate::buffer::SharedArrayBuffer;
use crate::error::ViewError;

#[cfg(target_os = "linux")]
mod futex;
mod parking;

/// How one sleep in the kernel ended.
enum Park {
    Woken,
    Changed,
    TimedOut,
    Interrupted,
}

/// How a [`wait`] ended: Node's `"ok"`, `"not-equal"` and `"timed-out"`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::AtomicI32;
/// use std::time::Duration;
/// use worker_threads_shared::atomics::{self, WaitResult};
///
/// let cell = AtomicI32::new(5);
/// assert_eq!(atomics::wait(&cell, 4, None), WaitResult::NotEqual);
/// assert_eq!(atomics::wait(&cell, 5, Some(Duration::from_millis(1))), WaitResult::TimedOut);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitResult {
    /// Woken by a notify, or the cell changed while waiting: look at it again.
    Ok,
    /// The cell did not hold `expected` when the wait began.
    NotEqual,
    /// The timeout passed.
    TimedOut,
}

/// The common loop of the 32- and 64-bit waits: `sleep(remaining)` until something other
/// than an interruption ends it.
fn sleep_until(deadline: Deadline, mut sleep: impl FnMut(Option<Duration>) -> Park) -> WaitResult {
    loop {
        let remaining = deadline.remaining();
        if remaining.is_some_and(|remaining| remaining.is_zero()) {
            return WaitResult::TimedOut;
        }
        match sleep(remaining) {
            Park::Woken | Park::Changed => return WaitResult::Ok,
            Park::TimedOut => return WaitResult::TimedOut,
            Park::Interrupted => continue,
        }
    }
}

/// Waits until notified while `cell` holds `expected`: Node's `Atomics.wait(i32a, index,
/// expected, timeout)`. `None` waits forever.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::Ordering;
/// use worker_threads_shared::{SharedArrayBuffer, atomics::{self, WaitResult}};
///
/// let sab = SharedArrayBuffer::new(4);
/// let flag = sab.clone();
/// let waker = std::thread::spawn(move || {
///     flag.as_i32()[0].store(1, Ordering::SeqCst);
///     atomics::notify(&flag.as_i32()[0], 1);
/// });
/// let cell = &sab.as_i32()[0];
/// while cell.load(Ordering::SeqCst) == 0 {
///     atomics::wait(cell, 0, None);
/// }
/// waker.join().unwrap();
/// assert_eq!(atomics::wait(cell, 0, None), WaitResult::NotEqual);
/// ```
pub fn wait(cell: &AtomicI32, expected: i32, timeout: Option<Duration>) -> WaitResult {
    if cell.load(Ordering::SeqCst) != expected {
        return WaitResult::NotEqual;
    }
    wait_after_check(cell, expected, timeout)
}

/// The rest of [`wait`], once the cell was seen to hold `expected`: a change from now on
/// ends the wait with `Ok`.
fn wait_after_check(cell: &AtomicI32, expected: i32, timeout: Option<Duration>) -> WaitResult {
    let deadline = Deadline::from_timeout(timeout);
    if !spin_while(|| cell.load(Ordering::SeqCst) == expected) {
        return WaitResult::Ok;
    }
    let word = as_u32(cell);
    sleep_until(deadline, |remaining| {
        sleep32(word, expected as u32, remaining)
    })
}

/// Wakes up to `count` threads sleeping in [`wait`] on `cell`; returns how many it woke.
/// Node's `Atomics.notify(i32a, index, count)`; [`notify_all`] for `+Infinity`.
pub fn notify(cell: &AtomicI32, count: u32) -> usize {
    wake32(as_u32(cell), count)
}

/// Wakes every thread sleeping in [`wait`] on `cell`; returns how many.
pub fn notify_all(cell: &AtomicI32) -> usize {
    notify(cell, u32::MAX)
}

/// [`wait`] for a 64-bit cell (Node's `Atomics.wait` on a `BigInt64Array`). Process-local.
pub fn wait64(cell: &AtomicI64, expected: i64, timeout: Option<Duration>) -> WaitResult {
    if cell.load(Ordering::SeqCst) != expected {
        return WaitResult::NotEqual;
    }
    let deadline = Deadline::from_timeout(timeout);
    if !spin_while(|| cell.load(Ordering::SeqCst) == expected) {
        return WaitResult::Ok;
    }
    let key = std::ptr::from_ref(cell) as usize;
    sleep_until(deadline, |remaining| {
        parking::wait(key, || cell.load(Ordering::SeqCst) == expected, remaining)
    })
}

/// [`notify`] for a 64-bit cell.
pub fn notify64(cell: &AtomicI64, count: u32) -> usize {
    parking::wake(std::ptr::from_ref(cell) as usize, count)
}

/// Waits asynchronously: Node's `Atomics.waitAsync(i32a, index, expected, timeout)` on the
/// `index`th `i32` of `buffer`. If the cell does not hold `expected`, the future is ready
/// at once with `NotEqual`; otherwise a helper thread waits (cancelling the future does not
/// stop that thread before a notify or the timeout).
///
/// # Errors
///
/// The [`ViewError`] of viewing `buffer` as `i32`s; [`ViewError::OutOfBounds`] for an
/// index past the end.
///
/// # Cancel safety
///
/// Dropping the future loses nothing (a wait has no value to lose), but the helper thread
/// it started waits on until a notify or the timeout; a notify it consumes still counts
/// in [`notify`]'s return value, as a woken waiter.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), worker_threads_shared::ViewError> {
/// use std::sync::atomic::Ordering;
/// use worker_threads_shared::{SharedArrayBuffer, atomics::{self, WaitResult}};
///
/// let sab = SharedArrayBuffer::new(4);
/// let waiting = atomics::wait_async(&sab, 0, 0, None)?;
/// sab.as_i32()[0].store(1, Ordering::SeqCst);
/// atomics::notify(&sab.as_i32()[0], 1);
/// assert_eq!(waiting.await, WaitResult::Ok);
/// # Ok(())
/// # }
/// ```
pub fn wait_async(
    buffer: &SharedArrayBuffer,
    index: usize,
    expected: i32,
    timeout: Option<Duration>,
) -> Result<WaitAsync, ViewError> {
    let cells = buffer.try_as_i32()?;
    let Some(cell) = cells.get(index) else {
        return Err(ViewError::OutOfBounds {
            start: index * 4,
            end: index * 4 + 4,
            byte_len: buffer.byte_len(),
        });
    };
    let state = Arc::new(Mutex::new(AsyncState::default()));
    if cell.load(Ordering::SeqCst) != expected {
        lock(&state).result = Some(WaitResult::NotEqual);
        return Ok(WaitAsync { state });
    }
    let buffer = buffer.clone();
    let shared = Arc::clone(&state);
    let spawned = thread::Builder::new()
        .name("atomics-wait-async".into())
        .spawn(move || {
            // The value was checked at the call: a change since then ends the wait.
            let result = wait_after_check(&buffer.as_i32()[index], expected, timeout);
            let waker = {
                let mut state = lock(&shared);
                state.result = Some(result);
                state.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        });
    if spawned.is_err() {
        // No thread to wait on: wait here instead, for the timeout or a notify.
        lock(&state).result = Some(wait_after_check(cell, expected, timeout));
    }
    Ok(WaitAsync { state })
}

#[derive(Default)]
struct AsyncState {
    result: Option<WaitResult>,
    waker: Option<Waker>,
}

fn lock(state: &Mutex<AsyncState>) -> MutexGuard<'_, AsyncState> {
    worker_threads_wait::lock(state)
}

/// The future of [`wait_async`].
///
/// # Examples
///
/// ```
/// use worker_threads_shared::{SharedArrayBuffer, atomics::{self, WaitResult}};
///
/// let sab = SharedArrayBuffer::new(4);
/// // The cell holds 0, not 1: the future is ready at once.
/// let waiting = atomics::wait_async(&sab, 0, 1, None)?;
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// assert_eq!(runtime.block_on(waiting), WaitResult::NotEqual);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a future does nothing unless awaited"]
#[derive(Debug)]
pub struct WaitAsync {
    state: Arc<Mutex<AsyncState>>,
}

impl std::fmt::Debug for AsyncState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncState")
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

impl Future for WaitAsync {
    type Output = WaitResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WaitResult> {
        let mut state = lock(&self.state);
        match state.result {
            Some(result) => Poll::Ready(result),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The cell's bits as the `AtomicU32` the futex wants.
fn as_u32(cell: &AtomicI32) -> &AtomicU32 {
    // SAFETY: `AtomicI32` and `AtomicU32` have the same size, alignment and bit validity
    // (both are 4-byte integers with interior mutability); the reference keeps the borrow
    // of `cell`, and both types are only accessed atomically, at the same size.
    unsafe { &*std::ptr::from_ref(cell).cast::<AtomicU32>() }
}

#[cfg(target_os = "linux")]
fn sleep32(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Park {
    futex::wait(word, expected, timeout)
}

#[cfg(target_os = "linux")]
fn wake32(word: &AtomicU32, count: u32) -> usize {
    futex::wake(word, count)
}

#[cfg(not(target_os = "linux"))]
fn sleep32(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Park {
    let key = std::ptr::from_ref(word) as usize;
    parking::wait(key, || word.load(Ordering::SeqCst) == expected, timeout)
}

#[cfg(not(target_os = "linux"))]
fn wake32(word: &AtomicU32, count: u32) -> usize {
    parking::wake(std::ptr::from_ref(word) as usize, count)
}
