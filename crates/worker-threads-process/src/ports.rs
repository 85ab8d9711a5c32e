//! Ports that cross a process boundary, any number over one [`Channel`]: no descriptor
//! per port.
//!
//! A value that stands for a port (`MessagePort`, in the channel crate with its feature
//! `process`) serializes as a [`PortId`] and hands this side's end to the frame being
//! encoded ([`export`], inside [`Router::send`]); on the other side it deserializes
//! into a new local port pair, one end returned to the program, the other handed to the
//! frame being decoded ([`import`], inside [`Router::decode`]). Each side's [`Router`]
//! then *relays* its ends: one thread per router (started with its first port) polls
//! every end whose waker fired, takes what is posted to it locally, encodes it
//! (descriptors and ports inside travel too) and sends it as a port frame; the channel's
//! reader hands port frames to [`Router::deliver`], which decodes them and posts into the
//! local end. So a port keeps the order of what was posted on it, a thousand ports cost
//! one thread, and a port sent on through a third process is relayed twice.
//!
//! Closing: when an end closes locally, the relay sends everything posted on it before,
//! then a close frame, which closes the other side's end (which still delivers what it
//! holds): the thread semantics, across. A post that races the close frame is accepted
//! on its side and dropped on the other (it cannot be handed back across processes); a
//! close frame also stops the relay sending what is still queued for that port (nobody
//! would read it). [`Router::finish`] closes every end and waits for the relay to send
//! what they hold: a child calls it before it reports its exit, a parent when the child
//! has gone (then the ends' peers see the port closed).
//!
//! A port frame is `[id: u64 LE][kind: u8][message]` in the router's frame tag. Ids carry
//! the exporting side in their top bit, so the two sides never pick the same one; a peer
//! that imports an id of the wrong side, or one in use, gets a decode error.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle};
use worker_threads_wait::Unpoison;

use serde::Serialize;

use crate::channel::{Channel, Frame};
use crate::codec;
use crate::error::IpcError;
use crate::fds;

/// The name of a relayed port on a channel.
pub type PortId = u64;

/// Which end of a channel this process is: the top bit of the ids it picks.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use worker_threads_process::{Channel, channel_pair};
///
/// let (a, b) = channel_pair()?;
/// let (a, b) = (Arc::new(Channel::new(a, 1 << 20)), Arc::new(Channel::new(b, 1 << 20)));
/// use worker_threads_process::ports::{Router, Side};
///
/// // The two ends of a channel pick port ids from different halves.
/// let parent = Router::new(a, 9, Side::Parent);
/// let child = Router::new(b, 9, Side::Child);
/// # drop((parent, child));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The process that spawned the other.
    Parent,
    /// The spawned process.
    Child,
}

impl Side {
    fn bit(self) -> u64 {
        match self {
            Side::Parent => 0,
            Side::Child => 1 << 63,
        }
    }

    fn peer(self) -> Side {
        match self {
            Side::Parent => Side::Child,
            Side::Child => Side::Parent,
        }
    }
}

/// A local port that stands for a port in the peer process. `MessagePort` implements it.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// use std::task::{Context, Poll};
/// use worker_threads_process::IpcError;
/// use worker_threads_process::ports::Endpoint;
///
/// /// An end that only receives: what the peer posted, decoded, in a list.
/// #[derive(Default)]
/// struct Inbox(Mutex<Vec<u32>>);
///
/// impl Endpoint for Inbox {
///     fn deliver(&self, message: &[u8]) -> Result<(), IpcError> {
///         let value: u32 = worker_threads_process::codec::decode(message)?;
///         self.0.lock().unwrap().push(value);
///         Ok(())
///     }
///     fn poll_take(&self, _cx: &mut Context<'_>, _out: &mut Vec<u8>) -> Poll<Result<bool, IpcError>> {
///         Poll::Ready(Ok(false)) // nothing to send, ever
///     }
///     fn close(&self) {}
/// }
///
/// let inbox = Inbox::default();
/// inbox.deliver(&worker_threads_process::codec::encode(&7u32)?)?;
/// assert_eq!(*inbox.0.lock().unwrap(), [7]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Endpoint: Send + Sync {
    /// Decodes `message` (posted by the peer) and posts it here. Called inside the
    /// router's decoding scope, so descriptors and ports in it come out whole. A closed
    /// end drops the message (the peer's post raced the close).
    ///
    /// # Errors
    ///
    /// [`IpcError::Decode`] if `message` is not one value of the port's type.
    fn deliver(&self, message: &[u8]) -> Result<(), IpcError>;

    /// Takes the next message posted here for the peer, if one is waiting, and appends
    /// its encoding to `out`: `Ready(Ok(true))`; `Ready(Ok(false))` once this end is
    /// closed and everything posted before it was taken; `Pending` (with `cx`'s waker
    /// registered, woken by the next post or the close) otherwise. Called by the router's
    /// relay thread only.
    ///
    /// # Errors
    ///
    /// [`IpcError::Encode`] if the message taken does not encode (it is dropped).
    fn poll_take(&self, cx: &mut Context<'_>, out: &mut Vec<u8>) -> Poll<Result<bool, IpcError>>;

    /// Closes this end; what was posted on it is still taken.
    fn close(&self);
}

