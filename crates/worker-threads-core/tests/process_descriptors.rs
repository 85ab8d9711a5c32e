//! Descriptors after many process workers and process functions, in a test binary of its
//! own: the count is the whole process's, so no other test may open or close descriptors
//! meanwhile (the tests here take turns on `ALONE`).
#![cfg(target_os = "linux")]

use std::sync::{Mutex, PoisonError, mpsc};

use worker_threads_channel::{MessageChannel, MessagePort};
use worker_threads_core::process::{CallError, ProcessFn};
use worker_threads_core::{Process, Worker, WorkerContext, WorkerOptions};

static ALONE: Mutex<()> = Mutex::new(());

worker_threads_core::process::test_support!();

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn quick(_ctx: WorkerContext<(), u8>) -> i32 {
    7
}

#[test]
fn a_thousand_process_workers_leave_no_descriptor_behind() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    // Warm up (lazily opened descriptors of the runtime), then count.
    Worker::<u8>::spawn(WorkerOptions::new().isolation(Process), quick)
        .unwrap()
        .join()
        .unwrap();
    let before = open_descriptors();
    for _ in 0..1_000 {
        let worker = Worker::<u8>::spawn(WorkerOptions::new().isolation(Process), quick).unwrap();
        assert_eq!(worker.join().unwrap(), 7);
    }
    assert_eq!(open_descriptors(), before);
}

/// Answers the number on each port it is sent with its double, then drops the port.
fn double_on_each_port(ctx: WorkerContext<(), MessagePort<u64>, ()>) {
    for port in ctx.parent_port().iter() {
        if let Ok(n) = port.recv() {
            let _ = port.post_message(n * 2);
        }
    }
}

#[test]
fn a_thousand_ports_over_one_process_worker_take_no_descriptor_each() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let before = open_descriptors();
    let worker = Worker::<MessagePort<u64>, ()>::spawn(
        WorkerOptions::new().isolation(Process),
        double_on_each_port,
    )
    .unwrap();
    let with_worker = open_descriptors();
    for n in 0..1_000 {
        let MessageChannel { port1, port2 } = MessageChannel::new();
        worker.post_message(port2).unwrap();
        port1.post_message(n).unwrap();
        assert_eq!(port1.recv(), Ok(n * 2));
        assert_eq!(open_descriptors(), with_worker, "port {n}");
    }
    worker.port().close();
    assert_eq!(worker.join().unwrap(), 0);
    assert_eq!(open_descriptors(), before);
}

fn threads() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line["Threads:".len()..].trim().parse().unwrap()
}

/// Takes 200 ports one by one, answering once on each and holding them all; reports its
/// thread count after the first and after the last, then waits for main's word.
fn hold_ports(ctx: WorkerContext<(), MessagePort<u64>, (u64, u64)>) {
    let mut held = Vec::new();
    let mut after_first = 0;
    for port in ctx.parent_port().iter().take(200) {
        let n = port.recv().unwrap();
        port.post_message(n * 2).unwrap();
        held.push(port);
        if held.len() == 1 {
            after_first = threads();
        }
    }
    ctx.parent_port()
        .post_message((after_first, threads()))
        .unwrap();
    let _ = ctx.parent_port().recv();
}

#[test]
fn two_hundred_ports_open_at_once_cost_no_thread_each() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let worker = Worker::<MessagePort<u64>, (u64, u64)>::spawn(
        WorkerOptions::new().isolation(Process),
        hold_ports,
    )
    .unwrap();
    let mut held = Vec::new();
    let mut after_first = 0;
    for n in 0..200 {
        let MessageChannel { port1, port2 } = MessageChannel::new();
        worker.post_message(port2).unwrap();
        port1.post_message(n).unwrap();
        assert_eq!(port1.recv(), Ok(n * 2));
        held.push(port1);
        if n == 0 {
            after_first = threads();
        }
    }
    // One relay thread a side carries them all: 200 open ports cost what one does.
    assert_eq!(threads(), after_first, "here");
    let (child_first, child_last) = worker.recv().unwrap();
    assert_eq!(child_last, child_first, "in the worker");
    drop(held);
    worker.post_message(MessageChannel::new().port1).unwrap();
    worker.port().close();
    assert_eq!(worker.join().unwrap(), 0);
}

/// 0: double it; 1: spin forever.
fn double_or_spin((spin, n): (bool, u64)) -> u64 {
    #[allow(clippy::empty_loop)]
    if spin {
        loop {}
    }
    n * 2
}

