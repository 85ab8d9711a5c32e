//! The ring's protocol under loom: a writer and a reader that each sleep when they must
//! (the reader on an empty ring, the writer on a full one), woken only by the doorbells
//! the protocol rings. A lost wake-up leaves a thread asleep for good, which loom reports;
//! a record read before its commit, or read twice, fails the asserts.
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-process
//! --lib --release loom_model` alone; `cargo xtask loom` runs every model, as `.ci/run`
//! does.

use loom::sync::atomic::AtomicU64;
use loom::sync::{Arc, Condvar, Mutex};

use super::{Reader, Record, Ring, Writer, Wrote};

/// An eventfd: a count that a ring adds to and a sleeper waits to be non-zero, then takes.
#[derive(Default)]
struct Bell {
    count: Mutex<u64>,
    rang: Condvar,
}

impl Bell {
    fn ring(&self) {
        *self.count.lock().unwrap() += 1;
        self.rang.notify_one();
    }

    fn sleep(&self) {
        let mut count = self.count.lock().unwrap();
        while *count == 0 {
            count = self.rang.wait(count).unwrap();
        }
        *count = 0;
    }
}

/// A ring of 32 bytes: two records of one word's body fit, a third waits for room, and
/// the records wrap (with padding when one does not fit before the end).
fn words() -> Arc<Vec<AtomicU64>> {
    Arc::new(
        (0..Ring::<AtomicU64>::words_for(32))
            .map(|_| AtomicU64::new(0))
            .collect(),
    )
}

/// The bodies the writer sends: sizes that fill a word, leave one short, and are empty.
const BODIES: [&[u8]; 3] = [b"12345678", b"abc", b""];

fn model(bodies: &'static [&'static [u8]]) {
    loom::model(move || {
        let words = words();
        let data_bell = Arc::new(Bell::default());
        let room_bell = Arc::new(Bell::default());
        let writer = {
            let (words, data_bell, room_bell) = (
                Arc::clone(&words),
                Arc::clone(&data_bell),
                Arc::clone(&room_bell),
            );
            loom::thread::spawn(move || {
                let ring = Ring::new(&words).unwrap();
                let mut writer = Writer::default();
                for (i, body) in bodies.iter().enumerate() {
                    loop {
                        match writer.write(&ring, i as u8, body, i % 2 == 1).unwrap() {
                            Wrote::Committed(wanted) => {
                                if wanted {
                                    data_bell.ring();
                                }
                                break;
                            }
                            Wrote::Full => {
                                if !writer.arm_room(&ring, body.len()).unwrap() {
                                    room_bell.sleep();
                                }
                            }
                        }
                    }
                }
            })
        };
        let ring = Ring::new(&words).unwrap();
        let mut reader = Reader::default();
        let mut got = 0;
        while got < bodies.len() {
            let mut out = Vec::new();
            let (record, ring_writer) = reader.read(&ring, &mut out, usize::MAX).unwrap();
            if ring_writer {
                room_bell.ring();
            }
            match record {
                Some(record) => {
                    assert_eq!(
                        record,
                        Record::Data {
                            tag: got as u8,
                            more: got % 2 == 1
                        }
                    );
                    assert_eq!(out, bodies[got], "record {got}");
                    got += 1;
                }
                None => {
                    if !ring.arm_data(reader.head()) {
                        data_bell.sleep();
                    }
                }
            }
        }
        writer.join().unwrap();
    });
}

#[test]
fn a_sleeping_reader_is_woken_by_each_commit_and_reads_each_record_once_in_order() {
    model(&BODIES[..2]);
}

#[test]
fn a_writer_waiting_for_room_is_woken_by_the_read_that_makes_it() {
    model(&BODIES);
}
