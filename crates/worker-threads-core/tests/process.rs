//! Process workers: real child processes (this test binary started again; the test that
//! `process::test_support!` defines is where they take the worker's path).
#![cfg(target_os = "linux")]

mod hostile;

use std::io::Read;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use worker_threads_core::process::ResourceLimits;
use worker_threads_core::{
    Limit, Process, Worker, WorkerContext, WorkerError, WorkerEvent, WorkerOptions, exit,
    is_main_thread, thread_id,
};

worker_threads_core::process::test_support!();

/// A message both ways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Text(String),
    Number(u64),
    Bytes(Vec<u8>),
    Stop,
}

/// Says hello with its data and id, echoes until `Stop`, returns 3.
fn echo(ctx: WorkerContext<String, Msg>) -> i32 {
    let port = ctx.parent_port();
    let hello = format!(
        "{} from {} ({})",
        ctx.worker_data(),
        thread_id(),
        is_main_thread()
    );
    port.post_message(Msg::Text(hello)).unwrap();
    for msg in port.iter() {
        if msg == Msg::Stop {
            break;
        }
        port.post_message(msg).unwrap();
    }
    3
}

fn names(events: impl Iterator<Item = WorkerEvent<Msg>>) -> Vec<String> {
    events
        .map(|event| match event {
            // The thread id differs between the two runs; everything else must not.
            WorkerEvent::Message(Msg::Text(text)) => {
                format!("Message({})", text.split(" from ").next().unwrap_or(""))
            }
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn the_same_entry_as_thread_and_as_process_gives_the_same_events() {
    let data = || WorkerOptions::new().worker_data("hi".to_string());
    let talk = |worker: &Worker<Msg>| {
        for msg in [Msg::Number(7), Msg::Text("x".into()), Msg::Stop] {
            worker.post_message(msg).unwrap();
        }
    };
    let mut thread = Worker::<Msg>::spawn(data(), echo).unwrap();
    talk(&thread);
    let thread = names(thread.events());
    let mut process = Worker::<Msg>::spawn(data().isolation(Process), echo).unwrap();
    talk(&process);
    let process = names(process.events());
    assert_eq!(
        thread,
        [
            "Online",
            "Message(hi)",
            "Message(Number(7))",
            "Message(x)",
            "Exit(3)"
        ]
    );
    assert_eq!(process, thread);
}

/// Posts three messages and ends at once.
fn three_and_done(ctx: WorkerContext<(), (), Msg>) -> i32 {
    for i in 0..3 {
        ctx.parent_port().post_message(Msg::Number(i)).unwrap();
    }
    5
}

#[test]
fn a_process_worker_that_ends_at_once_still_delivers_every_message_before_its_exit() {
    // The child forwards the entry's messages, then its exit; an entry that is over
    // before the forwarding starts must not make it skip to the exit.
    for round in 0..40 {
        let mut worker =
            Worker::<(), Msg>::spawn(WorkerOptions::new().isolation(Process), three_and_done)
                .unwrap();
        let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
        assert_eq!(
            events,
            [
                "Online",
                "Message(Number(0))",
                "Message(Number(1))",
                "Message(Number(2))",
                "Exit(5)"
            ],
            "round {round}"
        );
    }
}

#[test]
fn a_process_worker_knows_its_id_and_that_it_is_not_the_main_thread() {
    let worker: Worker<Msg> = Worker::spawn(
        WorkerOptions::new()
            .worker_data("hi".to_string())
            .isolation(Process),
        echo,
    )
    .unwrap();
    assert_eq!(
        worker.recv().unwrap(),
        Msg::Text(format!("hi from {} (false)", worker.thread_id()))
    );
    assert_ne!(worker.pid(), Some(std::process::id()));
    assert!(worker.pid().is_some());
    worker.post_message(Msg::Stop).unwrap();
    assert_eq!(worker.join().unwrap(), 3);
}

fn spin(ctx: WorkerContext<(), (), String>) {
    ctx.parent_port()
        .post_message("spinning".to_string())
        .unwrap();
    #[allow(clippy::empty_loop)]
    loop {}
}

#[test]
fn terminate_ends_a_process_worker_in_a_busy_loop() {
    let options = WorkerOptions::new().isolation(Process);
    let mut worker = Worker::<(), String>::spawn(options, spin).unwrap();
    assert_eq!(worker.recv().unwrap(), "spinning");
    worker.terminate();
    let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
    // The message was read already; the loop never looks: killed, code 1.
    assert_eq!(events, ["Online", "Exit(1)"]);
}

fn abort(_ctx: WorkerContext<(), u32>) {
    std::process::abort();
}

fn segfault(_ctx: WorkerContext<(), u32>) {
    // std's SIGSEGV handler (stack-overflow detection) takes the first one, resets the
    // default action and returns: the next one ends the process, as a real fault would.
    let me = rustix::process::getpid();
    loop {
        let _ = rustix::process::kill_process(me, rustix::process::Signal::SEGV);
    }
}

fn double(ctx: WorkerContext<(), u32>) {
    for n in ctx.parent_port().iter() {
        ctx.parent_port().post_message(n * 2).unwrap();
    }
}

#[test]
fn a_crash_is_the_workers_alone_and_a_sibling_keeps_answering() {
    let options = || WorkerOptions::new().isolation(Process);
    let sibling = Worker::<u32>::spawn(options(), double).unwrap();
    for signal in [6, 11] {
        // Entries are `fn` items (zero-sized): a `fn` pointer cannot name a process entry.
        let mut worker = match signal {
            6 => Worker::<u32>::spawn(options(), abort),
            _ => Worker::<u32>::spawn(options(), segfault),
        }
        .unwrap();
        let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
        assert_eq!(
            events,
            [
                "Online".to_string(),
                format!("Error(Crashed {{ signal: {signal} }})"),
                format!("Exit({})", 128 + signal)
            ]
        );
        sibling.post_message(signal as u32).unwrap();
        assert_eq!(sibling.recv(), Ok(signal as u32 * 2));
    }
    sibling.port().close();
    assert_eq!(sibling.join().unwrap(), 0);
}

fn hog(_ctx: WorkerContext<(), u8>) -> i32 {
    // 4 GiB: refused by a 1 GiB address-space cap.
    let big = vec![1u8; 4 << 30];
    i32::from(big[0])
}

#[test]
fn a_worker_over_its_memory_cap_ends_with_the_typed_limit_error() {
    let options = WorkerOptions::new()
        .isolation(Process)
        .resource_limits(ResourceLimits::new().max_memory(1 << 30))
        .stderr(true);
    let mut worker = Worker::<u8>::spawn(options, hog).unwrap();
    let mut stderr = worker.take_stderr().unwrap();
    let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
    assert_eq!(
        events,
        [
            "Online",
            "Error(LimitExceeded { limit: Memory })",
            "Exit(1)"
        ]
    );
    let mut text = String::new();
    stderr.read_to_string(&mut text).unwrap();
    assert!(
        text.contains("memory allocation of 4294967296 bytes failed"),
        "{text}"
    );
}

fn burn(_ctx: WorkerContext<(), u8>) {
    #[allow(clippy::empty_loop)]
    loop {}
}

#[test]
fn a_worker_over_its_cpu_cap_ends_with_the_typed_limit_error() {
    let options = WorkerOptions::new()
        .isolation(Process)
        .resource_limits(ResourceLimits::new().max_cpu_time(Duration::from_secs(1)));
    let worker = Worker::<u8>::spawn(options, burn).unwrap();
    match worker.join() {
        Err(WorkerError::LimitExceeded { limit }) => assert_eq!(limit, Limit::CpuTime),
        other => panic!("expected the CPU limit, got {other:?}"),
    }
}

fn echo_all(ctx: WorkerContext<(), Msg>) {
    for msg in ctx.parent_port().iter() {
        ctx.parent_port().post_message(msg).unwrap();
    }
}

#[test]
fn many_small_messages_and_a_large_one_cross_both_ways_in_order() {
    let worker = Worker::<Msg>::spawn(WorkerOptions::new().isolation(Process), echo_all).unwrap();
    const N: u64 = 100_000;
    // Both directions are unbounded: post everything, then read everything back.
    for i in 0..N {
        worker.post_message(Msg::Number(i)).unwrap();
    }
    for i in 0..N {
        assert_eq!(worker.recv(), Ok(Msg::Number(i)));
    }
    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i * 31 % 251) as u8).collect();
    worker.post_message(Msg::Bytes(big.clone())).unwrap();
    assert_eq!(worker.recv(), Ok(Msg::Bytes(big)));
    worker.port().close();
    assert_eq!(worker.join().unwrap(), 0);
}

fn fails(ctx: WorkerContext<u8, ()>) -> Result<(), String> {
    match *ctx.worker_data() {
        0 => exit(5),
        1 => panic!("boom in a process"),
        _ => Err("it failed".to_string()),
    }
}

#[test]
fn exit_panic_and_error_cross_the_process_boundary() {
    let spawn = |kind: u8| {
        let options = WorkerOptions::new().worker_data(kind).isolation(Process);
        Worker::<()>::spawn(options, fails).unwrap()
    };
    assert_eq!(spawn(0).join().unwrap(), 5);
    let panic = spawn(1).join().unwrap_err();
    assert_eq!(panic.panic_message(), Some("boom in a process"));
    let failed = spawn(2).join().unwrap_err();
    assert_eq!(failed.to_string(), "worker failed: it failed");
}

fn garbage(_ctx: WorkerContext<(), u8>) {
    // A ring record of a kind that does not exist.
    hostile::commit_in_own_ring(&[hostile::header(0, 0, 9)]);
    std::thread::park();
}

#[test]
fn a_malformed_frame_from_a_child_is_its_error_and_never_the_parents() {
    let mut worker = Worker::<u8>::spawn(WorkerOptions::new().isolation(Process), garbage).unwrap();
    let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], "Online");
    assert!(events[1].starts_with("Error(Channel"), "{events:?}");
    assert_eq!(events[2], "Exit(1)");
}

