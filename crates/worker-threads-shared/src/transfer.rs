//! Buffers that process workers share (Linux, feature `process`): a buffer made by
//! [`SharedArrayBuffer::new_cross_process`] lives in a sealed memfd mapped shared; given
//! to a process worker (in its data or a message) the memfd goes with the frame
//! (`SCM_RIGHTS`) and the worker maps the same memory: O(1) in the buffer's size.
//! `atomics::wait`/`notify` on 32-bit cells work between the processes (a shared
//! futex); the 64-bit forms wait within one process only.

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use worker_threads_process::codec::noted;
use worker_threads_process::fds;

use crate::buffer::{SharedArrayBuffer, Words};
use crate::error::AllocError;
use worker_threads_process::mapped::Mapping;

impl SharedArrayBuffer {
    /// A buffer of `byte_len` zeroed bytes that a process worker can share: its memory
    /// is a memfd mapped shared, and putting the buffer in a process worker's data or
    /// messages maps the same memory there. Costs a descriptor for its life; a heap
    /// buffer ([`new`](Self::new)) cannot cross a process.
    ///
    /// # Panics
    ///
    /// If the memory cannot be had; see [`try_new_cross_process`](Self::try_new_cross_process).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use worker_threads_shared::SharedArrayBuffer;
    ///
    /// // The same memory in every process worker it is posted to (here: viewed twice).
    /// let sab = SharedArrayBuffer::new_cross_process(1 << 20);
    /// let view = sab.clone();
    /// view.as_i64()[0].store(-1, Ordering::SeqCst);
    /// assert_eq!(sab.as_i64()[0].load(Ordering::SeqCst), -1);
    /// ```
    #[track_caller]
    pub fn new_cross_process(byte_len: usize) -> Self {
        match Self::try_new_cross_process(byte_len) {
            Ok(buffer) => buffer,
            Err(err) => {
                panic!("{err}; SharedArrayBuffer::try_new_cross_process reports this as an error")
            }
        }
    }

    /// [`new_cross_process`](Self::new_cross_process), or an error.
    ///
    /// # Errors
    ///
    /// [`AllocError`] if the memfd cannot be created, sized or mapped.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_shared::SharedArrayBuffer;
    ///
    /// let sab = SharedArrayBuffer::try_new_cross_process(4096)?;
    /// assert_eq!(sab.byte_len(), 4096);
    /// assert!(SharedArrayBuffer::try_new_cross_process(usize::MAX).is_err());
    /// # Ok::<(), worker_threads_shared::AllocError>(())
    /// ```
    pub fn try_new_cross_process(byte_len: usize) -> Result<Self, AllocError> {
        let words = byte_len.div_ceil(8);
        if words == 0 {
            return Self::try_new(0);
        }
        let mapping = Mapping::create("worker-threads-shared-array-buffer", words)
            .map_err(|_| AllocError { byte_len })?;
        Ok(Self::from_storage(Words::Mapped(mapping), byte_len, 0))
    }

    /// Whether this buffer can cross to a process worker (it was made by
    /// [`new_cross_process`](Self::new_cross_process), or received from another process).
    pub fn is_cross_process(&self) -> bool {
        matches!(self.storage().words, Words::Mapped(_)) || self.byte_len() == 0
    }
}

/// What crosses: the index of the memfd among the frame's descriptors (`u32::MAX` for an
/// empty buffer, which has none), the length, the element size claimed so far.
#[derive(Serialize, Deserialize)]
struct Wire {
    fd: u32,
    byte_len: u64,
    claimed: u8,
}

