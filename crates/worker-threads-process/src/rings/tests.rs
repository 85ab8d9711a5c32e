//! Channels with rings, both ends in this process: order across the rings and the socket,
//! frames larger than a ring, room, hang-ups, and the reader thread's wait.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use super::Rings;
use crate::channel::{Channel, Readable, channel_pair};
use crate::error::IpcError;

/// Two ends with rings of `capacity` bytes each way.
fn ends(capacity: usize, max_frame: usize) -> (Channel, Channel) {
    let (a, b) = channel_pair().unwrap();
    let ours = Rings::create(capacity).unwrap();
    let theirs = Rings::adopt(ours.fds().unwrap()).unwrap();
    (
        Channel::new(a, max_frame).with_rings(ours),
        Channel::new(b, max_frame).with_rings(theirs),
    )
}

fn body_of(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

#[test]
fn frames_of_every_size_and_with_descriptors_arrive_whole_and_in_order() {
    let (a, b) = ends(64 << 10, 8 << 20);
    // Sizes under a record, at its edge, several records (split), and with a descriptor
    // (by the socket, announced in the ring).
    let sizes = [
        0,
        1,
        31,
        32 << 10,
        (32 << 10) - 8,
        (32 << 10) - 7,
        200 << 10,
        3 << 20,
    ];
    let frames = 300;
    let file = std::fs::File::open("/dev/null").unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..frames {
                let body = body_of(i, sizes[i % sizes.len()]);
                let fds = if i % 7 == 0 {
                    vec![file.as_fd()]
                } else {
                    vec![]
                };
                a.send((i % 250) as u8, &body, &fds).unwrap();
            }
        });
        let mut buf = Vec::new();
        for i in 0..frames {
            let frame = b.recv(&mut buf).unwrap().expect("a frame");
            assert_eq!(frame.tag, (i % 250) as u8, "frame {i}");
            assert_eq!(frame.body, body_of(i, sizes[i % sizes.len()]), "frame {i}");
            assert_eq!(frame.fds.len(), usize::from(i % 7 == 0), "frame {i}");
        }
    });
    assert!(matches!(b.try_recv(&mut Vec::new()), Err(IpcError::Empty)));
}

#[test]
fn a_full_ring_refuses_a_try_send_and_takes_a_send_once_the_reader_reads() {
    let (a, b) = ends(4096, 1 << 20);
    let mut sent = 0;
    loop {
        match a.try_send(1, &body_of(sent, 1000), &[]) {
            Ok(()) => sent += 1,
            Err(IpcError::Full) => break,
            Err(error) => panic!("{error}"),
        }
    }
    assert_eq!(sent, 4, "a 4 KiB ring holds four 1000-byte records");
    std::thread::scope(|s| {
        // Blocks for room until the reader below takes records.
        let sender = s.spawn(|| a.send(2, &body_of(sent, 1000), &[]));
        let mut buf = Vec::new();
        for i in 0..sent {
            assert_eq!(b.recv(&mut buf).unwrap().unwrap().body, body_of(i, 1000));
        }
        let last = b.recv(&mut buf).unwrap().unwrap();
        assert_eq!((last.tag, last.body), (2, body_of(sent, 1000)));
        sender.join().unwrap().unwrap();
    });
}

#[test]
fn a_send_that_waits_for_room_past_the_send_timeout_fails() {
    let (a, _b) = ends(4096, 1 << 20);
    let a = a.with_send_timeout(Duration::from_millis(20)).unwrap();
    while a.try_send(1, &[0; 1000], &[]).is_ok() {}
    assert!(matches!(
        a.send(1, &[0; 1000], &[]),
        Err(IpcError::SendTimedOut)
    ));
}

#[test]
fn a_hang_up_wakes_a_sleeping_reader_after_what_was_committed() {
    let (a, b) = ends(4096, 1 << 20);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut buf = Vec::new();
            let mut got = Vec::new();
            while let Some(frame) = b.recv(&mut buf).unwrap() {
                got.push(frame.body);
            }
            got
        });
        a.send(1, b"one", &[]).unwrap();
        a.send(1, b"two", &[]).unwrap();
        drop(a);
        assert_eq!(reader.join().unwrap(), [b"one".to_vec(), b"two".to_vec()]);
    });
    // The end is kept: a send fails, a receive reads the end again.
    assert!(matches!(b.send(1, b"x", &[]), Err(IpcError::Closed)));
    assert!(b.recv(&mut Vec::new()).unwrap().is_none());
}

#[test]
fn a_writer_waiting_for_room_is_woken_by_a_hang_up() {
    let (a, b) = ends(4096, 1 << 20);
    while a.try_send(1, &[0; 1000], &[]).is_ok() {}
    std::thread::scope(|s| {
        let sender = s.spawn(|| a.send(1, &[0; 1000], &[]));
        drop(b);
        assert!(matches!(sender.join().unwrap(), Err(IpcError::Closed)));
    });
}

#[test]
fn the_readers_wait_wakes_for_a_record_and_not_while_paused() {
    let (a, b) = ends(4096, 1 << 20);
    let b = Arc::new(b);
    let readable = Readable::new(Arc::clone(&b));
    a.send(1, b"wake", &[]).unwrap();
    readable.wait().unwrap();
    assert_eq!(b.try_recv(&mut Vec::new()).unwrap().unwrap().body, b"wake");
    // While paused the receives read; the bell the sends ring is dropped on resume, so
    // the wait sleeps until the next record.
    readable.pause();
    a.send(1, b"taken by a receive", &[]).unwrap();
    assert!(b.try_recv(&mut Vec::new()).unwrap().is_some());
    readable.resume();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| readable.wait());
        a.send(1, b"next", &[]).unwrap();
        waiter.join().unwrap().unwrap();
    });
    assert_eq!(b.try_recv(&mut Vec::new()).unwrap().unwrap().body, b"next");
    // A record that came while paused and was not taken wakes the wait on resume.
    readable.pause();
    a.send(1, b"left", &[]).unwrap();
    readable.resume();
    readable.wait().unwrap();
    assert_eq!(b.try_recv(&mut Vec::new()).unwrap().unwrap().body, b"left");
}

#[test]
fn a_frame_over_the_receivers_cap_is_refused_before_it_is_copied() {
    let (a, b) = channel_pair().unwrap();
    let ours = Rings::create(64 << 10).unwrap();
    let theirs = Rings::adopt(ours.fds().unwrap()).unwrap();
    let (a, b) = (
        Channel::new(a, 1 << 20).with_rings(ours),
        Channel::new(b, 50).with_rings(theirs),
    );
    a.send(1, &[0; 100], &[]).unwrap();
    assert!(matches!(
        b.recv(&mut Vec::new()),
        Err(IpcError::TooLarge { .. })
    ));
}

#[test]
fn rings_adopt_only_what_create_gives() {
    let rings = Rings::create(4096).unwrap();
    let mut fds = rings.fds().unwrap();
    fds.pop();
    assert!(Rings::adopt(fds).is_err(), "four descriptors");
    assert!(Rings::create(5000).is_err(), "not a power of two");
    assert!(Rings::create(2048).is_err(), "under 4 KiB");
    // A memfd of another size (a plain file is not sealed either).
    let mut fds = rings.fds().unwrap();
    fds[0] = std::fs::File::open("/dev/null").unwrap().into();
    assert!(Rings::adopt(fds).is_err());
}
