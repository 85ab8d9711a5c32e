//! The wire between a parent and one child process: a `SOCK_SEQPACKET` socketpair.
//!
//! Everything that touches the socket is here. A *frame* is one message (a tag byte and a
//! postcard body); it travels as one or more *records* (seqpacket datagrams, each delivered
//! whole or not at all):
//!
//! ```text
//! first record:        [len: u32 LE][tag: u8][body ...]      (+ SCM_RIGHTS fds, if any)
//! continuation record: [body ...]                            (no fds)
//! ```
//!
//! `len` counts the tag and the body. A record is at most [`RECORD`] bytes, so a frame
//! larger than one record (a 1 MiB message) is split; the sender holds a lock for the
//! whole frame so that records of two frames never interleave. The receiver checks `len`
//! against its cap *before* allocating (an oversize frame is an error, not an
//! allocation), refuses a record the kernel had to truncate (`MSG_TRUNC`), a control
//! message it had to truncate (`MSG_CTRUNC`, which would silently drop descriptors), and
//! descriptors on a continuation record. Received descriptors are close-on-exec
//! (`MSG_CMSG_CLOEXEC`), so a later `fork()` never leaks them into another child.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;
use worker_threads_wait::Unpoison;

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, Shutdown, SocketFlags, SocketType,
};

use crate::error::IpcError;
use crate::rings::Rings;

mod ringed;

/// The largest record on the socket, header included.
pub const RECORD: usize = 64 * 1024;
/// Descriptors one frame may carry.
pub const MAX_FDS: usize = 32;
/// Bytes before the body in a first record.
const HEADER: usize = 4;

/// A frame as received: its tag, its body, and the descriptors that came with it.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// use worker_threads_process::{Channel, channel_pair};
///
/// let (a, b) = channel_pair()?;
/// let (a, b) = (Channel::new(a, 1 << 20), Channel::new(b, 1 << 20));
/// let file = std::fs::File::open("/dev/null")?;
/// a.send(7, b"with a descriptor", &[file.as_fd()])?;
/// let mut buf = Vec::new();
/// let frame = b.recv(&mut buf)?.expect("a frame");
/// assert_eq!((frame.tag, frame.body.as_slice()), (7, &b"with a descriptor"[..]));
/// assert_eq!(frame.fds.len(), 1); // a new descriptor for the same file
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Frame {
    /// What the body is (the caller's numbering).
    pub tag: u8,
    /// The body, exactly as sent.
    pub body: Vec<u8>,
    /// The descriptors attached to the frame (close-on-exec).
    pub fds: Vec<OwnedFd>,
}

/// One end of a parent-child socketpair, framed: whole frames of up to `max_frame` bytes
/// each way, a sender lock per frame, descriptors on a frame's first record.
///
/// # Examples
///
/// ```
/// use worker_threads_process::{Channel, channel_pair};
///
/// // One end stays here, the other goes to a child (`spawn` does that part).
/// let (ours, theirs) = channel_pair()?;
/// let (ours, theirs) = (Channel::new(ours, 1 << 20), Channel::new(theirs, 1 << 20));
/// ours.send(1, b"ping", &[])?;
/// let mut buf = Vec::new();
/// assert_eq!(theirs.recv(&mut buf)?.expect("a frame").body, b"ping");
/// drop(ours);
/// assert!(theirs.recv(&mut buf)?.is_none(), "the peer hung up");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    send_lock: Mutex<()>,
    max_frame: usize,
    /// How long a frame's continuation records may take (`None`: as long as they take).
    frame_timeout: Option<Duration>,
    /// How long a send may wait for the peer to read (`None`: as long as it takes).
    send_timeout: Option<Duration>,
    /// The rings every frame goes through once both sides have them (`ringed.rs`).
    rings: Option<Rings>,
    /// Set once this side saw the peer hang up, or shut the channel down: a send through
    /// the rings fails `Closed` (a socket send would, by itself), a receive reads the end.
    ended: std::sync::atomic::AtomicBool,
}

/// A connected pair of seqpacket sockets, both close-on-exec: the parent keeps one, the
/// child inherits the other (see [`spawn`](crate::spawn)).
///
/// # Errors
///
/// The OS error of `socketpair` (descriptor limit).
pub fn channel_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let pair = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok(pair)
}

