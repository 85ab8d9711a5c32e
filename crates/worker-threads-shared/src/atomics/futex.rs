//! 32-bit waiting on Linux: the futex, *without* `FUTEX_PRIVATE_FLAG`, so that waiters and
//! wakers in different processes sharing a mapping meet (the kernel keys a shared futex by
//! the physical page, not the address).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

use super::Park;

pub(super) fn wait(cell: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Park {
    let timeout = timeout.map(|t| futex::Timespec {
        tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    match futex::wait(cell, futex::Flags::empty(), expected, timeout.as_ref()) {
        Ok(()) => Park::Woken,
        Err(Errno::AGAIN) => Park::Changed,
        Err(Errno::TIMEDOUT) => Park::TimedOut,
        // EINTR, or anything unexpected: look at the value again.
        Err(_) => Park::Interrupted,
    }
}

pub(super) fn wake(cell: &AtomicU32, count: u32) -> usize {
    // FUTEX_WAKE treats 0 as 1; `Atomics.notify(.., 0)` wakes nobody.
    if count == 0 {
        return 0;
    }
    // The kernel reads the count as an `int`.
    let count = count.min(i32::MAX as u32);
    futex::wake(cell, futex::Flags::empty(), count).unwrap_or(0)
}
