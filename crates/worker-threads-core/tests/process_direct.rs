//! The direct path of a process worker's port: posts that write to the socket on the
//! posting thread, receives that read it themselves, and the bridge threads that take
//! over for what cannot go directly (a message over one record, a port inside a message,
//! a worker that stopped reading). What must hold whichever way a message went: order,
//! every message exactly once, and a hostile frame costing only its worker. Real child
//! processes: this test binary started again (`process::test_support!`).
#![cfg(target_os = "linux")]

mod hostile;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use worker_threads_channel::{MessageChannel, MessagePort, RecvError};
use worker_threads_core::{Process, Worker, WorkerContext, WorkerError, WorkerOptions};

worker_threads_core::process::test_support!();

/// Just over one socket record (64 KiB): a message this big cannot go directly.
const BIG: usize = 65 * 1024;

/// A message that goes directly (small), or by the writer (big: more than one socket
/// record; with a port: it needs the router).
#[derive(Debug, Serialize, Deserialize)]
enum Item {
    Small(u64),
    Big(u64, Vec<u8>),
    WithPort(u64, MessagePort<u64>),
    Stop,
}

impl Item {
    /// The `n`th item of a mixed sequence: every 7th big, every 11th with a port.
    fn nth(n: u64) -> Item {
        match n {
            n if n % 7 == 3 => Item::Big(n, vec![(n % 251) as u8; BIG]),
            n if n % 11 == 5 => {
                let MessageChannel { port1, port2 } = MessageChannel::new();
                port1.post_message(n).unwrap();
                Item::WithPort(n, port2)
            }
            n => Item::Small(n),
        }
    }

    /// Its sequence number, after checking its payload is whole.
    fn check(self) -> u64 {
        match self {
            Item::Small(n) => n,
            Item::Big(n, bytes) => {
                assert_eq!(bytes.len(), BIG, "item {n}");
                assert!(bytes.iter().all(|&b| b == (n % 251) as u8), "item {n}");
                n
            }
            Item::WithPort(n, port) => {
                assert_eq!(port.recv(), Ok(n), "the port in item {n}");
                n
            }
            Item::Stop => panic!("a stop where an item was expected"),
        }
    }
}

/// Sends every item back as the same kind of item, until `Stop`.
fn echo_items(ctx: WorkerContext<(), Item>) {
    for item in ctx.parent_port().iter() {
        if let Item::Stop = item {
            return;
        }
        let n = item.check();
        ctx.parent_port().post_message(Item::nth(n)).unwrap();
    }
}

#[test]
fn what_one_thread_posts_keeps_its_order_when_some_messages_go_by_the_writer() {
    const N: u64 = 1_000;
    let worker =
        Worker::<Item>::spawn(WorkerOptions::new().isolation(Process), echo_items).unwrap();
    // Three threads post at once, each its own range; each range must come back in order.
    std::thread::scope(|s| {
        for t in 0..3 {
            let worker = &worker;
            s.spawn(move || {
                for n in t * N..(t + 1) * N {
                    worker.post_message(Item::nth(n)).unwrap();
                }
            });
        }
    });
    let mut next = [0, N, 2 * N];
    for _ in 0..3 * N {
        let n = worker.recv().unwrap().check();
        let range = (n / N) as usize;
        assert_eq!(n, next[range], "out of order in range {range}");
        next[range] += 1;
    }
    assert_eq!(next, [N, 2 * N, 3 * N]);
    worker.post_message(Item::Stop).unwrap();
    assert_eq!(worker.join().unwrap(), 0);
}

/// Counts what arrives until `u64::MAX`, then reports the count and whether the values
/// were 0, 1, 2, ... in order.
fn count_payloads(ctx: WorkerContext<(), (u64, Vec<u8>), (u64, bool)>) {
    ctx.parent_port().post_message((0, true)).unwrap(); // ready
    let mut next = 0;
    let mut in_order = true;
    for (n, payload) in ctx.parent_port().iter() {
        if n == u64::MAX {
            break;
        }
        in_order &= n == next && payload.len() == 1024;
        next += 1;
    }
    ctx.parent_port().post_message((next, in_order)).unwrap();
}

