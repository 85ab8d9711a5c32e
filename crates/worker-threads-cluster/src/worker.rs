//! A worker's side: its IPC channel to the primary, messages, and `listen`.
//!
//! The runtime starts on the first call of any `cluster` function in a process that
//! carries the marker. One thread reads the IPC socket and routes each frame: a message
//! to the `Primary` queue, a `listen` answer to the caller waiting for it (registering a
//! round-robin server's hand-off queue *before* the answer is delivered, so a connection
//! that follows the answer on the socket always has a queue), a connection to its queue,
//! and `Disconnect` to every listener. If the primary goes away without a disconnect,
//! the worker exits, as Node's do.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{
    IpcError, ListenError, NotAWorker, RecvError, RecvTimeoutError, SendError, TryRecvError,
};
use crate::ipc::{self, Ipc};
use crate::listener::Listener;
use crate::lock;
use crate::role::Marker;
use crate::wire::{self, Grant, TAG_CONTROL, TAG_MESSAGE, ToPrimary, ToWorker};

/// The frame cap on the worker's side: as large as any primary's default.
const MAX_FRAME: usize = 64 << 20;

/// The primary's answer to a `listen`: the grant, its descriptors, and for a round-robin
/// grant the hand-off queue, registered by the reader before it answers (handed over
/// with the answer, so a `Disconnect` read right after cannot take it away from `listen`).
type Reply = (
    Result<Grant, String>,
    Vec<OwnedFd>,
    Option<flume::Receiver<TcpStream>>,
);

/// A round-robin server's queue of handed-over connections, and how many listeners of
/// this process take from it.
struct Handoff {
    tx: flume::Sender<TcpStream>,
    rx: flume::Receiver<TcpStream>,
    listeners: usize,
}

/// Handoff queues of round-robin servers, by key.
type Handoffs = HashMap<u64, Handoff>;

/// A listener's claim on a round-robin queue: when the last one for a server is dropped,
/// the primary stops handing this worker connections for it.
#[derive(Debug)]
pub(crate) struct HandoffClaim {
    key: u64,
}

impl Drop for HandoffClaim {
    fn drop(&mut self) {
        if let Some(rt) = runtime() {
            rt.release(self.key);
        }
    }
}

pub(crate) struct Runtime {
    pub(crate) id: usize,
    ipc: Ipc,
    messages: flume::Receiver<Vec<u8>>,
    /// The messages' only sender, until the reader thread takes it: when the reader ends
    /// (the primary has gone), `Primary::recv` reports `Disconnected`.
    inbox: Mutex<Option<flume::Sender<Vec<u8>>>>,
    replies: Mutex<HashMap<u64, Sender<Reply>>>,
    handoffs: Mutex<Handoffs>,
    next_seq: AtomicU64,
    disconnected: AtomicBool,
    /// Readable once disconnected: wakes blocking `accept`s in `poll`.
    pub(crate) wake: OwnedFd,
    /// Notified once disconnected: wakes async `accept`s.
    pub(crate) event: event_listener::Event,
}

static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();

/// This process's worker runtime, started on first use; `None` in the primary.
pub(crate) fn runtime() -> Option<&'static Runtime> {
    let runtime = RUNTIME
        .get_or_init(|| {
            let marker = Marker::from_env()?;
            match start(&marker) {
                Ok(runtime) => Some(runtime),
                Err(error) => {
                    // A marker with our parent's pid but no channel: forking again here
                    // would recurse, and running as a worker is impossible.
                    tracing::error!(%error, "cluster worker without its IPC channel");
                    eprintln!(
                        "cluster: worker {} cannot reach its primary: {error}",
                        marker.id
                    );
                    std::process::exit(70);
                }
            }
        })
        .as_ref()?;
    START.call_once(|| begin(runtime));
    Some(runtime)
}

static START: std::sync::Once = std::sync::Once::new();

