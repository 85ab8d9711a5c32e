//! A one-way ring of frames in memory that two processes map: the protocol, without a
//! system call (the doorbells and the mapping are [`rings`](crate::rings)'s).
//!
//! One ring is a header of four words, each on its own cache line, and a data area of
//! `capacity` bytes (a power of two):
//!
//! ```text
//! tail        written by the writer: bytes committed since the start (a multiple of 8)
//! head        written by the reader: bytes consumed since the start
//! wants_data  set by a reader about to sleep; the writer that commits takes it (swap to 0)
//!             and rings the reader's doorbell
//! wants_room  set by a writer about to sleep for room; the reader that consumes takes it
//!             and rings the writer's doorbell
//! ```
//!
//! A record starts on a word, never wraps, and is committed by the store of `tail` that
//! follows it (so a writer killed mid-record leaves nothing the reader reads):
//!
//! ```text
//! header word: [len: u32][tag: u8][kind: u8][more: u8][0]
//!   DATA    `len` bytes of the frame's body follow, in words (little-endian); `more`:
//!           the frame goes on in the next record (a frame larger than half the ring is
//!           split)
//!   SOCKET  the frame (tag, `len` bytes) is the next one on the socket: it carries
//!           descriptors
//!   PAD     nothing: the rest of the data area is skipped
//! ```
//!
//! Each side keeps its own index to itself and publishes it; what it reads of the other's
//! is checked (`tail - head` within the capacity and a multiple of 8, a record within
//! what was committed and the data area), and a record is copied out word by word with
//! atomic loads before anything looks at its bytes: the peer may write anything at any
//! time, and the worst it gets is an error for itself.
//!
//! The doorbell protocol is the usual pair: the writer stores `tail` then looks at
//! `wants_data`; the reader stores `wants_data` then looks at `tail` (both `SeqCst`, with
//! [`order_point`] between): one of them sees the other's store, so a commit never goes
//! unnoticed by a reader that sleeps (loom model: `ring/loom_model.rs`). The same for
//! room, with `head` and `wants_room`.

use std::sync::atomic::Ordering::{self, Acquire, Relaxed, SeqCst};

use crate::error::IpcError;

/// A word of the ring: std's `AtomicU64` (in shared memory), or loom's in the model.
pub(crate) trait Word: Sync {
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
    fn swap(&self, value: u64, order: Ordering) -> u64;
    /// Orders a `SeqCst` store before a later `SeqCst` load of another word (which the
    /// `SeqCst` accesses already do outside loom: there a compiler fence).
    fn order_point();
}

/// `Word` for an atomic type whose methods have the same names, with its order point.
macro_rules! word {
    ($atomic:ty, $order_point:expr) => {
        impl Word for $atomic {
            fn load(&self, order: Ordering) -> u64 {
                self.load(order)
            }
            fn store(&self, value: u64, order: Ordering) {
                self.store(value, order);
            }
            fn swap(&self, value: u64, order: Ordering) -> u64 {
                self.swap(value, order)
            }
            fn order_point() {
                $order_point
            }
        }
    };
}

word!(
    std::sync::atomic::AtomicU64,
    std::sync::atomic::compiler_fence(SeqCst)
);
#[cfg(worker_threads_loom)]
word!(
    worker_threads_wait::sync::atomic::AtomicU64,
    worker_threads_wait::sync::order_point()
);

/// Words in one ring's header (four cache lines' first words).
pub(crate) const HEADER_WORDS: usize = 32;
const TAIL: usize = 0;
const HEAD: usize = 8;
const WANTS_DATA: usize = 16;
const WANTS_ROOM: usize = 24;

const KIND_DATA: u64 = 1;
const KIND_SOCKET: u64 = 2;
const KIND_PAD: u64 = 3;

/// The smallest data area of a channel's rings.
pub(crate) const MIN_CAPACITY: usize = 4096;
/// The smallest data area the protocol works with (the loom model's: two records of one
/// word).
const MIN_RING: usize = 32;

/// A record's size in the ring: its header word and its body, rounded up to words.
fn record_size(len: usize) -> usize {
    8 + len.div_ceil(8) * 8
}

