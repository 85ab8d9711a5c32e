//! One direction of a port: an [`Outbox`] that posts into a queue and an [`Inbox`] that
//! receives from it, sharing a [`CloseSignal`] with everything that closes together.
//!
//! # The queue and why it is not flume
//!
//! The queue is a crossbeam-channel (`unbounded` or `bounded(cap)`). Measured on the
//! 2-core VMs we target, flume's queue moves 4.8 M msgs/s one way where crossbeam's moves
//! 20 M, and flume parks a receiver at once (a ~50-80 us futex wake on those VMs). The
//! async side, which crossbeam lacks, is the [`Gate`] of each inbox (an event-listener
//! `Event` and a counter word, in the `worker-threads-wait` crate).
//!
//! # Receiving: spin, then park, and why no wake-up is lost
//!
//! A receive first tries the queue, then spins and yields with a
//! [`crossbeam_utils::Backoff`] (about a microsecond, the time a peer thread on another
//! core takes to answer), and only then parks. Parking is a crossbeam `Select` over two
//! operations: the queue, and the *wake* channel of the close signal, which never carries a
//! message but whose only sender is dropped by [`CloseSignal::close`]. So a parked receiver
//! wakes for a message (crossbeam's own guarantee) or for a close (a dropped sender makes
//! every `Select` on that channel ready, whenever it parked: before or after the drop).
//!
//! Async receivers register in the inbox's [`Gate`]: they `listen()` on its event, then
//! count themselves in its `gate` word (the async-waiter half) with a `SeqCst`
//! read-modify-write, then look at the queue and the closed flag a second time before they
//! sleep. A post puts its message in the queue, then leaves the gate with a `SeqCst`
//! read-modify-write (see below) and notifies only if the value it read counts a waiter.
//! Both RMWs are on one location, so they are ordered: if the receiver's comes first, the
//! poster reads it and notifies the listener registered before it; if the poster's comes
//! first, the receiver's RMW reads from it and so synchronises with it, and its second look
//! sees the message. A close sets its flag (`SeqCst`) and notifies every event
//! unconditionally, under the event's lock that `listen()` also takes. Posts notify with
//! `additional`, so that two quick posts wake two receivers, not one twice.
//!
//! The waiter count exists because event-listener 5 takes a lock in every `notify`, even
//! with no listener: that alone cut one-way throughput from 18 M to 4.6 M msgs/s.
//!
//! A port whose peer is in another process (the [`remote`](crate::remote) hooks) spins
//! differently: for up to [`PUMP_WATCH`] it reads the socket itself ([`Pump`]), with the
//! reader thread's wait paused, and only then spins and parks as above.
//!
//! # Closing: what was accepted is delivered, what was not is handed back
//!
//! A close sets the flag, which makes every later post fail with the message handed back.
//! A receive reports `Closed` only when the flag is set *and* the queue is empty (or every
//! sender is gone), so everything accepted before the close is delivered first.
//!
//! "Accepted before the close" needs care, because a post checks the flag and then sends:
//! a receiver could see "closed and empty" between the two, and the post would then
//! return `Ok` for a message nobody will read. So a post is a short critical section
//! counted in the gate's poster half: enter (`SeqCst` RMW), look at the flag (`SeqCst`),
//! `try_send` (never blocks), leave (`SeqCst` RMW). A receiver that finds the queue empty
//! and the flag set waits until no post is inside, then looks once more. By the single
//! order of `SeqCst` operations, either a poster entered before the receiver read the
//! count (the receiver waits for it to leave, and its leaving RMW publishes the message to
//! the receiver's second look), or it entered after: then its look at the flag comes after
//! the close, and it hands the message back. A poster blocked on a full queue parks
//! *outside* the section (crossbeam `Select::ready`, then a fresh `try_send` inside it),
//! so a receiver never waits for a parked poster.
//!
//! A port with a [`Sink`] runs it in place of `try_send`, inside the section: it writes
//! the message to the socket without waiting, or queues it (never blocking either way),
//! so a close still waits for every post that looked at the flag before it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use crossbeam_utils::Backoff;

use worker_threads_wait::{AsyncWait, Deadline, Gate, Waiting};

use crate::close::{CloseSignal, Ended};
use crate::error::{PostTimeoutError, RecvError, RecvTimeoutError, TryPostError, TryRecvError};
use crate::remote::{Posted, Pump, Sink};
use crate::termination;

/// How long a receive whose port has a [`Pump`] reads the socket before it parks: about
/// a round trip to another process that answers at once.
const PUMP_WATCH: Duration = Duration::from_micros(50);

/// Creates one direction: its queue and the inbox's [`Gate`] (which the caller hands to
/// the close signal).
pub(crate) fn direction<T>(cap: Option<usize>) -> (cb::Sender<T>, cb::Receiver<T>, Arc<Gate>) {
    let (tx, rx) = match cap {
        Some(cap) => cb::bounded(cap),
        None => cb::unbounded(),
    };
    (tx, rx, Gate::new())
}