fn hello(ctx: WorkerContext<(), u8>) {
    println!("hello from worker {}", ctx.thread_id());
    eprintln!("and to stderr");
}

#[test]
fn piped_stdout_and_stderr_are_readable_from_the_parent() {
    let options = WorkerOptions::new()
        .isolation(Process)
        .stdout(true)
        .stderr(true);
    let mut worker = Worker::<u8>::spawn(options, hello).unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    worker
        .take_stdout()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    worker
        .take_stderr()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(out, format!("hello from worker {}\n", worker.thread_id()));
    assert_eq!(err, "and to stderr\n");
    assert!(worker.take_stdout().is_none());
    assert_eq!(worker.join().unwrap(), 0);
}

fn count_up(ctx: WorkerContext<(), (), u64>) {
    let mut n = 0;
    while ctx.parent_port().post_message(n).is_ok() {
        n += 1;
    }
}

#[test]
fn terminate_while_the_child_posts_ends_it_and_keeps_what_arrived_in_order() {
    // Kill while sending: what arrived is a prefix 0, 1, 2, ... and the end is Exit(1),
    // whatever moment the terminate lands on (mid-frame included).
    for trial in 0..200 {
        let options = WorkerOptions::new()
            .isolation(Process)
            .terminate_grace(Duration::ZERO);
        let mut worker = Worker::<(), u64>::spawn(options, count_up).unwrap();
        let wanted = trial % 50;
        for expected in 0..wanted {
            assert_eq!(worker.recv(), Ok(expected), "trial {trial}");
        }
        worker.terminate();
        let mut next = wanted;
        let mut end = None;
        for event in worker.events() {
            match event {
                WorkerEvent::Message(n) => {
                    assert_eq!(n, next, "trial {trial}");
                    next += 1;
                }
                WorkerEvent::Exit(code) => end = Some(code),
                WorkerEvent::Online => {}
                WorkerEvent::Error(error) => panic!("trial {trial}: {error}"),
            }
        }
        assert_eq!(end, Some(1), "trial {trial}");
    }
}