fn start(marker: &Marker) -> std::io::Result<Runtime> {
    // SAFETY: the marker names our parent (checked in `from_env`), and the parent put
    // this descriptor number in it after making the descriptor inheritable for exactly
    // this process. It is adopted once (inside a `OnceLock`), so it has one owner.
    let fd = unsafe { OwnedFd::from_raw_fd(marker.fd) };
    if !ipc::is_seqpacket(std::os::fd::AsFd::as_fd(&fd)) {
        std::mem::forget(fd); // not ours to close: it is not the channel
        return Err(std::io::Error::other(
            "the marker's descriptor is not a seqpacket socket",
        ));
    }
    // Inheritable was for this process only: a child this worker spawns must not hold
    // the channel open, or the primary would see this worker's exit only when the child
    // ends.
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
    let (inbox, messages) = flume::unbounded();
    let wake = rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )?;
    Ok(Runtime {
        id: marker.id,
        ipc: Ipc::new(fd, MAX_FRAME),
        messages,
        inbox: Mutex::new(Some(inbox)),
        replies: Mutex::default(),
        handoffs: Mutex::default(),
        next_seq: AtomicU64::new(1),
        disconnected: AtomicBool::new(false),
        wake,
        event: event_listener::Event::new(),
    })
}

/// Starts the reader thread and says `Online`.
fn begin(rt: &'static Runtime) {
    let Some(inbox) = lock(&rt.inbox).take() else {
        return;
    };
    let reader = std::thread::Builder::new()
        .name("cluster-ipc".into())
        .spawn(move || rt.read(inbox));
    if let Err(error) = reader {
        tracing::error!(%error, "cannot start the cluster IPC thread");
        std::process::exit(70);
    }
    let _ = wire::send_control(&rt.ipc, &ToPrimary::Online, &[]);
}

impl Runtime {
    pub(crate) fn is_disconnected(&self) -> bool {
        self.disconnected.load(Ordering::Acquire)
    }

    fn read(&'static self, inbox: flume::Sender<Vec<u8>>) {
        let mut buf = Vec::new();
        loop {
            match self.ipc.recv(&mut buf) {
                Ok(Some(frame)) if frame.tag == TAG_MESSAGE => {
                    let _ = inbox.send(frame.body);
                }
                Ok(Some(frame)) if frame.tag == TAG_CONTROL => {
                    match wire::decode::<ToWorker>(&frame.body) {
                        Ok(control) => self.control(control, frame.fds),
                        Err(error) => tracing::error!(%error, "bad control frame from the primary"),
                    }
                }
                Ok(Some(frame)) => tracing::error!(tag = frame.tag, "unknown frame tag"),
                Ok(None) | Err(IpcError::Closed) => break,
                Err(error) => {
                    // The channel can no longer be trusted (a truncated descriptor
                    // hand-off at this process's descriptor limit, or a broken frame):
                    // end as a crash, so that the primary's restart policy replaces this
                    // worker. Exiting 0 here once looked like a planned exit, and the
                    // worker was lost.
                    tracing::error!(%error, worker = self.id, "bad frame from the primary; exiting with code 1");
                    std::process::exit(1);
                }
            }
        }
        if !self.is_disconnected() {
            // The primary is gone without asking us to finish: nothing will ever hand us
            // work or collect our exit status.
            tracing::warn!(worker = self.id, "the primary has gone; exiting");
            std::process::exit(0);
        }
    }

    fn control(&self, control: ToWorker, fds: Vec<OwnedFd>) {
        match control {
            ToWorker::Listening { seq, grant } => {
                let queue = match &grant {
                    Ok(Grant::Handoff { key, .. }) if !self.is_disconnected() => {
                        let mut handoffs = lock(&self.handoffs);
                        let handoff = handoffs.entry(*key).or_insert_with(|| {
                            let (tx, rx) = flume::unbounded();
                            Handoff {
                                tx,
                                rx,
                                listeners: 0,
                            }
                        });
                        Some(handoff.rx.clone())
                    }
                    _ => None,
                };
                if let Some(reply) = lock(&self.replies).remove(&seq) {
                    let _ = reply.send((grant, fds, queue));
                }
            }
            ToWorker::Connection { key } => {
                let queue = lock(&self.handoffs).get(&key).map(|h| h.tx.clone());
                match (queue, fds.into_iter().next()) {
                    (Some(queue), Some(fd)) => {
                        let _ = queue.send(TcpStream::from(fd));
                    }
                    _ => tracing::warn!(key, "a connection for no listener: dropped"),
                }
            }
            ToWorker::Disconnect => self.disconnect(),
        }
    }

