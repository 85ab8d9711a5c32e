//! The trust boundary under libFuzzer: arbitrary records from a raw peer into a
//! `Channel` with a small cap, then every body through the postcard codec. Whatever the
//! input, `recv` returns a frame or an error (never panics) and never allocates a body
//! at or past the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustix::net::SendFlags;
use worker_threads_process::{Channel, channel_pair, codec};

const CAP: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok((raw, end)) = channel_pair() else {
        return;
    };
    let receiver = Channel::new(end, CAP);
    // The input is a list of records: [len: u8][bytes; len]...
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (record, tail) = tail.split_at(len);
        if rustix::net::send(&raw, record, SendFlags::NOSIGNAL | SendFlags::DONTWAIT).is_err() {
            break;
        }
        rest = tail;
    }
    drop(raw);
    let mut buf = Vec::new();
    while let Ok(Some(frame)) = receiver.recv(&mut buf) {
        assert!(frame.body.len() < CAP);
        assert!(frame.body.capacity() < CAP);
        let _ = codec::decode::<(String, Vec<u64>, Option<bool>)>(&frame.body);
    }
});
