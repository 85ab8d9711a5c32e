//! A channel's rings: one ring each way in a sealed memfd both processes map, and four
//! eventfd doorbells, rung only for a side that sleeps (see `ring.rs` for the protocol).
//!
//! The parent [`create`](Rings::create)s them and sends the child their descriptors
//! ([`Rings::fds`]) in a frame on the socket; the child [`adopt`](Rings::adopt)s them;
//! each side then gives its [`Channel`](crate::Channel) its side with
//! [`Channel::with_rings`](crate::Channel::with_rings), and from then on every frame takes
//! a ring record, in order: its body, split if it is larger than half a ring, or, for a
//! frame with descriptors, a record saying "the next frame on the socket".
//!
//! The memfd holds nothing that the processes do not hold: it is unlinked from birth
//! and freed with the last mapping and descriptor, so a killed peer leaves nothing
//! behind.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use worker_threads_wait::Unpoison;

use rustix::event::{EventfdFlags, eventfd};

use crate::error::IpcError;
use crate::mapped::Mapping;
use crate::ring::{Reader, Ring, Writer, Wrote};

/// The data area of each ring, by default: 2 MiB each way (frames up to half of it take
/// one record, larger ones are split; a frame of up to about a megabyte goes in at once
/// when the ring is empty).
pub const DEFAULT_CAPACITY: usize = 2 << 20;
/// The descriptors a side's rings travel in: the memfd and four eventfds.
pub const FDS: usize = 5;

/// Which end of the channel: the one that created the rings writes the first ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Creator,
    Adopter,
}

/// One side of a channel's rings.
///
/// # Examples
///
/// ```
/// use worker_threads_process::rings::Rings;
/// use worker_threads_process::{Channel, channel_pair};
///
/// let (a, b) = channel_pair()?;
/// let parent_rings = Rings::create(64 << 10)?;
/// let fds = parent_rings.fds()?; // sent to the child in a frame, in this order
/// let child_rings = Rings::adopt(fds)?;
/// let a = Channel::new(a, 1 << 20).with_rings(parent_rings);
/// let b = Channel::new(b, 1 << 20).with_rings(child_rings);
/// a.send(3, b"through shared memory", &[])?;
/// let frame = b.recv(&mut Vec::new())?.expect("a frame");
/// assert_eq!((frame.tag, frame.body.as_slice()), (3, &b"through shared memory"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Rings {
    mapping: Mapping,
    end: End,
    capacity: usize,
    /// Doorbells, in the order of [`fds`](Self::fds): the creator's ring's data and room,
    /// then the adopter's ring's data and room.
    bells: [OwnedFd; 4],
    writer: Mutex<Writer>,
    reader: Mutex<Reader>,
}

fn bell() -> io::Result<OwnedFd> {
    Ok(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?)
}

