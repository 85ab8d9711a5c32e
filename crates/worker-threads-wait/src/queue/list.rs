//! The unbounded queue: a linked list of blocks of slots.
//!
//! # Indices
//!
//! `head` and `tail` each hold a position and the block it is in. A position counts
//! slots, with one extra position at the end of each block (offset [`BLOCK_CAP`] of
//! [`LAP`]) that is never a slot: a tail standing there means "the next block is being
//! installed", and whoever meets it waits. Positions are stored shifted left by one; the
//! low bit is [`MARK_BIT`] in the tail (the queue is closed) and [`HAS_NEXT`] in the head
//! (the head's block has a successor, so every slot of it is claimed and a pop need not
//! read the tail).
//!
//! # Push
//!
//! A push reads the tail; a marked tail is a closed queue: the message comes back. Else
//! it claims the tail's position with one compare-and-swap (`SeqCst`), which fails if the
//! mark was set meanwhile (the mark is part of the value). The claimant of a block's last
//! slot installs the next block (allocated before the claim, so nothing waits on an
//! allocator while others spin) and moves the tail past the extra position. Then it writes
//! its message and sets the slot's `WRITE` bit.
//!
//! # Pop
//!
//! A pop compares its position with the tail (unless `HAS_NEXT` says the tail is past the
//! block, or the position is below a tail an earlier pop saw: the tail only grows): equal
//! means empty, and, with the mark, **closed and drained**: every position below the
//! marked tail was claimed before the mark and has been taken. Else it claims the
//! position, waits for the slot's `WRITE` bit (the claimant is between its claim and its
//! write), and takes the message. (The seen tail keeps a consumer that trails the
//! producers closely off the tail's cache line for all but one pop of a burst.)
//!
//! # Freeing blocks
//!
//! The block's last slot's reader starts its destruction: for each other slot it either
//! sees `READ` (taken already) or sets `DESTROY`; a reader that finds `DESTROY` set when
//! it marks its slot `READ` continues the destruction from the next slot. So the block is
//! freed exactly once, by the last thread to touch it, and never while a reader is in it
//! (no new reader enters: the head has moved to the next block).

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;

use crossbeam_utils::CachePadded;

use crate::queue::PopError;
use crate::spin::Backoff;
use crate::sync::UnsafeCell;
use crate::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// The slot's message has been written.
const WRITE: usize = 1;
/// The slot's message has been taken.
const READ: usize = 2;
/// The block's destruction reached this slot before its reader finished.
const DESTROY: usize = 4;

/// Positions per block: its slots, and the extra position that marks its end. Small under
/// loom, so that a model with a few messages crosses blocks.
#[cfg(not(worker_threads_loom))]
const LAP: usize = 32;
#[cfg(worker_threads_loom)]
const LAP: usize = 3;
/// Slots per block.
const BLOCK_CAP: usize = LAP - 1;
/// Positions are stored shifted by this many bits, above the flag bit.
const SHIFT: usize = 1;
/// In the tail: closed.
const MARK_BIT: usize = 1;
/// In the head: the head's block has a successor.
const HAS_NEXT: usize = 1;

struct Slot<T> {
    msg: UnsafeCell<MaybeUninit<T>>,
    state: AtomicUsize,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Self {
            msg: UnsafeCell::new(MaybeUninit::uninit()),
            state: AtomicUsize::new(0),
        }
    }

    /// Waits until the claimant of this slot has written its message.
    fn wait_write(&self) {
        let backoff = Backoff::new();
        while self.state.load(Ordering::Acquire) & WRITE == 0 {
            backoff.snooze();
        }
    }
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    fn new() -> Box<Self> {
        Box::new(Self {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot::new()),
        })
    }

    /// Waits until the next block is installed, and returns it.
    fn wait_next(&self) -> *mut Block<T> {
        let backoff = Backoff::new();
        loop {
            let next = self.next.load(Ordering::Acquire);
            if !next.is_null() {
                return next;
            }
            backoff.snooze();
        }
    }

    /// Frees `this` once every slot from `start` on has been read (module doc): returns
    /// early, leaving the rest to the reader of a slot still being read.
    ///
    /// # Safety
    ///
    /// `this` is a live block that no new reader can enter (the head is past it), and the
    /// caller read every slot below `start` or is that slot's reader handing over.
    unsafe fn destroy(this: *mut Block<T>, start: usize) {
        for i in start..BLOCK_CAP - 1 {
            // SAFETY: `this` is live until the loop below frees it (the caller's promise).
            let slot = unsafe { &(*this).slots[i] };
            if slot.state.load(Ordering::Acquire) & READ == 0
                && slot.state.fetch_or(DESTROY, Ordering::AcqRel) & READ == 0
            {
                // Its reader is still in it and will continue from `i + 1`.
                return;
            }
        }
        // SAFETY: every slot has been read and nobody else holds the block: the last
        // thread to touch it frees it, once (module doc).
        drop(unsafe { Box::from_raw(this) });
    }
}

