//! `MessageChannel` and `MessagePort`.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

use crate::close::{CloseSignal, Ended};
use crate::error::{
    PostError, PostTimeoutError, RecvError, RecvTimeoutError, TryPostError, TryRecvError,
};
use crate::iter::{Iter, TryIter};
use crate::listener::MessageListener;
use crate::queue::{AsyncWait, Direction, Inbox, Outbox, closer};
use worker_threads_wait::Deadline;

/// A pair of entangled [`MessagePort`]s: what one posts, the other receives, in order, in
/// both directions. Node's `new MessageChannel()`.
///
/// `port1` sends `A` and receives `B`; `port2` sends `B` and receives `A`. With one type
/// parameter the protocol is symmetric.
///
/// # Examples
///
/// ```
/// use worker_threads_channel::MessageChannel;
///
/// let MessageChannel { port1, port2 } = MessageChannel::new();
/// port1.post_message("ping").unwrap();
/// assert_eq!(port2.recv(), Ok("ping"));
/// port2.post_message("pong").unwrap();
/// assert_eq!(port1.recv(), Ok("pong"));
/// ```
///
/// An asymmetric protocol: requests one way, replies the other.
///
/// ```
/// use worker_threads_channel::MessageChannel;
///
/// let MessageChannel { port1: client, port2: server } = MessageChannel::<u32, String>::asymmetric();
/// client.post_message(7).unwrap();
/// let n = server.recv().unwrap();
/// server.post_message(format!("got {n}")).unwrap();
/// assert_eq!(client.recv().unwrap(), "got 7");
/// ```
pub struct MessageChannel<A, B = A> {
    /// The first end: posts `A`, receives `B`.
    pub port1: MessagePort<A, B>,
    /// The second end: posts `B`, receives `A`.
    pub port2: MessagePort<B, A>,
}

impl<T: Send + 'static> MessageChannel<T> {
    /// Creates a pair of ports with unbounded queues (posting never blocks), as in Node.
    /// Both ends carry `T`; see [`asymmetric`](MessageChannel::asymmetric) for two types.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::new();
    /// for i in 0..1000 {
    ///     port1.post_message(i).unwrap();
    /// }
    /// assert_eq!(port2.len(), 1000);
    /// ```
    pub fn new() -> Self {
        Self::with_capacity(None)
    }

    /// Creates a pair of ports whose queues each hold at most `cap` messages: a post to a
    /// full queue blocks (or, with [`try_post_message`](MessagePort::try_post_message),
    /// fails with `Full`) until the peer receives. `cap == 0` makes every post a rendezvous.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_channel::{MessageChannel, TryPostError};
    ///
    /// let MessageChannel { port1, port2 } = MessageChannel::bounded(1);
    /// port1.try_post_message(1).unwrap();
    /// assert_eq!(port1.try_post_message(2), Err(TryPostError::Full(2)));
    /// assert_eq!(port2.recv(), Ok(1));
    /// port1.try_post_message(2).unwrap();
    /// ```
    pub fn bounded(cap: usize) -> Self {
        Self::with_capacity(Some(cap))
    }
}

impl<A: Send + 'static, B: Send + 'static> MessageChannel<A, B> {
    /// Creates a pair of unbounded ports for a protocol with a type each way: `port1`
    /// posts `A` and receives `B`.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } =
    ///     worker_threads_channel::MessageChannel::<u8, bool>::asymmetric();
    /// port1.post_message(2).unwrap();
    /// port2.post_message(port2.recv().unwrap() % 2 == 0).unwrap();
    /// assert_eq!(port1.recv(), Ok(true));
    /// ```
    pub fn asymmetric() -> Self {
        Self::with_capacity(None)
    }

    /// Creates a pair of bounded ports for a protocol with a type each way; see
    /// [`bounded`](MessageChannel::bounded).
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_channel::{MessageChannel, TryPostError};
    ///
    /// let MessageChannel { port1, port2 } = MessageChannel::<u8, String>::asymmetric_bounded(1);
    /// port1.try_post_message(1).unwrap();
    /// assert_eq!(port1.try_post_message(2), Err(TryPostError::Full(2)));
    /// port2.post_message(format!("got {}", port2.recv().unwrap())).unwrap();
    /// assert_eq!(port1.recv().as_deref(), Ok("got 1"));
    /// ```
    pub fn asymmetric_bounded(cap: usize) -> Self {
        Self::with_capacity(Some(cap))
    }

