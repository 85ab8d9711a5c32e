//! The child's side: the environment marker that names its end of the channel.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use worker_threads_wait::Unpoison;

use crate::channel::is_seqpacket;

/// What [`spawn`](crate::spawn) puts in the child's environment: `fd,parent_pid,payload`.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_process::{Channel, Marker};
///
/// // In a child started by `spawn(.., "MY_CHILD", payload, ..)`:
/// if let Some(marker) = Marker::from_env("MY_CHILD") {
///     let channel = Channel::new(marker.adopt()?, 1 << 20);
///     println!("child of {} with {:?}", marker.parent, marker.payload);
///     channel.send(1, b"ready", &[])?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The child's end of the channel.
    pub fd: RawFd,
    /// The pid of the process that started the child.
    pub parent: u32,
    /// The caller's own data (the cluster's worker id, a process worker's entry).
    pub payload: String,
}

/// Descriptors adopted so far: each one has one owner.
static ADOPTED: Mutex<Option<HashSet<RawFd>>> = Mutex::new(None);

impl Marker {
    /// The marker in `var`, if there is one and it was put there by this process's
    /// parent: a marker inherited by a child's own child names another parent, and is
    /// ignored (that grandchild is not a child of ours).
    ///
    /// # Examples
    ///
    /// ```
    /// // Not started by `spawn`: no marker.
    /// assert_eq!(worker_threads_process::Marker::from_env("WT_DOC_NO_SUCH_MARKER"), None);
    /// ```
    pub fn from_env(var: &str) -> Option<Marker> {
        let value = std::env::var(var).ok()?;
        let marker = Marker::parse(&value)?;
        let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32);
        (parent == Some(marker.parent)).then_some(marker)
    }

    fn parse(value: &str) -> Option<Marker> {
        let mut parts = value.splitn(3, ',');
        Some(Marker {
            fd: parts.next()?.parse().ok()?,
            parent: parts.next()?.parse().ok()?,
            payload: parts.next()?.to_owned(),
        })
    }

    /// Takes ownership of the channel's descriptor, once per process, after checking that
    /// it is a seqpacket socket; makes it close-on-exec again, so that a program this
    /// child starts does not hold the channel open (the parent would see this child's
    /// exit only when that program ends).
    ///
    /// # Errors
    ///
    /// The descriptor was adopted already, is not a seqpacket socket, or cannot be made
    /// close-on-exec.
    pub fn adopt(&self) -> io::Result<OwnedFd> {
        {
            let mut adopted = ADOPTED.lock().unpoison();
            if !adopted.get_or_insert_with(HashSet::new).insert(self.fd) {
                return Err(io::Error::other(
                    "the marker's descriptor was adopted already",
                ));
            }
        }
        // SAFETY: the marker names our parent (checked in `from_env`), which put this
        // descriptor number in it after making the descriptor inheritable for exactly
        // this process; `ADOPTED` makes this the only `OwnedFd` for it.
        let fd = unsafe { OwnedFd::from_raw_fd(self.fd) };
        if !is_seqpacket(std::os::fd::AsFd::as_fd(&fd)) {
            std::mem::forget(fd); // not ours to close: it is not the channel
            return Err(io::Error::other(
                "the marker's descriptor is not a seqpacket socket",
            ));
        }
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        Ok(fd)
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{}", self.fd, self.parent, self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::Marker;

    #[test]
    fn a_marker_round_trips_with_commas_in_its_payload() {
        let marker = Marker {
            fd: 7,
            parent: 4242,
            payload: "3,entry,x".into(),
        };
        assert_eq!(Marker::parse(&marker.to_string()), Some(marker));
        assert_eq!(Marker::parse("7,4242"), None);
        assert_eq!(Marker::parse("x,4242,"), None);
    }
}
