//! The direct path of a process worker's port: a post writes its message to the socket on
//! the posting thread ([`Outgoing`]), and a receive that finds its queue empty reads the
//! socket itself while it spins ([`Incoming`]), so a message crosses between the two
//! threads that use it (see `worker_threads_channel::remote`).
//!
//! The bridge threads stay, for what the direct path does not take:
//!
//! - sending: a post goes to the port's queue for the writer (the parent's writer thread,
//!   the child's main thread) when the peer is not reading (a full socket), when it does
//!   not encode on its own (a port inside it needs the router, a message over one record
//!   needs a blocking send), or while something it queued before is still there: posts
//!   take a lock and look at a *behind* flag that a queued post sets and the writer clears
//!   once it emptied the queue, so what one thread posts stays in order;
//! - receiving: the channel's reader thread waits until the socket is readable and reads
//!   it under the same lock as a receive that reads it, so a frame is read by one of them
//!   and delivered in order; it handles what no receive waits for (`Exit`, port frames,
//!   end of file, a receiver that parked).
//!
//! Only an unbounded port takes the direct path (a bounded one keeps its back-pressure,
//! which the bridge's queue gives).

use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard};
use worker_threads_wait::Unpoison;

use serde::Serialize;
use worker_threads_channel::MessagePort;
use worker_threads_channel::remote::{Posted, Pump, Sink};
use worker_threads_process::codec::encode;
use worker_threads_process::{Channel, Frame, IpcError, Readable, fds};

use crate::process::wire::TAG_MESSAGE;

/// Whether posts may go out directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// Nothing of this port's is queued: a post may write to the socket.
    Direct,
    /// A post waits in the port's queue: later posts queue behind it.
    Behind,
    /// The writer is about to send the port's end (`Close`, `Terminate`, `Exit`): every
    /// post queues (and, the port being closed, is refused), so none can follow the end
    /// on the socket.
    Sealed,
}

/// The sending side of a port whose peer is the other end of `channel`.
///
/// # The close race
///
/// A post that the sink writes to the socket returned `Ok`, so it must reach the other
/// process before the port's end does. The port refuses posts once closed, but a post
/// that looked before a close may still be writing when the writer, having emptied the
/// port's queue, is ready to send the end. So the writer [`seal`](Self::seal)s first: it
/// takes the lock that every direct write holds (a write in progress finishes before),
/// and from then on every post goes to the port's queue, which is closed (refused, handed
/// back). The lock is the one each post takes anyway for its order.
pub(super) struct Outgoing {
    channel: Arc<Channel>,
    way: Mutex<Way>,
}