    fn with_capacity(cap: Option<usize>) -> Self {
        let a = Direction::<A>::new(cap);
        let b = Direction::<B>::new(cap);
        let close = CloseSignal::new(vec![closer(&a), closer(&b)]);
        tracing::trace!(?cap, "message channel created");
        Self {
            port1: MessagePort {
                outbox: Outbox::new(a.clone(), Arc::clone(&close)),
                inbox: Inbox::new(b.clone(), Arc::clone(&close)),
                waiting: None,
                transferred: AtomicBool::new(false),
            },
            port2: MessagePort {
                outbox: Outbox::new(b, Arc::clone(&close)),
                inbox: Inbox::new(a, close),
                waiting: None,
                transferred: AtomicBool::new(false),
            },
        }
    }
}

impl<T: Send + 'static> Default for MessageChannel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A, B> fmt::Debug for MessageChannel<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageChannel")
            .field("port1", &self.port1)
            .field("port2", &self.port2)
            .finish()
    }
}

/// One end of a [`MessageChannel`]: posts `S`, receives `R`.
///
/// A port is an ordinary value: it can be moved into a message, into a worker's data or a
/// thread, and whoever holds it talks to the other end directly. Moving it is Node's
/// transfer list, checked by the compiler:
///
/// ```compile_fail,E0382
/// use worker_threads_channel::MessageChannel;
///
/// let MessageChannel { port1, port2 } = MessageChannel::<MessageChannel<u8>>::new();
/// let inner = MessageChannel::<u8>::new();
/// port1.post_message(inner).unwrap();
/// inner.port1.post_message(1).unwrap(); // error: `inner` was moved into the message
/// ```
///
/// A message must be `Send`, so an `Rc` cannot cross threads:
///
/// ```compile_fail,E0277
/// use std::rc::Rc;
/// let ports = worker_threads_channel::MessageChannel::<Rc<u8>>::new(); // error: `Rc<u8>` is not `Send`
/// ```
///
/// Dropping a port closes the pair, as [`close`](MessagePort::close) does. A port is
/// `Sync`: several threads may post (and receive) through one `&MessagePort`.
pub struct MessagePort<S, R = S> {
    outbox: Outbox<S>,
    inbox: Inbox<R>,
    /// The async registration [`poll_recv`](Self::poll_recv) keeps between polls.
    waiting: Option<AsyncWait<R>>,
    /// Set when this handle was sent to another process: its drop leaves the pair open
    /// (the relay's handle holds it).
    transferred: AtomicBool,
}

impl<S, R> MessagePort<S, R> {
    /// Posts `msg` to the other end. It never blocks on an unbounded port; on a bounded
    /// port it waits for room. Node's `port.postMessage(msg)`.
    ///
    /// # Errors
    ///
    /// [`PostError::Closed`] with the message if either end was closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::new();
    /// port1.post_message(vec![1, 2, 3]).unwrap();
    /// assert_eq!(port2.recv().unwrap(), [1, 2, 3]);
    /// drop(port2);
    /// assert_eq!(port1.post_message(vec![4]).unwrap_err().into_inner(), [4]);
    /// ```
    pub fn post_message(&self, msg: S) -> Result<(), PostError<S>> {
        self.outbox
            .post(msg, Deadline::Never)
            .map_err(|err| match err {
                PostTimeoutError::Closed(msg) | PostTimeoutError::Timeout(msg) => {
                    PostError::Closed(msg)
                }
            })
    }

    /// Posts `msg` if that can be done without waiting.
    ///
    /// # Errors
    ///
    /// [`TryPostError::Full`] if a bounded port is full, [`TryPostError::Closed`] if the
    /// port is closed; both hold the message.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::bounded(1);
    /// assert!(port1.try_post_message('a').is_ok());
    /// assert!(port1.try_post_message('b').unwrap_err().is_full());
    /// ```
    pub fn try_post_message(&self, msg: S) -> Result<(), TryPostError<S>> {
        self.outbox.try_post(msg)
    }

