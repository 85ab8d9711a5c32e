//! The ring's protocol in one process: records in order across the wrap, room, and a
//! reader that any ring contents cannot make panic, read out of bounds or loop.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use proptest::prelude::*;

use super::{
    HEAD, HEADER_WORDS, Reader, Record, Ring, TAIL, WANTS_DATA, WANTS_ROOM, Writer, Wrote, words,
};
use crate::error::IpcError;

const CAP: usize = 4096;

fn read_one(reader: &mut Reader, ring: &Ring<'_>) -> Option<(Record, Vec<u8>)> {
    let mut out = Vec::new();
    let (record, _) = reader
        .read(ring, &mut out, usize::MAX)
        .expect("a good record");
    record.map(|record| (record, out))
}

#[test]
fn records_come_out_in_order_and_whole_across_many_wraps() {
    let words = words::<AtomicU64>(CAP);
    let ring = Ring::new(&words).unwrap();
    let (mut writer, mut reader) = (Writer::default(), Reader::default());
    let mut sent = 0usize;
    let mut got = 0usize;
    // Sizes that do and do not divide the ring, up to the largest record.
    let sizes = [0, 1, 7, 8, 9, 100, 1000, ring.max_chunk()];
    while got < 2_000 {
        let len = sizes[sent % sizes.len()];
        let body: Vec<u8> = (0..len).map(|i| (i + sent) as u8).collect();
        match writer
            .write(&ring, (sent % 251) as u8, &body, sent % 3 == 0)
            .unwrap()
        {
            Wrote::Committed(_) => sent += 1,
            Wrote::Full => {
                let (record, out) = read_one(&mut reader, &ring).expect("a full ring has a record");
                let len = sizes[got % sizes.len()];
                let expected: Vec<u8> = (0..len).map(|i| (i + got) as u8).collect();
                assert_eq!(
                    record,
                    Record::Data {
                        tag: (got % 251) as u8,
                        more: got % 3 == 0
                    }
                );
                assert_eq!(out, expected, "record {got}");
                got += 1;
            }
        }
    }
    assert!(
        writer.tail > 10 * CAP as u64,
        "the test wrapped the ring many times"
    );
}

#[test]
fn a_socket_record_carries_its_tag_and_length() {
    let words = words::<AtomicU64>(CAP);
    let ring = Ring::new(&words).unwrap();
    let (mut writer, mut reader) = (Writer::default(), Reader::default());
    assert_eq!(
        writer.write_socket(&ring, 9, 123_456).unwrap(),
        Wrote::Committed(false)
    );
    assert_eq!(
        read_one(&mut reader, &ring),
        Some((
            Record::Socket {
                tag: 9,
                len: 123_456
            },
            Vec::new()
        ))
    );
    assert_eq!(read_one(&mut reader, &ring), None);
}

#[test]
fn the_doorbells_are_asked_for_once_and_answered_once() {
    let words = words::<AtomicU64>(CAP);
    let ring = Ring::new(&words).unwrap();
    let (mut writer, mut reader) = (Writer::default(), Reader::default());
    // A reader about to sleep on an empty ring: the next commit rings, the one after not.
    assert!(!ring.arm_data(reader.head()));
    assert_eq!(
        writer.write(&ring, 1, b"a", false).unwrap(),
        Wrote::Committed(true)
    );
    assert_eq!(
        writer.write(&ring, 1, b"b", false).unwrap(),
        Wrote::Committed(false)
    );
    // Armed with a record waiting: it must not sleep.
    assert!(ring.arm_data(reader.head()));
    ring.disarm_data();
    // Fill the ring; a writer about to sleep for room is rung by the next read.
    while let Wrote::Committed(_) = writer.write(&ring, 1, &[0; 1000], false).unwrap() {}
    assert!(!writer.arm_room(&ring, 1000).unwrap());
    let mut out = Vec::new();
    assert!(reader.read(&ring, &mut out, usize::MAX).unwrap().1);
    assert!(!reader.read(&ring, &mut out, usize::MAX).unwrap().1);
}