struct Position<T> {
    index: AtomicUsize,
    block: AtomicPtr<Block<T>>,
    /// In the head: a tail position a pop saw (a lower bound of the tail, which only
    /// grows): a pop below it knows the queue is not empty without reading the tail.
    seen_tail: AtomicUsize,
}

impl<T> Position<T> {
    fn new() -> CachePadded<Self> {
        CachePadded::new(Self {
            index: AtomicUsize::new(0),
            block: AtomicPtr::new(ptr::null_mut()),
            seen_tail: AtomicUsize::new(0),
        })
    }
}

/// An unbounded, closable, lock-free MPMC queue (see the module doc).
///
/// # Examples
///
/// ```
/// use worker_threads_wait::queue::List;
///
/// let queue = List::new();
/// for i in 0..100 {
///     queue.push(i).unwrap(); // unbounded: refused only once closed
/// }
/// assert_eq!(queue.len(), 100);
/// assert_eq!(queue.pop(), Ok(0));
/// queue.close();
/// assert_eq!(queue.push(100), Err(100));
/// ```
pub struct List<T> {
    head: CachePadded<Position<T>>,
    tail: CachePadded<Position<T>>,
    /// The queue owns `T`s.
    _owns: PhantomData<Box<T>>,
}

// SAFETY: the queue moves `T`s between threads (so `T: Send`), and every shared access to
// a slot is ordered by the protocol of the module doc (a slot is written by its one
// claimant before `WRITE`, read by its one claimant after it): no `T` is ever shared.
unsafe impl<T: Send> Send for List<T> {}
// SAFETY: as above: `&List<T>` only moves `T`s in and out, never shares one.
unsafe impl<T: Send> Sync for List<T> {}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> List<T> {
    /// An empty, open queue. Its first block is allocated by its first push.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = worker_threads_wait::queue::List::<String>::new();
    /// assert!(queue.is_empty() && !queue.is_closed());
    /// ```
    pub fn new() -> Self {
        Self {
            head: Position::new(),
            tail: Position::new(),
            _owns: PhantomData,
        }
    }