/// Whether `fd` is a seqpacket socket (what a child checks before trusting its marker).
pub fn is_seqpacket(fd: BorrowedFd<'_>) -> bool {
    rustix::net::sockopt::socket_type(fd) == Ok(SocketType::SEQPACKET)
}

impl Channel {
    /// Wraps one end; frames over `max_frame` bytes are refused both ways.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_process::{Channel, channel_pair};
    ///
    /// let (a, _b) = channel_pair()?;
    /// let channel = Channel::new(a, 64 << 10); // frames of at most 64 KiB each way
    /// # drop(channel);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(fd: OwnedFd, max_frame: usize) -> Self {
        Channel {
            fd,
            send_lock: Mutex::new(()),
            max_frame,
            frame_timeout: None,
            send_timeout: None,
            rings: None,
            ended: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on, every frame goes through `rings` (this side's, see
    /// [`rings`](crate::rings)), in order with those that carry descriptors, which still
    /// cross the socket: each takes a ring record that says so. Both sides must switch
    /// before the first frame the other reads through the rings (the parent after its
    /// first frame, which sends the child the rings; the child after reading it).
    pub fn with_rings(mut self, rings: Rings) -> Self {
        self.rings = Some(rings);
        self
    }

    /// Whether frames go through shared-memory rings ([`with_rings`](Self::with_rings)).
    pub fn has_rings(&self) -> bool {
        self.rings.is_some()
    }

    /// Bounds the wait for the rest of a frame once its first record arrived: past it,
    /// `recv` fails with [`IpcError::Stalled`] (a peer that stops mid-frame).
    pub fn with_frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = Some(timeout);
        self
    }

    /// Bounds every blocking send: a peer that does not read for `timeout` fails it with
    /// [`IpcError::SendTimedOut`] (`SO_SNDTIMEO`).
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt`.
    pub fn with_send_timeout(mut self, timeout: Duration) -> std::io::Result<Self> {
        rustix::net::sockopt::set_socket_timeout(
            &self.fd,
            rustix::net::sockopt::Timeout::Send,
            Some(timeout),
        )?;
        self.send_timeout = Some(timeout);
        Ok(self)
    }

    /// Sends a frame without waiting: on the socket, a frame of one record (at most
    /// [`RECORD`] bytes with its 5-byte header); through rings, a frame that fits the ring
    /// now, whatever its size (one with descriptors: one socket record).
    /// [`IpcError::Full`] if the peer's receive buffer or ring is full or another thread
    /// is sending a frame on this channel. For hand-offs that must skip a peer that is not
    /// reading.
    ///
    /// # Errors
    ///
    /// [`IpcError::Full`], [`IpcError::TooLarge`] for a frame over one record (on the
    /// socket) or the cap, [`IpcError::Closed`] and socket errors.
    pub fn try_send(&self, tag: u8, body: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), IpcError> {
        if body.len() + 1 > self.max_frame {
            return Err(IpcError::TooLarge {
                len: body.len() + 1,
                max: self.max_frame,
            });
        }
        if self.rings.is_none() && body.len() + HEADER + 1 > RECORD {
            return Err(IpcError::TooLarge {
                len: body.len() + 1,
                max: RECORD - HEADER,
            });
        }
        let _whole_frame = match self.send_lock.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(IpcError::Full),
        };
        if let Some(rings) = &self.rings {
            return self.try_send_ringed(rings, tag, body, fds);
        }
        self.try_send_record(tag, body, fds)
    }

    /// Sends a frame of one record on the socket without waiting (the send lock held):
    /// [`IpcError::Full`] if the peer's receive buffer is.
    fn try_send_record(
        &self,
        tag: u8,
        body: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), IpcError> {
        self.send_first(
            tag,
            body.len() + 1,
            body,
            fds,
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        )
        .map_err(|error| match error {
            IpcError::SendTimedOut => IpcError::Full,
            other => other,
        })
    }

    /// Sends the first record of a frame (all of it, for a frame of one record).
    fn send_first(
        &self,
        tag: u8,
        len: usize,
        head: &[u8],
        fds: &[BorrowedFd<'_>],
        flags: SendFlags,
    ) -> Result<(), IpcError> {
        if fds.len() > MAX_FDS {
            return Err(IpcError::Malformed("too many descriptors in one frame"));
        }
        let header = u32::try_from(len)
            .map_err(|_| IpcError::TooLarge {
                len,
                max: self.max_frame,
            })?
            .to_le_bytes();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(IpcError::Malformed(
                "descriptors do not fit the control buffer",
            ));
        }
        let tag = [tag];
        let iov = [
            IoSlice::new(&header),
            IoSlice::new(&tag),
            IoSlice::new(head),
        ];
        retry(|| rustix::net::sendmsg(&self.fd, &iov, &mut control, flags))?;
        Ok(())
    }

    /// Waits until the next record is readable, for at most the frame timeout.
    fn await_continuation(&self) -> Result<(), IpcError> {
        let Some(timeout) = self.frame_timeout else {
            return Ok(());
        };
        let timeout =
            rustix::event::Timespec::try_from(timeout).unwrap_or(rustix::event::Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            });
        let mut fds = [rustix::event::PollFd::new(
            &self.fd,
            rustix::event::PollFlags::IN,
        )];
        match retry(|| rustix::event::poll(&mut fds, Some(&timeout)))? {
            0 => Err(IpcError::Stalled),
            _ => Ok(()),
        }
    }

    /// Sends one frame, with `fds` (at most [`MAX_FDS`]) attached to its first record.
    ///
    /// # Errors
    ///
    /// [`IpcError::TooLarge`] over the cap, [`IpcError::Closed`] when the peer has gone,
    /// [`IpcError::SendTimedOut`] past the send timeout (see
    /// [`with_send_timeout`](Self::with_send_timeout)), [`IpcError::Io`] for other socket
    /// errors (nothing was sent if the first record failed).
    pub fn send(&self, tag: u8, body: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), IpcError> {
        let len = body.len() + 1;
        if len > self.max_frame {
            return Err(IpcError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        let _whole_frame = self.send_lock.lock().unpoison();
        match &self.rings {
            Some(rings) => self.send_ringed(rings, tag, body, fds),
            None => self.send_socket(tag, body, fds),
        }
    }

    /// Sends a frame on the socket, in records (the caller holds the send lock).
    fn send_socket(&self, tag: u8, body: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), IpcError> {
        let first = body.len().min(RECORD - HEADER - 1);
        let (head, rest) = body.split_at(first);
        self.send_first(tag, body.len() + 1, head, fds, SendFlags::NOSIGNAL)?;
        for chunk in rest.chunks(RECORD) {
            retry(|| rustix::net::send(&self.fd, chunk, SendFlags::NOSIGNAL))?;
        }
        Ok(())
    }

    /// Receives one frame; `Ok(None)` when the peer is gone. `buf` is scratch space kept
    /// between calls.
    ///
    /// # Errors
    ///
    /// Every way a peer can break the format: [`IpcError::TooLarge`] (before allocating),
    /// [`IpcError::Malformed`], [`IpcError::Stalled`] (after the frame timeout), and
    /// socket errors.
    pub fn recv(&self, buf: &mut Vec<u8>) -> Result<Option<Frame>, IpcError> {
        self.recv_with(buf, RecvFlags::CMSG_CLOEXEC)
    }

    /// Receives one frame if one has begun to arrive, without waiting for it to begin
    /// (the rest of a frame of several records is waited for, as [`recv`](Self::recv)
    /// does); `Ok(None)` when the peer is gone. Two threads that receive on one channel
    /// must take turns (a lock), or the records of one frame could go to both.
    ///
    /// # Errors
    ///
    /// [`IpcError::Empty`] when no frame is waiting, and [`recv`](Self::recv)'s errors.
    pub fn try_recv(&self, buf: &mut Vec<u8>) -> Result<Option<Frame>, IpcError> {
        self.recv_with(buf, RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT)
    }

    /// Receives one frame, waiting at most `timeout` for it to begin (the rest of a frame
    /// of several records is waited for, as [`recv`](Self::recv) does); `Ok(None)` when
    /// the peer is gone.
    ///
    /// # Errors
    ///
    /// [`IpcError::RecvTimedOut`] when no frame began in time, and
    /// [`recv`](Self::recv)'s errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_process::{Channel, IpcError, channel_pair};
    ///
    /// let (a, b) = channel_pair()?;
    /// let (a, b) = (Channel::new(a, 1 << 20), Channel::new(b, 1 << 20));
    /// let mut buf = Vec::new();
    /// let waited = b.recv_timeout(&mut buf, Duration::from_millis(1));
    /// assert!(matches!(waited, Err(IpcError::RecvTimedOut)));
    /// a.send(7, b"hi", &[])?;
    /// let frame = b.recv_timeout(&mut buf, Duration::from_secs(60))?.expect("a frame");
    /// assert_eq!((frame.tag, frame.body.as_slice()), (7, &b"hi"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout(
        &self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<Option<Frame>, IpcError> {
        match std::time::Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_deadline(buf, deadline),
            // Further than an `Instant` reaches: wait as long as it takes.
            None => self.recv(buf),
        }
    }

    /// [`recv_timeout`](Self::recv_timeout) until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_deadline(
        &self,
        buf: &mut Vec<u8>,
        deadline: std::time::Instant,
    ) -> Result<Option<Frame>, IpcError> {
        if self.wait_readable_until(deadline)? {
            self.recv(buf)
        } else {
            Err(IpcError::RecvTimedOut)
        }
    }

    fn recv_with(&self, buf: &mut Vec<u8>, flags: RecvFlags) -> Result<Option<Frame>, IpcError> {
        match &self.rings {
            Some(rings) => self.recv_ringed(rings, buf, !flags.contains(RecvFlags::DONTWAIT)),
            None => self.recv_socket(buf, flags),
        }
    }

    /// Receives the next frame on the socket.
    fn recv_socket(&self, buf: &mut Vec<u8>, flags: RecvFlags) -> Result<Option<Frame>, IpcError> {
        buf.resize(RECORD, 0);
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = loop {
            match rustix::net::recvmsg(&self.fd, &mut [IoSliceMut::new(buf)], &mut control, flags) {
                Ok(msg) => break msg,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) if flags.contains(RecvFlags::DONTWAIT) => {
                    return Err(IpcError::Empty);
                }
                Err(error) => return Err(ipc_error(error)),
            }
        };
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = message {
                fds.extend(rights);
            }
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(IpcError::Malformed("truncated control message"));
        }
        if msg.flags.contains(ReturnFlags::TRUNC) {
            return Err(IpcError::Malformed("record larger than 64 KiB"));
        }
        if msg.bytes == 0 {
            return Ok(None);
        }
        let record = &buf[..msg.bytes];
        let Some((header, data)) = record.split_first_chunk::<HEADER>() else {
            return Err(IpcError::Malformed("record shorter than its header"));
        };
        let len = u32::from_le_bytes(*header) as usize;
        if len > self.max_frame {
            return Err(IpcError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        if len == 0 || data.len() != len.min(RECORD - HEADER) {
            return Err(IpcError::Malformed(
                "frame length does not match its record",
            ));
        }
        let (tag, head) = (data[0], &data[1..]);
        let mut body = Vec::with_capacity(len - 1);
        body.extend_from_slice(head);
        while body.len() < len - 1 {
            let want = (len - 1 - body.len()).min(RECORD);
            self.await_continuation()?;
            let mut none = RecvAncillaryBuffer::default();
            let msg = retry(|| {
                rustix::net::recvmsg(
                    &self.fd,
                    &mut [IoSliceMut::new(buf)],
                    &mut none,
                    RecvFlags::CMSG_CLOEXEC,
                )
            })?;
            if msg.bytes == 0 {
                return Ok(None);
            }
            if msg.bytes != want
                || msg
                    .flags
                    .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
            {
                return Err(IpcError::Malformed("continuation record of the wrong size"));
            }
            body.extend_from_slice(&buf[..want]);
        }
        Ok(Some(Frame { tag, body, fds }))
    }

    /// Watches the socket for up to `spin` without sleeping (a `poll` with no timeout, in a
    /// loop); true as soon as a record (or end of file) is there to read. For a caller
    /// that expects an answer within microseconds: a reader that sleeps in `recv` pays the
    /// scheduler's wake-up on top of the peer's work.
    pub fn spin_until_readable(&self, spin: Duration) -> bool {
        if let Some(rings) = &self.rings {
            return self.spin_ringed(rings, spin);
        }
        let start = std::time::Instant::now();
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            let mut fds = [rustix::event::PollFd::new(
                &self.fd,
                rustix::event::PollFlags::IN,
            )];
            if matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0) {
                return true;
            }
            if start.elapsed() >= spin {
                return false;
            }
            worker_threads_wait::sync::spin_loop();
        }
    }

    /// Sleeps until a record (or end of file) is there to read, or until `deadline`: true
    /// if readable, false if the deadline came first.
    ///
    /// # Errors
    ///
    /// The OS error of `poll` (an interrupted one is retried).
    pub fn wait_readable_until(&self, deadline: std::time::Instant) -> Result<bool, IpcError> {
        if let Some(rings) = &self.rings {
            return self.wait_ringed(rings, Some(deadline));
        }
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let timeout = rustix::event::Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [rustix::event::PollFd::new(
                &self.fd,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) if left.is_zero() => return Ok(false),
                // A timeout rounded below the time left: look again.
                Ok(0) => {}
                Ok(_) => return Ok(true),
                Err(Errno::INTR) => {}
                Err(error) => return Err(ipc_error(error)),
            }
        }
    }

    /// Ends both directions: the peer reads end-of-file, our blocked `recv` returns.
    pub fn shutdown(&self) {
        self.ended.store(true, std::sync::atomic::Ordering::Release);
        let _ = rustix::net::shutdown(&self.fd, Shutdown::Both);
    }
}

/// A reader thread's wait for a channel to be readable, where other threads read the
/// channel too (taking turns with it under a lock) and may ask it not to wake while they
/// do: each would take what woke it, and a wake-up that finds nothing costs a context
/// switch on the core the readers are using.
///
/// An epoll set holding the channel: [`pause`](Self::pause) takes the channel's readable
/// event out of it (a hang-up still wakes), [`resume`](Self::resume) puts it back when the
/// last reader that paused it stops (level-triggered: what arrived meanwhile wakes the
/// waiter at once). Without an epoll set (the descriptor limit), it waits with `poll` and
/// pausing does nothing. On a channel with rings the set holds the data doorbell and the
/// socket's hang-up, and pausing costs no system call: the waiter asks the writer for the
/// bell only while nobody paused it, and the last resume asks again (ringing the bell
/// itself for a record already there).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use worker_threads_process::{Channel, channel_pair};
///
/// let (a, b) = channel_pair()?;
/// let (a, b) = (Arc::new(Channel::new(a, 1 << 20)), Arc::new(Channel::new(b, 1 << 20)));
/// use worker_threads_process::Readable;
///
/// let readable = Readable::new(Arc::clone(&b));
/// a.send(1, b"wake", &[])?;
/// readable.wait()?; // returns: a record is there to read
/// let mut buf = Vec::new();
/// assert_eq!(b.try_recv(&mut buf)?.expect("a frame").body, b"wake");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Readable {
    channel: std::sync::Arc<Channel>,
    epoll: Option<OwnedFd>,
    /// Readers that paused the wait.
    pausing: Mutex<usize>,
}

impl Readable {
    /// A wait on `channel`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use worker_threads_process::{Channel, channel_pair};
    ///
    /// let (a, b) = channel_pair()?;
    /// let (a, b) = (Arc::new(Channel::new(a, 1 << 20)), Arc::new(Channel::new(b, 1 << 20)));
    /// use worker_threads_process::Readable;
    ///
    /// let readable = Readable::new(Arc::clone(&b));
    /// drop(a);
    /// readable.wait()?; // a hang-up wakes it too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(channel: std::sync::Arc<Channel>) -> Readable {
        use rustix::event::epoll;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).and_then(|set| {
            match &channel.rings {
                // Records ring the data bell; the socket only says the peer hung up.
                Some(rings) => {
                    epoll::add(
                        &set,
                        rings.data_bell(),
                        epoll::EventData::new_u64(0),
                        epoll::EventFlags::IN,
                    )?;
                    epoll::add(
                        &set,
                        &channel.fd,
                        epoll::EventData::new_u64(1),
                        epoll::EventFlags::RDHUP,
                    )?;
                }
                None => epoll::add(
                    &set,
                    &channel.fd,
                    epoll::EventData::new_u64(0),
                    epoll::EventFlags::IN,
                )?,
            }
            Ok(set)
        });
        if let Err(error) = &epoll {
            tracing::debug!(%error, "no epoll set for a channel: its reader wakes for every record");
        }
        Readable {
            channel,
            epoll: epoll.ok(),
            pausing: Mutex::new(0),
        }
    }

    /// Waits until `channel` has a record (or end of file) to read, or, while paused, until
    /// it hangs up.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_wait` or `poll`.
    pub fn wait(&self) -> Result<(), IpcError> {
        if let Some(rings) = &self.channel.rings {
            // Ask for the bell unless another thread reads (then it stays unasked: a bell
            // would cost the writer a system call and wake this waiter for nothing), under
            // the lock that pausing takes, so a pause cannot come between.
            let pausing = self.pausing.lock().unpoison();
            if *pausing == 0 && rings.arm_data() {
                return Ok(());
            }
        }
        let hung_up = match &self.epoll {
            Some(set) => {
                let mut events = [MaybeUninit::uninit(); 2];
                retry(|| {
                    rustix::event::epoll::wait(set, &mut events, None)
                        .map(|(ready, _)| ready.iter().any(|event| event.data.u64() == 1))
                })?
            }
            None => match &self.channel.rings {
                Some(rings) => {
                    let bell = rings.data_bell();
                    let mut fds = [
                        rustix::event::PollFd::new(&bell, rustix::event::PollFlags::IN),
                        rustix::event::PollFd::new(
                            &self.channel.fd,
                            rustix::event::PollFlags::RDHUP,
                        ),
                    ];
                    retry(|| rustix::event::poll(&mut fds, None))?;
                    !fds[1].revents().is_empty()
                }
                None => {
                    let mut fds = [rustix::event::PollFd::new(
                        &self.channel.fd,
                        rustix::event::PollFlags::IN,
                    )];
                    retry(|| rustix::event::poll(&mut fds, None))?;
                    false
                }
            },
        };
        if let Some(rings) = &self.channel.rings {
            crate::rings::drain_bell(rings.data_bell());
            if hung_up {
                // The receives read what the ring still holds, then the end.
                self.channel.mark_ended();
            }
        }
        Ok(())
    }

    /// The channel it waits on.
    pub fn channel(&self) -> &std::sync::Arc<Channel> {
        &self.channel
    }

    /// Another thread is about to read the channel: the wait stops waking for records
    /// until every thread that paused it called [`resume`](Self::resume).
    pub fn pause(&self) {
        self.set(1, rustix::event::epoll::EventFlags::empty());
    }

    /// The thread that paused the wait stopped reading.
    pub fn resume(&self) {
        self.set(-1, rustix::event::epoll::EventFlags::IN);
    }

    fn set(&self, step: isize, flags: rustix::event::epoll::EventFlags) {
        let mut pausing = self.pausing.lock().unpoison();
        let before = *pausing;
        *pausing = before.saturating_add_signed(step);
        // Only the first pause and the last resume change the wait; the lock keeps the
        // two calls in the order of the count.
        if (before == 0) == (*pausing == 0) {
            return;
        }
        match &self.channel.rings {
            // A writer rings the bell only when asked: unasked, the waiter sleeps on. On
            // the last resume, ask again, and ring it here for a record that came before
            // the ask.
            Some(rings) if *pausing > 0 => rings.disarm_data(),
            Some(rings) => {
                if rings.arm_data() {
                    crate::rings::ring_bell(rings.data_bell());
                }
            }
            None => {
                let Some(set) = &self.epoll else {
                    return;
                };
                let event = rustix::event::epoll::EventData::new_u64(0);
                if let Err(error) =
                    rustix::event::epoll::modify(set, &self.channel.fd, event, flags)
                {
                    tracing::warn!(%error, "epoll_ctl on a channel's wait failed");
                }
            }
        }
    }
}

/// Runs a socket call again when a signal interrupted it.
fn retry<R>(mut call: impl FnMut() -> rustix::io::Result<R>) -> Result<R, IpcError> {
    loop {
        match call() {
            Ok(r) => return Ok(r),
            Err(Errno::INTR) => continue,
            Err(error) => return Err(ipc_error(error)),
        }
    }
}

fn ipc_error(error: Errno) -> IpcError {
    match error {
        Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN => IpcError::Closed,
        // A send past `SO_SNDTIMEO`, or a non-blocking one that would wait.
        Errno::AGAIN => IpcError::SendTimedOut,
        error => IpcError::Io(error.into()),
    }
}

#[cfg(test)]
mod tests;