    /// Posts `msg`, waiting at most `timeout` for room on a bounded port.
    ///
    /// # Errors
    ///
    /// [`PostTimeoutError::Timeout`] or [`PostTimeoutError::Closed`], with the message.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::bounded(0);
    /// let err = port1.post_timeout(1, Duration::from_millis(1)).unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.into_inner(), 1);
    /// ```
    pub fn post_timeout(&self, msg: S, timeout: Duration) -> Result<(), PostTimeoutError<S>> {
        self.outbox.post(msg, Deadline::after(timeout))
    }

    /// Posts `msg`, waiting until `deadline` at most for room on a bounded port.
    ///
    /// # Errors
    ///
    /// As [`post_timeout`](Self::post_timeout).
    pub fn post_deadline(&self, msg: S, deadline: Instant) -> Result<(), PostTimeoutError<S>> {
        self.outbox.post(msg, Deadline::At(deadline))
    }

    /// Receives the next message, waiting for one. Node's `port.on('message')`, one at a
    /// time.
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once the port is closed and every message posted before the
    /// close has been received.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::new();
    /// std::thread::spawn(move || port1.post_message(42).unwrap());
    /// assert_eq!(port2.recv(), Ok(42));
    /// // port1 was dropped when its thread ended: the pair is closed.
    /// assert!(port2.recv().is_err());
    /// ```
    pub fn recv(&self) -> Result<R, RecvError> {
        self.inbox
            .recv(Deadline::Never)
            .map_err(RecvTimeoutError::into_recv_error)
    }

