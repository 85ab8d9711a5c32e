//! The bounded queue: a ring of `cap` slots, each with a stamp (Dmitry Vyukov's bounded
//! MPMC queue, with a close mark).
//!
//! # Indices and stamps
//!
//! `head` and `tail` are `lap | index`: `index` is below `cap`, and `lap` counts the times
//! the ring was gone round, in units of `one_lap` (a power of two above `cap`). The bit
//! `mark_bit` (between the index and the lap) is set in the tail when the queue closes.
//!
//! A slot's stamp says whose turn it is: `tail` when a push at `tail` may write it,
//! `tail + 1` once written (a pop at `head == tail` may read it), and `head + one_lap`
//! once read (the push one lap later may write it again).
//!
//! # Push and pop
//!
//! A push whose slot's stamp equals its tail claims the tail with one compare-and-swap
//! (`SeqCst`), which fails if the close mark was set meanwhile; then it writes and stamps
//! the slot. A stamp one lap behind means the ring is full, if the head agrees. A pop
//! whose slot's stamp is `head + 1` claims the head, reads and re-stamps the slot. A stamp
//! equal to the head means nothing is there yet: empty if the tail (unmarked) equals the
//! head, **closed and drained** if it is also marked; otherwise a push claimed the slot
//! and is writing it, and the pop waits.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::queue::{PopError, PushError};
use crate::spin::Backoff;
use crate::sync::UnsafeCell;
use crate::sync::atomic::{AtomicUsize, Ordering};

struct Slot<T> {
    stamp: AtomicUsize,
    msg: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded, closable, lock-free MPMC queue (see the module doc).
///
/// # Examples
///
/// ```
/// use worker_threads_wait::queue::{Array, PopError};
///
/// let queue = Array::new(2);
/// queue.push("a").unwrap();
/// queue.push("b").unwrap();
/// assert!(!queue.has_room());
/// queue.close(); // what was pushed before the close is still popped
/// assert_eq!(queue.pop(), Ok("a"));
/// assert_eq!(queue.pop(), Ok("b"));
/// assert_eq!(queue.pop(), Err(PopError::Closed));
/// ```
pub struct Array<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    buffer: Box<[Slot<T>]>,
    cap: usize,
    /// One turn of the ring, in index units: a power of two above `cap`, twice `mark_bit`.
    one_lap: usize,
    /// Set in the tail when closed.
    mark_bit: usize,
    _owns: PhantomData<Box<T>>,
}

// SAFETY: the queue moves `T`s between threads (so `T: Send`); a slot is written only by
// the push that claimed it and read only by the pop that claimed it, ordered by its stamp
// (module doc): no `T` is ever shared.
unsafe impl<T: Send> Send for Array<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Array<T> {}

