//! Message ports that cross to process workers: in the data, in messages both ways, and a
//! pair whose two ends live in two process workers (relayed through this process). Real
//! child processes: this test binary started again (`process::test_support!`).
#![cfg(target_os = "linux")]

mod hostile;

use serde::{Deserialize, Serialize};
use worker_threads_channel::{MessageChannel, MessagePort, PostError, RecvError};
use worker_threads_core::{Process, Worker, WorkerContext, WorkerOptions};

worker_threads_core::process::test_support!();

const N: u64 = 10_000;

/// Receives on the port in its data until it closes; reports how many came and whether
/// they were 0, 1, 2, ... in order.
fn count_in_order(ctx: WorkerContext<MessagePort<u64>, (), (u64, bool)>) {
    let mut next = 0;
    let mut in_order = true;
    for n in ctx.worker_data().iter() {
        in_order &= n == next;
        next += 1;
    }
    ctx.parent_port().post_message((next, in_order)).unwrap();
}

#[test]
fn a_port_in_worker_data_delivers_everything_posted_before_its_close_in_order() {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let options = WorkerOptions::new().worker_data(port2).isolation(Process);
    let worker = Worker::<(), (u64, bool)>::spawn(options, count_in_order).unwrap();
    for n in 0..N {
        port1.post_message(n).unwrap();
    }
    port1.close();
    assert_eq!(worker.recv(), Ok((N, true)));
    assert_eq!(worker.join().unwrap(), 0);
}

/// Answers every number on the port in its data with its double, until the port closes.
fn double_on_port(ctx: WorkerContext<MessagePort<u64>, (), u64>) -> i32 {
    let port = ctx.worker_data();
    let mut answered = 0;
    for n in port.iter() {
        port.post_message(n * 2).unwrap();
        answered += 1;
    }
    ctx.parent_port().post_message(answered).unwrap();
    5
}

#[test]
fn a_port_in_worker_data_carries_messages_both_ways() {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let options = WorkerOptions::new().worker_data(port2).isolation(Process);
    let worker = Worker::<(), u64>::spawn(options, double_on_port).unwrap();
    for n in 0..1_000 {
        port1.post_message(n).unwrap();
        assert_eq!(port1.recv(), Ok(n * 2));
    }
    drop(port1);
    assert_eq!(worker.recv(), Ok(1_000));
    assert_eq!(worker.join().unwrap(), 5);
}

/// What main sends a worker that takes ports in its messages.
#[derive(Debug, Serialize, Deserialize)]
enum Command {
    /// Post `line 0`, `line 1`, ... on the port, then drop it.
    Fill(MessagePort<String>, u32),
    /// Post `0..count` on the port, then drop it.
    Count(MessagePort<u64>, u64),
    /// Post 0, 1, 2, ... on the port until a post fails; report how many were accepted
    /// and the value the failed post handed back.
    Flood(MessagePort<u64>),
    Stop,
}

fn commands(ctx: WorkerContext<(), Command, (u64, u64)>) {
    for command in ctx.parent_port().iter() {
        match command {
            Command::Fill(port, count) => {
                for i in 0..count {
                    port.post_message(format!("line {i}")).unwrap();
                }
            }
            Command::Count(port, count) => {
                for n in 0..count {
                    port.post_message(n).unwrap();
                }
            }
            Command::Flood(port) => {
                let mut n = 0;
                let back = loop {
                    match port.post_message(n) {
                        Ok(()) => n += 1,
                        Err(PostError::Closed(back)) => break back,
                    }
                };
                ctx.parent_port().post_message((n, back)).unwrap();
            }
            Command::Stop => return,
        }
    }
}

