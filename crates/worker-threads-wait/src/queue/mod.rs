//! The hand-off queues under ports and pools: an unbounded [`List`] and a bounded
//! [`Array`], both lock-free, many-producer many-consumer, and closable: **a close is a
//! mark bit in the queue's tail index**, set by one read-modify-write and checked by the
//! same compare-and-swap that claims a slot. So a push either claims its slot before the
//! mark (and its message is delivered: a pop reports `Closed` only once every slot claimed
//! before the mark has been taken) or fails and hands the message back. No lock or
//! counter beside the queue keeps that promise, so a push costs one locked instruction.
//!
//! The design is the one crossbeam-channel's `list` and `array` flavors use (Dmitry
//! Vyukov's bounded queue, and linked blocks of slots for the unbounded one), written here
//! for our own needs: a close that is part of the index, a pop that tells "empty" from
//! "closed and drained", and every atomic and cell taken from [`crate::sync`], so that the
//! loom models (`tests/loom_queue.rs`) check this code itself.
//!
//! Neither queue parks anybody: who sleeps on "not empty" or "not full" is a
//! [`Waiters`](crate::Waiters) list kept beside the queue by its owner, woken after a push,
//! a pop or a close (the order that makes that safe is argued in `waiters.rs`).

mod array;
mod list;

pub use array::Array;
pub use list::List;

/// Why a push failed; the message comes back.
///
/// # Examples
///
/// ```
/// use worker_threads_wait::queue::{Array, PushError};
///
/// let queue = Array::new(1);
/// queue.push(1).unwrap();
/// assert!(matches!(queue.push(2), Err(PushError::Full(2))));
/// queue.close();
/// assert_eq!(queue.push(3).unwrap_err().into_inner(), 3);
/// ```
#[derive(Debug, PartialEq, Eq)]
pub enum PushError<T> {
    /// A bounded queue is full.
    Full(T),
    /// The queue was closed.
    Closed(T),
}

impl<T> PushError<T> {
    /// The message that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(msg) | PushError::Closed(msg) => msg,
        }
    }
}

/// Why a pop found nothing.
///
/// # Examples
///
/// ```
/// use worker_threads_wait::queue::{List, PopError};
///
/// let queue = List::<u8>::new();
/// assert_eq!(queue.pop(), Err(PopError::Empty));
/// queue.close();
/// assert_eq!(queue.pop(), Err(PopError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// Nothing is queued now.
    Empty,
    /// Closed, and everything pushed before the close has been taken.
    Closed,
}
