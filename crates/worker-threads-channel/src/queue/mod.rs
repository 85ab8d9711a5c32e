//! One direction of a port: an [`Outbox`] that posts into a queue and an [`Inbox`] that
//! receives from it, sharing a [`CloseSignal`] with everything that closes together.
//!
//! # The queue, and the promise it keeps itself
//!
//! The queue is ours (`worker_threads_wait::queue`): a linked list of blocks for an
//! unbounded port, a ring for a bounded one, a one-slot meeting point under a lock for a
//! rendezvous (`bounded(0)`). Its close is a mark bit in its tail index, set by one
//! read-modify-write and checked by the compare-and-swap that claims a slot. So a post
//! either claims its slot before the close (and is delivered: a receive reports `Closed`
//! only once every slot claimed before the mark has been taken) or fails and hands the
//! message back, and a post costs one locked instruction: no lock or counter beside the
//! queue. A [`CloseSignal`] records *why* a port ended (closed, or terminated) before it
//! marks the queues.
//!
//! # Receiving: spin, then park, and why no wake-up is lost
//!
//! A receive first tries the queue, then spins and yields with a `Backoff` (about a
//! microsecond, the time a peer thread on another core takes to answer), and only then
//! parks. To park it **registers** in the direction's `receivers` (and in the calling
//! thread's termination signal, if one is installed), **looks again** (the queue is not
//! empty, or is closed; the signal is raised), and sleeps only if nothing changed. A post
//! **claims its slot, then looks for a sleeper** (`Waiters::notify_one`); a close **marks
//! the queue, then wakes every sleeper**. The argument that one of the two always sees
//! the other (a `SeqCst` claim or mark, then a `SeqCst` load of the list's flag; a
//! `SeqCst` store of the flag, then `SeqCst` loads of the indices) is in
//! `worker_threads_wait`'s `waiters.rs`; loom checks it on this code
//! (`worker_threads_wait/tests/loom_queue.rs`, and `tests/loom_port.rs` here). A post
//! with no sleeper pays one load for it. Async receivers register their `Waker` in the
//! same list, so a post wakes a blocked thread and a pending future alike; each notify
//! wakes one more sleeper, so two quick posts wake two receivers.
//!
//! A port whose peer is in another process (the [`remote`](crate::remote) hooks) spins
//! differently: for up to [`PUMP_WATCH`] it reads the socket itself ([`Pump`]), with the
//! reader thread's wait paused, and only then parks as above.
//!
//! # Closing: what was accepted is delivered, what was not is handed back
//!
//! A closed port's receive delivers every message posted before the close, then reports
//! `Closed`; a terminated one fails at once (its messages are dropped with the queue).
//! A post to a port with a [`Sink`] checks the close first (so a post after `close`
//! returned fails), then lets the sink send the message or queue it; the close race of
//! such a post is the sink's to keep (`remote.rs`): a message it sent on the socket must
//! reach the other process before the close does.

mod direction;
mod rendezvous;

use std::sync::Arc;
use std::task::{Context, Poll};

use std::time::{Duration, Instant};
use worker_threads_wait::sync::Arc as DirArc;

use worker_threads_wait::queue::{PopError, PushError};
use worker_threads_wait::{Backoff, Deadline, Parker, Token};

use crate::queue::direction::Pushed;
pub(crate) use crate::queue::direction::{Direction, closer};

use crate::close::{CloseSignal, Ended};
use crate::error::{PostTimeoutError, RecvError, RecvTimeoutError, TryPostError, TryRecvError};
use crate::remote::{Posted, Pump, Sink};
use crate::termination;

/// How long a receive whose port has a [`Pump`] reads the socket before it parks: about
/// a round trip to another process that answers at once.
const PUMP_WATCH: Duration = Duration::from_micros(50);

/// The posting half of a direction.
pub(crate) struct Outbox<T> {
    dir: DirArc<Direction<T>>,
    close: Arc<CloseSignal>,
    /// Set on a port whose peer is in another process (`remote`).
    sink: Option<Arc<dyn Sink<T>>>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self {
            dir: DirArc::clone(&self.dir),
            close: Arc::clone(&self.close),
            sink: self.sink.clone(),
        }
    }
}