fn header(len: usize, tag: u8, kind: u64, more: bool) -> u64 {
    len as u64 | u64::from(tag) << 32 | kind << 40 | u64::from(more) << 48
}

/// One ring's words: the header, then the data area.
pub(crate) struct Ring<'a, W = std::sync::atomic::AtomicU64> {
    words: &'a [W],
    capacity: usize,
}

impl<W> Clone for Ring<'_, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W> Copy for Ring<'_, W> {}

impl<W> Ring<'_, W> {
    /// The words a ring of `capacity` bytes takes.
    pub(crate) fn words_for(capacity: usize) -> usize {
        HEADER_WORDS + capacity / 8
    }
}

impl<'a, W: Word> Ring<'a, W> {
    /// The ring over `words` (a header and a data area of a power of two bytes, at least
    /// 32); `None` for any other length.
    pub(crate) fn new(words: &'a [W]) -> Option<Ring<'a, W>> {
        let capacity = words.len().checked_sub(HEADER_WORDS)?.checked_mul(8)?;
        (capacity >= MIN_RING && capacity.is_power_of_two()).then_some(Ring { words, capacity })
    }

    /// The largest body one record carries: half the data area less its header, so that
    /// a record and the padding before it always fit an empty ring.
    pub(crate) fn max_chunk(&self) -> usize {
        self.capacity / 2 - 8
    }

    fn data(&self, pos: u64) -> &W {
        &self.words[HEADER_WORDS + (pos as usize & (self.capacity - 1)) / 8]
    }

    /// `count` words of the data area from `pos` on (which the caller checked do not
    /// pass its end).
    fn span(&self, pos: u64, count: usize) -> &[W] {
        let first = HEADER_WORDS + (pos as usize & (self.capacity - 1)) / 8;
        &self.words[first..first + count]
    }

    /// Whether a record is committed past `head` (the reader's index).
    pub(crate) fn has_data(&self, head: u64) -> bool {
        self.words[TAIL].load(SeqCst) != head
    }

    /// The reader is about to sleep: the next commit rings its doorbell. True if a record
    /// is already committed past `head` (then it must not sleep).
    pub(crate) fn arm_data(&self, head: u64) -> bool {
        // A swap, not a store: the writer's swap that takes the flag then reads this one
        // or a later one (a plain store, under loom's coherence model, could be passed
        // over for the writer's own earlier swap).
        self.words[WANTS_DATA].swap(1, SeqCst);
        W::order_point();
        self.has_data(head)
    }

    /// The reader does not want a doorbell (another of its threads reads the ring).
    pub(crate) fn disarm_data(&self) {
        self.words[WANTS_DATA].store(0, SeqCst);
    }
}

/// What the writer side keeps: its index, and the last head it read.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    tail: u64,
}

/// What a write asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wrote {
    /// Committed; `true` if the reader asked for its doorbell.
    Committed(bool),
    /// Not enough room: nothing was written. The caller waits for room (after
    /// [`Writer::arm_room`]) or gives up.
    Full,
}

impl Writer {
    /// The room the ring has for this writer, checking the reader's index.
    fn free<W: Word>(&self, ring: &Ring<'_, W>) -> Result<usize, IpcError> {
        let head = ring.words[HEAD].load(Acquire);
        let used = self.tail.wrapping_sub(head);
        if used > ring.capacity as u64 || head % 8 != 0 {
            return Err(IpcError::Malformed("the peer's ring index is out of range"));
        }
        Ok(ring.capacity - used as usize)
    }

    /// Writes one record (a body of at most [`Ring::max_chunk`] bytes) and commits it,
    /// if it fits now.
    pub(crate) fn write<W: Word>(
        &mut self,
        ring: &Ring<'_, W>,
        tag: u8,
        body: &[u8],
        more: bool,
    ) -> Result<Wrote, IpcError> {
        self.put(ring, header(body.len(), tag, KIND_DATA, more), body)
    }