/// The posting half of a direction.
pub(crate) struct Outbox<T> {
    tx: cb::Sender<T>,
    arrived: Arc<Gate>,
    close: Arc<CloseSignal>,
    /// Set on a port whose peer is in another process (`remote`).
    sink: Option<Arc<dyn Sink<T>>>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            arrived: Arc::clone(&self.arrived),
            close: Arc::clone(&self.close),
            sink: self.sink.clone(),
        }
    }
}

impl<T> Outbox<T> {
    /// `close` is the signal of the *posting* side: a post fails once it is closed.
    pub(crate) fn new(tx: cb::Sender<T>, arrived: Arc<Gate>, close: Arc<CloseSignal>) -> Self {
        Self {
            tx,
            arrived,
            close,
            sink: None,
        }
    }

    #[cfg_attr(not(all(target_os = "linux", feature = "process")), allow(dead_code))]
    pub(crate) fn set_sink(&mut self, sink: Arc<dyn Sink<T>>) {
        self.sink = Some(sink);
    }

    /// Posts, waiting for room until `deadline`.
    pub(crate) fn post(&self, msg: T, deadline: Deadline) -> Result<(), PostTimeoutError<T>> {
        match self.try_post(msg) {
            Ok(()) => Ok(()),
            Err(TryPostError::Closed(msg)) => Err(PostTimeoutError::Closed(msg)),
            Err(TryPostError::Full(msg)) => self.post_when_room(msg, deadline),
        }
    }

    /// Posts if the port is open and the queue has room: the critical section of the
    /// module doc, which a receiver that saw the close waits out.
    pub(crate) fn try_post(&self, msg: T) -> Result<(), TryPostError<T>> {
        self.arrived.enter_post();
        if self.close.is_closed() {
            self.arrived.leave_post(false);
            if self.close.ended() == Some(Ended::Terminated) {
                termination::note_seen();
            }
            return Err(TryPostError::Closed(msg));
        }
        if let Some(sink) = &self.sink {
            let posted = sink.post(msg, &mut |msg| {
                self.tx.try_send(msg).map_err(cb::TrySendError::into_inner)
            });
            self.arrived
                .leave_post(matches!(posted, Ok(Posted::Queued)));
            return posted.map(drop).map_err(TryPostError::Closed);
        }
        let sent = self.tx.try_send(msg);
        self.arrived.leave_post(sent.is_ok());
        sent.map_err(|err| match err {
            cb::TrySendError::Full(msg) => TryPostError::Full(msg),
            cb::TrySendError::Disconnected(msg) => TryPostError::Closed(msg),
        })
    }