impl<T> Array<T> {
    /// An empty, open queue of `cap` slots.
    ///
    /// # Panics
    ///
    /// If `cap` is zero (a rendezvous is not a ring) or so large that its laps would not
    /// fit in a `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = worker_threads_wait::queue::Array::<u8>::new(16);
    /// assert_eq!(queue.capacity(), 16);
    /// assert!(queue.is_empty());
    /// ```
    pub fn new(cap: usize) -> Self {
        assert!(cap > 0, "an Array queue holds at least one message");
        let mark_bit = (cap + 1)
            .checked_next_power_of_two()
            .expect("capacity too large");
        let one_lap = mark_bit.checked_mul(2).expect("capacity too large");
        let buffer = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                msg: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            buffer,
            cap,
            one_lap,
            mark_bit,
            _owns: PhantomData,
        }
    }

    /// How many messages it holds at most.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The position after `at` (the next index, or the next lap's first).
    fn next(&self, at: usize) -> usize {
        let index = at & (self.mark_bit - 1);
        if index + 1 < self.cap {
            at + 1
        } else {
            (at & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Pushes `msg` if there is room and the queue is open.
    pub fn push(&self, msg: T) -> Result<(), PushError<T>> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark_bit != 0 {
                return Err(PushError::Closed(msg));
            }
            let slot = &self.buffer[tail & (self.mark_bit - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                let claimed = self.tail.compare_exchange_weak(
                    tail,
                    self.next(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                );
                match claimed {
                    Ok(_) => {
                        // SAFETY: the claim gave this thread the slot; no pop reads it
                        // before the stamp below.
                        slot.msg
                            .with_mut(|cell| unsafe { cell.write(MaybeUninit::new(msg)) });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => {
                        tail = current;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot holds last lap's message: full, unless a pop took it since.
                crate::sync::order_point();
                let head = self.head.load(Ordering::SeqCst);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(PushError::Full(msg));
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another push is ahead of us on this slot.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest message: `Empty` if none is queued, `Closed` once the queue is
    /// closed and every message pushed before the close has been taken.
    pub fn pop(&self) -> Result<T, PopError> {
        let backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.buffer[head & (self.mark_bit - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head + 1 {
                let claimed = self.head.compare_exchange_weak(
                    head,
                    self.next(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                );
                match claimed {
                    Ok(_) => {
                        // SAFETY: the claim gave this thread the slot, written before its
                        // stamp (acquired above).
                        let msg = slot.msg.with(|cell| unsafe { cell.read().assume_init() });
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        return Ok(msg);
                    }
                    Err(current) => {
                        head = current;
                        backoff.spin();
                    }
                }
            } else if stamp == head {
                crate::sync::order_point();
                let tail = self.tail.load(Ordering::SeqCst);
                if tail & !self.mark_bit == head {
                    return Err(if tail & self.mark_bit != 0 {
                        PopError::Closed
                    } else {
                        PopError::Empty
                    });
                }
                // A push claimed this slot and is writing it.
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Another pop is ahead of us on this slot.
                backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Closes the queue: later pushes fail; pops drain what was pushed before. True if
    /// this call closed it.
    pub fn close(&self) -> bool {
        self.tail.fetch_or(self.mark_bit, Ordering::SeqCst) & self.mark_bit == 0
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark_bit != 0
    }

    /// Whether a pop would not find it empty and open (a message is there or being
    /// written, or it is closed): what a sleeping receiver looks at after it registered.
    pub fn is_ready(&self) -> bool {
        crate::sync::order_point();
        let tail = self.tail.load(Ordering::SeqCst);
        let head = self.head.load(Ordering::SeqCst);
        tail & self.mark_bit != 0 || tail & !self.mark_bit != head
    }

    /// Whether a push would not find it full and open (room, or closed): what a sleeping
    /// sender looks at after it registered.
    pub fn has_room(&self) -> bool {
        crate::sync::order_point();
        let tail = self.tail.load(Ordering::SeqCst);
        let head = self.head.load(Ordering::SeqCst);
        tail & self.mark_bit != 0 || head.wrapping_add(self.one_lap) != tail
    }

    /// How many messages are queued (a snapshot).
    pub fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) != tail {
                continue;
            }
            let tail = tail & !self.mark_bit;
            let (hix, tix) = (head & (self.mark_bit - 1), tail & (self.mark_bit - 1));
            return if hix < tix {
                tix - hix
            } else if hix > tix {
                self.cap - hix + tix
            } else if tail == head {
                0
            } else {
                self.cap
            };
        }
    }

    /// Whether no message is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Array<T> {
    fn drop(&mut self) {
        let hix = self.head.load(Ordering::Relaxed) & (self.mark_bit - 1);
        for i in 0..self.len() {
            let index = (hix + i) % self.cap;
            // SAFETY: `&mut self`: the `len` slots from the head hold written, unread
            // messages, and nobody else touches them.
            self.buffer[index]
                .msg
                .with_mut(|cell| unsafe { (*cell).assume_init_drop() });
        }
    }
}

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use std::sync::Arc;

    use super::Array;
    use crate::queue::{PopError, PushError};

    #[test]
    fn a_full_ring_refuses_then_takes_again_in_order() {
        let ring = Array::new(3);
        for lap in 0..4 {
            for i in 0..3 {
                ring.push(lap * 10 + i).unwrap();
            }
            assert_eq!(ring.len(), 3);
            assert!(!ring.has_room());
            assert_eq!(ring.push(99), Err(PushError::Full(99)));
            for i in 0..3 {
                assert_eq!(ring.pop(), Ok(lap * 10 + i));
            }
            assert_eq!(ring.pop(), Err(PopError::Empty));
            assert!(ring.is_empty());
        }
    }

    #[test]
    fn a_close_refuses_pushes_and_drains_what_was_pushed_before() {
        let ring = Array::new(2);
        ring.push(1).unwrap();
        assert!(ring.close());
        assert_eq!(ring.push(2), Err(PushError::Closed(2)));
        assert!(ring.has_room(), "a closed ring wakes its senders");
        assert_eq!(ring.pop(), Ok(1));
        assert_eq!(ring.pop(), Err(PopError::Closed));
    }

    #[test]
    fn dropping_the_ring_drops_the_unread_messages() {
        let counted = Arc::new(());
        let ring = Array::new(4);
        for _ in 0..3 {
            ring.push(Arc::clone(&counted)).unwrap();
        }
        drop(ring.pop());
        drop(ring);
        assert_eq!(Arc::strong_count(&counted), 1);
    }

    #[test]
    fn two_producers_and_two_consumers_through_one_slot_move_every_message_once() {
        const PER: u64 = 20_000;
        let ring = Arc::new(Array::new(1));
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let ring = Arc::clone(&ring);
                std::thread::spawn(move || {
                    for i in 0..PER {
                        let mut msg = p * PER + i;
                        loop {
                            match ring.push(msg) {
                                Ok(()) => break,
                                Err(err) => msg = err.into_inner(),
                            }
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let ring = Arc::clone(&ring);
                std::thread::spawn(move || {
                    let mut sum = 0u64;
                    let mut count = 0u64;
                    loop {
                        match ring.pop() {
                            Ok(msg) => {
                                sum += msg;
                                count += 1;
                            }
                            Err(PopError::Empty) => std::thread::yield_now(),
                            Err(PopError::Closed) => return (sum, count),
                        }
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        ring.close();
        let (sum, count) = consumers
            .into_iter()
            .map(|c| c.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!(count, 2 * PER);
        assert_eq!(sum, (0..2 * PER).sum::<u64>());
    }
}
