//! `Server`: one address the primary serves, by one scheduling policy.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use worker_threads_wait::sync::{Mutex, MutexGuard};

use worker_threads_process::{Channel as Ipc, IpcError};

use crate::config::SchedulingPolicy;
use crate::lock;
use crate::net::{bind, local_addr};
use crate::wire::{self, TAG_CONTROL, ToWorker};

/// Connections the primary holds while no worker can take one; past it, the newest are
/// closed (the kernel's backlog still queues those not yet accepted).
const MAX_PENDING: usize = 1024;

/// A worker a round-robin server hands connections to.
pub(crate) struct Member {
    pub(crate) id: usize,
    pub(crate) ipc: Arc<Ipc>,
}

#[derive(Default)]
struct Members {
    list: Vec<Member>,
    next: usize,
    /// Connections accepted while no worker was listening; handed out when one joins.
    pending: VecDeque<TcpStream>,
}

/// One address the primary serves, by one policy.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) key: u64,
    pub(crate) policy: SchedulingPolicy,
    /// The listening socket (`RoundRobin`, `Shared`) or the port holder (`ReusePort`).
    pub(crate) socket: OwnedFd,
    members: Mutex<Members>,
    connection_frame: Vec<u8>,
}

impl Server {
    /// Binds `addr` for `policy`.
    pub(crate) fn bind(addr: SocketAddr, key: u64, policy: SchedulingPolicy) -> io::Result<Self> {
        let reuse_port = policy == SchedulingPolicy::ReusePort;
        let socket = bind(addr, reuse_port, !reuse_port)?;
        let addr = local_addr(&socket)?;
        let connection_frame = wire::encode(&ToWorker::Connection { key })
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Server {
            addr,
            key,
            policy,
            socket,
            members: Mutex::default(),
            connection_frame,
        })
    }

    fn members(&self) -> MutexGuard<'_, Members> {
        lock(&self.members)
    }

    /// Adds a worker to the rotation and gives it what queued while nobody listened.
    pub(crate) fn join(&self, member: Member) {
        let mut members = self.members();
        members.list.push(member);
        while let Some(stream) = members.pending.pop_front() {
            if let Err(stream) = self.dispatch_locked(&mut members, stream) {
                members.pending.push_front(stream);
                break;
            }
        }
    }

    /// Takes a worker out of the rotation (disconnect, exit).
    pub(crate) fn leave(&self, id: usize) {
        self.members().list.retain(|m| m.id != id);
    }

    /// Hands one accepted connection to the next worker in turn (after those that
    /// waited for one).
    fn dispatch(&self, stream: TcpStream) {
        let mut members = self.members();
        while let Some(waiting) = members.pending.pop_front() {
            if let Err(waiting) = self.dispatch_locked(&mut members, waiting) {
                members.pending.push_front(waiting);
                break;
            }
        }
        if members.pending.is_empty() {
            if let Err(stream) = self.dispatch_locked(&mut members, stream) {
                members.pending.push_back(stream);
            }
        } else if members.pending.len() < MAX_PENDING {
            members.pending.push_back(stream);
        } else {
            tracing::warn!(addr = %self.addr, "no worker is taking connections: closing one");
        }
    }

    /// Hands `stream` to the next worker that takes it, without waiting: a worker whose
    /// channel is full (stopped, or not reading) is skipped, one whose channel failed
    /// leaves the rotation. The stream comes back when no worker could take it.
    fn dispatch_locked(&self, members: &mut Members, stream: TcpStream) -> Result<(), TcpStream> {
        let mut tried = 0;
        while tried < members.list.len() {
            let i = members.next % members.list.len();
            let member = &members.list[i];
            match member
                .ipc
                .try_send(TAG_CONTROL, &self.connection_frame, &[stream.as_fd()])
            {
                Ok(()) => {
                    members.next = i + 1;
                    return Ok(());
                }
                Err(IpcError::Full) => {
                    tracing::debug!(worker = member.id, "worker not reading: skipped");
                    members.next = i + 1;
                    tried += 1;
                }
                Err(error) => {
                    tracing::debug!(worker = member.id, %error, "hand-off failed, next worker");
                    members.list.remove(i);
                }
            }
        }
        Err(stream)
    }

    /// The round-robin accept loop; ends when `stop` shuts the socket down.
    pub(crate) fn accept_loop(&self) {
        let listener = match self.socket.try_clone() {
            Ok(fd) => TcpListener::from(fd),
            Err(error) => {
                tracing::error!(%error, addr = %self.addr, "cannot accept");
                return;
            }
        };
        loop {
            match listener.accept() {
                Ok((stream, _)) => self.dispatch(stream),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                    return; // shut down by `stop`
                }
                Err(error) => {
                    // EMFILE and friends: back off a little rather than spin.
                    tracing::warn!(%error, addr = %self.addr, "accept failed");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }

    /// Wakes the accept loop for good and drops what was queued.
    pub(crate) fn stop(&self) {
        let _ = rustix::net::shutdown(&self.socket, rustix::net::Shutdown::Read);
        self.members().pending.clear();
    }
}
