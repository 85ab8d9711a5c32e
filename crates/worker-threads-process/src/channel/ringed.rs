//! A channel's frames through its rings (`crate::rings`): the socket carries only the
//! frames with descriptors (each announced by a ring record, so order holds across both)
//! and tells a sleeping side that the peer hung up.

use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::RecvFlags;

use super::{Channel, Frame, HEADER, MAX_FDS, RECORD, ipc_error};
use crate::error::IpcError;
use crate::ring::Record;
use crate::rings::{Rings, drain_bell};

/// Why a sleep on a doorbell ended.
enum Woke {
    /// The bell rang (or the wait was spurious): look again.
    Bell,
    /// The peer hung up (or this side shut the channel down).
    HungUp,
    /// The deadline came.
    TimedOut,
}

impl Channel {
    fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    pub(super) fn mark_ended(&self) {
        self.ended.store(true, Ordering::Release);
    }

    /// `send` through the rings (the send lock held).
    pub(super) fn send_ringed(
        &self,
        rings: &Rings,
        tag: u8,
        body: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), IpcError> {
        if self.ended() {
            return Err(IpcError::Closed);
        }
        let deadline = self
            .send_timeout
            .and_then(|t| Instant::now().checked_add(t));
        if !fds.is_empty() {
            // Checked before the record goes: a record whose frame never follows would
            // stop the reader.
            if fds.len() > MAX_FDS {
                return Err(IpcError::Malformed("too many descriptors in one frame"));
            }
            while !rings.try_write_socket(tag, body.len())? {
                self.wait_for_room(rings, 0, deadline)?;
            }
            return self.send_socket(tag, body, fds);
        }
        let mut chunks = body.chunks(rings.max_chunk()).peekable();
        let mut chunk: &[u8] = chunks.next().unwrap_or_default();
        loop {
            let more = chunks.peek().is_some();
            while !rings.try_write(tag, chunk, more)? {
                self.wait_for_room(rings, chunk.len(), deadline)?;
            }
            match chunks.next() {
                Some(next) => chunk = next,
                None => return Ok(()),
            }
        }
    }

    /// `try_send` through the rings (the send lock held): a frame that fits the ring now
    /// (in as many records as it takes), or a frame of one socket record and its ring
    /// record.
    pub(super) fn try_send_ringed(
        &self,
        rings: &Rings,
        tag: u8,
        body: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), IpcError> {
        if self.ended() {
            return Err(IpcError::Closed);
        }
        if fds.is_empty() {
            return match rings.try_write_frame(tag, body)? {
                true => Ok(()),
                false => Err(IpcError::Full),
            };
        }
        // The frame first, then its record (which nothing can take from us: this side is
        // the ring's only writer, and we hold the send lock): the reader reads the socket
        // only for a record, so it waits in the socket until then.
        if body.len() + HEADER + 1 > RECORD {
            return Err(IpcError::TooLarge {
                len: body.len() + 1,
                max: RECORD - HEADER,
            });
        }
        if !rings.fits(0)? {
            return Err(IpcError::Full);
        }
        self.try_send_record(tag, body, fds)?;
        match rings.try_write_socket(tag, body.len())? {
            true => Ok(()),
            false => Err(IpcError::Malformed("the ring lost room that it had")),
        }
    }

    /// Sleeps until the ring has room for a record of `len` bytes.
    fn wait_for_room(
        &self,
        rings: &Rings,
        len: usize,
        deadline: Option<Instant>,
    ) -> Result<(), IpcError> {
        loop {
            if rings.arm_room(len)? {
                return Ok(());
            }
            match self.sleep_on(rings.room_bell(), deadline)? {
                Woke::Bell => {}
                Woke::HungUp => {
                    self.mark_ended();
                    return Err(IpcError::Closed);
                }
                Woke::TimedOut => return Err(IpcError::SendTimedOut),
            }
        }
    }