impl<T> Outbox<T> {
    /// `close` is the signal of the *posting* side: it closes `dir` too.
    pub(crate) fn new(dir: DirArc<Direction<T>>, close: Arc<CloseSignal>) -> Self {
        Self {
            dir,
            close,
            sink: None,
        }
    }

    #[cfg_attr(not(all(target_os = "linux", feature = "process")), allow(dead_code))]
    pub(crate) fn set_sink(&mut self, sink: Arc<dyn Sink<T>>) {
        self.sink = Some(sink);
    }

    /// Posts, waiting for room (or, on a rendezvous port, for a receiver to take it)
    /// until `deadline`.
    #[inline]
    pub(crate) fn post(&self, msg: T, deadline: Deadline) -> Result<(), PostTimeoutError<T>> {
        match self.push(msg) {
            Ok(Pushed::Queued) => Ok(()),
            Ok(Pushed::Offered(ticket)) => self.await_taking(ticket, deadline),
            Err(err) => self.post_refused(err, deadline),
        }
    }

    /// A post the queue did not take at once: closed, or full (then wait for room).
    #[cold]
    fn post_refused(
        &self,
        err: PushError<T>,
        deadline: Deadline,
    ) -> Result<(), PostTimeoutError<T>> {
        match err {
            PushError::Closed(msg) => Err(PostTimeoutError::Closed(self.refused(msg))),
            PushError::Full(msg) => self.post_when_room(msg, deadline),
        }
    }

    /// Posts if the port is open and the queue has room (on a rendezvous port: if its
    /// slot is free; the message then waits there for the next receive).
    #[inline]
    pub(crate) fn try_post(&self, msg: T) -> Result<(), TryPostError<T>> {
        match self.push(msg) {
            Ok(_) => Ok(()),
            Err(PushError::Closed(msg)) => Err(TryPostError::Closed(self.refused(msg))),
            Err(PushError::Full(msg)) => Err(TryPostError::Full(msg)),
        }
    }

    #[inline]
    fn push(&self, msg: T) -> Result<Pushed, PushError<T>> {
        match &self.sink {
            None => self.dir.push(msg),
            Some(sink) => self.push_remote(&**sink, msg),
        }
    }

    /// A post to another process: refused once closed (so a post after `close` returned
    /// fails); else the sink sends it, or queues it here for its writer.
    #[inline(never)]
    fn push_remote(&self, sink: &dyn Sink<T>, msg: T) -> Result<Pushed, PushError<T>> {
        if self.close.is_closed() {
            return Err(PushError::Closed(msg));
        }
        let posted = sink.post(msg, &mut |msg| {
            self.dir.push(msg).map(drop).map_err(PushError::into_inner)
        });
        match posted {
            Ok(Posted::Sent | Posted::Queued) => Ok(Pushed::Queued),
            Err(msg) => Err(PushError::Closed(msg)),
        }
    }

    /// A message refused by a closed port, noting a termination seen on this thread.
    #[cold]
    fn refused(&self, msg: T) -> T {
        if self.close.ended() == Some(Ended::Terminated) {
            termination::note_seen();
        }
        msg
    }

    /// The slow path of a bounded, full queue: spin, then park until there is room, the
    /// port closes, or the deadline passes.
    #[cold]
    fn post_when_room(&self, mut msg: T, deadline: Deadline) -> Result<(), PostTimeoutError<T>> {
        let backoff = Backoff::new();
        loop {
            if deadline.has_passed() {
                return Err(PostTimeoutError::Timeout(msg));
            }
            if backoff.is_completed() {
                let parker = Parker::current();
                let token = self.dir.senders.register(&parker);
                if !self.dir.has_room() {
                    parker.park(deadline);
                }
                self.dir.senders.unregister(token);
            } else {
                backoff.snooze();
            }
            msg = match self.push(msg) {
                Ok(Pushed::Queued) => return Ok(()),
                Ok(Pushed::Offered(ticket)) => return self.await_taking(ticket, deadline),
                Err(PushError::Closed(msg)) => {
                    return Err(PostTimeoutError::Closed(self.refused(msg)));
                }
                Err(PushError::Full(msg)) => msg,
            };
        }
    }

