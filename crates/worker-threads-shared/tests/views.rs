//! Views over a SharedArrayBuffer: whole and sub-range views share memory; misaligned,
//! odd-length, out-of-bounds and mixed-size views give the error; bulk copies.

use std::sync::atomic::{AtomicI16, AtomicI32, AtomicI64, AtomicU8, AtomicU32, Ordering};

use worker_threads_shared::{SharedArrayBuffer, ViewError};

#[test]
fn a_new_buffer_is_zeroed_and_its_clones_share_it() {
    let sab = SharedArrayBuffer::new(64);
    assert_eq!(sab.byte_len(), 64);
    assert!(sab.snapshot().iter().all(|&b| b == 0));
    let other = sab.clone();
    assert!(sab.ptr_eq(&other));
    assert!(!sab.ptr_eq(&SharedArrayBuffer::new(64)));
    other.as_i64()[7].store(-1, Ordering::SeqCst);
    assert_eq!(sab.as_i64()[7].load(Ordering::SeqCst), -1);
}

#[test]
fn sub_range_views_see_the_same_cells() {
    let sab = SharedArrayBuffer::new(32);
    let all = sab.as_i32();
    let middle = sab.view::<AtomicI32>(8..24);
    assert_eq!(middle.len(), 4);
    middle[0].store(11, Ordering::Relaxed);
    middle[3].store(44, Ordering::Relaxed);
    assert_eq!(all[2].load(Ordering::Relaxed), 11);
    assert_eq!(all[5].load(Ordering::Relaxed), 44);
    // Same size, other signedness: the same bits.
    let unsigned = sab.view::<AtomicU32>(20..24);
    assert_eq!(unsigned[0].load(Ordering::Relaxed), 44);
    all[5].store(-1, Ordering::Relaxed);
    assert_eq!(unsigned[0].load(Ordering::Relaxed), u32::MAX);
    assert_eq!(sab.element_size(), Some(4));
    assert!(sab.view::<AtomicI32>(32..32).is_empty());
}

#[test]
fn misaligned_odd_length_and_out_of_bounds_views_are_errors() {
    let sab = SharedArrayBuffer::new(10);
    assert_eq!(
        sab.try_view::<AtomicI32>(2..6).unwrap_err(),
        ViewError::Misaligned { offset: 2, size: 4 }
    );
    assert_eq!(
        sab.try_view::<AtomicI32>(0..6).unwrap_err(),
        ViewError::Length { len: 6, size: 4 }
    );
    assert_eq!(
        sab.try_as_i32().unwrap_err(),
        ViewError::Length { len: 10, size: 4 }
    );
    assert_eq!(
        sab.try_view::<AtomicI32>(8..12).unwrap_err(),
        ViewError::OutOfBounds {
            start: 8,
            end: 12,
            byte_len: 10
        }
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = sab.try_view::<AtomicI32>(8..4);
    assert!(matches!(reversed, Err(ViewError::OutOfBounds { .. })));
    // None of the refused views fixed the element size.
    assert_eq!(sab.element_size(), None);
    assert_eq!(sab.try_as_i16().unwrap().len(), 5);
}

#[test]
fn a_view_of_another_size_is_refused() {
    let sab = SharedArrayBuffer::new(16);
    let _ints = sab.as_i32();
    let err = sab.try_view::<AtomicU8>(0..4).unwrap_err();
    assert_eq!(
        err,
        ViewError::MixedSizes {
            claimed: 4,
            requested: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "the buffer is viewed as 4-byte elements; a 1-byte view would mix sizes"
    );
    assert!(sab.try_as_i64().is_err());
    assert!(sab.try_view::<AtomicI16>(0..2).is_err());
}

#[test]
#[should_panic(expected = "a 8-byte view would mix sizes")]
fn the_panicking_view_names_the_problem() {
    let sab = SharedArrayBuffer::new(16);
    let _bytes = sab.as_u8();
    let _ = sab.as_i64();
}

#[test]
fn snapshot_and_copy_from_before_any_view_work_on_bytes() {
    let sab = SharedArrayBuffer::new(6);
    sab.copy_from(1, &[1, 2, 3]).unwrap();
    assert_eq!(sab.snapshot(), [0, 1, 2, 3, 0, 0]);
    assert_eq!(sab.element_size(), None, "bulk copies claim nothing");
    assert_eq!(
        sab.copy_from(4, &[9, 9, 9]).unwrap_err(),
        ViewError::OutOfBounds {
            start: 4,
            end: 7,
            byte_len: 6
        }
    );
    assert_eq!(
        sab.snapshot(),
        [0, 1, 2, 3, 0, 0],
        "a refused copy writes nothing"
    );
    assert!(sab.copy_from(usize::MAX, &[1]).is_err());
}

#[test]
fn copy_from_keeps_the_other_bytes_of_a_partly_covered_element() {
    let sab = SharedArrayBuffer::new(10);
    let ints = sab.view::<AtomicI32>(0..8);
    ints[0].store(i32::from_ne_bytes([1, 2, 3, 4]), Ordering::Relaxed);
    ints[1].store(i32::from_ne_bytes([5, 6, 7, 8]), Ordering::Relaxed);
    // Bytes 3..9: the end of element 0, all of element 1, and a tail byte no i32 covers.
    sab.copy_from(3, &[30, 40, 50, 60, 70, 80]).unwrap();
    assert_eq!(sab.snapshot(), [1, 2, 3, 30, 40, 50, 60, 70, 80, 0]);
    assert_eq!(
        ints[0].load(Ordering::Relaxed),
        i32::from_ne_bytes([1, 2, 3, 30])
    );
}

#[test]
fn an_empty_buffer_has_empty_views() {
    let sab = SharedArrayBuffer::new(0);
    assert!(sab.as_i64().is_empty());
    assert!(sab.snapshot().is_empty());
    sab.copy_from(0, &[]).unwrap();
    assert!(sab.view::<AtomicI64>(0..0).is_empty());
}

#[test]
fn a_buffer_too_large_for_the_machine_is_an_error_not_an_abort() {
    // A pebibyte (more than a 47-bit address space holds, whatever the overcommit policy;
    // `1 << 40` aborted the process before) and a size no layout holds.
    for byte_len in [1usize << 50, usize::MAX] {
        let err = SharedArrayBuffer::try_new(byte_len).unwrap_err();
        assert_eq!(err.byte_len(), byte_len);
        assert!(err.to_string().contains(&byte_len.to_string()));
    }
    // Zero-length and odd lengths still work, zeroed.
    assert_eq!(SharedArrayBuffer::try_new(0).unwrap().byte_len(), 0);
    let odd = SharedArrayBuffer::try_new(13).unwrap();
    assert_eq!(odd.snapshot(), vec![0u8; 13]);
}

#[test]
fn a_large_buffer_is_zeroed() {
    // 64 MiB from the allocator's zeroed path: every byte reads 0.
    let sab = SharedArrayBuffer::new(64 << 20);
    let words = sab.as_u64();
    assert!(words.iter().all(|w| w.load(Ordering::Relaxed) == 0));
}
