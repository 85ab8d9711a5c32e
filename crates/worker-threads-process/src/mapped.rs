//! Memory another process can map: a sealed memfd, mapped shared. What a
//! cross-process `SharedArrayBuffer` allocates and what a buffer received from another
//! process maps (`worker-threads-shared`), and where a channel's rings live
//! ([`rings`](crate::rings)).
//!
//! The memfd is sealed against shrinking and growing before it is shared, and a
//! received one is mapped only if it carries those seals and is as long as the buffer
//! says: a peer that could shrink the file under our mapping could make our next access
//! fault (`SIGBUS`).

use std::io;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

/// A shared mapping of `len` bytes (a whole number of words, at least one) of a memfd,
/// accessed only through atomics.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::Ordering;
/// use worker_threads_process::mapped::Mapping;
///
/// let mapping = Mapping::create("example", 4)?;
/// mapping.words()[3].store(7, Ordering::Relaxed);
/// // Another process would map a duplicate of the descriptor (sent in a frame).
/// let again = Mapping::open(mapping.share()?, 4)?;
/// assert_eq!(again.words()[3].load(Ordering::Relaxed), 7);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Mapping {
    ptr: NonNull<AtomicU64>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory, accessed only through atomics (the
// `AtomicU64`s it holds are `Sync`); the pointer is owned by this value alone, which
// unmaps it once, on drop.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` only hands out `*const AtomicU64`, used through atomics.
unsafe impl Sync for Mapping {}

const SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

impl Mapping {
    /// A new zeroed mapping of `words` words (`words > 0`); `name` shows in
    /// `/proc/PID/maps`.
    ///
    /// # Errors
    ///
    /// The OS error of `memfd_create`, `ftruncate` or `mmap` (out of memory).
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_process::mapped::Mapping;
    ///
    /// let mapping = Mapping::create("counters", 8)?;
    /// assert_eq!(mapping.words().len(), 8);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(name: &str, words: usize) -> io::Result<Mapping> {
        let len = words
            .checked_mul(8)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SEALS | SealFlags::SEAL)?;
        Mapping::map(fd, len)
    }

    /// Maps a memfd another process sent for `words` words, after checking its seals and
    /// its length.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] for a memfd not sealed against resizing or of
    /// another length, and the OS error of `mmap`.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_process::mapped::Mapping;
    ///
    /// let mapping = Mapping::create("counters", 8)?;
    /// // The length is checked: a peer cannot make us map past the file's end.
    /// assert!(Mapping::open(mapping.share()?, 16).is_err());
    /// assert!(Mapping::open(mapping.share()?, 8).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(fd: OwnedFd, words: usize) -> io::Result<Mapping> {
        let len = words
            .checked_mul(8)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
        let seals = rustix::fs::fcntl_get_seals(&fd)?;
        if !seals.contains(SEALS) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a shared memfd that is not sealed against resizing",
            ));
        }
        let size = rustix::fs::fstat(&fd)?.st_size;
        if u64::try_from(size).ok() != Some(len as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a shared memfd of the wrong length",
            ));
        }
        Mapping::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty mapping",
            ));
        }
        // SAFETY: a fresh mapping chosen by the kernel (null hint, no MAP_FIXED), so it
        // overlaps nothing of ours; `fd` is a memfd of exactly `len` bytes, sealed against
        // resizing, so every byte of the mapping stays backed.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<AtomicU64>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len, fd })
    }

    /// The first word (page-aligned, so aligned for any atomic).
    pub fn as_ptr(&self) -> *const AtomicU64 {
        self.ptr.as_ptr()
    }

    /// The mapping's words.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` is the start of a live mapping of `len` bytes (a whole number of
        // words, page-aligned) that this value owns and unmaps only on drop, after every
        // borrow of `self` ended; the memory is only ever accessed through atomics, here
        // and in any other process that maps it, so sharing it as `&[AtomicU64]` is sound.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len / 8) }
    }

    /// A new descriptor of the memfd, for another process.
    ///
    /// # Errors
    ///
    /// The OS error of `dup` (the descriptor limit).
    pub fn share(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("len", &self.len).finish()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are this mapping's, mapped once in `map` and unmapped
        // only here; every view into it borrows this value (`words`) or the owner that
        // holds it (a `SharedArrayBuffer`'s views), so none outlives it.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
