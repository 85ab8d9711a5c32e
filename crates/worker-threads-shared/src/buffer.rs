//! `SharedArrayBuffer`: memory shared on purpose, seen through typed atomic views.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use worker_threads_wait::Unpoison;

use crate::element::Element;
use crate::error::{AllocError, ViewError};

/// The memory behind a buffer and its clones.
///
/// Today it is a heap allocation; a later backing store (a memfd mapping shared with
/// cluster workers) will be another variant behind the same views.
pub(crate) struct Storage {
    /// `ceil(byte_len / 8)` words: zeroed, and aligned for 8-byte atomics.
    pub(crate) words: Words,
    pub(crate) byte_len: usize,
    /// 0 until the first view; then the element size of every view (see [`ViewError::MixedSizes`]).
    pub(crate) claimed: AtomicUsize,
    /// Byte-wise bulk copies made while nothing is claimed hold it for reading; the first
    /// claim holds it for writing, so no byte-wise access races with a wider one.
    pub(crate) bulk: RwLock<()>,
}

/// Where a buffer's words are.
pub(crate) enum Words {
    /// This process's heap.
    Heap(Box<[AtomicU64]>),
    /// A memfd mapped shared, which other processes can map too.
    #[cfg(all(feature = "process", target_os = "linux"))]
    Mapped(worker_threads_process::mapped::Mapping),
}

impl Words {
    fn as_ptr(&self) -> *const AtomicU64 {
        match self {
            Words::Heap(words) => words.as_ptr(),
            #[cfg(all(feature = "process", target_os = "linux"))]
            Words::Mapped(mapping) => mapping.as_ptr(),
        }
    }
}

/// `words` zeroed words from the allocator's zeroed path (fresh pages from the OS for a
/// large buffer, so nothing is written up front); `None` if the size overflows a layout or
/// the allocator refuses.
fn zeroed_words(words: usize) -> Option<Box<[AtomicU64]>> {
    if words == 0 {
        return Some(Box::new([]));
    }
    let layout = Layout::array::<AtomicU64>(words).ok()?;
    // SAFETY: the layout's size is non-zero (`words > 0`, and an `AtomicU64` is 8 bytes).
    let ptr = unsafe { alloc::alloc_zeroed(layout) }.cast::<AtomicU64>();
    if ptr.is_null() {
        return None;
    }
    let slice = std::ptr::slice_from_raw_parts_mut(ptr, words);
    // SAFETY: `ptr` came from the global allocator with the layout of `[AtomicU64; words]`,
    // which is what a `Box<[AtomicU64]>` of that length frees with; all-zero bytes are a
    // valid `AtomicU64` (0); and nothing else holds the pointer.
    Some(unsafe { Box::from_raw(slice) })
}

/// A fixed-size block of zeroed memory that every clone shares: Node's
/// `SharedArrayBuffer`. Everything else in worker-threads is moved between threads; this
/// is shared on purpose, and only through atomics.
///
/// Views ([`as_i32`](Self::as_i32), [`view`](Self::view)...) give `&[AtomicI32]` and the
/// like over the whole buffer or an aligned byte range. A buffer has **one element size**:
/// the first view fixes it, and a view of another size is refused (Rust's memory model
/// makes atomic writes that race with accesses of another size undefined behaviour, which
/// Node's typed arrays allow). Signedness may differ: `as_i32` and `as_u32` go together.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::Ordering;
/// use worker_threads_shared::SharedArrayBuffer;
///
/// let sab = SharedArrayBuffer::new(16);
/// let mine = sab.clone(); // the same memory
/// std::thread::spawn(move || mine.as_i32()[1].store(7, Ordering::SeqCst)).join().unwrap();
/// assert_eq!(sab.as_i32()[1].load(Ordering::SeqCst), 7);
/// assert_eq!(sab.as_i32().len(), 4);
/// ```
#[derive(Clone)]
pub struct SharedArrayBuffer {
    storage: Arc<Storage>,
}

macro_rules! views {
    ($($as:ident, $try_as:ident => $atomic:ident, $node:literal;)+) => {$(
        #[doc = concat!("The whole buffer as `&[", stringify!($atomic), "]` (Node's `new ", $node, "(sab)`).")]
        ///
        /// # Panics
        ///
        /// If the length is not a whole number of elements, or the buffer is viewed with
        /// elements of another size; see the `try_` form.
        #[track_caller]
        pub fn $as(&self) -> &[std::sync::atomic::$atomic] {
            self.view(0..self.byte_len())
        }

        #[doc = concat!("The whole buffer as `&[", stringify!($atomic), "]`, or why not.")]
        ///
        /// # Errors
        ///
        /// [`ViewError::Length`] or [`ViewError::MixedSizes`].
        pub fn $try_as(&self) -> Result<&[std::sync::atomic::$atomic], ViewError> {
            self.try_view(0..self.byte_len())
        }
    )+};
}