    /// Receives a message if one is waiting. Node's `receiveMessageOnPort(port)`.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is waiting, [`TryRecvError::Closed`] if the port is
    /// closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_channel::TryRecvError;
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::<u8>::new();
    /// assert_eq!(port2.try_recv(), Err(TryRecvError::Empty));
    /// port1.post_message(1).unwrap();
    /// port1.close();
    /// assert_eq!(port2.try_recv(), Ok(1));
    /// assert_eq!(port2.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&self) -> Result<R, TryRecvError> {
        self.inbox.try_recv()
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none came in time, [`RecvTimeoutError::Closed`]
    /// if the port is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_channel::RecvTimeoutError;
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::<u8>::new();
    /// assert_eq!(port2.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<R, RecvTimeoutError> {
        self.inbox.recv(Deadline::after(timeout))
    }

    /// Receives the next message, waiting until `deadline` at most.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<R, RecvTimeoutError> {
        self.inbox.recv(Deadline::At(deadline))
    }

    /// Receives the next message asynchronously. It works under any executor (tokio,
    /// async-std, smol, `futures::executor`): the wake-up comes from the posting thread.
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once the port is closed and drained.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes (in `tokio::select!`, or on
    /// a timeout) loses no message; a message is taken from the queue only in the poll
    /// that returns it, so the next receive gets it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::new();
    /// std::thread::spawn(move || port1.post_message("from a thread").unwrap());
    /// assert_eq!(port2.recv_async().await, Ok("from a thread"));
    /// # }
    /// ```
    pub async fn recv_async(&self) -> Result<R, RecvError> {
        self.inbox.recv_async().await
    }

    /// Polls for the next message: the poll form of [`recv_async`](Self::recv_async), for
    /// hand-written futures (tokio's `Receiver::poll_recv`). The port is also a
    /// [`Stream`] of its messages, which ends when it is closed and drained.
    ///
    /// # Errors
    ///
    /// As [`recv_async`](Self::recv_async).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_core::Stream;
    /// use worker_threads_channel::MessageChannel;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let MessageChannel { port1, port2 } = MessageChannel::new();
    /// std::thread::spawn(move || {
    ///     for n in 1..=3 {
    ///         port1.post_message(n).unwrap();
    ///     }
    /// }); // port1 drops: the stream ends after the three
    /// let mut port2 = std::pin::pin!(port2);
    /// let mut sum = 0;
    /// while let Some(n) = std::future::poll_fn(|cx| port2.as_mut().poll_next(cx)).await {
    ///     sum += n;
    /// }
    /// assert_eq!(sum, 6);
    /// # }
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<R, RecvError>> {
        self.inbox.poll_recv(&mut self.waiting, cx)
    }

    /// A blocking iterator over received messages; it ends when the port is closed and
    /// drained. `for msg in &port` does the same.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::new();
    /// std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         port1.post_message(i).unwrap();
    ///     }
    /// });
    /// assert_eq!(port2.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, R> {
        Iter::new(&self.inbox)
    }

    /// An iterator over the messages waiting now; it never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::new();
    /// port1.post_message(1).unwrap();
    /// port1.post_message(2).unwrap();
    /// assert_eq!(port2.try_iter().sum::<i32>(), 3);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, R> {
        TryIter::new(&self.inbox)
    }

    /// Closes the pair: later posts on either end fail and return their message; what was
    /// posted before is still delivered, then `recv` on either end says `Closed`. Threads
    /// blocked in `recv` or in a bounded `post_message` wake at once. Closing twice does
    /// nothing. Node's `port.close()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::new();
    /// port1.post_message("before").unwrap();
    /// port1.close();
    /// assert!(port1.post_message("after").is_err());
    /// assert!(port2.post_message("after").is_err());
    /// assert_eq!(port2.recv(), Ok("before"));
    /// assert!(port2.recv().is_err());
    /// ```
    pub fn close(&self) {
        if self.inbox.close_signal().close(Ended::Closed) {
            tracing::trace!("message port closed");
        }
    }

    /// Closes the pair as *terminated*: receives on either end fail at once with
    /// [`RecvError::Terminated`] (messages still waiting are dropped, as Node drops the
    /// messages of a terminated worker), posts fail with [`PostError::Closed`] and their
    /// message, blocked threads wake. A pair that was already closed stays as it was.
    /// This is what `Worker::terminate` does to a worker's parent port.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_channel::{MessageChannel, RecvError};
    ///
    /// let MessageChannel { port1, port2 } = MessageChannel::new();
    /// port1.post_message("dropped").unwrap();
    /// port1.terminate();
    /// assert_eq!(port2.recv(), Err(RecvError::Terminated));
    /// assert!(port2.post_message("refused").is_err());
    /// ```
    pub fn terminate(&self) {
        if self.inbox.close_signal().close(Ended::Terminated) {
            tracing::trace!("message port terminated");
        }
    }

    /// True if the pair was closed by [`terminate`](Self::terminate).
    pub fn is_terminated(&self) -> bool {
        self.inbox.close_signal().ended() == Some(Ended::Terminated)
    }

    /// True once either end was closed or dropped. Messages may still be waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::<()>::new();
    /// assert!(!port1.is_closed());
    /// drop(port2);
    /// assert!(port1.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inbox.close_signal().is_closed()
    }

    /// The number of messages waiting to be received.
    pub fn len(&self) -> usize {
        self.inbox.len()
    }

    /// True if no message is waiting to be received.
    pub fn is_empty(&self) -> bool {
        self.inbox.len() == 0
    }

    /// The bound of each queue of the pair, `None` if unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(worker_threads_channel::MessageChannel::<u8>::bounded(8).port1.capacity(), Some(8));
    /// assert_eq!(worker_threads_channel::MessageChannel::<u8>::new().port1.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.inbox.capacity()
    }

    pub(crate) fn inbox(&self) -> &Inbox<R> {
        &self.inbox
    }

    /// Makes this port's posts and receives cross to another process themselves, on the
    /// posting and receiving threads (see [`remote`](crate::remote)): what a process
    /// worker's ports are given. Only for an unbounded port (a [`Sink`](crate::remote::Sink)
    /// queues what it cannot send at once without waiting for room).
    #[cfg(all(target_os = "linux", feature = "process"))]
    pub fn set_remote(
        &mut self,
        sink: Arc<dyn crate::remote::Sink<S>>,
        pump: Arc<dyn crate::remote::Pump>,
    ) {
        debug_assert_eq!(self.inbox.capacity(), None, "a remote port is unbounded");
        self.outbox.set_sink(sink);
        self.inbox.set_pump(pump);
    }

    /// A second handle on this end, for the relay that carries it to another process;
    /// this one no longer closes the pair when dropped. `None` if it was transferred
    /// already.
    #[cfg_attr(not(all(target_os = "linux", feature = "process")), allow(dead_code))]
    pub(crate) fn transfer(&self) -> Option<MessagePort<S, R>> {
        if self.transferred.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(MessagePort {
            outbox: self.outbox.clone(),
            inbox: self.inbox.clone(),
            waiting: None,
            transferred: AtomicBool::new(false),
        })
    }
}