    /// Writes a whole frame, in records of at most [`Ring::max_chunk`] bytes, if all of
    /// them fit now (else nothing is written).
    pub(crate) fn write_frame<W: Word>(
        &mut self,
        ring: &Ring<'_, W>,
        tag: u8,
        body: &[u8],
    ) -> Result<Wrote, IpcError> {
        let max = ring.max_chunk();
        let chunks = body.len().div_ceil(max).max(1);
        // Where the records would end, padding included.
        let mut end = self.tail;
        for i in 0..chunks {
            let len = (body.len() - i * max).min(max);
            let pos = end as usize & (ring.capacity - 1);
            if pos + record_size(len) > ring.capacity {
                end += (ring.capacity - pos) as u64;
            }
            end += record_size(len) as u64;
        }
        if self.free(ring)? < (end - self.tail) as usize {
            return Ok(Wrote::Full);
        }
        let mut wanted = false;
        for i in 0..chunks {
            let chunk = &body[(i * max).min(body.len())..((i + 1) * max).min(body.len())];
            match self.write(ring, tag, chunk, i + 1 < chunks)? {
                Wrote::Committed(bell) => wanted |= bell,
                Wrote::Full => return Err(IpcError::Malformed("the ring lost room that it had")),
            }
        }
        Ok(Wrote::Committed(wanted))
    }

    /// Writes the record that stands for a frame on the socket.
    pub(crate) fn write_socket<W: Word>(
        &mut self,
        ring: &Ring<'_, W>,
        tag: u8,
        len: usize,
    ) -> Result<Wrote, IpcError> {
        self.put(ring, header(len, tag, KIND_SOCKET, false), &[])
    }

    /// Whether a record of `len` bytes fits now.
    pub(crate) fn fits<W: Word>(&self, ring: &Ring<'_, W>, len: usize) -> Result<bool, IpcError> {
        Ok(self.free(ring)? >= self.need(ring, len))
    }

    /// The room a record of `len` bytes takes here, with the padding before it.
    fn need<W: Word>(&self, ring: &Ring<'_, W>, len: usize) -> usize {
        let size = record_size(len);
        let pos = self.tail as usize & (ring.capacity - 1);
        if pos + size > ring.capacity {
            ring.capacity - pos + size
        } else {
            size
        }
    }

    fn put<W: Word>(
        &mut self,
        ring: &Ring<'_, W>,
        head: u64,
        body: &[u8],
    ) -> Result<Wrote, IpcError> {
        debug_assert!(body.len() <= ring.max_chunk());
        if self.free(ring)? < self.need(ring, body.len()) {
            return Ok(Wrote::Full);
        }
        let mut tail = self.tail;
        let pos = tail as usize & (ring.capacity - 1);
        if pos + record_size(body.len()) > ring.capacity {
            ring.data(tail)
                .store(header(0, 0, KIND_PAD, false), Relaxed);
            tail += (ring.capacity - pos) as u64;
        }
        ring.data(tail).store(head, Relaxed);
        let words = ring.span(tail + 8, body.len().div_ceil(8));
        let mut whole = body.chunks_exact(8);
        for (word, bytes) in words.iter().zip(&mut whole) {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(bytes);
            word.store(u64::from_le_bytes(buf), Relaxed);
        }
        if let (Some(word), rest) = (words.last(), whole.remainder()) {
            if !rest.is_empty() {
                let mut buf = [0u8; 8];
                buf[..rest.len()].copy_from_slice(rest);
                word.store(u64::from_le_bytes(buf), Relaxed);
            }
        }
        let at = tail + record_size(body.len()) as u64;
        self.tail = at;
        // Commit: the reader reads nothing of the record before it sees this.
        ring.words[TAIL].store(at, SeqCst);
        W::order_point();
        Ok(Wrote::Committed(
            ring.words[WANTS_DATA].swap(0, SeqCst) != 0,
        ))
    }

    /// The writer is about to sleep for `len` bytes of room: the next consume rings its
    /// doorbell. True if the room is already there (then it must not sleep).
    pub(crate) fn arm_room<W: Word>(
        &self,
        ring: &Ring<'_, W>,
        len: usize,
    ) -> Result<bool, IpcError> {
        ring.words[WANTS_ROOM].swap(1, SeqCst);
        W::order_point();
        self.fits(ring, len)
    }
}