impl SharedArrayBuffer {
    /// A buffer of `byte_len` zeroed bytes, aligned for 8-byte atomics.
    ///
    /// # Panics
    ///
    /// If the memory cannot be had; see [`try_new`](Self::try_new).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use worker_threads_shared::SharedArrayBuffer;
    ///
    /// let sab = SharedArrayBuffer::new(16); // zeroed, like Node's
    /// assert_eq!(sab.byte_len(), 16);
    /// sab.as_u8()[3].store(9, Ordering::Relaxed);
    /// assert_eq!(sab.snapshot()[3], 9);
    /// ```
    #[track_caller]
    pub fn new(byte_len: usize) -> Self {
        match Self::try_new(byte_len) {
            Ok(buffer) => buffer,
            Err(err) => panic!("{err}; SharedArrayBuffer::try_new reports this as an error"),
        }
    }

    /// A buffer of `byte_len` zeroed bytes, or an error if the memory cannot be had (Node
    /// throws a `RangeError` there). The memory is asked for already zeroed, so a large
    /// buffer costs pages only as they are touched.
    ///
    /// # Errors
    ///
    /// [`AllocError`] if `byte_len` is too large for this machine or the allocator refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_shared::SharedArrayBuffer;
    ///
    /// assert!(SharedArrayBuffer::try_new(usize::MAX).is_err());
    /// assert_eq!(SharedArrayBuffer::try_new(64)?.byte_len(), 64);
    /// # Ok::<(), worker_threads_shared::AllocError>(())
    /// ```
    pub fn try_new(byte_len: usize) -> Result<Self, AllocError> {
        let words = zeroed_words(byte_len.div_ceil(8)).ok_or(AllocError { byte_len })?;
        Ok(Self::from_storage(Words::Heap(words), byte_len, 0))
    }

    pub(crate) fn from_storage(words: Words, byte_len: usize, claimed: usize) -> Self {
        Self {
            storage: Arc::new(Storage {
                words,
                byte_len,
                claimed: AtomicUsize::new(claimed),
                bulk: RwLock::new(()),
            }),
        }
    }

    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The length in bytes. Node's `sab.byteLength`.
    pub fn byte_len(&self) -> usize {
        self.storage.byte_len
    }

    /// True if `self` and `other` share the same memory.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The element size every view of this buffer uses, `None` before the first view.
    pub fn element_size(&self) -> Option<usize> {
        match self.storage.claimed.load(Ordering::Acquire) {
            0 => None,
            size => Some(size),
        }
    }

    views! {
        as_u8, try_as_u8 => AtomicU8, "Uint8Array";
        as_i8, try_as_i8 => AtomicI8, "Int8Array";
        as_u16, try_as_u16 => AtomicU16, "Uint16Array";
        as_i16, try_as_i16 => AtomicI16, "Int16Array";
        as_u32, try_as_u32 => AtomicU32, "Uint32Array";
        as_i32, try_as_i32 => AtomicI32, "Int32Array";
        as_u64, try_as_u64 => AtomicU64, "BigUint64Array";
        as_i64, try_as_i64 => AtomicI64, "BigInt64Array";
    }

    /// A view of the bytes `range` as elements `A` (Node's `new Int32Array(sab, offset,
    /// length)`, with a byte range).
    ///
    /// # Panics
    ///
    /// As [`try_view`](Self::try_view) fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicI32, Ordering};
    /// let sab = worker_threads_shared::SharedArrayBuffer::new(16);
    /// let tail = sab.view::<AtomicI32>(8..16);
    /// tail[0].store(5, Ordering::Relaxed);
    /// assert_eq!(sab.as_i32()[2].load(Ordering::Relaxed), 5);
    /// ```
    #[track_caller]
    pub fn view<A: Element>(&self, range: Range<usize>) -> &[A] {
        match self.try_view(range) {
            Ok(view) => view,
            Err(err) => panic!("SharedArrayBuffer::view: {err}; try_view reports this as an error"),
        }
    }