/// Only into a process worker's frame, and only for a cross-process buffer.
impl Serialize for SharedArrayBuffer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let storage = self.storage();
        let claimed = self.element_size().unwrap_or(0) as u8;
        let fd = match &storage.words {
            Words::Mapped(mapping) => {
                let fd = mapping.share().map_err(|e| S::Error::custom(noted(e)))?;
                fds::push(fd).ok_or_else(|| {
                    S::Error::custom(noted(
                        "a SharedArrayBuffer serializes only into a process worker's data or messages",
                    ))
                })?
            }
            Words::Heap(_) if self.byte_len() == 0 => u32::MAX,
            Words::Heap(_) => {
                return Err(S::Error::custom(noted(
                    "this SharedArrayBuffer is in this process's heap: make it with \
                     SharedArrayBuffer::new_cross_process to share it with a process worker",
                )));
            }
        };
        Wire {
            fd,
            byte_len: self.byte_len() as u64,
            claimed,
        }
        .serialize(serializer)
    }
}

/// Only out of a process worker's frame: maps the memfd that came with it.
impl<'de> Deserialize<'de> for SharedArrayBuffer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let byte_len = usize::try_from(wire.byte_len).map_err(|e| D::Error::custom(noted(e)))?;
        let claimed = match wire.claimed {
            0 | 1 | 2 | 4 | 8 => usize::from(wire.claimed),
            other => return Err(D::Error::custom(noted(format!("element size {other}")))),
        };
        if wire.fd == u32::MAX {
            return if byte_len == 0 {
                SharedArrayBuffer::try_new(0).map_err(|e| D::Error::custom(noted(e)))
            } else {
                Err(D::Error::custom(noted(
                    "a non-empty buffer without its memory",
                )))
            };
        }
        let fd = fds::take(wire.fd)
            .ok_or_else(|| D::Error::custom(noted("a SharedArrayBuffer without its descriptor")))?;
        let mapping =
            Mapping::open(fd, byte_len.div_ceil(8)).map_err(|e| D::Error::custom(noted(e)))?;
        Ok(SharedArrayBuffer::from_storage(
            Words::Mapped(mapping),
            byte_len,
            claimed,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use worker_threads_process::codec::{decode, encode};
    use worker_threads_process::fds;

    use crate::SharedArrayBuffer;

    #[test]
    fn a_cross_process_buffer_round_trips_as_the_same_memory() {
        let sab = SharedArrayBuffer::new_cross_process(64);
        sab.as_i32()[3].store(41, Ordering::SeqCst);
        let (body, descriptors) = fds::collect(|| encode(&sab));
        let body = body.unwrap();
        assert_eq!(descriptors.len(), 1);
        let other: SharedArrayBuffer = fds::provide(descriptors, || decode(&body)).unwrap();
        assert!(!other.ptr_eq(&sab), "a second mapping");
        assert_eq!(other.byte_len(), 64);
        assert_eq!(other.element_size(), Some(4));
        other.as_i32()[3].fetch_add(1, Ordering::SeqCst);
        assert_eq!(sab.as_i32()[3].load(Ordering::SeqCst), 42);
    }

    #[test]
    fn a_heap_buffer_or_a_buffer_outside_a_frame_does_not_serialize() {
        let heap = SharedArrayBuffer::new(8);
        let (result, _) = fds::collect(|| encode(&heap));
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("new_cross_process")
        );
        let shared = SharedArrayBuffer::new_cross_process(8);
        assert!(encode(&shared).is_err(), "outside a frame");
        let empty = SharedArrayBuffer::new(0);
        let (body, fds_out) = fds::collect(|| encode(&empty));
        let back: SharedArrayBuffer = fds::provide(fds_out, || decode(&body.unwrap())).unwrap();
        assert_eq!(back.byte_len(), 0);
    }

    #[test]
    fn a_received_memfd_that_could_shrink_is_refused() {
        // An unsealed memfd, as a hostile peer might send.
        let fd = rustix::fs::memfd_create("hostile", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 64).unwrap();
        let (body, _) = fds::collect(|| {
            let index = fds::push(fd.try_clone().unwrap()).unwrap();
            encode(&super::Wire {
                fd: index,
                byte_len: 64,
                claimed: 0,
            })
        });
        let error = fds::provide(vec![fd], || decode::<SharedArrayBuffer>(&body.unwrap()))
            .err()
            .unwrap();
        assert!(error.to_string().contains("sealed"), "{error}");
    }
}