/// A relayed end, and whether the peer closed its side (then what is still queued here
/// for it is dropped: nobody there would read it).
struct Relayed {
    end: Box<dyn Endpoint>,
    peer_closed: AtomicBool,
    /// Queues this end for the relay thread; set when it starts being relayed.
    waker: OnceLock<Waker>,
}

impl Relayed {
    fn new(end: Box<dyn Endpoint>) -> Arc<Relayed> {
        Arc::new(Relayed {
            end,
            peer_closed: AtomicBool::new(false),
            waker: OnceLock::new(),
        })
    }
}

/// What the relay thread is told: an end to poll, or that the router finished.
enum Relay {
    Poll(PortId),
    Stop,
}

/// An end's waker: queues the end for the relay thread.
struct Ready {
    id: PortId,
    relay: mpsc::Sender<Relay>,
}

impl Wake for Ready {
    fn wake(self: Arc<Self>) {
        let _ = self.relay.send(Relay::Poll(self.id));
    }
}

/// Ports found in one value, with the ids they were given.
///
/// # Examples
///
/// ```
/// use worker_threads_process::ports::{Side, encode};
///
/// // A value with no port in it: nothing to relay.
/// let encoded = encode(Side::Parent, || worker_threads_process::codec::encode(&"no ports"));
/// assert!(encoded.ports.is_empty());
/// assert!(encoded.fds.is_empty());
/// ```
#[derive(Default)]
pub struct Ported(Vec<(PortId, Arc<Relayed>)>);

impl Ported {
    /// True if the value held no port.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Ported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<_> = self.0.iter().map(|(id, _)| id).collect();
        f.debug_tuple("Ported").field(&ids).finish()
    }
}

/// A value encoded for a frame, with what goes with it.
///
/// # Examples
///
/// ```
/// use std::os::fd::OwnedFd;
/// use worker_threads_process::ports::{Side, encode};
///
/// let file: OwnedFd = std::fs::File::open("/dev/null")?.into();
/// // A descriptor pushed while encoding travels with the frame.
/// let encoded = encode(Side::Child, || worker_threads_process::fds::push(file));
/// assert_eq!(encoded.value, Some(0));
/// assert_eq!(encoded.fds.len(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Encoded<R> {
    /// What the encoder returned.
    pub value: R,
    /// The descriptors to attach to the frame.
    pub fds: Vec<OwnedFd>,
    /// The ports to relay once the frame was sent ([`Router::relay`]).
    pub ports: Ported,
}

/// Ports a value being encoded or decoded holds, as the thread-local scope collects them.
type Found = Vec<(PortId, Box<dyn Endpoint>)>;

struct Scope {
    side: Side,
    ports: Found,
}

