//! Waiting for what a reader thread hands over.
//!
//! A message crosses two wake-ups: the kernel wakes the reader thread blocked on the
//! socket, and the reader wakes the receiving thread. The second one is avoidable: a
//! receiver that yields a few times before it parks is usually still awake when the
//! reader hands over, and a parked thread costs a futex wake and a reschedule (several
//! microseconds on small VMs) on every message.
//!
//! The hand-over queues are flume channels, for their async receive and `Stream`.

use flume::{Receiver, RecvError, TryRecvError};

/// `try_recv`s interleaved with `yield_now` before a blocking `recv`.
const YIELDS: usize = 64;

/// `rx.recv()`, yielding the CPU a few times before parking.
pub(crate) fn recv<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let handed_over = worker_threads_wait::yield_for(YIELDS, || match rx.try_recv() {
        Ok(value) => Some(Ok(value)),
        Err(TryRecvError::Disconnected) => Some(Err(RecvError::Disconnected)),
        Err(TryRecvError::Empty) => None,
    });
    handed_over.unwrap_or_else(|| rx.recv())
}