    /// A view of the bytes `range` as elements `A`, or why not.
    ///
    /// # Errors
    ///
    /// [`ViewError::OutOfBounds`], [`ViewError::Misaligned`] (the start is not a multiple
    /// of the element size), [`ViewError::Length`] (not a whole number of elements), or
    /// [`ViewError::MixedSizes`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicI32, AtomicU8};
    /// use worker_threads_shared::{SharedArrayBuffer, ViewError};
    ///
    /// let sab = SharedArrayBuffer::new(10);
    /// assert!(matches!(sab.try_view::<AtomicI32>(2..6), Err(ViewError::Misaligned { .. })));
    /// assert!(matches!(sab.try_as_i32(), Err(ViewError::Length { len: 10, size: 4 })));
    /// let ints = sab.try_view::<AtomicI32>(0..8).unwrap();
    /// assert!(matches!(sab.try_view::<AtomicU8>(8..10), Err(ViewError::MixedSizes { .. })));
    /// ```
    pub fn try_view<A: Element>(&self, range: Range<usize>) -> Result<&[A], ViewError> {
        let Range { start, end } = range;
        let byte_len = self.byte_len();
        if start > end || end > byte_len {
            return Err(ViewError::OutOfBounds {
                start,
                end,
                byte_len,
            });
        }
        if start % A::SIZE != 0 {
            return Err(ViewError::Misaligned {
                offset: start,
                size: A::SIZE,
            });
        }
        if (end - start) % A::SIZE != 0 {
            return Err(ViewError::Length {
                len: end - start,
                size: A::SIZE,
            });
        }
        self.claim(A::SIZE)?;
        Ok(self.raw_view(start, (end - start) / A::SIZE))
    }

    /// Makes `size` the buffer's element size, if it has none yet.
    fn claim(&self, size: usize) -> Result<(), ViewError> {
        let storage = &*self.storage;
        let claimed = storage.claimed.load(Ordering::Acquire);
        if claimed == size {
            return Ok(());
        }
        if claimed == 0 {
            let _no_bulk_copy = storage.bulk.write().unpoison();
            match storage
                .claimed
                .compare_exchange(0, size, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(now) if now == size => return Ok(()),
                Err(now) => {
                    return Err(ViewError::MixedSizes {
                        claimed: now,
                        requested: size,
                    });
                }
            }
        }
        Err(ViewError::MixedSizes {
            claimed,
            requested: size,
        })
    }

    /// `count` elements `A` from byte `start`. Checks its bounds and alignment; the
    /// element-size discipline is the caller's (a claim, or the bulk lock).
    fn raw_view<A: Element>(&self, start: usize, count: usize) -> &[A] {
        assert!(start % A::SIZE == 0, "misaligned raw view");
        let len = count.checked_mul(A::SIZE).expect("view length overflows");
        assert!(
            start
                .checked_add(len)
                .is_some_and(|end| end <= self.byte_len()),
            "raw view out of bounds"
        );
        let base = self.storage.words.as_ptr().cast::<u8>();
        // SAFETY: the words are one allocation (or one shared mapping, sealed against
        // resizing) of at least `byte_len` bytes, 8-aligned
        // (checked above: `start + count * SIZE <= byte_len`; `start` is a multiple of
        // `SIZE`, so the pointer is aligned for `A`, whose alignment equals its size).
        // `A` is a std atomic integer (sealed `Element`): same size as its integer, every
        // bit pattern valid, and all access goes through atomic operations on shared
        // references, as the `AtomicU64`s themselves do. The slice borrows `self`, which
        // keeps the `Arc<Storage>` alive. Mixed-size races are excluded by the claim.
        unsafe { std::slice::from_raw_parts(base.add(start).cast::<A>(), count) }
    }