#[test]
fn a_port_sent_in_a_message_arrives_working_and_closes_after_what_was_posted() {
    let worker =
        Worker::<Command, (u64, u64)>::spawn(WorkerOptions::new().isolation(Process), commands)
            .unwrap();
    let MessageChannel { port1, port2 } = MessageChannel::new();
    worker.post_message(Command::Fill(port2, 100)).unwrap();
    for i in 0..100 {
        assert_eq!(port1.recv().unwrap(), format!("line {i}"));
    }
    // The worker dropped its end: closed, and a post hands the message back.
    assert_eq!(port1.recv(), Err(RecvError::Closed));
    assert_eq!(
        port1
            .post_message("late".to_string())
            .unwrap_err()
            .into_inner(),
        "late"
    );
    worker.post_message(Command::Stop).unwrap();
    assert_eq!(worker.join().unwrap(), 0);
}

#[test]
fn closing_a_transferred_port_while_the_worker_posts_keeps_order_and_hands_its_post_back() {
    // Close while posting, across a process: main takes a prefix then closes; the
    // worker's posts go on until the close reaches it, and the first one refused is
    // handed back to it whole. A thousand ports over one worker.
    let worker =
        Worker::<Command, (u64, u64)>::spawn(WorkerOptions::new().isolation(Process), commands)
            .unwrap();
    for round in 0..1_000u64 {
        let MessageChannel { port1, port2 } = MessageChannel::new();
        worker.post_message(Command::Flood(port2)).unwrap();
        let wanted = round % 40;
        for expected in 0..wanted {
            assert_eq!(port1.recv(), Ok(expected), "round {round}");
        }
        drop(port1);
        let (accepted, back) = worker.recv().unwrap();
        assert!(accepted >= wanted, "round {round}: {accepted} < {wanted}");
        assert_eq!(back, accepted, "round {round}");
    }
    worker.post_message(Command::Stop).unwrap();
    assert_eq!(worker.join().unwrap(), 0);
}

/// Sends main a port of its own, posts on it, and ends (which closes it).
fn hand_out_a_port(ctx: WorkerContext<(), (), MessagePort<u32>>) {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    ctx.parent_port().post_message(port2).unwrap();
    for n in 0..100 {
        port1.post_message(n).unwrap();
    }
    assert_eq!(port1.recv(), Ok(7), "main's answer");
}

#[test]
fn a_port_made_in_the_worker_reaches_main_and_ends_with_the_worker() {
    let worker = Worker::<(), MessagePort<u32>>::spawn(
        WorkerOptions::new().isolation(Process),
        hand_out_a_port,
    )
    .unwrap();
    let port = worker.recv().unwrap();
    for n in 0..100 {
        assert_eq!(port.recv(), Ok(n));
    }
    port.post_message(7).unwrap();
    assert_eq!(port.recv(), Err(RecvError::Closed));
    assert_eq!(worker.join().unwrap(), 0);
}

/// Posts 0..1000 on its port and checks each answer is one more.
fn ping(ctx: WorkerContext<MessagePort<u64>, (), u64>) {
    let port = ctx.worker_data();
    let mut right = 0;
    for n in 0..1_000 {
        port.post_message(n).unwrap();
        if port.recv() == Ok(n + 1) {
            right += 1;
        }
    }
    ctx.parent_port().post_message(right).unwrap();
}

/// Answers each number with one more, until the port closes; reports how many.
fn pong(ctx: WorkerContext<MessagePort<u64>, (), u64>) {
    let port = ctx.worker_data();
    let mut answered = 0;
    for n in port.iter() {
        port.post_message(n + 1).unwrap();
        answered += 1;
    }
    ctx.parent_port().post_message(answered).unwrap();
}

#[test]
fn a_pair_joins_two_process_workers_and_closes_when_one_ends() {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let options = |port| WorkerOptions::new().worker_data(port).isolation(Process);
    let pinger = Worker::<(), u64>::spawn(options(port1), ping).unwrap();
    let ponger = Worker::<(), u64>::spawn(options(port2), pong).unwrap();
    assert_eq!(pinger.recv(), Ok(1_000), "every answer right, in order");
    assert_eq!(pinger.join().unwrap(), 0);
    // The pinger's end closed when it ended: the ponger's loop ends after the last.
    assert_eq!(ponger.recv(), Ok(1_000));
    assert_eq!(ponger.join().unwrap(), 0);
}

