//! Socket helpers both sides use: binding a listening TCP socket.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, SocketFlags, SocketType};

/// The accept backlog of every listening socket we create.
const BACKLOG: i32 = 1024;

/// Creates a TCP socket bound to `addr`, with `SO_REUSEADDR`, optionally `SO_REUSEPORT`,
/// listening unless `listen` is false (the `ReusePort` primary only holds the port).
pub(crate) fn bind(addr: SocketAddr, reuse_port: bool, listen: bool) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    if reuse_port {
        rustix::net::sockopt::set_socket_reuseport(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    if listen {
        rustix::net::listen(&fd, BACKLOG)?;
    }
    Ok(fd)
}

/// The address a socket is bound to.
pub(crate) fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    let any = rustix::net::getsockname(fd)?;
    SocketAddr::try_from(any)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not an inet socket"))
}