/// Receives a message if one is waiting: Node's `receiveMessageOnPort(port)`, the same as
/// [`MessagePort::try_recv`] with `None` for "nothing waiting" and for "closed".
///
/// # Examples
///
/// ```
/// use worker_threads_channel::{MessageChannel, receive_message_on_port};
///
/// let MessageChannel { port1, port2 } = MessageChannel::new();
/// port1.post_message("hello").unwrap();
/// assert_eq!(receive_message_on_port(&port2), Some("hello"));
/// assert_eq!(receive_message_on_port(&port2), None);
/// ```
pub fn receive_message_on_port<S, R>(port: &MessagePort<S, R>) -> Option<R> {
    port.try_recv().ok()
}

impl<S, R> Drop for MessagePort<S, R> {
    fn drop(&mut self) {
        if !*self.transferred.get_mut() {
            self.close();
        }
    }
}

impl<S, R> fmt::Debug for MessagePort<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessagePort")
            .field("waiting", &self.len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<'a, S, R> IntoIterator for &'a MessagePort<S, R> {
    type Item = R;
    type IntoIter = Iter<'a, R>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<S, R> IntoIterator for MessagePort<S, R> {
    type Item = R;
    type IntoIter = IntoIter<S, R>;

    fn into_iter(self) -> Self::IntoIter {
        IntoIter::new(self)
    }
}

impl<S: Send + 'static, R: Send + 'static> MessagePort<S, R> {
    /// Runs `handler` for each received message on a thread of its own, until the port is
    /// closed and drained. The handler gets the port too, to reply. Node's
    /// `port.on('message', handler)`.
    ///
    /// # Errors
    ///
    /// The OS error if the thread could not be started (the port is then dropped, which
    /// closes the pair).
    ///
    /// # Examples
    ///
    /// An echo, as in Node's `port.on('message', (m) => port.postMessage(m))`: whatever
    /// comes in goes back out.
    ///
    /// ```
    /// let worker_threads_channel::MessageChannel { port1, port2 } = worker_threads_channel::MessageChannel::new();
    /// let echo = port1.on_message(|msg, port| {
    ///     let _ = port.post_message(msg);
    /// })?;
    /// port2.post_message("Hello, World!").unwrap();
    /// assert_eq!(port2.recv(), Ok("Hello, World!"));
    /// echo.stop().expect("the handler does not panic");
    /// assert!(port2.is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_message<F>(self, mut handler: F) -> io::Result<MessageListener>
    where
        F: FnMut(R, &Self) + Send + 'static,
    {
        let close = Arc::clone(self.inbox.close_signal());
        MessageListener::spawn(close, "port-on-message", move || {
            for msg in self.iter() {
                handler(msg, &self);
            }
        })
    }
}

/// A blocking iterator that owns its port, from `for msg in port`. It ends when the port
/// is closed and drained; dropping it closes the port.
///
/// # Examples
///
/// ```
/// let worker_threads_channel::MessageChannel { port1, port2 } =
///     worker_threads_channel::MessageChannel::new();
/// port1.post_message("a").unwrap();
/// port1.post_message("b").unwrap();
/// drop(port1);
/// let received: Vec<&str> = port2.into_iter().collect();
/// assert_eq!(received, ["a", "b"]);
/// ```
pub struct IntoIter<S, R> {
    port: MessagePort<S, R>,
}

impl<S, R> IntoIter<S, R> {
    pub(crate) fn new(port: MessagePort<S, R>) -> Self {
        Self { port }
    }
}

impl<S, R> Iterator for IntoIter<S, R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        self.port.inbox().recv(Deadline::Never).ok()
    }
}

impl<S, R> fmt::Debug for IntoIter<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("port", &self.port)
            .finish()
    }
}

/// The messages the port receives, until it is closed and drained (or terminated):
/// `StreamExt::next`, `tokio::select!` and the like work on a port. Dropping a pending
/// `next()` loses no message (see [`MessagePort::recv_async`]).
// Nothing in it is pinned: queue handles (`Arc`s) and a registration.
impl<S, R> Unpin for MessagePort<S, R> {}

impl<S, R> Stream for MessagePort<S, R> {
    type Item = R;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<R>> {
        self.get_mut().poll_recv(cx).map(Result::ok)
    }
}