#[test]
fn a_stream_between_two_process_workers_arrives_whole_and_in_order_before_the_close() {
    // One end in a worker's data, the other sent to a second worker in a message; the
    // producer posts and drops its end, the consumer sees every message, then the close.
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let consumer = Worker::<(), (u64, bool)>::spawn(
        WorkerOptions::new().worker_data(port2).isolation(Process),
        count_in_order,
    )
    .unwrap();
    let producer =
        Worker::<Command, (u64, u64)>::spawn(WorkerOptions::new().isolation(Process), commands)
            .unwrap();
    producer.post_message(Command::Count(port1, N)).unwrap();
    assert_eq!(consumer.recv(), Ok((N, true)));
    assert_eq!(consumer.join().unwrap(), 0);
    producer.post_message(Command::Stop).unwrap();
    assert_eq!(producer.join().unwrap(), 0);
}

/// Says it has its port, waits for main's answer, then aborts.
fn crash_holding_a_port(ctx: WorkerContext<MessagePort<u64>, ()>) {
    ctx.worker_data().post_message(1).unwrap();
    let _ = ctx.worker_data().recv();
    std::process::abort();
}

#[test]
fn a_crashed_workers_ports_close_and_nothing_waits_forever() {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let options = WorkerOptions::new().worker_data(port2).isolation(Process);
    let mut worker = Worker::<()>::spawn(options, crash_holding_a_port).unwrap();
    assert_eq!(port1.recv(), Ok(1));
    port1.post_message(2).unwrap();
    assert_eq!(port1.recv(), Err(RecvError::Closed));
    let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
    assert_eq!(
        events,
        ["Online", "Error(Crashed { signal: 6 })", "Exit(134)"]
    );
}

/// Posts on its port until main terminates the worker.
fn flood_until_killed(ctx: WorkerContext<MessagePort<u64>, (), ()>) {
    let mut n = 0;
    while ctx.worker_data().post_message(n).is_ok() {
        n += 1;
    }
}

#[test]
fn terminating_a_worker_that_posts_on_a_transferred_port_keeps_what_arrived_in_order() {
    // Kill while sending on a relayed port: a prefix 0, 1, 2, ... then closed.
    for trial in 0..30u64 {
        let MessageChannel { port1, port2 } = MessageChannel::new();
        let options = WorkerOptions::new()
            .worker_data(port2)
            .isolation(Process)
            .terminate_grace(std::time::Duration::ZERO);
        let mut worker = Worker::<(), ()>::spawn(options, flood_until_killed).unwrap();
        for expected in 0..trial * 10 {
            assert_eq!(port1.recv(), Ok(expected), "trial {trial}");
        }
        worker.terminate();
        let mut next = trial * 10;
        while let Ok(n) = port1.recv() {
            assert_eq!(n, next, "trial {trial}");
            next += 1;
        }
        let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
        assert_eq!(events, ["Online", "Exit(1)"], "trial {trial}");
    }
}

/// Commits raw port frames in its channel's ring: `bad` says which.
fn raw_port_frame(ctx: WorkerContext<u8, ()>) {
    // [id u64][kind][message]
    let body: Vec<u8> = match *ctx.worker_data() {
        // Shorter than a port frame's header.
        0 => vec![1, 2, 3],
        // A message for a port that does not exist: dropped, nothing else.
        1 => [&12_345u64.to_le_bytes()[..], &[0, 42]].concat(),
        // A kind that does not exist.
        _ => [&12_345u64.to_le_bytes()[..], &[9]].concat(),
    };
    let end = hostile::commit_frame(2, &body);
    // The ring is written by the runtime too (its `Exit`): leave without it, once the
    // parent read the frame (a malformed one ends the process before).
    hostile::wait_until_read(end);
    std::process::exit(0);
}