/// A record as read: copied out of the ring.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// Body bytes of a frame with this tag, appended to the caller's buffer; `more`: the
    /// frame goes on in the next record.
    Data { tag: u8, more: bool },
    /// The next frame on the socket is the one (with this tag and length).
    Socket { tag: u8, len: usize },
}

/// What the reader side keeps: its index.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    head: u64,
}

impl Reader {
    /// The reader's index, for [`Ring::has_data`] and [`Ring::arm_data`].
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// Takes the next record, appending a data record's body to `out` (at most `room`
    /// bytes: a longer one is an error before anything is copied): `None` if none is
    /// committed. The second value is true if the writer asked for its doorbell (the
    /// reader gave room back, a record or padding).
    pub(crate) fn read<W: Word>(
        &mut self,
        ring: &Ring<'_, W>,
        out: &mut Vec<u8>,
        room: usize,
    ) -> Result<(Option<Record>, bool), IpcError> {
        let mut ring_writer = false;
        loop {
            let tail = ring.words[TAIL].load(Acquire);
            let committed = tail.wrapping_sub(self.head);
            if committed == 0 {
                return Ok((None, ring_writer));
            }
            if committed > ring.capacity as u64 || committed % 8 != 0 {
                return Err(IpcError::Malformed("the peer's ring index is out of range"));
            }
            let committed = committed as usize;
            let pos = self.head as usize & (ring.capacity - 1);
            let word = ring.data(self.head).load(Relaxed);
            let len = (word & 0xFFFF_FFFF) as usize;
            let tag = (word >> 32) as u8;
            let kind = (word >> 40) & 0xFF;
            let more = (word >> 48) & 0xFF;
            if word >> 56 != 0 || more > 1 {
                return Err(IpcError::Malformed("a ring record with a bad header"));
            }
            let (size, record) = match kind {
                KIND_PAD => {
                    let size = ring.capacity - pos;
                    if size > committed {
                        return Err(IpcError::Malformed("a ring record past the commit"));
                    }
                    ring_writer |= self.consume(ring, size);
                    continue;
                }
                KIND_SOCKET => (8, Record::Socket { tag, len }),
                KIND_DATA => {
                    let size = record_size(len);
                    if len > ring.max_chunk() || pos + size > ring.capacity || size > committed {
                        return Err(IpcError::Malformed("a ring record past the commit"));
                    }
                    if len > room {
                        return Err(IpcError::TooLarge {
                            len: out.len() + len,
                            max: out.len() + room,
                        });
                    }
                    // Whole words into the buffer, then the padding of the last cut off.
                    let start = out.len();
                    out.resize(start + size - 8, 0);
                    let words = ring.span(self.head + 8, (size - 8) / 8);
                    for (bytes, word) in out[start..].chunks_exact_mut(8).zip(words) {
                        bytes.copy_from_slice(&word.load(Relaxed).to_le_bytes());
                    }
                    out.truncate(start + len);
                    (
                        size,
                        Record::Data {
                            tag,
                            more: more == 1,
                        },
                    )
                }
                _ => return Err(IpcError::Malformed("a ring record of an unknown kind")),
            };
            ring_writer |= self.consume(ring, size);
            return Ok((Some(record), ring_writer));
        }
    }

    /// Gives `size` bytes back to the writer; true if it asked for its doorbell.
    fn consume<W: Word>(&mut self, ring: &Ring<'_, W>, size: usize) -> bool {
        self.head += size as u64;
        ring.words[HEAD].store(self.head, SeqCst);
        W::order_point();
        ring.words[WANTS_ROOM].swap(0, SeqCst) != 0
    }
}

/// A ring's words in this process's memory, zeroed (the tests).
#[cfg(all(test, not(worker_threads_loom)))]
pub(crate) fn words<W: From<u64>>(capacity: usize) -> Vec<W> {
    (0..Ring::<W>::words_for(capacity))
        .map(|_| W::from(0))
        .collect()
}

#[cfg(all(test, worker_threads_loom))]
mod loom_model;
#[cfg(all(test, not(worker_threads_loom)))]
mod tests;