#[test]
fn closing_the_port_while_the_child_posts_ends_it_cleanly() {
    // Close while posting: the child's posts fail once the close reaches it, and it
    // returns: code 0, every message that arrived in order.
    for trial in 0..100 {
        let worker =
            Worker::<(), u64>::spawn(WorkerOptions::new().isolation(Process), count_up).unwrap();
        assert_eq!(worker.recv(), Ok(0));
        worker.port().close();
        let mut next = 1;
        while let Ok(n) = worker.recv() {
            assert_eq!(n, next, "trial {trial}");
            next += 1;
        }
        assert_eq!(worker.join().unwrap(), 0, "trial {trial}");
    }
}

use std::sync::atomic::Ordering;
use worker_threads_shared::{SharedArrayBuffer, atomics};

const INCREMENTS: i32 = 100_000;

fn add_many(ctx: WorkerContext<SharedArrayBuffer, ()>) {
    let counter = &ctx.worker_data().as_i32()[0];
    for _ in 0..INCREMENTS {
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_shared_counter_incremented_by_main_and_two_process_workers_is_exact() {
    let sab = SharedArrayBuffer::new_cross_process(64);
    let spawn = || {
        let options = WorkerOptions::new()
            .worker_data(sab.clone())
            .isolation(Process);
        Worker::<()>::spawn(options, add_many).unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for _ in 0..INCREMENTS {
        sab.as_i32()[0].fetch_add(1, Ordering::SeqCst);
    }
    assert_eq!(a.join().unwrap(), 0);
    assert_eq!(b.join().unwrap(), 0);
    assert_eq!(sab.as_i32()[0].load(Ordering::SeqCst), 3 * INCREMENTS);
}

const ROUNDS: i32 = 2_000;

/// Turn-taking through one cell and nothing else: waits for odd values, writes even ones.
fn pong_by_futex(ctx: WorkerContext<SharedArrayBuffer, ()>) {
    let cell = &ctx.worker_data().as_i32()[0];
    for round in 0..ROUNDS {
        let mine = 2 * round + 1;
        while cell.load(Ordering::SeqCst) != mine {
            let _ = atomics::wait(cell, mine - 1, None);
        }
        cell.store(mine + 1, Ordering::SeqCst);
        atomics::notify(cell, 1);
    }
}

#[test]
fn wait_and_notify_work_between_processes() {
    // Main and a process worker take turns on one cell; a waiter the other process does
    // not wake (a private futex) would sleep forever here.
    let sab = SharedArrayBuffer::new_cross_process(4);
    let options = WorkerOptions::new()
        .worker_data(sab.clone())
        .isolation(Process);
    let worker = Worker::<()>::spawn(options, pong_by_futex).unwrap();
    let cell = &sab.as_i32()[0];
    for round in 0..ROUNDS {
        cell.store(2 * round + 1, Ordering::SeqCst);
        atomics::notify(cell, 1);
        let mine = 2 * round + 2;
        while cell.load(Ordering::SeqCst) != mine {
            let _ = atomics::wait(cell, mine - 1, None);
        }
    }
    assert_eq!(worker.join().unwrap(), 0);
    assert_eq!(cell.load(Ordering::SeqCst), 2 * ROUNDS);
}

fn keep_buffer(ctx: WorkerContext<(), SharedArrayBuffer, i32>) {
    for sab in ctx.parent_port().iter() {
        let cell = &sab.as_i32()[1];
        let seen = cell.fetch_add(1, Ordering::SeqCst);
        ctx.parent_port().post_message(seen).unwrap();
    }
}

#[test]
fn a_buffer_in_a_message_is_the_same_memory_on_the_other_side() {
    let worker = Worker::<SharedArrayBuffer, i32>::spawn(
        WorkerOptions::new().isolation(Process),
        keep_buffer,
    )
    .unwrap();
    let sab = SharedArrayBuffer::new_cross_process(8);
    sab.as_i32()[1].store(40, Ordering::SeqCst);
    worker.post_message(sab.clone()).unwrap();
    assert_eq!(worker.recv(), Ok(40));
    assert_eq!(sab.as_i32()[1].load(Ordering::SeqCst), 41);
    worker.port().close();
    assert_eq!(worker.join().unwrap(), 0);
}
