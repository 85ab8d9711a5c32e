//! The errors of making a `SharedArrayBuffer` and a view over one.

/// The memory for a [`SharedArrayBuffer`](crate::SharedArrayBuffer) could not be had: the
/// error of [`try_new`](crate::SharedArrayBuffer::try_new).
///
/// # Examples
///
/// ```
/// use worker_threads_shared::SharedArrayBuffer;
///
/// // More than any machine has: refused with the length asked for, not a panic.
/// let refused = SharedArrayBuffer::try_new(usize::MAX).unwrap_err();
/// assert_eq!(refused.byte_len(), usize::MAX);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate a shared buffer of {byte_len} bytes")]
pub struct AllocError {
    pub(crate) byte_len: usize,
}

impl AllocError {
    /// The length that was asked for.
    pub fn byte_len(&self) -> usize {
        self.byte_len
    }
}

/// Why a view over a [`SharedArrayBuffer`](crate::SharedArrayBuffer) cannot be made: the
/// error of the `try_` views and of [`copy_from`](crate::SharedArrayBuffer::copy_from).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::AtomicI32;
/// use worker_threads_shared::{SharedArrayBuffer, ViewError};
///
/// let sab = SharedArrayBuffer::new(8);
/// assert!(matches!(sab.try_view::<AtomicI32>(4..12), Err(ViewError::OutOfBounds { end: 12, .. })));
/// assert!(matches!(sab.try_view::<AtomicI32>(2..6), Err(ViewError::Misaligned { offset: 2, size: 4 })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The byte range does not fit in the buffer.
    #[error("bytes {start}..{end} are outside a buffer of {byte_len} bytes")]
    OutOfBounds {
        /// First byte asked for.
        start: usize,
        /// One past the last byte asked for.
        end: usize,
        /// The buffer's length.
        byte_len: usize,
    },
    /// The range does not start on a multiple of the element size.
    #[error("byte offset {offset} is not a multiple of the element size {size}")]
    Misaligned {
        /// The range's first byte.
        offset: usize,
        /// The element size in bytes.
        size: usize,
    },
    /// The range's length is not a whole number of elements.
    #[error("{len} bytes are not a whole number of {size}-byte elements")]
    Length {
        /// The range's length in bytes.
        len: usize,
        /// The element size in bytes.
        size: usize,
    },
    /// The buffer is already viewed with elements of another size. Atomic writes that race
    /// with accesses of another size are undefined behaviour in Rust's memory model, so a
    /// buffer has one element size, fixed by its first view.
    #[error(
        "the buffer is viewed as {claimed}-byte elements; a {requested}-byte view would mix sizes"
    )]
    MixedSizes {
        /// The size the buffer's views use.
        claimed: usize,
        /// The size asked for.
        requested: usize,
    },
}
