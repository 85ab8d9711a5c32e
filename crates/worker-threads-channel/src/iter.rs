//! Borrowing iterators over received messages, shared by ports and broadcast channels.
//! (A port's owning iterator, `IntoIter`, is in `port.rs`.)

use std::fmt;

use crate::queue::Inbox;
use worker_threads_wait::Deadline;

/// A blocking iterator over received messages, from
/// [`MessagePort::iter`](crate::MessagePort::iter) or
/// [`BroadcastChannel::iter`](crate::BroadcastChannel::iter). It ends when the port is
/// closed and drained.
///
/// # Examples
///
/// ```
/// let worker_threads_channel::MessageChannel { port1, port2 } =
///     worker_threads_channel::MessageChannel::new();
/// for i in 1..=3 {
///     port1.post_message(i).unwrap();
/// }
/// drop(port1);
/// // Blocks for each message, ends when the port is closed and drained.
/// assert_eq!(port2.iter().sum::<i32>(), 6);
/// ```
pub struct Iter<'a, T> {
    inbox: &'a Inbox<T>,
}

impl<'a, T> Iter<'a, T> {
    pub(crate) fn new(inbox: &'a Inbox<T>) -> Self {
        Self { inbox }
    }
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.inbox.recv(Deadline::Never).ok()
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

/// A non-blocking iterator over the messages waiting now, from
/// [`MessagePort::try_iter`](crate::MessagePort::try_iter) or [`BroadcastChannel::try_iter`](crate::BroadcastChannel::try_iter).
///
/// # Examples
///
/// ```
/// let worker_threads_channel::MessageChannel { port1, port2 } =
///     worker_threads_channel::MessageChannel::new();
/// port1.post_message(1).unwrap();
/// port1.post_message(2).unwrap();
/// // What is waiting now, without blocking; the port stays open.
/// assert_eq!(port2.try_iter().collect::<Vec<_>>(), [1, 2]);
/// assert_eq!(port2.try_iter().count(), 0);
/// ```
pub struct TryIter<'a, T> {
    inbox: &'a Inbox<T>,
}

impl<'a, T> TryIter<'a, T> {
    pub(crate) fn new(inbox: &'a Inbox<T>) -> Self {
        Self { inbox }
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.inbox.try_recv().ok()
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").finish_non_exhaustive()
    }
}
