//! One direction of a port: its queue, and who sleeps on it.

use worker_threads_wait::Waiters;
use worker_threads_wait::queue::{Array, List, PopError, PushError};
use worker_threads_wait::sync::Arc;

use crate::close::Closable;
use crate::queue::rendezvous::Rendezvous;

/// The queue of a direction: unbounded, bounded, or a rendezvous.
enum Flavor<T> {
    List(List<T>),
    Array(Array<T>),
    Rendezvous(Rendezvous<T>),
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The message is in the queue.
    Queued,
    /// The message is in a rendezvous port's slot, under this ticket: the poster waits
    /// until it is taken.
    Offered(u64),
}

/// A queue with the receivers asleep on it ("a message, or a close") and the posters
/// asleep on it ("room, or a close"; for a rendezvous, "my message taken").
pub(crate) struct Direction<T> {
    queue: Flavor<T>,
    pub(crate) receivers: Waiters,
    pub(crate) senders: Waiters,
}

impl<T> Direction<T> {
    /// A direction holding at most `cap` messages (`None`: unbounded; `Some(0)`: a
    /// rendezvous).
    pub(crate) fn new(cap: Option<usize>) -> Arc<Self> {
        let queue = match cap {
            None => Flavor::List(List::new()),
            Some(0) => Flavor::Rendezvous(Rendezvous::new()),
            Some(cap) => Flavor::Array(Array::new(cap)),
        };
        Arc::new(Self {
            queue,
            receivers: Waiters::new(),
            senders: Waiters::new(),
        })
    }

    /// Pushes `msg` without waiting, and wakes a sleeping receiver.
    #[inline]
    pub(crate) fn push(&self, msg: T) -> Result<Pushed, PushError<T>> {
        let pushed = match &self.queue {
            Flavor::List(list) => list
                .push(msg)
                .map(|()| Pushed::Queued)
                .map_err(PushError::Closed),
            Flavor::Array(array) => array.push(msg).map(|()| Pushed::Queued),
            Flavor::Rendezvous(one) => one.push(msg).map(Pushed::Offered),
        }?;
        self.receivers.notify_one();
        Ok(pushed)
    }

    /// Takes the oldest message, and wakes a poster waiting for room (or for its
    /// rendezvous).
    #[inline]
    pub(crate) fn pop(&self) -> Result<T, PopError> {
        match &self.queue {
            Flavor::List(list) => list.pop(),
            Flavor::Array(array) => {
                let msg = array.pop()?;
                self.senders.notify_one();
                Ok(msg)
            }
            Flavor::Rendezvous(one) => {
                let msg = one.pop()?;
                // The poster waiting for this take, and any waiting for the slot.
                self.senders.notify_all();
                Ok(msg)
            }
        }
    }

    /// Whether a receiver that registered should look again rather than sleep.
    #[inline]
    pub(crate) fn is_ready(&self) -> bool {
        match &self.queue {
            Flavor::List(list) => list.is_ready(),
            Flavor::Array(array) => array.is_ready(),
            Flavor::Rendezvous(one) => one.is_ready(),
        }
    }

    /// Whether a poster that registered for room should look again rather than sleep.
    pub(crate) fn has_room(&self) -> bool {
        match &self.queue {
            Flavor::List(_) => true,
            Flavor::Array(array) => array.has_room(),
            Flavor::Rendezvous(one) => one.has_room(),
        }
    }

    /// Whether a rendezvous poster's message (`ticket`) was taken, or the port closed:
    /// what it looks at after it registered.
    pub(crate) fn taken_or_closed(&self, ticket: u64) -> bool {
        match &self.queue {
            Flavor::Rendezvous(one) => one.taken(ticket) || one.is_closed(),
            Flavor::List(_) | Flavor::Array(_) => true,
        }
    }

    /// A rendezvous poster gives up: its message back if no receiver took it.
    pub(crate) fn retract(&self, ticket: u64) -> Option<T> {
        match &self.queue {
            Flavor::Rendezvous(one) => one.retract(ticket),
            Flavor::List(_) | Flavor::Array(_) => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match &self.queue {
            Flavor::List(list) => list.len(),
            Flavor::Array(array) => array.len(),
            Flavor::Rendezvous(one) => one.len(),
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        match &self.queue {
            Flavor::List(_) => None,
            Flavor::Array(array) => Some(array.capacity()),
            Flavor::Rendezvous(_) => Some(0),
        }
    }
}

/// `dir` as a close signal holds it. (Under loom, through a wrapper: the direction
/// itself is held by loom's `Arc`, whose drops loom orders, and a trait object cannot be
/// made from that.)
pub(crate) fn closer<T: Send + 'static>(dir: &Arc<Direction<T>>) -> std::sync::Arc<dyn Closable> {
    #[cfg(not(worker_threads_loom))]
    return Arc::clone(dir) as _;
    #[cfg(worker_threads_loom)]
    return std::sync::Arc::new(LoomCloser(Arc::clone(dir)));
}

#[cfg(worker_threads_loom)]
struct LoomCloser<T>(Arc<Direction<T>>);

#[cfg(worker_threads_loom)]
impl<T: Send> Closable for LoomCloser<T> {
    fn close(&self) {
        self.0.close();
    }
}

impl<T: Send> Closable for Direction<T> {
    /// Marks the queue closed (what was pushed before is still popped), then wakes
    /// everybody asleep on it: they look again and see the close.
    fn close(&self) {
        match &self.queue {
            Flavor::List(list) => list.close(),
            Flavor::Array(array) => array.close(),
            Flavor::Rendezvous(one) => one.close(),
        };
        self.receivers.notify_all();
        self.senders.notify_all();
    }
}