    fn disconnect(&self) {
        self.disconnected.store(true, Ordering::Release);
        lock(&self.handoffs).clear();
        lock(&self.replies).clear();
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
        self.event.notify(usize::MAX);
    }

    /// A listener of round-robin server `key` was dropped; the last one tells the primary.
    fn release(&self, key: u64) {
        let last = {
            let mut handoffs = lock(&self.handoffs);
            match handoffs.get_mut(&key) {
                Some(handoff) if handoff.listeners <= 1 => {
                    handoffs.remove(&key);
                    true
                }
                Some(handoff) => {
                    handoff.listeners -= 1;
                    false
                }
                None => false,
            }
        };
        if last && !self.is_disconnected() {
            let _ = wire::send_control(&self.ipc, &ToPrimary::Unlisten { key }, &[]);
        }
    }

    /// Asks the primary for `addr`; the answer's round-robin queue is already registered.
    fn listen(&self, addr: SocketAddr) -> Result<Listener, ListenError> {
        if self.is_disconnected() {
            return Err(ListenError::Disconnected);
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = crossbeam_channel::bounded(1);
        lock(&self.replies).insert(seq, reply);
        wire::send_control(&self.ipc, &ToPrimary::Listen { seq, addr }, &[])?;
        let (grant, fds, queue) = answer.recv().map_err(|_| ListenError::Disconnected)?;
        match grant.map_err(ListenError::Refused)? {
            Grant::Handoff { key, addr } => {
                // The queue came with the answer. If a `Disconnect` was read since, the
                // map is empty and the queue has lost its sender: the listener is valid
                // and simply ends at once, as a Node server closed by `disconnect()`.
                let queue = queue.ok_or(ListenError::Disconnected)?;
                if let Some(handoff) = lock(&self.handoffs).get_mut(&key) {
                    handoff.listeners += 1;
                }
                Ok(Listener::handoff(addr, queue, HandoffClaim { key }))
            }
            Grant::Shared { addr } => {
                let fd = fds
                    .into_iter()
                    .next()
                    .ok_or(IpcError::Malformed("a shared listener without its socket"))?;
                Listener::socket(addr, fd).map_err(ListenError::Io)
            }
            Grant::ReusePort { addr } => {
                let fd = crate::server::bind(addr, true, true).map_err(ListenError::Io)?;
                let listener = Listener::socket(addr, fd).map_err(ListenError::Io)?;
                wire::send_control(&self.ipc, &ToPrimary::Bound { addr }, &[])?;
                Ok(listener)
            }
        }
    }
}

/// Listens on `addr` through the primary (Node's `server.listen(port)` in a worker).
///
/// The primary binds the address once for all workers, and by its
/// [`SchedulingPolicy`](crate::SchedulingPolicy) hands this worker connections, the
/// listening socket, or the port to bind with `SO_REUSEPORT`. Every worker that listens
/// on the same address shares it; port 0 gives them all the same chosen port.
///
/// # Errors
///
/// [`ListenError::NotAWorker`] in the primary; [`ListenError::Refused`] if the primary
/// cannot bind (the address is in use); the others if the channel fails.
pub fn listen<A: ToSocketAddrs>(addr: A) -> Result<Listener, ListenError> {
    let runtime = runtime().ok_or(NotAWorker)?;
    let addr = addr
        .to_socket_addrs()
        .map_err(ListenError::Resolve)?
        .next()
        .ok_or_else(|| {
            ListenError::Resolve(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no address to listen on",
            ))
        })?;
    runtime.listen(addr)
}

/// Whether the primary asked this worker to disconnect (Node's `worker.exitedAfterDisconnect`
/// seen from inside). Listeners stop accepting at that moment.
pub fn is_disconnected() -> bool {
    runtime().is_some_and(Runtime::is_disconnected)
}

