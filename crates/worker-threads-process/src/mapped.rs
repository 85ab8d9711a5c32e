//! Memory another process can map: a sealed memfd, mapped shared. What
//! [`SharedArrayBuffer::new_cross_process`](crate::SharedArrayBuffer::new_cross_process)
//! allocates, and what a buffer received from another process maps.
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

/// A shared mapping of `len` bytes (a whole number of words, at least one) of a memfd.
pub(crate) struct Mapping {
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
    /// A new zeroed mapping of `words` words (`words > 0`).
    pub(crate) fn create(words: usize) -> io::Result<Mapping> {
        let len = words
            .checked_mul(8)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let fd = rustix::fs::memfd_create(
            "worker-threads-shared-array-buffer",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SEALS | SealFlags::SEAL)?;
        Mapping::map(fd, len)
    }

    /// Maps a memfd another process sent for a buffer of `words` words, after checking
    /// its seals and its length.
    pub(crate) fn open(fd: OwnedFd, words: usize) -> io::Result<Mapping> {
        let len = words
            .checked_mul(8)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
        let seals = rustix::fs::fcntl_get_seals(&fd)?;
        if !seals.contains(SEALS) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a shared buffer's memfd that is not sealed against resizing",
            ));
        }
        let size = rustix::fs::fstat(&fd)?.st_size;
        if u64::try_from(size).ok() != Some(len as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a shared buffer's memfd of the wrong length",
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
    pub(crate) fn as_ptr(&self) -> *const AtomicU64 {
        self.ptr.as_ptr()
    }

    /// A new descriptor of the memfd, for another process.
    pub(crate) fn share(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are this mapping's, mapped once in `map` and unmapped
        // only here; every view into it borrows the `SharedArrayBuffer` that owns this
        // value, so none outlives it.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
