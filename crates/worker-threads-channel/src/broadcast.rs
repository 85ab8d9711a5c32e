//! `BroadcastChannel`: every instance with the same name receives what the others post.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use worker_threads_wait::Unpoison;

use futures_core::Stream;

use crate::close::{CloseSignal, Ended};
use crate::error::{BroadcastTypeError, PostError, RecvError, RecvTimeoutError, TryRecvError};
use crate::iter::{Iter, TryIter};
use crate::listener::MessageListener;
use crate::queue::{AsyncWait, Direction, Inbox, Outbox, closer};
use crate::termination;
use worker_threads_wait::Deadline;

/// A registered group: its message type, and the group itself, weakly (a group lives as
/// long as one of its instances).
struct Entry {
    type_id: TypeId,
    type_name: &'static str,
    group: Weak<dyn Any + Send + Sync>,
}

/// The process-wide registry of groups, by name.
fn registry() -> &'static Mutex<HashMap<String, Entry>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Entry>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

struct Member<T> {
    id: u64,
    outbox: Outbox<T>,
}

struct Group<T> {
    members: RwLock<Vec<Member<T>>>,
}

impl<T: Send + 'static> Group<T> {
    fn join(name: &str) -> Result<Arc<Self>, BroadcastTypeError> {
        let mut registry = registry().lock().unpoison();
        registry.retain(|_, entry| entry.group.strong_count() > 0);
        let requested = std::any::type_name::<T>();
        if let Some(entry) = registry.get(name) {
            if entry.type_id != TypeId::of::<T>() {
                return Err(BroadcastTypeError::new(name, entry.type_name, requested));
            }
            if let Some(Ok(group)) = entry.group.upgrade().map(|group| group.downcast::<Self>()) {
                return Ok(group);
            }
        }
        let group = Arc::new(Self {
            members: RwLock::new(Vec::new()),
        });
        let erased: Arc<dyn Any + Send + Sync> = Arc::clone(&group) as _;
        let entry = Entry {
            type_id: TypeId::of::<T>(),
            type_name: requested,
            group: Arc::downgrade(&erased),
        };
        registry.insert(name.to_owned(), entry);
        Ok(group)
    }
}

impl<T> Group<T> {
    fn leave(&self, id: u64) {
        self.members
            .write()
            .unpoison()
            .retain(|member| member.id != id);
    }
}

/// A named channel that every instance in the process with the same name joins: what one
/// instance posts, every *other* open instance receives (a clone of), never the poster
/// itself. Node's `new BroadcastChannel(name)`.
///
/// A name carries one message type: while a group of `BroadcastChannel<T>` is alive, joining
/// its name as another type is an error ([`try_new`](BroadcastChannel::try_new)) or a panic
/// ([`new`](BroadcastChannel::new)), never a silent second group.
///
/// Each instance has its own unbounded queue and the same receive family as a
/// [`MessagePort`](crate::MessagePort). [`close`](BroadcastChannel::close), or dropping the
/// instance, leaves the group.
///
/// # Examples
///
/// ```
/// use worker_threads_channel::BroadcastChannel;
///
/// let a = BroadcastChannel::<String>::new("news");
/// let b = BroadcastChannel::<String>::new("news");
/// let c = BroadcastChannel::<String>::new("news");
/// a.post_message("hello".to_string()).unwrap();
/// assert_eq!(b.recv().unwrap(), "hello");
/// assert_eq!(c.recv().unwrap(), "hello");
/// assert!(a.try_recv().is_err()); // never its own
/// ```
pub struct BroadcastChannel<T> {
    name: String,
    id: u64,
    group: Arc<Group<T>>,
    inbox: Inbox<T>,
    /// The async registration of the [`Stream`] impl, kept between polls.
    waiting: Option<AsyncWait<T>>,
}

