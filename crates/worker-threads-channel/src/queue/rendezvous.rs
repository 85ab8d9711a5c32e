//! The queue of a rendezvous port (`bounded(0)`): one slot under a lock, and a poster that
//! waits until a receiver has taken its message. Rare, so simple: a lock, no spinning.

use worker_threads_wait::sync::Mutex;

use worker_threads_wait::lock;
use worker_threads_wait::queue::{PopError, PushError};

#[derive(Debug)]
struct One<T> {
    msg: Option<T>,
    closed: bool,
    /// Messages put in the slot so far: a put's ticket.
    puts: u64,
    /// Messages taken from the slot so far.
    takes: u64,
}

/// A one-slot meeting point (see the module doc).
#[derive(Debug)]
pub(crate) struct Rendezvous<T> {
    one: Mutex<One<T>>,
}

impl<T> Rendezvous<T> {
    pub(crate) fn new() -> Self {
        Self {
            one: Mutex::new(One {
                msg: None,
                closed: false,
                puts: 0,
                takes: 0,
            }),
        }
    }

    /// Puts `msg` in the empty slot; its ticket, to wait for its taking.
    pub(crate) fn push(&self, msg: T) -> Result<u64, PushError<T>> {
        let mut one = lock(&self.one);
        if one.closed {
            return Err(PushError::Closed(msg));
        }
        if one.msg.is_some() {
            return Err(PushError::Full(msg));
        }
        one.msg = Some(msg);
        one.puts += 1;
        Ok(one.puts)
    }

    pub(crate) fn pop(&self) -> Result<T, PopError> {
        let mut one = lock(&self.one);
        match one.msg.take() {
            Some(msg) => {
                one.takes += 1;
                Ok(msg)
            }
            None if one.closed => Err(PopError::Closed),
            None => Err(PopError::Empty),
        }
    }

    /// Whether the message of `ticket` has been taken.
    pub(crate) fn taken(&self, ticket: u64) -> bool {
        lock(&self.one).takes >= ticket
    }

    /// Takes back the message of `ticket` if no receiver took it: the poster gives up.
    pub(crate) fn retract(&self, ticket: u64) -> Option<T> {
        let mut one = lock(&self.one);
        if one.takes >= ticket {
            return None;
        }
        one.msg.take()
    }

    pub(crate) fn close(&self) -> bool {
        !std::mem::replace(&mut lock(&self.one).closed, true)
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.one).closed
    }

    pub(crate) fn is_ready(&self) -> bool {
        let one = lock(&self.one);
        one.msg.is_some() || one.closed
    }

    pub(crate) fn has_room(&self) -> bool {
        let one = lock(&self.one);
        one.msg.is_none() || one.closed
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(lock(&self.one).msg.is_some())
    }
}