thread_local! {
    static OUTGOING: RefCell<Option<Scope>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Found>> = const { RefCell::new(None) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// True inside an encoding scope ([`encode`], [`Router::send`]): a port serialized now
/// can be exported.
pub fn exporting() -> bool {
    OUTGOING.with(|out| out.borrow().is_some())
}

/// Adds `end` to the frame being encoded: the id it goes by, or `None` outside an
/// encoding scope.
pub fn export(end: Box<dyn Endpoint>) -> Option<PortId> {
    OUTGOING.with(|out| {
        let mut out = out.borrow_mut();
        let scope = out.as_mut()?;
        let id = (NEXT_ID.fetch_add(1, Ordering::Relaxed) & !(1 << 63)) | scope.side.bit();
        scope.ports.push((id, end));
        Some(id)
    })
}

/// Hands `end` to the frame being decoded as the local end of the peer's port `id`; false
/// (and `end` dropped) outside a decoding scope.
pub fn import(id: PortId, end: Box<dyn Endpoint>) -> bool {
    INCOMING.with(|inc| match inc.borrow_mut().as_mut() {
        Some(ports) => {
            ports.push((id, end));
            true
        }
        None => false,
    })
}

/// Runs `encode` collecting the descriptors and ports it exports, for a frame from
/// `side`. Without a [`Router`]: for a first frame sent before the router exists.
pub fn encode<R>(side: Side, encode: impl FnOnce() -> R) -> Encoded<R> {
    let previous = OUTGOING.with(|out| {
        out.replace(Some(Scope {
            side,
            ports: Vec::new(),
        }))
    });
    let (value, fds) = fds::collect(encode);
    let ports = OUTGOING
        .with(|out| out.replace(previous))
        .map(|scope| scope.ports)
        .unwrap_or_default();
    Encoded {
        value,
        fds,
        ports: Ported(
            ports
                .into_iter()
                .map(|(id, end)| (id, Relayed::new(end)))
                .collect(),
        ),
    }
}

/// Runs `decode` with a frame's descriptors, collecting the ports it imports.
fn decode<R>(fds: Vec<OwnedFd>, decode: impl FnOnce() -> R) -> (R, Ported) {
    let previous = INCOMING.with(|inc| inc.replace(Some(Vec::new())));
    let value = fds::provide(fds, decode);
    let ports = INCOMING
        .with(|inc| inc.replace(previous))
        .unwrap_or_default();
    let ports = ports.into_iter().map(|(id, end)| (id, Relayed::new(end)));
    (value, Ported(ports.collect()))
}

/// The relay's next order. It spins, then yields, a few times before it sleeps (as a
/// port's receive does): an exchange in progress then finds the relay awake.
fn next_poll(polls: &mpsc::Receiver<Relay>) -> Option<Relay> {
    // crossbeam's pacing: 2^0..2^6 spins, then yields, eleven looks in all.
    let backoff = worker_threads_wait::Backoff::new();
    loop {
        match polls.try_recv() {
            Ok(order) => return Some(order),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if backoff.is_completed() => break,
            Err(mpsc::TryRecvError::Empty) => backoff.snooze(),
        }
    }
    polls.recv().ok()
}

const MESSAGE: u8 = 0;
const CLOSE: u8 = 1;
const PORT_HEADER: usize = 9;

fn header(id: PortId, kind: u8, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&id.to_le_bytes());
    out.push(kind);
}

#[derive(Default)]
struct Ends {
    ends: HashMap<PortId, Arc<Relayed>>,
    /// The relay thread and its queue, once the first port was relayed.
    relay: Option<(JoinHandle<()>, mpsc::Sender<Relay>)>,
    /// Set by `finish`: ports that arrive after it are closed at once.
    finished: bool,
}

/// The ports relayed over one channel, on one side.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use worker_threads_process::{Channel, channel_pair};
///
/// let (a, b) = channel_pair()?;
/// let (a, b) = (Arc::new(Channel::new(a, 1 << 20)), Arc::new(Channel::new(b, 1 << 20)));
/// use worker_threads_process::codec;
/// use worker_threads_process::ports::{Router, Side};
///
/// let (parent, child) = (Router::new(a, 9, Side::Parent), Router::new(Arc::clone(&b), 9, Side::Child));
/// parent.send(1, &("hello", 42u32))?;
/// let mut buf = Vec::new();
/// let frame = b.recv(&mut buf)?.expect("a frame");
/// let body = frame.body;
/// let value: (String, u32) = child.decode(frame.fds, || codec::decode(&body))?;
/// assert_eq!(value, ("hello".to_string(), 42));
/// parent.finish();
/// child.finish();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Router {
    channel: Arc<Channel>,
    tag: u8,
    side: Side,
    state: Mutex<Ends>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("side", &self.side)
            .field("tag", &self.tag)
            .field("ports", &self.lock().ends.len())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router for `side` of `channel`, whose port frames have tag `tag`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use worker_threads_process::{Channel, channel_pair};
    ///
    /// let (a, b) = channel_pair()?;
    /// let (a, b) = (Arc::new(Channel::new(a, 1 << 20)), Arc::new(Channel::new(b, 1 << 20)));
    /// use worker_threads_process::ports::{Router, Side};
    ///
    /// let router = Router::new(Arc::clone(&a), 9, Side::Parent); // port frames go as tag 9
    /// assert!(Arc::ptr_eq(router.channel(), &a));
    /// # drop(b);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(channel: Arc<Channel>, tag: u8, side: Side) -> Arc<Router> {
        Arc::new(Router {
            channel,
            tag,
            side,
            state: Mutex::new(Ends::default()),
        })
    }

    /// The channel the ports go over.
    pub fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ends> {
        self.state.lock().unpoison()
    }

    /// Encodes `value` (the descriptors and ports in it go with it) and sends it as one
    /// frame of `tag`. Its ports are routed before the send (the peer may answer on them
    /// as soon as it has the frame), relayed once it was sent, closed if it was not.
    ///
    /// # Errors
    ///
    /// [`IpcError::Encode`] if `value` does not encode, and the channel's send errors.
    pub fn send<T: Serialize + ?Sized>(
        self: &Arc<Self>,
        tag: u8,
        value: &T,
    ) -> Result<(), IpcError> {
        let encoded = self.encode(|| codec::encode(value));
        let sent = encoded.value.and_then(|body| {
            let fds: Vec<_> = encoded.fds.iter().map(|fd| fd.as_fd()).collect();
            self.channel.send(tag, &body, &fds)
        });
        match sent {
            Ok(()) => self.relay(encoded.ports),
            Err(_) => self.discard(encoded.ports),
        }
        sent
    }

    /// Runs `encode` for a frame on this channel, collecting the descriptors and ports in
    /// the value. The ports are routed at once (the peer may answer on them as soon as it
    /// has the frame); send the frame, then [`relay`](Self::relay) them, or
    /// [`discard`](Self::discard) them if it was not sent.
    fn encode<R>(&self, encode: impl FnOnce() -> R) -> Encoded<R> {
        let encoded = self::encode(self.side, encode);
        if !encoded.ports.is_empty() {
            let mut state = self.lock();
            for (id, end) in &encoded.ports.0 {
                state.ends.insert(*id, Arc::clone(end));
            }
        }
        encoded
    }

    /// Relays `ports`, which a frame just sent (or decoded) named: a thread each.
    pub fn relay(self: &Arc<Self>, ports: Ported) {
        for (id, end) in ports.0 {
            self.start(id, end);
        }
    }

    /// Closes `ports`, whose frame could not be sent.
    fn discard(&self, ports: Ported) {
        let mut state = self.lock();
        for (id, relayed) in ports.0 {
            state.ends.remove(&id);
            relayed.end.close();
        }
    }

    fn start(self: &Arc<Self>, id: PortId, relayed: Arc<Relayed>) {
        let mut state = self.lock();
        if state.finished {
            state.ends.remove(&id);
            relayed.end.close();
            return;
        }
        let queue = match &state.relay {
            Some((_, queue)) => queue.clone(),
            None => {
                let (queue, polls) = mpsc::channel();
                let router = Arc::clone(self);
                let spawned = thread::Builder::new()
                    .name(format!("ports-{:?}", self.side).to_lowercase())
                    .spawn(move || router.run_relay(&polls));
                match spawned {
                    Ok(relay) => {
                        state.relay = Some((relay, queue.clone()));
                        queue
                    }
                    Err(error) => {
                        tracing::error!(%error, "no thread to relay ports to another process: closed");
                        state.ends.remove(&id);
                        relayed.end.close();
                        return;
                    }
                }
            }
        };
        let waker = Waker::from(Arc::new(Ready {
            id,
            relay: queue.clone(),
        }));
        let _ = relayed.waker.set(waker);
        state.ends.insert(id, relayed);
        // The first poll: it registers the waker, or finds what was posted already.
        let _ = queue.send(Relay::Poll(id));
    }

    /// Decodes a frame's value with its descriptors; the ports in it are relayed if it
    /// decoded.
    ///
    /// # Errors
    ///
    /// `decode`'s error, or [`IpcError::Decode`] for a port id the peer could not have
    /// picked or one in use (the value is dropped and its ports closed).
    pub fn decode<R>(
        self: &Arc<Self>,
        fds: Vec<OwnedFd>,
        decode: impl FnOnce() -> Result<R, IpcError>,
    ) -> Result<R, IpcError> {
        let (value, ports) = self::decode(fds, decode);
        let value = value?;
        if ports.is_empty() {
            return Ok(value);
        }
        {
            let state = self.lock();
            let mut seen = std::collections::HashSet::new();
            for (id, _) in &ports.0 {
                let wrong_side = id & (1 << 63) != self.side.peer().bit();
                if wrong_side || state.ends.contains_key(id) || !seen.insert(*id) {
                    return Err(IpcError::Decode(format!(
                        "port id {id:#x}: not one the peer could give"
                    )));
                }
            }
        }
        self.relay(ports);
        Ok(value)
    }

    /// A frame of this router's tag from the peer: a message for one of the ports, or its
    /// close. A port that ended here already drops it.
    ///
    /// # Errors
    ///
    /// [`IpcError::Malformed`] for a frame too short or of an unknown kind, and the
    /// message's decode error.
    pub fn deliver(self: &Arc<Self>, frame: Frame) -> Result<(), IpcError> {
        if frame.body.len() < PORT_HEADER {
            return Err(IpcError::Malformed("a port frame shorter than its header"));
        }
        let (head, message) = frame.body.split_at(PORT_HEADER);
        let mut id = [0u8; 8];
        id.copy_from_slice(&head[..8]);
        let id = PortId::from_le_bytes(id);
        let end = self.lock().ends.get(&id).cloned();
        match head[8] {
            MESSAGE => match end {
                Some(relayed) => self.decode(frame.fds, || relayed.end.deliver(message)),
                None => Ok(()),
            },
            CLOSE => {
                if let Some(relayed) = end {
                    relayed.peer_closed.store(true, Ordering::Release);
                    relayed.end.close();
                }
                Ok(())
            }
            _ => Err(IpcError::Malformed("a port frame of an unknown kind")),
        }
    }

    /// Closes every port and waits until the relay sent what each end held (or found the
    /// channel gone); ports that arrive later are closed at once.
    pub fn finish(&self) {
        let (ends, relay) = {
            let mut state = self.lock();
            state.finished = true;
            let ends: Vec<_> = state.ends.values().cloned().collect();
            (ends, state.relay.take())
        };
        // Each close wakes its end's waker at once, queueing it before the stop: the relay
        // drains every end before it reads the stop.
        for relayed in &ends {
            relayed.end.close();
        }
        if let Some((relay, queue)) = relay {
            let _ = queue.send(Relay::Stop);
            drop(queue);
            let _ = relay.join();
        }
    }

    /// The relay thread: polls each end its waker queued, sending what was posted on it
    /// to the peer, then its close; once the peer closed an end, nothing more for it.
    fn run_relay(self: &Arc<Self>, polls: &mpsc::Receiver<Relay>) {
        let mut frame = Vec::new();
        while let Some(Relay::Poll(id)) = next_poll(polls) {
            let relayed = self.lock().ends.get(&id).cloned();
            let Some(relayed) = relayed else {
                continue; // ended already: a late wake
            };
            let Some(waker) = relayed.waker.get() else {
                continue;
            };
            let mut cx = Context::from_waker(waker);
            loop {
                header(id, MESSAGE, &mut frame);
                let taken = self.encode(|| relayed.end.poll_take(&mut cx, &mut frame));
                if relayed.peer_closed.load(Ordering::Acquire) {
                    self.discard(taken.ports);
                    self.lock().ends.remove(&id);
                    break;
                }
                match taken.value {
                    Poll::Pending => break,
                    Poll::Ready(Ok(true)) => {}
                    Poll::Ready(Ok(false)) => {
                        header(id, CLOSE, &mut frame);
                        let _ = self.channel.send(self.tag, &frame, &[]);
                        self.lock().ends.remove(&id);
                        break;
                    }
                    Poll::Ready(Err(error)) => {
                        tracing::error!(%error, "a message posted to a port in another process does not encode: dropped");
                        continue;
                    }
                }
                let fds: Vec<_> = taken.fds.iter().map(|fd| fd.as_fd()).collect();
                match self.channel.send(self.tag, &frame, &fds) {
                    Ok(()) => self.relay(taken.ports),
                    Err(error) => {
                        self.discard(taken.ports);
                        if let IpcError::Closed = error {
                            relayed.end.close();
                        } else {
                            tracing::error!(%error, "a message posted to a port in another process could not be sent: dropped");
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