    /// The slow path of a bounded, full queue: spin, then park until there is room, the
    /// port closes, or the deadline passes. Parking waits for readiness only; the send
    /// itself is always a [`try_post`](Self::try_post), inside the critical section.
    fn post_when_room(&self, mut msg: T, deadline: Deadline) -> Result<(), PostTimeoutError<T>> {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if deadline.has_passed() {
                return Err(PostTimeoutError::Timeout(msg));
            }
            backoff.snooze();
            msg = match self.try_post(msg) {
                Ok(()) => return Ok(()),
                Err(TryPostError::Closed(msg)) => return Err(PostTimeoutError::Closed(msg)),
                Err(TryPostError::Full(msg)) => msg,
            };
        }
        loop {
            // Ready means room in the queue, or the wake channel closed (the port closed);
            // either way the next `try_post` tells which, and a spurious or stolen
            // readiness just parks again.
            let mut select = cb::Select::new();
            select.send(&self.tx);
            select.recv(&self.close.wake_rx);
            let ready = match deadline {
                Deadline::Never => Ok(select.ready()),
                Deadline::At(at) => select.ready_deadline(at),
            };
            if ready.is_err() {
                return Err(PostTimeoutError::Timeout(msg));
            }
            msg = match self.try_post(msg) {
                Ok(()) => return Ok(()),
                Err(TryPostError::Closed(msg)) => return Err(PostTimeoutError::Closed(msg)),
                Err(TryPostError::Full(msg)) => msg,
            };
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

/// The receiving half of a direction.
pub(crate) struct Inbox<T> {
    rx: cb::Receiver<T>,
    arrived: Arc<Gate>,
    close: Arc<CloseSignal>,
    /// Set on a port whose peer is in another process (`remote`).
    pump: Option<Arc<dyn Pump>>,
}

impl<T> Clone for Inbox<T> {
    fn clone(&self) -> Self {
        Self {
            rx: self.rx.clone(),
            arrived: Arc::clone(&self.arrived),
            close: Arc::clone(&self.close),
            pump: self.pump.clone(),
        }
    }
}

impl<T> Inbox<T> {
    pub(crate) fn new(rx: cb::Receiver<T>, arrived: Arc<Gate>, close: Arc<CloseSignal>) -> Self {
        Self {
            rx,
            arrived,
            close,
            pump: None,
        }
    }

    #[cfg_attr(not(all(target_os = "linux", feature = "process")), allow(dead_code))]
    pub(crate) fn set_pump(&mut self, pump: Arc<dyn Pump>) {
        self.pump = Some(pump);
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let ended = self.close.ended();
        if ended == Some(Ended::Terminated) {
            termination::note_seen();
            return Err(TryRecvError::Terminated);
        }
        match self.rx.try_recv() {
            Ok(msg) => Ok(msg),
            Err(cb::TryRecvError::Disconnected) => Err(self.ended_error()),
            Err(cb::TryRecvError::Empty) if self.close.is_closed() => {
                // A post that passed its closed check before the close may not have landed
                // yet: wait until no post is inside its section, then one more look
                // delivers it (module doc).
                self.arrived.wait_for_posters();
                self.rx.try_recv().map_err(|_| self.ended_error())
            }
            Err(cb::TryRecvError::Empty) => Err(TryRecvError::Empty),
        }
    }

    /// The error for a queue that will never deliver again.
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
    /// [`TerminationSignal`](crate::TerminationSignal), if any, ends the wait too.
    pub(crate) fn recv(&self, deadline: Deadline) -> Result<T, RecvTimeoutError> {
        // The fast path: a message is waiting. The thread's signal is looked up only once
        // the queue was found empty (it costs a thread-local borrow and an `Arc` clone).
        match self.try_recv() {
            Ok(msg) => return Ok(msg),
            Err(TryRecvError::Empty) => {}
            Err(ended) => return Err(ended.into_timeout_error()),
        }
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
                        std::hint::spin_loop();
                    }
                }
                // Stop reading, then spin and park as on any port.
                Some(_) => pumping = None,
                None if backoff.is_completed() => {
                    return self.park(deadline, thread_signal.as_deref());
                }
                None => backoff.snooze(),
            }
            match self.try_recv() {
                Ok(msg) => return Ok(msg),
                Err(TryRecvError::Empty) => {}
                Err(ended) => return Err(ended.into_timeout_error()),
            }
        }
    }

    fn park(
        &self,
        deadline: Deadline,
        thread_signal: Option<&CloseSignal>,
    ) -> Result<T, RecvTimeoutError> {
        let mut select = cb::Select::new();
        let queue = select.recv(&self.rx);
        let closed = select.recv(&self.close.wake_rx);
        if let Some(signal) = thread_signal {
            select.recv(&signal.wake_rx);
        }
        let op = match deadline {
            Deadline::Never => select.select(),
            Deadline::At(at) => match select.select_deadline(at) {
                Ok(op) => op,
                Err(cb::SelectTimeoutError) => return Err(RecvTimeoutError::Timeout),
            },
        };
        if op.index() == queue {
            return op
                .recv(&self.rx)
                .map_err(|_| self.ended_error().into_timeout_error());
        }
        if op.index() != closed {
            // The thread's termination signal: its wake channel only becomes ready closed.
            if let Some(signal) = thread_signal {
                let _ = op.recv(&signal.wake_rx);
            }
            termination::note_seen();
            return Err(RecvTimeoutError::Terminated);
        }
        let _ = op.recv(&self.close.wake_rx);
        // Closed: deliver what is left (unless terminated), then say so.
        self.try_recv()
            .map_err(|_| self.ended_error().into_timeout_error())
    }

    pub(crate) async fn recv_async(&self) -> Result<T, RecvError> {
        loop {
            match self.try_recv() {
                Ok(msg) => return Ok(msg),
                Err(TryRecvError::Empty) => {}
                Err(ended) => return Err(ended.into_recv_error()),
            }
            let (_waiting, listener) = Waiting::register(&self.arrived);
            match self.try_recv() {
                Ok(msg) => return Ok(msg),
                Err(TryRecvError::Empty) => listener.await,
                Err(ended) => return Err(ended.into_recv_error()),
            }
        }
    }

    /// Polls for a message, keeping `wait` registered between polls: the poll form of
    /// [`recv_async`](Self::recv_async), for streams.
    pub(crate) fn poll_recv(
        &self,
        wait: &mut Option<AsyncWait>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        loop {
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
            match wait {
                // Registered: look at the queue once more (the loop) before sleeping.
                None => *wait = Some(AsyncWait::register(&self.arrived)),
                Some(registered) => match Pin::new(&mut registered.listener).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    // Notified: the listener is spent; look, and register anew if empty.
                    Poll::Ready(()) => *wait = None,
                },
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rx.len()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.rx.capacity()
    }

    pub(crate) fn close_signal(&self) -> &Arc<CloseSignal> {
        &self.close
    }
}
