//! White-box tests of the framing: records, caps, truncation, descriptors.

use std::os::fd::AsFd;

use super::{Channel as Ipc, HEADER, RECORD, channel_pair as pair};
use crate::error::IpcError;

fn ends(max: usize) -> (Ipc, Ipc) {
    let (a, b) = pair().unwrap();
    (Ipc::new(a, max), Ipc::new(b, max))
}

#[test]
fn a_frame_larger_than_a_record_arrives_whole() {
    let (a, b) = ends(8 << 20);
    let body: Vec<u8> = (0..(1 << 20) + 17).map(|i| (i * 7) as u8).collect();
    let sender = std::thread::spawn(move || a.send(9, &body, &[]).map(|()| body));
    let mut buf = Vec::new();
    let frame = b.recv(&mut buf).unwrap().unwrap();
    let body = sender.join().unwrap().unwrap();
    assert_eq!(frame.tag, 9);
    assert_eq!(frame.body, body);
}

#[test]
fn frame_sizes_around_the_record_boundary() {
    let (a, b) = ends(1 << 20);
    let mut buf = Vec::new();
    for len in [
        0,
        1,
        RECORD - HEADER - 2,
        RECORD - HEADER - 1,
        RECORD - HEADER,
        RECORD,
    ] {
        let body = vec![len as u8; len];
        let (tx, rx) = (&a, &b);
        std::thread::scope(|s| {
            s.spawn(|| tx.send(1, &body, &[]).unwrap());
            let frame = rx.recv(&mut buf).unwrap().unwrap();
            assert_eq!(frame.body.len(), len, "len {len}");
            assert_eq!(frame.body, body);
        });
    }
}

#[test]
fn an_oversize_frame_is_refused_on_both_sides() {
    let (a, _) = ends(100);
    assert!(matches!(
        a.send(0, &[0; 100], &[]),
        Err(IpcError::TooLarge { len: 101, max: 100 })
    ));
    // A peer with a larger cap sends it anyway: the receiver refuses it from the header.
    let (big, small) = pair().unwrap();
    let (big, small) = (Ipc::new(big, 1 << 20), Ipc::new(small, 100));
    big.send(0, &[0; 500], &[]).unwrap();
    assert!(matches!(
        small.recv(&mut Vec::new()),
        Err(IpcError::TooLarge { len: 501, max: 100 })
    ));
}

#[test]
fn garbage_records_are_malformed_not_panics() {
    let (a, b) = pair().unwrap();
    let b = Ipc::new(b, 1 << 20);
    let mut buf = Vec::new();
    for garbage in [&[1u8][..], &[5, 0, 0, 0, 1], &[0, 0, 0, 0, 1, 2]] {
        rustix::net::send(&a, garbage, rustix::net::SendFlags::empty()).unwrap();
        assert!(
            matches!(b.recv(&mut buf), Err(IpcError::Malformed(_))),
            "{garbage:?}"
        );
    }
    // A record over 64 KiB is truncated by the kernel: refused.
    rustix::net::send(&a, &vec![0u8; RECORD + 1], rustix::net::SendFlags::empty()).unwrap();
    assert!(matches!(b.recv(&mut buf), Err(IpcError::Malformed(_))));
}

#[test]
fn descriptors_travel_and_arrive_close_on_exec() {
    let (a, b) = ends(1 << 20);
    let (x, _y) = pair().unwrap();
    a.send(3, b"fd", &[x.as_fd()]).unwrap();
    let frame = b.recv(&mut Vec::new()).unwrap().unwrap();
    assert_eq!(frame.fds.len(), 1);
    let flags = rustix::io::fcntl_getfd(&frame.fds[0]).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
}

#[test]
fn end_of_file_is_none() {
    let (a, b) = ends(1 << 20);
    drop(a);
    assert!(b.recv(&mut Vec::new()).unwrap().is_none());
    assert!(matches!(b.send(0, b"x", &[]), Err(IpcError::Closed)));
}

#[test]
fn try_send_skips_a_peer_that_is_not_reading() {
    let (a, _b) = ends(1 << 20);
    let body = [7u8; 1000];
    // Fill the peer's receive buffer: a bounded number of frames, then `Full`.
    let mut sent = 0;
    let error = loop {
        match a.try_send(1, &body, &[]) {
            Ok(()) => sent += 1,
            Err(error) => break error,
        }
        assert!(sent < 1_000_000, "the buffer never filled");
    };
    assert!(matches!(error, IpcError::Full), "{error:?}");
    assert!(sent > 0);
    // A frame over one record is not for try_send.
    let big = vec![0u8; RECORD];
    assert!(matches!(
        a.try_send(1, &big, &[]),
        Err(IpcError::TooLarge { .. })
    ));
}

