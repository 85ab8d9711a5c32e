//! What `worker_threads_cluster::listen` returns: a `TcpListener`-like source of connections.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{PollFd, PollFlags};

use crate::error::{ListenError, NotAWorker};
use crate::worker::runtime::{Granted, HandoffClaim, Runtime, runtime};

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
    match runtime.listen(addr)? {
        Granted::Handoff { addr, queue, claim } => Ok(Listener::handoff(addr, queue, claim)),
        Granted::Socket { addr, fd } => Listener::socket(addr, fd).map_err(ListenError::Io),
    }
}

/// A worker's listener (what Node's `server.listen()` gives a cluster worker).
///
/// Under `RoundRobin` the connections are accepted by the primary and arrive here;
/// under `Shared` and `ReusePort` this is a listening socket. Either way
/// [`accept`](Listener::accept) returns the next connection, like
/// [`std::net::TcpListener::accept`], and fails with [`io::ErrorKind::NotConnected`]
/// once the primary has disconnected this worker (connections already handed over are
/// still returned first); [`incoming`](Listener::incoming) ends there.
/// With the `tokio` feature, [`into_tokio`](Listener::into_tokio) gives the async twin.
/// Dropping it stops the connections: under `RoundRobin` the primary stops handing this
/// worker connections for the address once its last listener for it is gone.
///
/// # Examples
///
/// ```no_run
/// use std::io::Write;
/// use worker_threads_cluster::{Cluster, is_primary, listen};
///
/// if is_primary() {
///     let cluster = Cluster::<()>::new();
///     for _ in 0..4 {
///         cluster.fork()?;
///     }
///     for event in cluster.iter() {
///         println!("{event:?}");
///     }
/// } else {
///     // Every worker listens on the same port; the primary shares the connections out.
///     let listener = listen("127.0.0.1:8000")?;
///     for stream in listener.incoming() {
///         stream?.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")?;
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Listener {
    addr: SocketAddr,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// Round-robin: descriptors from the primary.
    Handoff {
        queue: flume::Receiver<TcpStream>,
        /// Held for its `Drop`.
        _claim: HandoffClaim,
    },
    /// A listening socket (shared, or our own with `SO_REUSEPORT`), non-blocking.
    Socket(TcpListener),
}

fn disconnected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "cluster worker disconnected")
}

impl Listener {
    fn handoff(addr: SocketAddr, queue: flume::Receiver<TcpStream>, claim: HandoffClaim) -> Self {
        Listener {
            addr,
            source: Source::Handoff {
                queue,
                _claim: claim,
            },
        }
    }

    fn socket(addr: SocketAddr, fd: OwnedFd) -> io::Result<Self> {
        let listener = TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        Ok(Listener {
            addr,
            source: Source::Socket(listener),
        })
    }

    /// The address the cluster serves (the primary's bound address).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next connection and its peer's address, waiting for one.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] once this worker is disconnected; otherwise the
    /// error of `accept`.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match &self.source {
            Source::Handoff { queue, .. } => {
                let stream = queue.recv().map_err(|_| disconnected())?;
                let peer = stream.peer_addr()?;
                Ok((stream, peer))
            }
            Source::Socket(listener) => {
                let rt = runtime().ok_or_else(disconnected)?;
                accept_socket(rt, listener)
            }
        }
    }

    /// Connections as they come; ends when this worker is disconnected.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(|| match self.accept() {
            Ok((stream, _)) => Some(Ok(stream)),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
            Err(e) => Some(Err(e)),
        })
    }

    /// The async twin, for tokio servers (hyper); call it inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The error of registering the socket with tokio.
    #[cfg(feature = "tokio")]
    pub fn into_tokio(self) -> io::Result<TokioListener> {
        let source = match self.source {
            Source::Handoff { queue, _claim } => AsyncSource::Handoff { queue, _claim },
            Source::Socket(listener) => {
                AsyncSource::Socket(tokio::net::TcpListener::from_std(listener)?)
            }
        };
        Ok(TokioListener {
            addr: self.addr,
            source,
        })
    }
}

/// Waits on the listening socket and the disconnect signal, then accepts.
fn accept_socket(rt: &Runtime, listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    loop {
        if rt.is_disconnected() {
            return Err(disconnected());
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(false)?;
                return Ok((stream, peer));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let socket = listener.as_fd();
        let mut fds = [
            PollFd::new(&socket, PollFlags::IN),
            PollFd::new(&rt.wake, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The async listener of a cluster worker, from [`Listener::into_tokio`]: `accept`
/// as `tokio::net::TcpListener::accept`. (Under `RoundRobin` there is no socket to
/// poll, the primary hands connections over, so this is our type rather than tokio's.)
///
/// # Examples
///
/// ```no_run
/// use worker_threads_cluster::listen;
///
/// # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
/// // In a worker process, under a tokio runtime:
/// let listener = listen("127.0.0.1:8000")?.into_tokio()?;
/// loop {
///     let (stream, peer) = listener.accept().await?;
///     stream.writable().await?;
///     let sent = stream.try_write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")?;
///     println!("{sent} bytes to {peer}");
/// }
/// # }
/// ```
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct TokioListener {
    addr: SocketAddr,
    source: AsyncSource,
}

#[cfg(feature = "tokio")]
#[derive(Debug)]
enum AsyncSource {
    Handoff {
        queue: flume::Receiver<TcpStream>,
        /// Held for its `Drop`.
        _claim: HandoffClaim,
    },
    Socket(tokio::net::TcpListener),
}

#[cfg(feature = "tokio")]
impl TokioListener {
    /// The address the cluster serves.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next connection and its peer's address.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] once this worker is disconnected; otherwise the
    /// error of `accept`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a connection is taken only in the poll that returns it, so dropping
    /// the future loses none (as tokio's `TcpListener::accept`).
    pub async fn accept(&self) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
        match &self.source {
            AsyncSource::Handoff { queue, .. } => {
                let stream = queue.recv_async().await.map_err(|_| disconnected())?;
                stream.set_nonblocking(true)?;
                let peer = stream.peer_addr()?;
                Ok((tokio::net::TcpStream::from_std(stream)?, peer))
            }
            AsyncSource::Socket(listener) => {
                let rt = runtime().ok_or_else(disconnected)?;
                loop {
                    if rt.is_disconnected() {
                        return Err(disconnected());
                    }
                    let mut woken = rt.event.listen();
                    if rt.is_disconnected() {
                        return Err(disconnected());
                    }
                    let mut accept = std::pin::pin!(listener.accept());
                    let accepted = std::future::poll_fn(|cx| {
                        if std::pin::Pin::new(&mut woken).poll(cx).is_ready() {
                            return std::task::Poll::Ready(None);
                        }
                        accept.as_mut().poll(cx).map(Some)
                    })
                    .await;
                    if let Some(result) = accepted {
                        return result;
                    }
                }
            }
        }
    }
}

#[cfg(feature = "tokio")]
use std::future::Future as _;