#[test]
fn dropped_process_functions_are_killed_and_reaped_leaving_no_descriptor_behind() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    drop(ProcessFn::<(bool, u64), u64>::spawn(double_or_spin).unwrap());
    let before = open_descriptors();
    for n in 0..100 {
        let mut served = ProcessFn::<(bool, u64), u64>::spawn(double_or_spin).unwrap();
        assert_eq!(served.call(&(false, n)), Ok(n * 2));
        drop(served);
    }
    // One stuck in a call: its killer ends the call, and dropping it does not wait.
    let mut stuck = ProcessFn::<(bool, u64), u64>::spawn(double_or_spin).unwrap();
    let killer = stuck.killer();
    let (started_tx, started) = mpsc::channel();
    let caller = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        let result = stuck.call(&(true, 0));
        (result, stuck)
    });
    started.recv().unwrap();
    killer.kill();
    let (result, stuck) = caller.join().unwrap();
    assert!(matches!(result, Err(CallError::Ended(ended)) if ended.signal == Some(9)));
    // The killer holds the process's pidfd: it goes with the last of them.
    drop((stuck, killer));
    assert_eq!(open_descriptors(), before);
}

/// Posts 0, 1, 2, ... until the port closes, answering each message from main with its
/// double between posts.
fn post_forever(ctx: WorkerContext<(), u64>) {
    let mut n = 0;
    loop {
        while let Ok(got) = ctx.parent_port().try_recv() {
            if ctx.parent_port().post_message(got * 2).is_err() {
                return;
            }
        }
        if ctx.parent_port().post_message(n).is_err() {
            return;
        }
        n += 1;
    }
}

/// The rings' memfds this process maps.
fn mapped_rings() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|l| l.contains("worker-threads-rings"))
        .count()
}

#[test]
fn a_thousand_process_workers_killed_while_both_sides_send_leave_nothing_behind() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    Worker::<u8>::spawn(WorkerOptions::new().isolation(Process), quick)
        .unwrap()
        .join()
        .unwrap();
    let (fds, maps, threads_before) = (open_descriptors(), mapped_rings(), threads());
    for trial in 0..1_000u64 {
        let worker =
            Worker::<u64, u64>::spawn(WorkerOptions::new().isolation(Process), post_forever)
                .unwrap();
        // Read a different number of its posts each trial (the ring fills meanwhile, so
        // some trials kill it while it waits for room), posting to it as well.
        let mut next = 0;
        for _ in 0..trial % 40 {
            worker.post_message(1_000_000 + trial).unwrap();
            loop {
                let got = worker.recv().unwrap();
                if got == 2 * (1_000_000 + trial) {
                    continue;
                }
                assert_eq!(got, next, "trial {trial}: its posts in order");
                next += 1;
                break;
            }
        }
        let pid = rustix::process::Pid::from_raw(worker.pid().unwrap() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
        match worker.join() {
            Err(worker_threads_core::WorkerError::Crashed { signal }) => {
                assert_eq!(signal, 9, "trial {trial}");
            }
            other => panic!("trial {trial}: expected a crash, got {other:?}"),
        }
    }
    assert_eq!(open_descriptors(), fds, "descriptors left behind");
    assert_eq!(mapped_rings(), maps, "rings left mapped");
    assert_eq!(threads(), threads_before, "threads left waiting");
}

/// A process worker that echoes on its parent port until it closes.
fn echo(ctx: WorkerContext<(), u64>) {
    for v in ctx.parent_port().iter() {
        if ctx.parent_port().post_message(v).is_err() {
            break;
        }
    }
}

/// Spawns a process worker of its own (`echo`), exchanges with it, tells main its pid,
/// then keeps posting to it until it is killed.
fn parent_of_echo(ctx: WorkerContext<(), (), u32>) {
    let child = Worker::<u64>::spawn(WorkerOptions::new().isolation(Process), echo).unwrap();
    child.post_message(7).unwrap();
    assert_eq!(child.recv().unwrap(), 7);
    ctx.parent_port()
        .post_message(child.pid().unwrap())
        .unwrap();
    let mut n = 0;
    while child.post_message(n).is_ok() {
        n += 1;
    }
}

#[test]
fn a_process_worker_whose_parent_is_killed_ends_and_is_not_left_asleep() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    for trial in 0..150 {
        let middle =
            Worker::<(), u32>::spawn(WorkerOptions::new().isolation(Process), parent_of_echo)
                .unwrap();
        let grandchild = middle.recv().unwrap();
        // Watch the grandchild before its parent dies (a pidfd is immune to pid reuse).
        let pid = rustix::process::Pid::from_raw(grandchild as i32).unwrap();
        let watch = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .expect("the grandchild is alive while its parent is");
        let middle_pid = rustix::process::Pid::from_raw(middle.pid().unwrap() as i32).unwrap();
        rustix::process::kill_process(middle_pid, rustix::process::Signal::KILL).unwrap();
        assert!(
            matches!(
                middle.join(),
                Err(worker_threads_core::WorkerError::Crashed { signal: 9 })
            ),
            "trial {trial}"
        );
        // The grandchild sees its parent hang up (its reader thread was asleep on the ring
        // the dead parent wrote) and ends: its pidfd becomes readable. No timeout: a
        // grandchild left asleep hangs the test.
        let mut fds = [rustix::event::PollFd::new(
            &watch,
            rustix::event::PollFlags::IN,
        )];
        rustix::event::poll(&mut fds, None).unwrap();
    }
}
