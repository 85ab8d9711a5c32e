//! Borrowing iterators over received messages, shared by ports and broadcast channels.
//! (A port's owning iterator, `IntoIter`, is in `port.rs`.)

use std::fmt;

use crate::queue::Inbox;
use worker_threads_wait::Deadline;

/// A blocking iterator over received messages, from
/// [`MessagePort::iter`](crate::MessagePort::iter) or
/// [`BroadcastChannel::iter`](crate::BroadcastChannel::iter). It ends when the port is
/// closed and drained.
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