impl Rings {
    /// New rings of `capacity` bytes each way (a power of two, at least 4 KiB).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for another capacity, and the OS errors of
    /// `memfd_create`, `mmap` and `eventfd`.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_process::rings::Rings;
    ///
    /// let rings = Rings::create(1 << 20)?;
    /// assert_eq!(rings.capacity(), 1 << 20);
    /// assert!(Rings::create(1000).is_err(), "not a power of two");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(capacity: usize) -> io::Result<Rings> {
        if capacity < crate::ring::MIN_CAPACITY || !capacity.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a ring's capacity is a power of two of at least 4 KiB",
            ));
        }
        let mapping = Mapping::create("worker-threads-rings", 2 * Ring::<()>::words_for(capacity))?;
        Ok(Rings {
            mapping,
            end: End::Creator,
            capacity,
            bells: [bell()?, bell()?, bell()?, bell()?],
            writer: Mutex::new(Writer::default()),
            reader: Mutex::new(Reader::default()),
        })
    }

    /// Descriptors for the other side, to send in a frame ([`FDS`] of them, in order).
    ///
    /// # Errors
    ///
    /// The OS error of `dup` (the descriptor limit).
    pub fn fds(&self) -> io::Result<Vec<OwnedFd>> {
        let mut fds = vec![self.mapping.share()?];
        for bell in &self.bells {
            fds.push(bell.try_clone()?);
        }
        Ok(fds)
    }

    /// The other side of rings whose [`fds`](Self::fds) came in a frame.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] if the descriptors are not what `fds` gives (their
    /// number, a sealed memfd of two rings' length).
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_process::rings::{FDS, Rings};
    ///
    /// let parent = Rings::create(64 << 10)?;
    /// let fds = parent.fds()?; // what the child receives
    /// assert_eq!(fds.len(), FDS);
    /// let child = Rings::adopt(fds)?;
    /// assert_eq!(child.capacity(), 64 << 10);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn adopt(fds: Vec<OwnedFd>) -> io::Result<Rings> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let Ok::<[OwnedFd; FDS], _>([memfd, b0, b1, b2, b3]) = fds.try_into() else {
            return Err(invalid("a channel's rings come as five descriptors"));
        };
        let size = rustix::fs::fstat(&memfd)?.st_size;
        let words = usize::try_from(size).map_err(|_| invalid("a ring's memfd of a bad size"))? / 8;
        let capacity = (words / 2)
            .checked_sub(crate::ring::HEADER_WORDS)
            .map(|data| data * 8)
            .filter(|&c| c >= crate::ring::MIN_CAPACITY && c.is_power_of_two())
            .ok_or_else(|| invalid("a ring's memfd of a bad size"))?;
        let mapping = Mapping::open(memfd, 2 * Ring::<()>::words_for(capacity))?;
        Ok(Rings {
            mapping,
            end: End::Adopter,
            capacity,
            bells: [b0, b1, b2, b3],
            writer: Mutex::new(Writer::default()),
            reader: Mutex::new(Reader::default()),
        })
    }

    /// The data area of each ring, in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn ring(&self, index: usize) -> Ring<'_> {
        let len = Ring::<()>::words_for(self.capacity);
        let words = &self.mapping.words()[index * len..(index + 1) * len];
        match Ring::new(words) {
            Some(ring) => ring,
            // The length was checked when the rings were made or adopted.
            None => unreachable!("a ring's words were checked"),
        }
    }

    /// Ring `index` and its bells (its reader's data bell, its writer's room bell: the
    /// bells go in pairs, in the rings' order).
    fn ring_and_bells(&self, index: usize) -> (Ring<'_>, BorrowedFd<'_>, BorrowedFd<'_>) {
        (
            self.ring(index),
            self.bells[2 * index].as_fd(),
            self.bells[2 * index + 1].as_fd(),
        )
    }

    /// The ring this side writes (the creator writes the first), and its bells.
    fn outgoing(&self) -> (Ring<'_>, BorrowedFd<'_>, BorrowedFd<'_>) {
        self.ring_and_bells(usize::from(self.end == End::Adopter))
    }

    /// The ring this side reads, and its bells.
    fn incoming(&self) -> (Ring<'_>, BorrowedFd<'_>, BorrowedFd<'_>) {
        self.ring_and_bells(usize::from(self.end == End::Creator))
    }

    /// The largest body one record carries.
    pub(crate) fn max_chunk(&self) -> usize {
        self.ring(0).max_chunk()
    }

    /// The doorbell this side sleeps on for data.
    pub(crate) fn data_bell(&self) -> BorrowedFd<'_> {
        self.incoming().1
    }

    /// The doorbell this side sleeps on for room.
    pub(crate) fn room_bell(&self) -> BorrowedFd<'_> {
        self.outgoing().2
    }

    /// Writes one record of a frame; `Ok(false)` if it does not fit now (nothing written).
    pub(crate) fn try_write(&self, tag: u8, body: &[u8], more: bool) -> Result<bool, IpcError> {
        self.write_with(|writer, ring| writer.write(ring, tag, body, more))
    }

    /// Writes a whole frame (split into records as needed) if all of it fits now;
    /// `Ok(false)` if not (nothing written).
    pub(crate) fn try_write_frame(&self, tag: u8, body: &[u8]) -> Result<bool, IpcError> {
        self.write_with(|writer, ring| writer.write_frame(ring, tag, body))
    }

    /// Writes the record standing for a frame on the socket; `Ok(false)` if it does not
    /// fit now.
    pub(crate) fn try_write_socket(&self, tag: u8, len: usize) -> Result<bool, IpcError> {
        self.write_with(|writer, ring| writer.write_socket(ring, tag, len))
    }

    /// Runs a write on the outgoing ring under the writer's lock, ringing the reader's
    /// data bell if it asked; `Ok(false)` if the write did not fit.
    fn write_with(
        &self,
        write: impl FnOnce(&mut Writer, &Ring<'_>) -> Result<Wrote, IpcError>,
    ) -> Result<bool, IpcError> {
        let (ring, data, _) = self.outgoing();
        let wrote = write(&mut self.writer.lock().unpoison(), &ring)?;
        Ok(match wrote {
            Wrote::Committed(wanted) => {
                if wanted {
                    ring_bell(data);
                }
                true
            }
            Wrote::Full => false,
        })
    }

    /// Whether a record of `len` bytes fits now.
    pub(crate) fn fits(&self, len: usize) -> Result<bool, IpcError> {
        let (ring, _, _) = self.outgoing();
        self.writer.lock().unpoison().fits(&ring, len)
    }

    /// About to sleep for room for `len` bytes: true if it is there already.
    pub(crate) fn arm_room(&self, len: usize) -> Result<bool, IpcError> {
        let (ring, _, _) = self.outgoing();
        self.writer.lock().unpoison().arm_room(&ring, len)
    }

    /// Takes the next record (see `Reader::read`), ringing the writer's room bell if it
    /// asked.
    pub(crate) fn read(
        &self,
        out: &mut Vec<u8>,
        room: usize,
    ) -> Result<Option<crate::ring::Record>, IpcError> {
        let (ring, _, room_bell) = self.incoming();
        let (record, ring_writer) = self.reader.lock().unpoison().read(&ring, out, room)?;
        if ring_writer {
            ring_bell(room_bell);
        }
        Ok(record)
    }

    /// Whether a record is waiting to be read.
    pub(crate) fn has_data(&self) -> bool {
        let (ring, _, _) = self.incoming();
        ring.has_data(self.reader.lock().unpoison().head())
    }

    /// About to sleep for data: true if a record is waiting already.
    pub(crate) fn arm_data(&self) -> bool {
        let (ring, _, _) = self.incoming();
        ring.arm_data(self.reader.lock().unpoison().head())
    }

    /// No doorbell wanted for data (another thread of this side reads).
    pub(crate) fn disarm_data(&self) {
        self.incoming().0.disarm_data();
    }
}

/// Rings a doorbell (an eventfd: adds one; at its maximum the sleeper is awake anyway).
pub(crate) fn ring_bell(bell: BorrowedFd<'_>) {
    let _ = rustix::io::write(bell, &1u64.to_ne_bytes());
}

/// Takes what rang a doorbell (non-blocking), so that a level-triggered wait on it sleeps
/// again.
pub(crate) fn drain_bell(bell: BorrowedFd<'_>) {
    let _ = rustix::io::read(bell, &mut [0u8; 8]);
}

#[cfg(test)]
mod tests;