impl<T: Clone + Send + 'static> BroadcastChannel<T> {
    /// Joins the group `name`, creating it if it is new.
    ///
    /// # Panics
    ///
    /// If `name` is in use by a live group of another message type; see
    /// [`try_new`](Self::try_new).
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_channel::BroadcastChannel;
    ///
    /// let sender = BroadcastChannel::<u8>::new("doc-broadcast-new");
    /// let receiver = BroadcastChannel::<u8>::new("doc-broadcast-new");
    /// sender.post_message(7u8).unwrap();
    /// assert_eq!(receiver.recv(), Ok(7));
    /// assert!(sender.try_recv().is_err(), "an instance does not hear itself");
    /// ```
    #[track_caller]
    pub fn new(name: impl Into<String>) -> Self {
        match Self::try_new(name) {
            Ok(channel) => channel,
            Err(err) => panic!(
                "BroadcastChannel::new: {err}; use another name for another message type, \
                 or call BroadcastChannel::try_new to handle this"
            ),
        }
    }

    /// Joins the group `name`, creating it if it is new.
    ///
    /// # Errors
    ///
    /// [`BroadcastTypeError`] if `name` is in use by a live group of another message type.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_channel::BroadcastChannel;
    ///
    /// let numbers = BroadcastChannel::<u32>::try_new("typed").unwrap();
    /// let err = BroadcastChannel::<String>::try_new("typed").unwrap_err();
    /// assert_eq!(err.carries(), "u32");
    /// drop(numbers);
    /// // Once the last instance is gone, the name is free again.
    /// assert!(BroadcastChannel::<String>::try_new("typed").is_ok());
    /// ```
    pub fn try_new(name: impl Into<String>) -> Result<Self, BroadcastTypeError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let name = name.into();
        let group = Group::join(&name)?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dir = Direction::new(None);
        let close = CloseSignal::new(vec![closer(&dir)]);
        group.members.write().unpoison().push(Member {
            id,
            outbox: Outbox::new(dir.clone(), Arc::clone(&close)),
        });
        tracing::trace!(%name, id, "broadcast channel joined");
        Ok(Self {
            name,
            id,
            group,
            inbox: Inbox::new(dir, close),
            waiting: None,
        })
    }

    /// Posts a clone of `msg` to every other open instance of the group (none is fine).
    ///
    /// # Errors
    ///
    /// [`PostError::Closed`] with the message if this instance was closed, or if the
    /// calling thread is a worker that was terminated (a terminated worker's posts reach
    /// nobody, as in Node, where it would have stopped).
    pub fn post_message(&self, msg: T) -> Result<(), PostError<T>> {
        if termination::current().is_some_and(|signal| signal.is_closed()) {
            termination::note_seen();
            return Err(PostError::Closed(msg));
        }
        if self.is_closed() {
            return Err(PostError::Closed(msg));
        }
        let members = self.group.members.read().unpoison();
        let mut others = members
            .iter()
            .filter(|member| member.id != self.id)
            .peekable();
        // A member that closes meanwhile refuses its copy: it left the group, so that is
        // not a lost message.
        while let Some(member) = others.next() {
            if others.peek().is_none() {
                let _ = member.outbox.try_post(msg);
                break;
            }
            let _ = member.outbox.try_post(msg.clone());
        }
        Ok(())
    }

    /// Receives with a handler on a thread of its own until this instance is closed; see
    /// [`MessagePort::on_message`](crate::MessagePort::on_message).
    ///
    /// # Errors
    ///
    /// The OS error if the thread could not be started (the instance is then dropped,
    /// which leaves the group).
    pub fn on_message<F>(self, mut handler: F) -> io::Result<MessageListener>
    where
        F: FnMut(T, &Self) + Send + 'static,
    {
        let close = Arc::clone(self.inbox.close_signal());
        MessageListener::spawn(close, "broadcast-on-message", move || {
            for msg in self.iter() {
                handler(msg, &self);
            }
        })
    }
}

impl<T> BroadcastChannel<T> {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Receives the next message, waiting for one.
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once this instance is closed.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(Deadline::Never)
            .map_err(RecvTimeoutError::into_recv_error)
    }

    /// Receives a message if one is waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] or [`TryRecvError::Closed`].
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.inbox.try_recv().map_err(|err| match err {
            TryRecvError::Terminated if self.is_closed() => TryRecvError::Closed,
            err => err,
        })
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Closed`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Deadline::after(timeout))
    }

    /// Receives the next message, waiting until `deadline` at most.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Closed`].
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Deadline::At(deadline))
    }

    /// Receives the next message asynchronously, under any executor.
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once this instance is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes (in `tokio::select!`, or on
    /// a timeout) loses no message; a message is taken from the queue only in the poll
    /// that returns it, so the next receive gets it.
    pub async fn recv_async(&self) -> Result<T, RecvError> {
        self.inbox.recv_async().await.map_err(|err| match err {
            RecvError::Terminated if self.is_closed() => RecvError::Closed,
            err => err,
        })
    }

    /// The blocking receive. A closed instance discards what it holds (its queue ends
    /// as terminated), which it reports as `Closed`; a terminated worker thread's receive
    /// still reports `Terminated`.
    fn recv_until(&self, deadline: Deadline) -> Result<T, RecvTimeoutError> {
        self.inbox.recv(deadline).map_err(|err| match err {
            RecvTimeoutError::Terminated if self.is_closed() => RecvTimeoutError::Closed,
            err => err,
        })
    }

    /// A blocking iterator over received messages, until closed and drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter::new(&self.inbox)
    }

    /// An iterator over the messages waiting now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter::new(&self.inbox)
    }

    /// Leaves the group: posts fail, and no message is received any more, not even one
    /// that arrived before the close (the web platform's `BroadcastChannel` delivers
    /// nothing after `close()`); `recv` says `Closed`. Node's `bc.close()`. (A
    /// [`MessagePort`](crate::MessagePort) differs: it delivers what was posted before its
    /// close.)
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_channel::{BroadcastChannel, RecvError};
    ///
    /// let a = BroadcastChannel::new("close-example");
    /// let b = BroadcastChannel::new("close-example");
    /// a.post_message(1).unwrap();
    /// b.close();
    /// a.post_message(2).unwrap(); // b left: nobody receives it
    /// assert_eq!(b.recv(), Err(RecvError::Closed)); // 1 was discarded too
    /// assert!(b.post_message(3).is_err());
    /// ```
    pub fn close(&self) {
        if self.inbox.close_signal().close(Ended::Terminated) {
            self.group.leave(self.id);
            tracing::trace!(name = %self.name, id = self.id, "broadcast channel closed");
        }
    }

    /// True once this instance was closed.
    pub fn is_closed(&self) -> bool {
        self.inbox.close_signal().is_closed()
    }

    /// The number of messages waiting to be received.
    pub fn len(&self) -> usize {
        self.inbox.len()
    }

    /// True if no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.inbox.len() == 0
    }
}

impl<T> Drop for BroadcastChannel<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T> fmt::Debug for BroadcastChannel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastChannel")
            .field("name", &self.name)
            .field("waiting", &self.len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<'a, T> IntoIterator for &'a BroadcastChannel<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The messages this instance receives, until it is closed: `StreamExt::next` and
/// `tokio::select!` work on a broadcast channel. Dropping a pending `next()` loses no
/// message.
// Nothing in it is pinned: queue handles (`Arc`s) and a registration.
impl<T> Unpin for BroadcastChannel<T> {}

impl<T> Stream for BroadcastChannel<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        this.inbox.poll_recv(&mut this.waiting, cx).map(Result::ok)
    }
}
