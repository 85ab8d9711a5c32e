//! The atomic types a view can have: a sealed trait over std's atomics.

use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering,
};

mod sealed {
    pub trait Sealed {}
}

/// An atomic integer type that a [`SharedArrayBuffer`](crate::SharedArrayBuffer) can be
/// viewed as: `AtomicU8`, `AtomicI8`, `AtomicU16`, `AtomicI16`, `AtomicU32`, `AtomicI32`,
/// `AtomicU64`, `AtomicI64` (Node's `Uint8Array` ... `BigInt64Array`).
///
/// Sealed: every implementor has the size and alignment of its integer, and every bit
/// pattern is a valid value, which the views rely on.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU16, Ordering};
/// use worker_threads_shared::SharedArrayBuffer;
///
/// // Every std atomic integer is an `Element`: `view` picks the width.
/// let sab = SharedArrayBuffer::new(8);
/// let halves: &[AtomicU16] = sab.view(0..8);
/// halves[1].store(0xBEEF, Ordering::Relaxed);
/// assert_eq!(halves.len(), 4);
/// assert_eq!(sab.element_size(), Some(2));
/// ```
pub trait Element: sealed::Sealed + Send + Sync + 'static {
    /// The element's size in bytes.
    const SIZE: usize;

    /// The bits of a relaxed load, zero-extended.
    #[doc(hidden)]
    fn load_bits(&self) -> u64;

    /// A relaxed store of the low `SIZE` bytes of `bits`.
    #[doc(hidden)]
    fn store_bits(&self, bits: u64);

    /// A compare-exchange of the low `SIZE` bytes; `Err` holds the current bits.
    #[doc(hidden)]
    fn compare_exchange_bits(&self, current: u64, new: u64) -> Result<u64, u64>;
}

macro_rules! element {
    ($($atomic:ty => $int:ty, $uint:ty;)+) => {$(
        impl sealed::Sealed for $atomic {}

        impl Element for $atomic {
            const SIZE: usize = std::mem::size_of::<$int>();

            fn load_bits(&self) -> u64 {
                u64::from(self.load(Ordering::Relaxed) as $uint)
            }

            fn store_bits(&self, bits: u64) {
                self.store(bits as $uint as $int, Ordering::Relaxed);
            }

            fn compare_exchange_bits(&self, current: u64, new: u64) -> Result<u64, u64> {
                self.compare_exchange(
                    current as $uint as $int,
                    new as $uint as $int,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .map(|v| u64::from(v as $uint))
                .map_err(|v| u64::from(v as $uint))
            }
        }
    )+};
}

element! {
    AtomicU8 => u8, u8;
    AtomicI8 => i8, u8;
    AtomicU16 => u16, u16;
    AtomicI16 => i16, u16;
    AtomicU32 => u32, u32;
    AtomicI32 => i32, u32;
    AtomicU64 => u64, u64;
    AtomicI64 => i64, u64;
}