#[test]
fn a_record_larger_than_the_room_left_is_refused_before_it_is_copied() {
    let words = words::<AtomicU64>(CAP);
    let ring = Ring::new(&words).unwrap();
    let (mut writer, mut reader) = (Writer::default(), Reader::default());
    writer.write(&ring, 1, &[7; 100], false).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        reader.read(&ring, &mut out, 99),
        Err(IpcError::TooLarge { len: 100, max: 99 })
    ));
    assert!(out.is_empty());
}

#[test]
fn a_peer_that_moves_an_index_out_of_range_is_an_error_on_both_sides() {
    let words = words::<AtomicU64>(CAP);
    let ring = Ring::new(&words).unwrap();
    let (mut writer, mut reader) = (Writer::default(), Reader::default());
    // A tail past the capacity: the reader refuses it.
    words[TAIL].store(CAP as u64 + 8, Relaxed);
    assert!(matches!(
        reader.read(&ring, &mut Vec::new(), usize::MAX),
        Err(IpcError::Malformed(_))
    ));
    // A head ahead of what was written: the writer refuses it.
    words[HEAD].store(64, Relaxed);
    assert!(matches!(
        writer.write(&ring, 1, b"x", false),
        Err(IpcError::Malformed(_))
    ));
}

#[test]
fn a_record_that_is_not_committed_is_not_read() {
    // The writer's words are there, its tail is not: a writer killed mid-record.
    let words = words::<AtomicU64>(CAP);
    let ring = Ring::new(&words).unwrap();
    let mut reader = Reader::default();
    words[HEADER_WORDS].store(super::header(16, 1, super::KIND_DATA, false), Relaxed);
    words[HEADER_WORDS + 1].store(u64::MAX, Relaxed);
    assert_eq!(read_one(&mut reader, &ring), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Whatever the peer wrote into the ring (its data, its tail, the flags), reading
    /// returns records that lie within the ring and the commit, or an error; it never
    /// panics, never loops, and never gives more bytes than asked.
    #[test]
    fn any_ring_contents_read_as_records_or_an_error(
        data in proptest::collection::vec(any::<u64>(), CAP / 8),
        // Headers of each kind, placed at chosen words, so that reads go past the first.
        placed in proptest::collection::vec((0..CAP / 8, 0u64..5, 0usize..CAP, any::<bool>()), 0..8),
        tail in prop_oneof![0u64..=CAP as u64 * 2, any::<u64>()],
        head_start in 0u64..4,
        room in prop_oneof![Just(usize::MAX), 0usize..CAP],
    ) {
        let words = words::<AtomicU64>(CAP);
        for (i, word) in data.iter().enumerate() {
            words[HEADER_WORDS + i].store(*word, Relaxed);
        }
        for (at, kind, len, more) in placed {
            words[HEADER_WORDS + at].store(super::header(len, 3, kind, more), Relaxed);
        }
        let start = head_start * 8;
        words[TAIL].store(tail, Relaxed);
        words[WANTS_DATA].store(u64::MAX, Relaxed);
        words[WANTS_ROOM].store(u64::MAX, Relaxed);
        let ring = Ring::new(&words).unwrap();
        let mut reader = Reader { head: start };
        let mut out = Vec::new();
        // Each record consumes at least a word: at most CAP / 8 of them fit a commit.
        for _ in 0..=CAP / 8 + 1 {
            let before = out.len();
            match reader.read(&ring, &mut out, room) {
                Ok((Some(Record::Data { .. }), _)) => {
                    prop_assert!(out.len() - before <= room.min(ring.max_chunk()));
                }
                Ok((Some(Record::Socket { .. }), _)) => prop_assert_eq!(out.len(), before),
                Ok((None, _)) | Err(_) => break,
            }
            prop_assert!(reader.head.wrapping_sub(start) <= tail.wrapping_sub(start));
        }
    }
}
