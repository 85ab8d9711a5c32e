//! A loom model of the promises of a port whose peer is in another process, as a process
//! worker's port keeps them (`worker-threads-core`'s `src/process/direct.rs`): the real
//! `MessagePort` with a [`Sink`] that follows that file's protocol over a modelled socket.
//!
//! The sink: a post takes the sink's lock; if the way is `Direct` it tries the socket, and
//! when that fails (the peer is not reading) it turns the way to `Behind` and queues the
//! message into the port's own queue, still under the lock. The writer (the bridge thread)
//! receives from the port's queue, sends what it takes (waiting for room), and turns the
//! way back to `Direct` once the queue is empty; when the port is closed and drained it
//! **seals** the way under the lock, then sends the end of the port.
//!
//! Checked over every interleaving loom explores, with a close from another thread at any
//! point: what the posting thread posted and was told `Ok` reaches the peer exactly once,
//! in the order posted, and **before the end**; a refused post hands its message back.
//! Without the seal, a post written directly can follow the end; without the `Behind`
//! check, a direct post overtakes a queued one: both mutations fail here.
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-channel
//! --features process --test loom_remote --release` alone; `cargo xtask loom` runs every
//! model, as `.ci/run` does.
#![cfg(all(worker_threads_loom, target_os = "linux", feature = "process"))]

use std::sync::Arc;

use loom::sync::Mutex;
use loom::thread;
use worker_threads_channel::remote::{Posted, Pump, Sink};
use worker_threads_channel::{MessageChannel, MessagePort, PostError};

/// What crosses the modelled socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Message(u32),
    /// The port's end (`Close`, `Exit`).
    End,
}

/// The socket, as the order of what was written to it and how much of it the peer has
/// read. A non-blocking send fails while one record is unread (the peer is behind); a
/// blocking send always goes (it would wait for the peer, which reads everything, in
/// order). The order is looked at once every thread is done.
#[derive(Default)]
struct Socket {
    /// What was written, and how many of those the peer has read.
    records: Mutex<(Vec<Record>, usize)>,
}

impl Socket {
    fn try_send(&self, record: Record) -> bool {
        let mut socket = self.records.lock().unwrap();
        if socket.0.len() > socket.1 {
            return false;
        }
        socket.0.push(record);
        true
    }

    fn send(&self, record: Record) {
        self.records.lock().unwrap().0.push(record);
    }

    /// The peer reads a record, if one is unread (it never waits).
    fn read_one(&self) {
        let mut socket = self.records.lock().unwrap();
        if socket.0.len() > socket.1 {
            socket.1 += 1;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Direct,
    Behind,
    Sealed,
}

/// `Outgoing` of `direct.rs`, over the modelled socket.
struct Outgoing {
    socket: Arc<Socket>,
    way: Mutex<Way>,
}

impl Sink<u32> for Outgoing {
    fn post(&self, msg: u32, queue: &mut dyn FnMut(u32) -> Result<(), u32>) -> Result<Posted, u32> {
        let mut way = self.way.lock().unwrap();
        if *way == Way::Direct && self.socket.try_send(Record::Message(msg)) {
            return Ok(Posted::Sent);
        }
        if *way == Way::Direct {
            *way = Way::Behind;
        }
        queue(msg).map(|()| Posted::Queued)
    }
}

/// The posting port reads nothing from the socket in this model.
struct NoPump;

impl Pump for NoPump {
    fn start(&self) {}
    fn pump(&self) -> bool {
        false
    }
    fn stop(&self) {}
}

/// The bridge thread: `write_to_child` of `parent.rs`, `forward` of `child.rs`.
fn write(bridge: &MessagePort<u32>, outgoing: &Outgoing) {
    while let Ok(msg) = bridge.recv() {
        outgoing.socket.send(Record::Message(msg));
        let mut way = outgoing.way.lock().unwrap();
        if *way == Way::Behind && bridge.is_empty() {
            *way = Way::Direct;
        }
    }
    *outgoing.way.lock().unwrap() = Way::Sealed;
    outgoing.socket.send(Record::End);
}

#[test]
fn what_was_posted_reaches_the_peer_in_order_and_before_the_end_whatever_the_close() {
    loom::model(|| {
        let MessageChannel {
            port1: mut port,
            port2: bridge,
        } = MessageChannel::<u32>::new();
        let socket = Arc::new(Socket::default());
        let outgoing = Arc::new(Outgoing {
            socket: Arc::clone(&socket),
            way: Mutex::new(Way::Direct),
        });
        port.set_remote(Arc::clone(&outgoing) as _, Arc::new(NoPump));
        let port = Arc::new(port);
        let writer = thread::spawn(move || write(&bridge, &outgoing));
        let reader = thread::spawn({
            let socket = Arc::clone(&socket);
            move || {
                socket.read_one();
                socket.read_one();
            }
        });
        let poster = thread::spawn({
            let port = Arc::clone(&port);
            move || {
                let mut accepted = Vec::new();
                for msg in 0..3 {
                    match port.post_message(msg) {
                        Ok(()) => accepted.push(msg),
                        Err(PostError::Closed(back)) => assert_eq!(back, msg),
                    }
                }
                accepted
            }
        });
        port.close();
        let accepted = poster.join().unwrap();
        writer.join().unwrap();
        reader.join().unwrap();
        let written = socket.records.lock().unwrap().0.clone();
        let (end, messages) = written.split_last().expect("the end was sent");
        assert_eq!(*end, Record::End, "the end comes last: {written:?}");
        let messages: Vec<u32> = messages
            .iter()
            .map(|record| match record {
                Record::Message(msg) => *msg,
                Record::End => panic!("two ends: {written:?}"),
            })
            .collect();
        assert_eq!(
            messages, accepted,
            "exactly the accepted posts, in order, before the end"
        );
    });
}