impl Outgoing {
    /// `behind` starts true where the writer must send something first (the child's
    /// `Online`): posts queue until it called [`caught_up`](Self::caught_up).
    pub(super) fn new(channel: Arc<Channel>, behind: bool) -> Arc<Outgoing> {
        let way = if behind { Way::Behind } else { Way::Direct };
        Arc::new(Outgoing {
            channel,
            way: Mutex::new(way),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Way> {
        self.way.lock().unpoison()
    }

    /// The writer sent what it took from `port`'s queue (the port this was attached to,
    /// seen from its peer): if the queue is empty now, posts go out directly again.
    pub(super) fn caught_up<S, R>(&self, port: &MessagePort<S, R>) {
        let mut way = self.lock();
        if *way == Way::Behind && port.is_empty() {
            *way = Way::Direct;
        }
    }

    /// The writer is about to send the port's end: waits out a direct write in progress
    /// and sends every later post to the (closed) queue. See the type's doc.
    pub(super) fn seal(&self) {
        *self.lock() = Way::Sealed;
    }
}

impl<T: Serialize> Sink<T> for Outgoing {
    fn post(&self, msg: T, queue: &mut dyn FnMut(T) -> Result<(), T>) -> Result<Posted, T> {
        let mut way = self.lock();
        if *way == Way::Direct {
            // Outside a router's scope a port refuses to encode: such a message goes by
            // the writer, which relays its ports.
            let (body, fds) = fds::collect(|| encode(&msg));
            if let Ok(body) = body {
                let fds: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
                if self.channel.try_send(TAG_MESSAGE, &body, &fds).is_ok() {
                    return Ok(Posted::Sent);
                }
            }
        }
        if *way == Way::Direct {
            *way = Way::Behind;
        }
        queue(msg).map(|()| Posted::Queued)
    }
}

/// What a frame read from the channel did.
pub(super) enum Flow {
    /// Handled; nothing for a receive.
    Read,
    /// A message is in a port's queue.
    Delivered,
    /// The channel is done (end of file, or a peer broke the format: then the dispatch
    /// has shut the channel down, so the reader thread wakes and sees it).
    Ended,
}

/// What to do with each frame (or the end of the channel), on whichever thread read it.
pub(super) trait Dispatch: Send {
    /// One frame (`Ok(Some)`), the end of file (`Ok(None)`), or the channel's error.
    fn frame(&mut self, frame: Result<Option<Frame>, IpcError>) -> Flow;
}

struct Reading<D> {
    buf: Vec<u8>,
    dispatch: D,
    ended: bool,
}

/// The reading side of a channel, shared by its reader thread and the receives of the
/// port it delivers to.
pub(super) struct Incoming<D> {
    /// The channel, and the reader thread's wait on it, which a receive that reads pauses.
    readable: Readable,
    reading: Mutex<Reading<D>>,
}

impl<D: Dispatch> Incoming<D> {
    pub(super) fn new(channel: Arc<Channel>, dispatch: D) -> Arc<Incoming<D>> {
        Arc::new(Incoming {
            readable: Readable::new(channel),
            reading: Mutex::new(Reading {
                buf: Vec::new(),
                dispatch,
                ended: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Reading<D>> {
        self.reading.lock().unpoison()
    }

    /// Reads and dispatches the next frame, if one is waiting (`None`: none is, or the
    /// channel ended before). Called with the read lock held.
    fn read_next(&self, reading: &mut Reading<D>) -> Option<Flow> {
        if reading.ended {
            return None;
        }
        let flow = match self.readable.channel().try_recv(&mut reading.buf) {
            Err(IpcError::Empty) => return None,
            frame => reading.dispatch.frame(frame),
        };
        if let Flow::Ended = flow {
            reading.ended = true;
        }
        Some(flow)
    }

    /// The reader thread: reads whatever arrives until the channel ended.
    pub(super) fn run(&self) {
        loop {
            let waited = self.readable.wait();
            let mut reading = self.lock();
            if let Err(error) = waited {
                reading.dispatch.frame(Err(error));
                reading.ended = true;
            }
            // Read until nothing is waiting: the frames of a burst cost one wake-up.
            while self.read_next(&mut reading).is_some() {}
            if reading.ended {
                return;
            }
        }
    }

    /// Runs `f` on the dispatch (its state once [`run`](Self::run) returned).
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut D) -> R) -> R {
        f(&mut self.lock().dispatch)
    }
}

/// Gives `port` (the one facing the channel `incoming` reads) the direct path, if it is
/// unbounded (a bounded port keeps the bridge threads, which give its back-pressure): the
/// writer must call [`Outgoing::caught_up`] after each message it sent from the port's
/// queue. `behind` as in [`Outgoing::new`].
pub(super) fn attach<S, R, D>(
    port: &mut MessagePort<S, R>,
    incoming: &Arc<Incoming<D>>,
    behind: bool,
) -> Option<Arc<Outgoing>>
where
    S: Serialize,
    D: Dispatch + 'static,
{
    if port.capacity().is_some() {
        return None;
    }
    let outgoing = Outgoing::new(Arc::clone(incoming.readable.channel()), behind);
    port.set_remote(Arc::clone(&outgoing) as _, Arc::clone(incoming) as _);
    Some(outgoing)
}

impl<D: Dispatch> Pump for Incoming<D> {
    fn start(&self) {
        self.readable.pause();
    }

    fn stop(&self) {
        self.readable.resume();
    }

    fn pump(&self) -> bool {
        let mut reading = match self.reading.try_lock() {
            Ok(reading) => reading,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        let mut read = false;
        loop {
            match self.read_next(&mut reading) {
                None => return read,
                Some(Flow::Read) => read = true,
                Some(Flow::Delivered | Flow::Ended) => return true,
            }
        }
    }
}