#[test]
fn posts_to_a_stopped_worker_return_at_once_and_all_arrive_in_order_when_it_resumes() {
    // 20 MiB: far more than a socket holds, so the posts must queue for the writer.
    const N: u64 = 20_000;
    let worker = Worker::<(u64, Vec<u8>), (u64, bool)>::spawn(
        WorkerOptions::new().isolation(Process),
        count_payloads,
    )
    .unwrap();
    assert_eq!(worker.recv(), Ok((0, true)));
    let pid = rustix::process::Pid::from_raw(worker.pid().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    for n in 0..N {
        worker.post_message((n, vec![7; 1024])).unwrap();
    }
    worker.post_message((u64::MAX, Vec::new())).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    assert_eq!(worker.recv(), Ok((N, true)));
    assert_eq!(worker.join().unwrap(), 0);
}

/// Posts 0..count, then returns.
fn post_numbers(ctx: WorkerContext<u64, (), u64>) {
    for n in 0..*ctx.worker_data() {
        ctx.parent_port().post_message(n).unwrap();
    }
}

#[test]
fn two_threads_receiving_from_one_worker_get_every_message_once_each_in_order() {
    const N: u64 = 50_000;
    for _round in 0..5 {
        let worker = Worker::<(), u64>::spawn(
            WorkerOptions::new().worker_data(N).isolation(Process),
            post_numbers,
        )
        .unwrap();
        let got: Vec<Vec<u64>> = std::thread::scope(|s| {
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let worker = &worker;
                    s.spawn(move || {
                        let mut got = Vec::new();
                        loop {
                            match worker.recv() {
                                Ok(n) => got.push(n),
                                Err(error) => {
                                    assert_eq!(error, RecvError::Closed);
                                    return got;
                                }
                            }
                        }
                    })
                })
                .collect();
            receivers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        for each in &got {
            assert!(
                each.windows(2).all(|w| w[0] < w[1]),
                "a receiver's messages out of order"
            );
        }
        let all: BTreeSet<u64> = got.iter().flatten().copied().collect();
        assert_eq!(
            got.iter().map(Vec::len).sum::<usize>(),
            N as usize,
            "a message twice"
        );
        assert_eq!(all, (0..N).collect());
        assert_eq!(worker.join().unwrap(), 0);
    }
}

/// Waits for a message, then writes a frame of an unknown tag to its channel's ring.
fn bad_frame_on_request(ctx: WorkerContext<(), ()>) {
    ctx.parent_port().recv().unwrap();
    // A well-formed record of a frame with tag 9, which no frame has.
    hostile::commit_in_own_ring(&[hostile::header(1, 9, hostile::DATA), 0]);
    ctx.parent_port().recv().unwrap(); // killed while waiting here
}

#[test]
fn a_bad_frame_read_by_a_receive_of_main_is_that_workers_error_and_ends_the_receive() {
    for _round in 0..20 {
        let sibling = Worker::<u64>::spawn(
            WorkerOptions::new().isolation(Process),
            |ctx: WorkerContext<(), u64>| {
                for n in ctx.parent_port().iter() {
                    ctx.parent_port().post_message(n + 1).unwrap();
                }
            },
        )
        .unwrap();
        let worker = Worker::<()>::spawn(
            WorkerOptions::new().isolation(Process),
            bad_frame_on_request,
        )
        .unwrap();
        worker.post_message(()).unwrap();
        // This receive is the one reading the socket when the frame comes (or it parked,
        // and the reader thread reads it): either way it ends with the worker.
        assert_eq!(worker.recv(), Err(RecvError::Closed));
        match worker.join() {
            Err(WorkerError::Channel { message }) => {
                assert!(message.contains("unexpected frame (tag 9)"), "{message}");
            }
            other => panic!("expected a channel error, got {other:?}"),
        }
        sibling.post_message(41).unwrap();
        assert_eq!(sibling.recv(), Ok(42));
        drop(sibling);
    }
}

/// Echoes until its port closes or it is terminated.
fn echo(ctx: WorkerContext<(), u64>) {
    for n in ctx.parent_port().iter() {
        if ctx.parent_port().post_message(n).is_err() {
            return;
        }
    }
}

#[test]
fn terminate_while_another_thread_posts_and_receives_ends_both_cleanly() {
    for round in 0..100u64 {
        let worker = Worker::<u64>::spawn(WorkerOptions::new().isolation(Process), echo).unwrap();
        assert_eq!(worker.post_message(round), Ok(()));
        assert_eq!(worker.recv(), Ok(round));
        std::thread::scope(|s| {
            let exchanged = s.spawn(|| {
                let mut n = 0u64;
                loop {
                    if worker.post_message(n).is_err() {
                        return n;
                    }
                    match worker.recv() {
                        Ok(echoed) => assert_eq!(echoed, n),
                        Err(error) => {
                            assert_eq!(error, RecvError::Terminated);
                            return n;
                        }
                    }
                    n += 1;
                }
            });
            if round % 2 == 0 {
                std::thread::yield_now();
            }
            worker.terminate();
            exchanged.join().unwrap();
        });
        assert_eq!(worker.join().unwrap(), 1);
    }
}

/// Counts what arrives until the port closes; the count is the exit code.
fn count_until_closed(ctx: WorkerContext<(), u64>) -> i32 {
    let mut next = 0u64;
    for n in ctx.parent_port().iter() {
        assert_eq!(n, next, "out of order");
        next += 1;
    }
    i32::try_from(next).unwrap()
}

#[test]
fn close_while_posting_delivers_exactly_the_posts_that_returned_ok() {
    for round in 0..100u64 {
        let worker =
            Worker::<u64>::spawn(WorkerOptions::new().isolation(Process), count_until_closed)
                .unwrap();
        let accepted = std::thread::scope(|s| {
            let poster = s.spawn(|| {
                let mut n = 0u64;
                loop {
                    match worker.post_message(n) {
                        Ok(()) => n += 1,
                        Err(refused) => {
                            assert_eq!(refused.into_inner(), n, "the refused post's message");
                            return n;
                        }
                    }
                }
            });
            for _ in 0..round % 4 {
                std::thread::yield_now();
            }
            worker.port().close();
            poster.join().unwrap()
        });
        assert_eq!(
            worker.join().unwrap(),
            i32::try_from(accepted).unwrap(),
            "round {round}"
        );
    }
}

/// Echoes until it echoed 20.
fn echo_to_twenty(ctx: WorkerContext<(), u64>) {
    for n in ctx.parent_port().iter() {
        ctx.parent_port().post_message(n).unwrap();
        if n == 20 {
            return;
        }
    }
}

#[test]
fn after_a_receive_read_the_socket_the_reader_thread_delivers_to_async_receives_and_events() {
    for _round in 0..50 {
        let mut worker =
            Worker::<u64>::spawn(WorkerOptions::new().isolation(Process), echo_to_twenty).unwrap();
        // A blocking receive: it reads the socket itself, pausing the reader's wait.
        worker.post_message(1).unwrap();
        assert_eq!(worker.recv(), Ok(1));
        // Receives that never read the socket: only the reader thread can deliver these.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for n in 2..20 {
            worker.post_message(n).unwrap();
            assert_eq!(runtime.block_on(worker.recv_async()), Ok(n));
        }
        worker.post_message(20).unwrap();
        let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
        assert_eq!(events, ["Online", "Message(20)", "Exit(0)"]);
    }
}
