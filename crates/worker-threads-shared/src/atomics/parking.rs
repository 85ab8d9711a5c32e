//! Waiting keyed by address in a process-wide table (parking_lot_core): the 64-bit forms
//! everywhere, and the 32-bit forms where there is no futex. Process-local.

use std::time::Duration;

use parking_lot_core::{DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN, FilterOp, ParkResult};

use super::Park;

/// Parks until woken by [`wake`] on the same `key`, unless `still_expected()` is false
/// when the table is locked.
pub(super) fn wait(
    key: usize,
    still_expected: impl FnOnce() -> bool,
    timeout: Option<Duration>,
) -> Park {
    let deadline = worker_threads_wait::Deadline::from_timeout(timeout).instant();
    // SAFETY: `key` is the address of the caller's atomic cell, which only this module
    // uses as a parking key (the addresses of parking_lot's own locks cannot be the address
    // of a live atomic of ours). The callbacks do not panic and do not park.
    let result = unsafe {
        parking_lot_core::park(
            key,
            still_expected,
            || {},
            |_, _| {},
            DEFAULT_PARK_TOKEN,
            deadline,
        )
    };
    match result {
        ParkResult::Unparked(_) => Park::Woken,
        ParkResult::Invalid => Park::Changed,
        ParkResult::TimedOut => Park::TimedOut,
    }
}

/// Wakes up to `count` threads parked on `key`; returns how many.
pub(super) fn wake(key: usize, count: u32) -> usize {
    let mut left = count;
    // SAFETY: as in `wait`; the filter and callback do not panic and do not park.
    let result = unsafe {
        parking_lot_core::unpark_filter(
            key,
            |_| {
                if left == 0 {
                    FilterOp::Stop
                } else {
                    left -= 1;
                    FilterOp::Unpark
                }
            },
            |_| DEFAULT_UNPARK_TOKEN,
        )
    };
    result.unparked_threads
}