    /// Pushes `msg`; gives it back if the queue is closed.
    #[inline]
    pub fn push(&self, msg: T) -> Result<(), T> {
        let backoff = Backoff::new();
        let mut tail = self.tail.index.load(Ordering::Acquire);
        let mut block = self.tail.block.load(Ordering::Acquire);
        let mut next_block: Option<Box<Block<T>>> = None;
        loop {
            if tail & MARK_BIT != 0 {
                return Err(msg);
            }
            let offset = (tail >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another push is installing the next block.
                backoff.snooze();
                tail = self.tail.index.load(Ordering::Acquire);
                block = self.tail.block.load(Ordering::Acquire);
                continue;
            }
            if offset + 1 == BLOCK_CAP && next_block.is_none() {
                next_block = Some(Block::new());
            }
            if block.is_null() {
                // The first push: install the first block.
                let first = Box::into_raw(next_block.take().unwrap_or_else(Block::new));
                match self.tail.block.compare_exchange(
                    ptr::null_mut(),
                    first,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        self.head.block.store(first, Ordering::Release);
                        block = first;
                    }
                    Err(_) => {
                        // SAFETY: `first` was never shared: take it back.
                        next_block = Some(unsafe { Box::from_raw(first) });
                        tail = self.tail.index.load(Ordering::Acquire);
                        block = self.tail.block.load(Ordering::Acquire);
                        continue;
                    }
                }
            }
            let claimed = self.tail.index.compare_exchange_weak(
                tail,
                tail + (1 << SHIFT),
                Ordering::SeqCst,
                Ordering::Acquire,
            );
            match claimed {
                Ok(_) => {
                    if offset + 1 == BLOCK_CAP {
                        // The block's last slot: install the next block, skip the end.
                        let next = Box::into_raw(next_block.take().unwrap_or_else(Block::new));
                        self.tail.block.store(next, Ordering::Release);
                        self.tail.index.fetch_add(1 << SHIFT, Ordering::Release);
                        // SAFETY: `block` is live: our slot in it is claimed and unread,
                        // so no reader can have freed it.
                        unsafe { (*block).next.store(next, Ordering::Release) };
                    }
                    // SAFETY: the claim gave this thread the slot at `offset` of `block`
                    // (live, as above); nobody reads it before `WRITE`.
                    unsafe {
                        let slot = &(*block).slots[offset];
                        slot.msg.with_mut(|cell| cell.write(MaybeUninit::new(msg)));
                        slot.state.fetch_or(WRITE, Ordering::Release);
                    }
                    return Ok(());
                }
                Err(current) => {
                    tail = current;
                    block = self.tail.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// Takes the oldest message: `Empty` if none is queued, `Closed` once the queue is
    /// closed and every message pushed before the close has been taken.
    #[inline]
    pub fn pop(&self) -> Result<T, PopError> {
        let backoff = Backoff::new();
        let mut head = self.head.index.load(Ordering::Acquire);
        let mut block = self.head.block.load(Ordering::Acquire);
        loop {
            let offset = (head >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another pop is moving the head to the next block.
                backoff.snooze();
                head = self.head.index.load(Ordering::Acquire);
                block = self.head.block.load(Ordering::Acquire);
                continue;
            }
            let mut new_head = head + (1 << SHIFT);
            // Below a tail some pop saw already, the queue is not empty: no need to read
            // the tail, whose line the pushers are writing.
            let behind_seen = head >> SHIFT < self.head.seen_tail.load(Ordering::Relaxed);
            if !behind_seen && new_head & HAS_NEXT == 0 {
                // The tail may be in this block: look at it (ordered after whatever the
                // caller registered before this look: `sync::order_point`).
                crate::sync::order_point();
                let tail = self.tail.index.load(Ordering::SeqCst);
                if head >> SHIFT == tail >> SHIFT {
                    return Err(if tail & MARK_BIT != 0 {
                        PopError::Closed
                    } else {
                        PopError::Empty
                    });
                }
                if (head >> SHIFT) / LAP != (tail >> SHIFT) / LAP {
                    new_head |= HAS_NEXT;
                }
                self.head.seen_tail.store(tail >> SHIFT, Ordering::Relaxed);
            }
            if block.is_null() {
                // The first push is installing the first block.
                backoff.snooze();
                head = self.head.index.load(Ordering::Acquire);
                block = self.head.block.load(Ordering::Acquire);
                continue;
            }
            let claimed = self.head.index.compare_exchange_weak(
                head,
                new_head,
                Ordering::SeqCst,
                Ordering::Acquire,
            );
            match claimed {
                // SAFETY: the claim gave this thread the slot at `offset` of `block`, which
                // is live (its destruction needs this slot read).
                Ok(_) => unsafe { return Ok(self.take(block, offset, new_head)) },
                Err(current) => {
                    head = current;
                    block = self.head.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// Takes the message of the claimed slot `offset` of `block`, moving the head to the
    /// next block after the last slot, and frees the block when it is done with.
    ///
    /// # Safety
    ///
    /// This thread claimed that slot (the head was moved past it to `new_head`).
    #[inline]
    unsafe fn take(&self, block: *mut Block<T>, offset: usize, new_head: usize) -> T {
        // SAFETY: `block` stays live until this slot is marked read or the block is
        // destroyed by this thread (module doc); the slot is ours (the caller's claim).
        unsafe {
            if offset + 1 == BLOCK_CAP {
                let next = (*block).wait_next();
                let mut next_index = (new_head & !HAS_NEXT).wrapping_add(1 << SHIFT);
                if !(*next).next.load(Ordering::Relaxed).is_null() {
                    next_index |= HAS_NEXT;
                }
                self.head.block.store(next, Ordering::Release);
                self.head.index.store(next_index, Ordering::Release);
            }
            let slot = &(*block).slots[offset];
            slot.wait_write();
            // The claimant wrote it before `WRITE`, which `wait_write` acquired.
            let msg = slot.msg.with(|cell| cell.read().assume_init());
            if offset + 1 == BLOCK_CAP {
                Block::destroy(block, 0);
            } else if slot.state.fetch_or(READ, Ordering::AcqRel) & DESTROY != 0 {
                Block::destroy(block, offset + 1);
            }
            msg
        }
    }

    /// Closes the queue: later pushes fail; pops drain what was pushed before. True if
    /// this call closed it.
    pub fn close(&self) -> bool {
        self.tail.index.fetch_or(MARK_BIT, Ordering::SeqCst) & MARK_BIT == 0
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.tail.index.load(Ordering::SeqCst) & MARK_BIT != 0
    }

    /// Whether a pop would not find it empty and open: a message is queued (or claimed
    /// and being written), or the queue is closed. What a sleeper looks at after it
    /// registered.
    pub fn is_ready(&self) -> bool {
        crate::sync::order_point();
        let tail = self.tail.index.load(Ordering::SeqCst);
        let head = self.head.index.load(Ordering::SeqCst);
        tail & MARK_BIT != 0 || head >> SHIFT != tail >> SHIFT
    }

    /// How many messages are queued (a snapshot).
    pub fn len(&self) -> usize {
        loop {
            let mut tail = self.tail.index.load(Ordering::SeqCst);
            let mut head = self.head.index.load(Ordering::SeqCst);
            if self.tail.index.load(Ordering::SeqCst) != tail {
                continue;
            }
            tail >>= SHIFT;
            head >>= SHIFT;
            // A position at a block's end stands for the next block's start.
            if tail % LAP == BLOCK_CAP {
                tail += 1;
            }
            if head % LAP == BLOCK_CAP {
                head += 1;
            }
            // Count from the head's block: each block boundary passed is one extra
            // position that holds no slot.
            let base = head / LAP * LAP;
            let (head, tail) = (head - base, tail - base);
            return tail - head - tail / LAP;
        }
    }

    /// Whether no message is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        let head = self.head.index.load(Ordering::SeqCst);
        let tail = self.tail.index.load(Ordering::SeqCst);
        head >> SHIFT == tail >> SHIFT
    }
}

impl<T> Drop for List<T> {
    fn drop(&mut self) {
        let mut head = self.head.index.load(Ordering::Relaxed) >> SHIFT;
        let tail = self.tail.index.load(Ordering::Relaxed) >> SHIFT;
        let mut block = self.head.block.load(Ordering::Relaxed);
        // SAFETY: `&mut self`: nobody else touches the queue. Every slot between head and
        // tail holds a written, unread message; every block from the head's on is live.
        unsafe {
            while head != tail {
                let offset = head % LAP;
                if offset < BLOCK_CAP {
                    (*block).slots[offset]
                        .msg
                        .with_mut(|cell| (*cell).assume_init_drop());
                } else {
                    let next = (*block).next.load(Ordering::Relaxed);
                    drop(Box::from_raw(block));
                    block = next;
                }
                head += 1;
            }
            if !block.is_null() {
                drop(Box::from_raw(block));
            }
        }
    }
}

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{BLOCK_CAP, List};
    use crate::queue::PopError;

    #[test]
    fn messages_come_out_in_order_across_blocks_and_len_counts_them() {
        let list = List::new();
        assert_eq!(list.pop(), Err(PopError::Empty));
        let n = 3 * BLOCK_CAP + 5;
        for i in 0..n {
            list.push(i).unwrap();
            assert_eq!(list.len(), i + 1);
        }
        for i in 0..n {
            assert_eq!(list.pop(), Ok(i));
            assert_eq!(list.len(), n - i - 1);
        }
        assert!(list.is_empty());
        assert_eq!(list.pop(), Err(PopError::Empty));
    }

    #[test]
    fn a_close_refuses_pushes_and_drains_what_was_pushed_before() {
        let list = List::new();
        for i in 0..BLOCK_CAP + 2 {
            list.push(i).unwrap();
        }
        assert!(list.close());
        assert!(!list.close());
        assert_eq!(list.push(99), Err(99));
        for i in 0..BLOCK_CAP + 2 {
            assert_eq!(list.pop(), Ok(i));
        }
        assert_eq!(list.pop(), Err(PopError::Closed));
        assert!(list.is_ready());
    }

    #[test]
    fn dropping_the_queue_drops_every_unread_message_once() {
        #[derive(Debug)]
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let list = List::new();
        for _ in 0..2 * BLOCK_CAP + 3 {
            list.push(Counted(Arc::clone(&drops))).unwrap();
        }
        for _ in 0..BLOCK_CAP + 1 {
            drop(list.pop().unwrap());
        }
        assert_eq!(drops.load(Ordering::SeqCst), BLOCK_CAP + 1);
        drop(list);
        assert_eq!(drops.load(Ordering::SeqCst), 2 * BLOCK_CAP + 3);
    }

    #[test]
    fn four_producers_and_two_consumers_move_every_message_once_in_each_producers_order() {
        const PER: usize = 50_000;
        let list = Arc::new(List::new());
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let list = Arc::clone(&list);
                std::thread::spawn(move || {
                    for i in 0..PER {
                        list.push((p, i)).unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let list = Arc::clone(&list);
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    loop {
                        match list.pop() {
                            Ok(msg) => seen.push(msg),
                            Err(PopError::Empty) => std::thread::yield_now(),
                            Err(PopError::Closed) => return seen,
                        }
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        list.close();
        let mut all = Vec::new();
        for consumer in consumers {
            let seen = consumer.join().unwrap();
            // Each consumer sees each producer's messages in order.
            for p in 0..4 {
                let mine: Vec<usize> = seen.iter().filter(|m| m.0 == p).map(|m| m.1).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]));
            }
            all.extend(seen);
        }
        all.sort_unstable();
        let expected: Vec<(usize, usize)> =
            (0..4).flat_map(|p| (0..PER).map(move |i| (p, i))).collect();
        assert_eq!(all, expected);
    }
}