    /// A copy of the whole buffer's bytes (relaxed loads, like a typed array's plain
    /// reads: order them with atomics).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let sab = worker_threads_shared::SharedArrayBuffer::new(8);
    /// sab.as_u16()[1].store(0x0102, Ordering::Relaxed);
    /// let bytes = sab.snapshot();
    /// assert_eq!(u16::from_ne_bytes([bytes[2], bytes[3]]), 0x0102);
    /// ```
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = vec![0; self.byte_len()];
        self.bulk(|size| match size {
            1 => self.read_elements::<AtomicU8>(&mut out),
            2 => self.read_elements::<AtomicU16>(&mut out),
            4 => self.read_elements::<AtomicU32>(&mut out),
            _ => self.read_elements::<AtomicU64>(&mut out),
        });
        out
    }

    /// Writes `src` at byte `offset` (relaxed stores; a partly covered element is updated
    /// with a compare-exchange, so its other bytes are kept).
    ///
    /// # Errors
    ///
    /// [`ViewError::OutOfBounds`] if `src` does not fit; nothing is written then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let sab = worker_threads_shared::SharedArrayBuffer::new(8);
    /// sab.copy_from(4, &7i32.to_ne_bytes()).unwrap();
    /// assert_eq!(sab.as_i32()[1].load(Ordering::Relaxed), 7);
    /// assert!(sab.copy_from(6, &[0; 4]).is_err());
    /// ```
    pub fn copy_from(&self, offset: usize, src: &[u8]) -> Result<(), ViewError> {
        let byte_len = self.byte_len();
        let end = offset.checked_add(src.len()).filter(|&end| end <= byte_len);
        let Some(end) = end else {
            return Err(ViewError::OutOfBounds {
                start: offset,
                end: offset.saturating_add(src.len()),
                byte_len,
            });
        };
        self.bulk(|size| match size {
            1 => self.write_elements::<AtomicU8>(offset..end, src),
            2 => self.write_elements::<AtomicU16>(offset..end, src),
            4 => self.write_elements::<AtomicU32>(offset..end, src),
            _ => self.write_elements::<AtomicU64>(offset..end, src),
        });
        Ok(())
    }

    /// Runs a bulk copy at the buffer's element size: the claimed one, or bytes (under the
    /// bulk lock, so no claim happens meanwhile) while there is none.
    fn bulk(&self, copy: impl FnOnce(usize)) {
        let storage = &*self.storage;
        let claimed = storage.claimed.load(Ordering::Acquire);
        if claimed != 0 {
            return copy(claimed);
        }
        let _bytes = storage.bulk.read().unpoison();
        match storage.claimed.load(Ordering::Acquire) {
            0 => copy(1),
            claimed => copy(claimed),
        }
    }

    fn read_elements<A: Element>(&self, out: &mut [u8]) {
        let whole = self.byte_len() / A::SIZE;
        for (i, element) in self.raw_view::<A>(0, whole).iter().enumerate() {
            let bytes = native_bytes(element.load_bits(), A::SIZE);
            out[i * A::SIZE..(i + 1) * A::SIZE].copy_from_slice(&bytes[..A::SIZE]);
        }
        // Bytes past the last whole element are never covered by an `A` view.
        let tail = whole * A::SIZE;
        for (i, byte) in self
            .raw_view::<AtomicU8>(tail, self.byte_len() - tail)
            .iter()
            .enumerate()
        {
            out[tail + i] = byte.load(Ordering::Relaxed);
        }
    }

    fn write_elements<A: Element>(&self, range: Range<usize>, src: &[u8]) {
        let whole = self.byte_len() / A::SIZE;
        let covered_end = whole * A::SIZE;
        let elements = self.raw_view::<A>(0, whole);
        let first = range.start / A::SIZE;
        let last = range.end.min(covered_end).div_ceil(A::SIZE);
        for (index, element) in elements.iter().enumerate().take(last).skip(first) {
            let at = index * A::SIZE;
            let lo = range.start.max(at);
            let hi = range.end.min(at + A::SIZE);
            let part = &src[lo - range.start..hi - range.start];
            if lo == at && hi == at + A::SIZE {
                element.store_bits(from_native_bytes(part));
                continue;
            }
            let mut current = element.load_bits();
            loop {
                let mut bytes = native_bytes(current, A::SIZE);
                bytes[lo - at..hi - at].copy_from_slice(part);
                match element.compare_exchange_bits(current, from_native_bytes(&bytes[..A::SIZE])) {
                    Ok(_) => break,
                    Err(now) => current = now,
                }
            }
        }
        if range.end > covered_end {
            let from = range.start.max(covered_end);
            let tail = self.raw_view::<AtomicU8>(from, range.end - from);
            for (byte, &value) in tail.iter().zip(&src[from - range.start..]) {
                byte.store(value, Ordering::Relaxed);
            }
        }
    }
}

/// The `size` bytes of an element whose value is `bits`, in memory order, at the front.
fn native_bytes(bits: u64, size: usize) -> [u8; 8] {
    let mut out = [0; 8];
    if cfg!(target_endian = "little") {
        out[..size].copy_from_slice(&bits.to_le_bytes()[..size]);
    } else {
        out[..size].copy_from_slice(&bits.to_be_bytes()[8 - size..]);
    }
    out
}

/// The value of an element whose bytes, in memory order, are `bytes` (1 to 8 of them).
fn from_native_bytes(bytes: &[u8]) -> u64 {
    let mut buf = [0; 8];
    if cfg!(target_endian = "little") {
        buf[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(buf)
    } else {
        buf[8 - bytes.len()..].copy_from_slice(bytes);
        u64::from_be_bytes(buf)
    }
}

impl fmt::Debug for SharedArrayBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedArrayBuffer")
            .field("byte_len", &self.byte_len())
            .field("element_size", &self.element_size())
            .finish_non_exhaustive()
    }
}