    /// A rendezvous post: wait until a receiver takes the message (`Ok`), or take it back
    /// on a close or at the deadline.
    #[cold]
    fn await_taking(&self, ticket: u64, deadline: Deadline) -> Result<(), PostTimeoutError<T>> {
        while !self.dir.taken_or_closed(ticket) && !deadline.has_passed() {
            let parker = Parker::current();
            let token = self.dir.senders.register(&parker);
            if !self.dir.taken_or_closed(ticket) {
                parker.park(deadline);
            }
            self.dir.senders.unregister(token);
        }
        match self.dir.retract(ticket) {
            None => Ok(()),
            Some(msg) if self.close.is_closed() => Err(PostTimeoutError::Closed(self.refused(msg))),
            Some(msg) => Err(PostTimeoutError::Timeout(msg)),
        }
    }
}

/// A receive reading the socket of a [`Pump`]: started, and stopped when dropped.
struct Reading<'a>(&'a dyn Pump);

impl<'a> Reading<'a> {
    fn start(pump: &'a dyn Pump) -> Self {
        pump.start();
        Reading(pump)
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// An async receiver's registration in a direction's `receivers`, kept between polls (a
/// stream keeps one) and withdrawn on drop.
pub(crate) struct AsyncWait<T> {
    dir: DirArc<Direction<T>>,
    token: Option<Token>,
}

impl<T> Drop for AsyncWait<T> {
    fn drop(&mut self) {
        if let Some(token) = self.token {
            self.dir.receivers.unregister(token);
        }
    }
}

/// The receiving half of a direction.
pub(crate) struct Inbox<T> {
    dir: DirArc<Direction<T>>,
    close: Arc<CloseSignal>,
    /// Set on a port whose peer is in another process (`remote`).
    pump: Option<Arc<dyn Pump>>,
}

impl<T> Clone for Inbox<T> {
    fn clone(&self) -> Self {
        Self {
            dir: DirArc::clone(&self.dir),
            close: Arc::clone(&self.close),
            pump: self.pump.clone(),
        }
    }
}

impl<T> Inbox<T> {
    pub(crate) fn new(dir: DirArc<Direction<T>>, close: Arc<CloseSignal>) -> Self {
        Self {
            dir,
            close,
            pump: None,
        }
    }

    #[cfg_attr(not(all(target_os = "linux", feature = "process")), allow(dead_code))]
    pub(crate) fn set_pump(&mut self, pump: Arc<dyn Pump>) {
        self.pump = Some(pump);
    }

    #[inline]
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        if self.close.ended() == Some(Ended::Terminated) {
            termination::note_seen();
            return Err(TryRecvError::Terminated);
        }
        match self.dir.pop() {
            Ok(msg) => Ok(msg),
            Err(PopError::Empty) => Err(TryRecvError::Empty),
            Err(PopError::Closed) => Err(self.ended_error()),
        }
    }

    /// The error for a queue that will never deliver again.
    #[cold]
    fn ended_error(&self) -> TryRecvError {
        match self.close.ended() {
            Some(Ended::Terminated) => {
                termination::note_seen();
                TryRecvError::Terminated
            }
            Some(Ended::Closed) | None => TryRecvError::Closed,
        }
    }

    /// Receives, waiting until `deadline`: spin first (reading the socket, for a port with
    /// a [`Pump`]), then park. The calling thread's
    /// [`TerminationSignal`](crate::TerminationSignal), if any, fails it once raised, even
    /// with a message waiting (the message stays queued), and ends the wait too.
    #[inline]
    pub(crate) fn recv(&self, deadline: Deadline) -> Result<T, RecvTimeoutError> {
        if termination::raised_here() {
            return Err(terminated_here());
        }
        // The fast path: a message is waiting. The wait below takes its own handle on the
        // thread's signal (an `Arc` clone) only once the queue was found empty.
        match self.try_recv() {
            Ok(msg) => Ok(msg),
            Err(TryRecvError::Empty) => self.recv_waiting(deadline),
            Err(ended) => Err(ended.into_timeout_error()),
        }
    }

    /// The queue was empty: spin, then park.
    #[inline(never)]
    fn recv_waiting(&self, deadline: Deadline) -> Result<T, RecvTimeoutError> {
        let thread_signal = termination::current();
        let backoff = Backoff::new();
        let mut pumping = self
            .pump
            .as_deref()
            .map(|pump| (Reading::start(pump), Instant::now()));
        loop {
            if thread_signal
                .as_ref()
                .is_some_and(|signal| signal.is_closed())
            {
                termination::note_seen();
                return Err(RecvTimeoutError::Terminated);
            }
            if deadline.has_passed() {
                return Err(RecvTimeoutError::Timeout);
            }
            match &pumping {
                Some((reading, since)) if since.elapsed() < PUMP_WATCH => {
                    if !reading.0.pump() {
                        worker_threads_wait::sync::spin_loop();
                    }
                }
                // Stop reading, then spin and park as on any port.
                Some(_) => pumping = None,
                None if backoff.is_completed() => self.park(deadline, thread_signal.as_deref()),
                None => backoff.snooze(),
            }
            match self.try_recv() {
                Ok(msg) => return Ok(msg),
                Err(TryRecvError::Empty) => {}
                Err(ended) => return Err(ended.into_timeout_error()),
            }
        }
    }

    /// Registers this thread as a receiver (and on its termination signal), looks again,
    /// and parks if nothing changed: a message, a close, the signal, or the deadline
    /// wakes it. The caller looks at the queue afterwards.
    fn park(&self, deadline: Deadline, thread_signal: Option<&CloseSignal>) {
        let parker = Parker::current();
        let token = self.dir.receivers.register(&parker);
        let signal_token = thread_signal.map(|signal| signal.sleepers.register(&parker));
        let terminated = thread_signal.is_some_and(CloseSignal::is_closed);
        if !terminated && !self.dir.is_ready() {
            parker.park(deadline);
        }
        self.dir.receivers.unregister(token);
        if let (Some(signal), Some(token)) = (thread_signal, signal_token) {
            signal.sleepers.unregister(token);
        }
    }

    pub(crate) async fn recv_async(&self) -> Result<T, RecvError> {
        let mut wait = None;
        std::future::poll_fn(|cx| self.poll_recv(&mut wait, cx)).await
    }

    /// Polls for a message, keeping `wait` registered between polls: the poll form of
    /// [`recv_async`](Self::recv_async), for streams. The registration is dropped with
    /// each message, so posts stop looking for this receiver once it is not waiting.
    pub(crate) fn poll_recv(
        &self,
        wait: &mut Option<AsyncWait<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        match self.try_recv() {
            Ok(msg) => {
                *wait = None;
                return Poll::Ready(Ok(msg));
            }
            Err(TryRecvError::Empty) => {}
            Err(ended) => {
                *wait = None;
                return Poll::Ready(Err(ended.into_recv_error()));
            }
        }
        // Register (or refresh the waker), then look again before sleeping.
        let registration = wait.get_or_insert_with(|| AsyncWait {
            dir: DirArc::clone(&self.dir),
            token: None,
        });
        self.dir
            .receivers
            .register_waker(cx.waker(), &mut registration.token);
        match self.try_recv() {
            Ok(msg) => {
                *wait = None;
                Poll::Ready(Ok(msg))
            }
            Err(TryRecvError::Empty) => Poll::Pending,
            Err(ended) => {
                *wait = None;
                Poll::Ready(Err(ended.into_recv_error()))
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.dir.len()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.dir.capacity()
    }

    pub(crate) fn close_signal(&self) -> &Arc<CloseSignal> {
        &self.close
    }
}

/// A blocking receive on a thread whose termination signal is raised: noted, and failed.
#[cold]
#[inline(never)]
fn terminated_here() -> RecvTimeoutError {
    termination::note_seen();
    RecvTimeoutError::Terminated
}