#[test]
fn a_malformed_port_frame_is_that_workers_error_and_an_unknown_port_is_ignored() {
    for (bad, wanted) in [
        (
            0u8,
            "Error(Channel { message: \"bad port frame: malformed frame: a port frame shorter than its header\" })",
        ),
        (
            2,
            "Error(Channel { message: \"bad port frame: malformed frame: a port frame of an unknown kind\" })",
        ),
    ] {
        let options = WorkerOptions::new().worker_data(bad).isolation(Process);
        let mut worker = Worker::<()>::spawn(options, raw_port_frame).unwrap();
        let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
        assert_eq!(events, ["Online", wanted, "Exit(1)"]);
    }
    let options = WorkerOptions::new().worker_data(1u8).isolation(Process);
    let mut worker = Worker::<()>::spawn(options, raw_port_frame).unwrap();
    let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
    assert_eq!(events, ["Online", "Exit(0)"]);
}

#[test]
fn a_port_outside_a_process_message_refuses_to_serialize_with_a_clear_error() {
    let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
    let error = worker_threads_process::codec::encode(&port1).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unencodable message: a MessagePort serializes only into a process worker's data or messages"
    );
    // Not transferred: the pair still works.
    port1.post_message(1).unwrap();
    assert_eq!(port2.recv(), Ok(1));
}

/// Sends main a real port, waits for its go, then a raw message naming a port by an id
/// that only main could have picked (the parent's side). Its end of the pair stays open
/// (a close would be the runtime writing the ring beside it).
fn wrong_side_port_id(ctx: WorkerContext<(), (), MessagePort<u8>>) {
    let MessageChannel {
        port1: _kept,
        port2,
    } = MessageChannel::new();
    ctx.parent_port().post_message(port2).unwrap();
    let _ = ctx.parent_port().recv();
    // [tag 1: a message][postcard u64 5: a parent-side id]
    hostile::commit_frame(1, &[5]);
    std::thread::park();
}

#[test]
fn a_child_that_names_a_port_it_could_not_have_made_is_that_workers_error() {
    let mut worker = Worker::<(), MessagePort<u8>>::spawn(
        WorkerOptions::new().isolation(Process),
        wrong_side_port_id,
    )
    .unwrap();
    let port = worker.recv().unwrap();
    worker.post_message(()).unwrap();
    let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
    assert_eq!(
        events,
        [
            "Online",
            "Error(Channel { message: \"undecodable message: undecodable frame: port id 0x5: not one the peer could give\" })",
            "Exit(1)"
        ]
    );
    // The port that came before is closed with its worker, not left hanging.
    assert_eq!(port.recv(), Err(RecvError::Closed));
}

/// Posts `0..count` on the port in its data and returns at once: the worker's end closes
/// while the relay may still hold what was posted.
fn post_and_return(ctx: WorkerContext<(MessagePort<u64>, u64), ()>) {
    let (port, count) = ctx.worker_data();
    for n in 0..*count {
        port.post_message(n).unwrap();
    }
}

#[test]
fn what_a_worker_posted_on_a_crossed_port_before_it_returned_all_arrives() {
    // Exit racing the relay: the child sends `Exit` only after its relay sent everything
    // posted on its ports and their close. 200 workers, each returning right after its
    // last post.
    for round in 0..200u64 {
        let MessageChannel { port1, port2 } = MessageChannel::new();
        let count = round % 50;
        let options = WorkerOptions::new()
            .worker_data((port2, count))
            .isolation(Process);
        let worker = Worker::<()>::spawn(options, post_and_return).unwrap();
        for n in 0..count {
            assert_eq!(port1.recv(), Ok(n), "round {round}");
        }
        assert_eq!(port1.recv(), Err(RecvError::Closed), "round {round}");
        assert_eq!(worker.join().unwrap(), 0, "round {round}");
    }
}