/// The worker's channel to its primary (Node's `process.send` / `process.on('message')`).
///
/// `T` is the message type: the same as the primary's `Cluster<T>`.
pub struct Primary<T> {
    rt: &'static Runtime,
    /// The messages as a stream, for the [`Stream`] impl (made on first poll).
    stream: Option<flume::r#async::RecvStream<'static, Vec<u8>>>,
    _message: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Primary<T> {
    fn clone(&self) -> Self {
        Primary {
            rt: self.rt,
            stream: None,
            _message: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Primary<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Primary")
            .field("worker", &self.rt.id)
            .finish_non_exhaustive()
    }
}

/// The channel to the primary.
///
/// # Panics
///
/// In the primary; [`try_primary`] is the fallible twin.
#[track_caller]
pub fn primary<T>() -> Primary<T>
where
    T: Serialize + DeserializeOwned,
{
    match try_primary() {
        Ok(primary) => primary,
        Err(e) => panic!(
            "cluster::primary(): {e}; only a worker process has a primary: check \
             cluster::is_worker() first, or call try_primary"
        ),
    }
}

/// The channel to the primary, or [`NotAWorker`] in the primary.
///
/// # Errors
///
/// [`NotAWorker`] when this process is the primary.
pub fn try_primary<T>() -> Result<Primary<T>, NotAWorker>
where
    T: Serialize + DeserializeOwned,
{
    let rt = runtime().ok_or(NotAWorker)?;
    Ok(Primary {
        rt,
        stream: None,
        _message: PhantomData,
    })
}

impl<T> Primary<T>
where
    T: Serialize + DeserializeOwned,
{
    /// Sends a message to the primary, which sees it as [`Event::Message`](crate::Event).
    ///
    /// # Errors
    ///
    /// The message comes back in a [`SendError`] if the primary has gone or the message
    /// cannot be encoded.
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        wire::send_message(&self.rt.ipc, message)
    }

    /// The next message, waiting for one.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] once the primary has gone and every message was taken;
    /// [`RecvError::Decode`] for a message that is not a `T`.
    pub fn recv(&self) -> Result<T, RecvError> {
        let body = crate::wait::recv(&self.rt.messages).map_err(|_| RecvError::Disconnected)?;
        wire::decode(&body).map_err(|e| RecvError::Decode(e.to_string()))
    }

    /// The next message, if one is waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when none is; otherwise as [`recv`](Primary::recv).
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let body = self.rt.messages.try_recv().map_err(|e| match e {
            flume::TryRecvError::Empty => TryRecvError::Empty,
            flume::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })?;
        wire::decode(&body).map_err(|e| TryRecvError::Decode(e.to_string()))
    }

    /// The next message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when none came in time; otherwise as
    /// [`recv`](Primary::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_deadline(deadline),
            // Further than an `Instant` reaches: wait as long as it takes.
            None => self.recv().map_err(|err| match err {
                RecvError::Disconnected => RecvTimeoutError::Disconnected,
                RecvError::Decode(why) => RecvTimeoutError::Decode(why),
            }),
        }
    }

    /// The next message, waiting until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Primary::recv_timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        let body = self
            .rt
            .messages
            .recv_deadline(deadline)
            .map_err(|e| match e {
                flume::RecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
                flume::RecvTimeoutError::Disconnected => RecvTimeoutError::Disconnected,
            })?;
        wire::decode(&body).map_err(|e| RecvTimeoutError::Decode(e.to_string()))
    }

    /// The next message, awaited under any executor.
    ///
    /// # Errors
    ///
    /// As [`recv`](Primary::recv).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a message is taken only in the poll that returns it, so dropping the
    /// future loses none. `Primary` is also a [`Stream`] of its messages.
    pub async fn recv_async(&self) -> Result<T, RecvError> {
        let body = self
            .rt
            .messages
            .recv_async()
            .await
            .map_err(|_| RecvError::Disconnected)?;
        wire::decode(&body).map_err(|e| RecvError::Decode(e.to_string()))
    }

    /// Messages as they come, until the primary has gone (or one does not decode).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv().ok())
    }
}

/// The primary's messages as they come: `Ok(message)`, or `Err(Decode)` for one that
/// does not decode as `T` (the stream goes on); it ends when the primary has gone.
/// Dropping a pending `next()` loses no message.
impl<T: DeserializeOwned> Stream for Primary<T> {
    type Item = Result<T, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let rt = this.rt;
        let stream = this
            .stream
            .get_or_insert_with(|| rt.messages.clone().into_stream());
        Pin::new(stream).poll_next(cx).map(|body| {
            body.map(|body| wire::decode(&body).map_err(|e| RecvError::Decode(e.to_string())))
        })
    }
}
