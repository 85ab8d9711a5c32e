//! Node's `SharedArrayBuffer`, typed views and `Atomics`, for Rust threads.
//!
//! # Shared memory
//!
//! Everything else in worker-threads is moved between threads. A [`SharedArrayBuffer`] is
//! shared on purpose: its clones are the same memory, seen through atomic views.
//!
//! ```
//! use std::sync::atomic::Ordering;
//! use worker_threads_shared::SharedArrayBuffer;
//!
//! let sab = SharedArrayBuffer::new(4 * 4);
//! let handles: Vec<_> = (0..4)
//!     .map(|i| {
//!         let sab = sab.clone();
//!         std::thread::spawn(move || sab.as_i32()[i].fetch_add(i as i32 + 1, Ordering::SeqCst))
//!     })
//!     .collect();
//! for handle in handles {
//!     handle.join().unwrap();
//! }
//! let values: Vec<i32> = sab.as_i32().iter().map(|v| v.load(Ordering::SeqCst)).collect();
//! assert_eq!(values, [1, 2, 3, 4]);
//! ```
//!
//! # One element size per buffer
//!
//! Node lets a `Uint8Array` and an `Int32Array` write the same bytes at once; Rust's
//! memory model makes racing atomic writes of different sizes undefined behaviour. So the
//! first view fixes the buffer's element size, and a view of another size is a
//! [`ViewError::MixedSizes`] (or a panic, for the non-`try_` forms).
//!
//! # Atomics.wait and Atomics.notify
//!
//! [`atomics::wait`] sleeps while a cell holds a value, [`atomics::notify`] wakes sleepers.
//! A short spin comes first, so a quick hand-off between two threads does not pay for a
//! kernel wake-up. See the [`atomics`] module for the protocol.

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod buffer;
mod element;
mod error;
#[cfg(all(feature = "process", target_os = "linux"))]
mod transfer;

pub mod atomics;

pub use crate::buffer::SharedArrayBuffer;
pub use crate::element::Element;
pub use crate::error::{AllocError, ViewError};