    /// `recv` / `try_recv` through the rings: `wait` false returns `Empty` when no frame
    /// has begun.
    pub(super) fn recv_ringed(
        &self,
        rings: &Rings,
        buf: &mut Vec<u8>,
        wait: bool,
    ) -> Result<Option<Frame>, IpcError> {
        let mut body = Vec::new();
        let mut begun: Option<u8> = None;
        loop {
            if self.ended() && !rings.has_data() {
                return Ok(None);
            }
            // `len` counts the tag: the body may take `max_frame - 1` bytes in all.
            let room = self.max_frame.saturating_sub(1 + body.len());
            match rings.read(&mut body, room)? {
                Some(Record::Data { tag, more }) => {
                    if begun.is_some_and(|first| first != tag) {
                        return Err(IpcError::Malformed("a frame's records with two tags"));
                    }
                    if !more {
                        return Ok(Some(Frame {
                            tag,
                            body,
                            fds: Vec::new(),
                        }));
                    }
                    begun = Some(tag);
                }
                Some(Record::Socket { tag, len }) => {
                    if begun.is_some() {
                        return Err(IpcError::Malformed("a socket frame inside a ring frame"));
                    }
                    if len >= self.max_frame {
                        return Err(IpcError::TooLarge {
                            len: len + 1,
                            max: self.max_frame,
                        });
                    }
                    let Some(frame) = self.recv_socket(buf, RecvFlags::CMSG_CLOEXEC)? else {
                        self.mark_ended();
                        return Ok(None);
                    };
                    if frame.tag != tag || frame.body.len() != len {
                        return Err(IpcError::Malformed(
                            "the socket's frame is not the one its ring record announced",
                        ));
                    }
                    return Ok(Some(frame));
                }
                None => {
                    if begun.is_none() && !wait {
                        return Err(IpcError::Empty);
                    }
                    // The rest of a frame is waited for at most the frame timeout.
                    let deadline = begun
                        .and(self.frame_timeout)
                        .and_then(|t| Instant::now().checked_add(t));
                    match self.wait_for_data(rings, deadline)? {
                        Woke::Bell => {}
                        Woke::HungUp => {
                            if !rings.has_data() {
                                self.mark_ended();
                                return Ok(None);
                            }
                        }
                        Woke::TimedOut => return Err(IpcError::Stalled),
                    }
                }
            }
        }
    }

    /// Sleeps until a record is committed, the peer hangs up, or `deadline`.
    fn wait_for_data(&self, rings: &Rings, deadline: Option<Instant>) -> Result<Woke, IpcError> {
        loop {
            if rings.arm_data() {
                return Ok(Woke::Bell);
            }
            if self.ended() {
                return Ok(Woke::HungUp);
            }
            match self.sleep_on(rings.data_bell(), deadline)? {
                Woke::Bell if !rings.has_data() => {}
                woke => return Ok(woke),
            }
        }
    }

    /// `wait_readable_until` through the rings: true for a record or a hang-up.
    pub(super) fn wait_ringed(
        &self,
        rings: &Rings,
        deadline: Option<Instant>,
    ) -> Result<bool, IpcError> {
        Ok(!matches!(
            self.wait_for_data(rings, deadline)?,
            Woke::TimedOut
        ))
    }

    /// `spin_until_readable` through the rings: watches the ring's index, no system call
    /// (a hang-up is seen by the wait that follows a spin that gave up).
    pub(super) fn spin_ringed(&self, rings: &Rings, spin: Duration) -> bool {
        let start = Instant::now();
        loop {
            if rings.has_data() || self.ended() {
                return true;
            }
            if start.elapsed() >= spin {
                return false;
            }
            worker_threads_wait::sync::spin_loop();
        }
    }

    /// Sleeps until `bell` rings, the socket hangs up, or `deadline`; takes what rang.
    fn sleep_on(&self, bell: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<Woke, IpcError> {
        let timeout = deadline.map(|deadline| {
            let left = deadline.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });
        let mut fds = [
            PollFd::new(&bell, PollFlags::IN),
            PollFd::new(&self.fd, PollFlags::RDHUP),
        ];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(error) => return Err(ipc_error(error)),
        }
        let hung_up = fds[1]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR);
        let rang = fds[0].revents().contains(PollFlags::IN);
        if rang {
            drain_bell(bell);
        }
        Ok(if hung_up {
            Woke::HungUp
        } else if rang || deadline.is_none_or(|d| Instant::now() < d) {
            Woke::Bell
        } else {
            Woke::TimedOut
        })
    }
}