#[test]
fn a_send_to_a_peer_that_does_not_read_times_out() {
    let (a, b) = pair().unwrap();
    let a = Ipc::new(a, 1 << 20)
        .with_send_timeout(std::time::Duration::from_millis(20))
        .unwrap();
    let _b = Ipc::new(b, 1 << 20);
    let body = [7u8; 1000];
    let error = loop {
        if let Err(error) = a.send(1, &body, &[]) {
            break error;
        }
    };
    assert!(matches!(error, IpcError::SendTimedOut), "{error:?}");
}

/// Property tests of the trust boundary: whatever a peer writes, the receiver returns a
/// frame or an error (never panics), allocates no more than the cap for a body, and a
/// valid frame arrives as it was sent.
mod properties {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use rustix::net::SendFlags;

    use super::super::{Channel as Ipc, HEADER, RECORD, channel_pair as pair};
    use crate::codec;
    use crate::error::IpcError;

    const CAP: usize = 4 * 1024;

    /// A record a hostile peer might send: random bytes, or a plausible header (a length
    /// around the cap) followed by random bytes.
    fn record() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            vec(any::<u8>(), 0..300),
            (0u32..(2 * CAP as u32), vec(any::<u8>(), 0..300)).prop_map(|(len, rest)| {
                let mut record = len.to_le_bytes().to_vec();
                record.extend(rest);
                record
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_records_never_panic_nor_allocate_past_the_cap(
            records in vec(record(), 1..6)
        ) {
            let (raw, end) = pair().unwrap();
            let receiver = Ipc::new(end, CAP);
            for record in &records {
                rustix::net::send(&raw, record, SendFlags::NOSIGNAL).unwrap();
            }
            drop(raw); // end of file after the records
            let mut buf = Vec::new();
            // Until end of file or an error (where the primary stops reading that peer).
            while let Ok(Some(frame)) = receiver.recv(&mut buf) {
                prop_assert!(frame.body.len() < CAP);
                prop_assert!(frame.body.capacity() < CAP, "body capacity {}", frame.body.capacity());
                prop_assert!(buf.len() <= RECORD);
            }
        }

    }

    proptest! {
        // Frames of up to three records: fewer cases, each moves up to 192 KiB.
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn a_valid_frame_round_trips(tag in any::<u8>(), body in vec(any::<u8>(), 0..(3 * RECORD))) {
            let (a, b) = pair().unwrap();
            let (sender, receiver) = (Ipc::new(a, 1 << 20), Ipc::new(b, 1 << 20));
            let frame = std::thread::scope(|scope| {
                scope.spawn(|| sender.send(tag, &body, &[]).unwrap());
                receiver.recv(&mut Vec::new()).unwrap().unwrap()
            });
            prop_assert_eq!(frame.tag, tag);
            prop_assert_eq!(frame.body, body);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bodies_never_panic_the_codec(body in vec(any::<u8>(), 0..200)) {
            // A user message type: a value or a typed error.
            if let Err(error) = codec::decode::<(String, Vec<u64>, Option<bool>)>(&body) {
                prop_assert!(matches!(error, IpcError::Decode(_)));
            }
        }
    }

    #[test]
    fn the_header_constant_is_the_length_prefix() {
        assert_eq!(HEADER, std::mem::size_of::<u32>());
    }
}

#[test]
fn spin_until_readable_sees_a_waiting_frame_and_end_of_file_and_gives_up_on_neither() {
    use std::time::Duration;
    let (a, b) = ends(1 << 20);
    // Nothing sent: it gives up (after the shortest watch) and says so.
    assert!(!b.spin_until_readable(Duration::ZERO));
    a.send(3, b"ready", &[]).unwrap();
    assert!(b.spin_until_readable(Duration::ZERO));
    // Watching takes nothing: the frame is still there, whole.
    let frame = b.recv(&mut Vec::new()).unwrap().unwrap();
    assert_eq!((frame.tag, frame.body.as_slice()), (3, &b"ready"[..]));
    assert!(!b.spin_until_readable(Duration::ZERO));
    // The peer's end of file is readable too (`recv` then returns `None`).
    drop(a);
    assert!(b.spin_until_readable(Duration::from_secs(60)));
    assert!(b.recv(&mut Vec::new()).unwrap().is_none());
}

#[test]
fn a_bounded_receive_times_out_then_gets_the_exact_frame_then_sees_the_hang_up() {
    let (a, b) = ends(1 << 20);
    let mut buf = Vec::new();
    let far = std::time::Duration::from_secs(60);
    assert!(matches!(
        b.recv_timeout(&mut buf, std::time::Duration::ZERO),
        Err(IpcError::RecvTimedOut)
    ));
    assert!(matches!(
        b.recv_deadline(&mut buf, std::time::Instant::now()),
        Err(IpcError::RecvTimedOut)
    ));
    a.send(3, b"exact", &[]).unwrap();
    let frame = b.recv_timeout(&mut buf, far).unwrap().unwrap();
    assert_eq!((frame.tag, frame.body.as_slice()), (3, &b"exact"[..]));
    drop(a);
    assert!(
        b.recv_timeout(&mut buf, far).unwrap().is_none(),
        "the peer hung up"
    );
}
