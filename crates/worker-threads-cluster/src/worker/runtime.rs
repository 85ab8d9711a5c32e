//! `Runtime`: a worker process's end of the IPC channel to its primary.
//!
//! The runtime starts on the first call of any `cluster` function in a process that
//! carries the marker. One thread reads the IPC socket and routes each frame: a message
//! to the `Primary` queue, a `listen` answer to the caller waiting for it (registering a
//! round-robin server's hand-off queue *before* the answer is delivered, so a connection
//! that follows the answer on the socket always has a queue), a connection to its queue,
//! and `Disconnect` to every listener. If the primary goes away without a disconnect,
//! the worker exits, as Node's do.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use worker_threads_wait::sync::Mutex;

use crossbeam_channel::Sender;
use worker_threads_process::{Channel as Ipc, IpcError, Marker};

use crate::error::ListenError;
use crate::lock;
use crate::wire::{self, Grant, MARKER, TAG_CONTROL, TAG_MESSAGE, ToPrimary, ToWorker};

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

/// What the primary granted a `listen`: the listener is built from it in `listener.rs`.
pub(crate) enum Granted {
    /// Round-robin: connections arrive on `queue`, for as long as `claim` is held.
    Handoff {
        addr: SocketAddr,
        queue: flume::Receiver<TcpStream>,
        claim: HandoffClaim,
    },
    /// A listening socket: the primary's (`Shared`) or our own (`ReusePort`).
    Socket { addr: SocketAddr, fd: OwnedFd },
}

/// A worker process's side of the cluster: one per process, started on first use.
pub(crate) struct Runtime {
    pub(crate) id: usize,
    pub(crate) ipc: Ipc,
    pub(crate) messages: flume::Receiver<Vec<u8>>,
    /// The messages' only sender, until the reader thread takes it: when the reader ends
    /// (the primary has gone), `Primary::recv` reports `Closed`.
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
            let marker = Marker::from_env(MARKER)?;
            let id: usize = marker.payload.parse().ok()?;
            match start(id, &marker) {
                Ok(runtime) => Some(runtime),
                Err(error) => {
                    // A marker with our parent's pid but no channel: forking again here
                    // would recurse, and running as a worker is impossible.
                    tracing::error!(%error, "cluster worker without its IPC channel");
                    eprintln!("cluster: worker {} cannot reach its primary: {error}", id);
                    std::process::exit(70);
                }
            }
        })
        .as_ref()?;
    START.call_once(|| begin(runtime));
    Some(runtime)
}

static START: std::sync::Once = std::sync::Once::new();

fn start(id: usize, marker: &Marker) -> std::io::Result<Runtime> {
    // Adopting makes the descriptor close-on-exec again: a child this worker spawns must
    // not hold the channel open, or the primary would see this worker's exit only when
    // the child ends.
    let fd = marker.adopt()?;
    let (inbox, messages) = flume::unbounded();
    let wake = rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )?;
    Ok(Runtime {
        id,
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
    pub(crate) fn listen(&self, addr: SocketAddr) -> Result<Granted, ListenError> {
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
                Ok(Granted::Handoff {
                    addr,
                    queue,
                    claim: HandoffClaim { key },
                })
            }
            Grant::Shared { addr } => {
                let fd = fds
                    .into_iter()
                    .next()
                    .ok_or(IpcError::Malformed("a shared listener without its socket"))?;
                Ok(Granted::Socket { addr, fd })
            }
            Grant::ReusePort { addr } => {
                let fd = crate::net::bind(addr, true, true).map_err(ListenError::Io)?;
                wire::send_control(&self.ipc, &ToPrimary::Bound { addr }, &[])?;
                Ok(Granted::Socket { addr, fd })
            }
        }
    }
}
