//! The Rust side of each comparison: `compare case NAME N` runs one and prints
//! `{"value": ...}` on one line. Each runs in a process of its own (memory is per process).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use anyhow::{Context, bail};
use worker_threads::{
    MessageChannel, MessagePort, Process, SharedArrayBuffer, Worker, WorkerContext, WorkerOptions,
    atomics,
};

const BUFFER: usize = 64 * 1024 * 1024;

/// Every case `run` knows.
pub(crate) const NAMES: &[&str] = &[
    "rt_worker",
    "rt_flume",
    "rt_crossbeam",
    "tput_ours",
    "tput_flume",
    "tput_crossbeam",
    "tput_ours_apart",
    "tput_crossbeam_apart",
    "buf_move",
    "buf_clone",
    "spawn_worker",
    "spawn_thread",
    "spawn_thread_port",
    "idle_worker",
    "idle_thread",
    "atomics_ours",
    #[cfg(target_os = "linux")]
    "atomics_futex",
    "sqrt_seed",
    "sqrt_map",
    "sqrt_threadpool",
    "sqrt_rayon",
    "sqrt_ceiling",
    "ipc_cluster",
    "spawn_process",
    "spawn_exec",
    "rt_process",
    "tput_process",
    "rt_process_1mib",
    "rt_process_port",
    "rt_process_pair",
    "atomics_process",
    "sab_process",
    "async_pool",
    "async_pool_bounded",
    "sqrt_process_map",
    "rt_process_pool",
    "rt_process_fn",
    #[cfg(target_os = "linux")]
    "rt_ipc_channel",
    #[cfg(target_os = "linux")]
    "rt_ipc_bytes_1mib",
    "remote_map",
    "remote_run",
    "remote_rtt",
    "nats_rr",
    "js_ceiling",
    "js_rtt",
    "remote_loop",
    "js_serial",
    "remote_recovery_first",
    "remote_recovery_last",
    "remote_failover_p99",
    "remote_failover_max",
];

/// The argument that makes this binary the echoing child of `rt_ipc_channel`.
#[cfg(target_os = "linux")]
pub(crate) const IPC_CHANNEL_CHILD: &str = "--ipc-channel-child";

/// The argument that makes this binary the echoing child of `rt_ipc_bytes_1mib`.
#[cfg(target_os = "linux")]
pub(crate) const IPC_BYTES_CHILD: &str = "--ipc-bytes-child";

/// The message of the 1 MiB round trips.
const MIB: usize = 1 << 20;

/// The argument that makes this binary the bare child of `spawn_exec`.
pub(crate) const EXEC_CHILD: &str = "--exec-child";

/// Runs case `name` with size `n` and prints its value.
pub(crate) fn run(name: &str, n: u64) -> anyhow::Result<()> {
    let value = match name {
        "rt_worker" => rt_worker(n)?,
        "rt_flume" => rt_flume(n)?,
        "rt_crossbeam" => rt_crossbeam(n)?,
        "tput_ours" => tput_ours(n, Shape::Racing)?,
        "tput_flume" => tput_flume(n)?,
        "tput_crossbeam" => tput_crossbeam(n, Shape::Racing)?,
        "tput_ours_apart" => tput_ours(n, Shape::Apart)?,
        "tput_crossbeam_apart" => tput_crossbeam(n, Shape::Apart)?,
        "buf_move" => buffer(n, false)?,
        "buf_clone" => buffer(n, true)?,
        "spawn_worker" => spawn_worker(n)?,
        "spawn_thread" => spawn_thread(n)?,
        "spawn_thread_port" => spawn_thread_port(n)?,
        "idle_worker" => idle_worker(n)?,
        "idle_thread" => idle_thread(n)?,
        "atomics_ours" => atomics_ours(n),
        #[cfg(target_os = "linux")]
        "atomics_futex" => atomics_futex(n),
        "sqrt_seed" => sqrt_seed(n)?,
        "sqrt_map" => sqrt_map(n)?,
        "sqrt_threadpool" => sqrt_threadpool(n)?,
        "sqrt_rayon" => sqrt_rayon(n)?,
        "sqrt_ceiling" => sqrt_ceiling(n)?,
        "ipc_cluster" => ipc_cluster(n)?,
        "spawn_process" => spawn_process(n)?,
        "spawn_exec" => spawn_exec(n)?,
        "rt_process" => rt_process(n)?,
        "tput_process" => tput_process(n)?,
        "rt_process_1mib" => rt_process_1mib(n)?,
        "rt_process_port" => rt_process_port(n)?,
        "rt_process_pair" => rt_process_pair(n)?,
        "atomics_process" => atomics_process(n)?,
        "sab_process" => sab_process(n)?,
        "async_pool" => async_pool(n)?,
        "async_pool_bounded" => async_pool_bounded(n)?,
        "sqrt_process_map" => sqrt_process_map(n)?,
        "rt_process_pool" => rt_process_pool(n)?,
        "rt_process_fn" => rt_process_fn(n)?,
        #[cfg(target_os = "linux")]
        "rt_ipc_channel" => rt_ipc_channel(n)?,
        #[cfg(target_os = "linux")]
        "rt_ipc_bytes_1mib" => rt_ipc_bytes_1mib(n)?,
        "remote_map" => crate::remote::remote_map(n)?,
        "remote_run" => crate::remote::remote_run(n)?,
        "remote_rtt" => crate::remote::remote_rtt(n)?,
        "nats_rr" => crate::remote::nats_rr(n)?,
        "js_ceiling" => crate::remote::js_ceiling(n)?,
        "js_rtt" => crate::remote::js_rtt(n)?,
        "remote_loop" => crate::remote::remote_loop(n)?,
        "js_serial" => crate::remote::js_serial(n)?,
        "remote_recovery_first" => crate::faults::recovery(n)?.0,
        "remote_recovery_last" => crate::faults::recovery(n)?.1,
        "remote_failover_p99" => crate::faults::failover(n)?.0,
        "remote_failover_max" => crate::faults::failover(n)?.1,
        other => bail!("no case {other}"),
    };
    println!("{}", serde_json::json!({ "value": value }));
    Ok(())
}

fn per_op_us(start: Instant, n: u64) -> f64 {
    start.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64
}

fn per_sec_millions(start: Instant, n: u64) -> f64 {
    n as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// `ping_pong`: main <-> worker over the parent port; microseconds per round trip.
fn rt_worker(n: u64) -> anyhow::Result<f64> {
    let worker: Worker<u64> = Worker::spawn(WorkerOptions::new(), |ctx| {
        let port = ctx.parent_port();
        for v in port.iter() {
            if port.post_message(v).is_err() {
                break;
            }
        }
    })?;
    let start = Instant::now();
    for i in 0..n {
        worker.post_message(i)?;
        anyhow::ensure!(worker.recv()? == i, "out of order");
    }
    let us = per_op_us(start, n);
    worker.port().close();
    worker.join()?;
    Ok(us)
}

/// An echo thread over two channels of any kind, timed from the main side.
fn rt_echo<S, R>(
    n: u64,
    send: S,
    recv: R,
    echo: impl FnOnce() + Send + 'static,
) -> anyhow::Result<f64>
where
    S: Fn(u64) -> bool,
    R: Fn() -> Option<u64>,
{
    let peer = thread::spawn(echo);
    let start = Instant::now();
    for i in 0..n {
        anyhow::ensure!(send(i) && recv() == Some(i), "echo lost a message");
    }
    let us = per_op_us(start, n);
    drop((send, recv));
    peer.join()
        .map_err(|_| anyhow::anyhow!("echo thread panicked"))?;
    Ok(us)
}

fn rt_flume(n: u64) -> anyhow::Result<f64> {
    let (a_tx, a_rx) = flume::unbounded::<u64>();
    let (b_tx, b_rx) = flume::unbounded::<u64>();
    rt_echo(
        n,
        move |v| a_tx.send(v).is_ok(),
        move || b_rx.recv().ok(),
        move || {
            for v in a_rx.iter() {
                let _ = b_tx.send(v);
            }
        },
    )
}

fn rt_crossbeam(n: u64) -> anyhow::Result<f64> {
    let (a_tx, a_rx) = crossbeam_channel::unbounded::<u64>();
    let (b_tx, b_rx) = crossbeam_channel::unbounded::<u64>();
    rt_echo(
        n,
        move |v| a_tx.send(v).is_ok(),
        move || b_rx.recv().ok(),
        move || {
            for v in a_rx.iter() {
                let _ = b_tx.send(v);
            }
        },
    )
}

/// How the one-way cases overlap their two sides.
#[derive(Clone, Copy)]
enum Shape {
    /// `n` posts while another thread receives them.
    Racing,
    /// `n` posts, and only once they are all in the queue (and the sender is gone), `n`
    /// receives on another thread. Racing, the consumer either trails the producer closely
    /// (each message's slot and the queue's tail bounce between the cores) or falls behind
    /// by more than one of the queue's blocks (it stops reading the tail), and which one a
    /// run settles into decides its speed more than the port does; apart, each side pays
    /// only its own cost.
    Apart,
}

/// One-way: `n` posts received on another thread, shaped by `shape`; millions of
/// messages per second (over both phases, for `Apart`).
fn tput(
    n: u64,
    shape: Shape,
    send: impl Fn(u64),
    recv: impl FnOnce(u64) -> u64 + Send + 'static,
) -> anyhow::Result<f64> {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let start = Instant::now();
    let consumer = thread::spawn(move || {
        if matches!(shape, Shape::Apart) {
            go_rx.recv().ok()?;
        }
        let start = Instant::now();
        Some((recv(n), start.elapsed()))
    });
    let posts_start = Instant::now();
    for i in 0..n {
        send(i);
    }
    let posting = posts_start.elapsed();
    drop(send);
    // Racing, the consumer may be done and gone already; apart, `join` says if it is.
    let _ = go_tx.send(());
    let (sum, receiving) = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("consumer panicked"))?
        .context("the consumer was not started")?;
    let elapsed = match shape {
        Shape::Racing => start.elapsed(),
        Shape::Apart => posting + receiving,
    };
    anyhow::ensure!(sum == n * n.saturating_sub(1) / 2, "lost messages");
    Ok(n as f64 / elapsed.as_secs_f64() / 1e6)
}

fn tput_ours(n: u64, shape: Shape) -> anyhow::Result<f64> {
    let MessageChannel { port1, port2 } = MessageChannel::<u64>::new();
    tput(
        n,
        shape,
        move |v| {
            let _ = port1.post_message(v);
        },
        move |n| (0..n).map_while(|_| port2.recv().ok()).sum(),
    )
}

fn tput_flume(n: u64) -> anyhow::Result<f64> {
    let (tx, rx) = flume::unbounded::<u64>();
    tput(
        n,
        Shape::Racing,
        move |v| {
            let _ = tx.send(v);
        },
        move |n| (0..n).map_while(|_| rx.recv().ok()).sum(),
    )
}

fn tput_crossbeam(n: u64, shape: Shape) -> anyhow::Result<f64> {
    let (tx, rx) = crossbeam_channel::unbounded::<u64>();
    tput(
        n,
        shape,
        move |v| {
            let _ = tx.send(v);
        },
        move |n| (0..n).map_while(|_| rx.recv().ok()).sum(),
    )
}

/// A 64 MiB buffer to a worker and back, `reps` times: moved (Node's transfer), or cloned
/// on each side (Node's structured clone); milliseconds per round trip.
fn buffer(reps: u64, clone: bool) -> anyhow::Result<f64> {
    let worker = Worker::<Vec<u8>>::spawn(WorkerOptions::new(), move |ctx| {
        let port = ctx.parent_port();
        for buf in port.iter() {
            let back = if clone { buf.clone() } else { buf };
            if port.post_message(back).is_err() {
                break;
            }
        }
    })?;
    let mut buf = vec![7u8; BUFFER];
    let start = Instant::now();
    for _ in 0..reps {
        let out = if clone { buf.clone() } else { buf };
        worker.post_message(out)?;
        buf = worker.recv()?;
        anyhow::ensure!(buf.len() == BUFFER, "wrong size");
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / reps.max(1) as f64;
    worker.port().close();
    worker.join()?;
    Ok(ms)
}

/// Spawn to first message, one at a time; microseconds per worker.
/// The median of `n` samples of `sample` (in seconds), in microseconds: one slow spawn
/// (a VM hiccup) cannot move it, where it moved the mean of 50 by 4x.
fn median_us(n: u64, mut sample: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    let mut samples = (0..n.max(1))
        .map(|_| sample())
        .collect::<anyhow::Result<Vec<f64>>>()?;
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2] * 1e6)
}

fn spawn_worker(n: u64) -> anyhow::Result<f64> {
    median_us(n, || {
        let start = Instant::now();
        let worker: Worker<(), u8> = Worker::spawn(WorkerOptions::new(), |ctx| {
            let _ = ctx.parent_port().post_message(1);
        })?;
        worker.recv()?;
        let elapsed = start.elapsed().as_secs_f64();
        worker.join()?;
        Ok(elapsed)
    })
}

/// A process worker's entry for `spawn_process`: one message, then end.
fn say_one(ctx: WorkerContext<(), (), u8>) {
    let _ = ctx.parent_port().post_message(1);
}

/// `Worker::spawn` with `isolation(Process)`, to its first message: median microseconds.
fn spawn_process(n: u64) -> anyhow::Result<f64> {
    median_us(n, || {
        let start = Instant::now();
        let worker: Worker<(), u8> =
            Worker::spawn(WorkerOptions::new().isolation(Process), say_one)?;
        worker.recv()?;
        let elapsed = start.elapsed().as_secs_f64();
        worker.join()?;
        Ok(elapsed)
    })
}

/// The bare child of `spawn_exec`: one byte on stdout.
pub(crate) fn exec_child() {
    use std::io::Write;
    let _ = std::io::stdout().write_all(b"1");
}

/// A bare fork+exec of this same binary, to the first byte it writes: the floor under
/// `spawn_process` (which adds the channel, the start frame and the worker's threads).
fn spawn_exec(n: u64) -> anyhow::Result<f64> {
    use std::io::Read;
    let exe = std::env::current_exe()?;
    median_us(n, || {
        let start = Instant::now();
        let mut child = std::process::Command::new(&exe)
            .arg(EXEC_CHILD)
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut byte = [0u8; 1];
        child
            .stdout
            .take()
            .context("piped stdout")?
            .read_exact(&mut byte)?;
        let elapsed = start.elapsed().as_secs_f64();
        child.wait()?;
        Ok(elapsed)
    })
}

/// A process worker's entry for `rt_process`: echo until the port closes.
fn echo_u64(ctx: WorkerContext<(), u64>) {
    let port = ctx.parent_port();
    for v in port.iter() {
        if port.post_message(v).is_err() {
            break;
        }
    }
}

/// Round trip over a process worker's parent port: microseconds.
fn rt_process(n: u64) -> anyhow::Result<f64> {
    let worker: Worker<u64> = Worker::spawn(WorkerOptions::new().isolation(Process), echo_u64)?;
    worker.post_message(u64::MAX)?;
    anyhow::ensure!(worker.recv()? == u64::MAX, "no echo");
    let start = Instant::now();
    for i in 0..n {
        worker.post_message(i)?;
        anyhow::ensure!(worker.recv()? == i, "out of order");
    }
    let us = per_op_us(start, n);
    worker.port().close();
    worker.join()?;
    Ok(us)
}

/// Counts what the parent posts and sums it; posts the sum once the parent's `u64::MAX`
/// (the end) comes.
fn sum_until_max(ctx: WorkerContext<(), u64>) {
    let port = ctx.parent_port();
    let mut sum = 0u64;
    for v in port.iter() {
        if v == u64::MAX {
            let _ = port.post_message(sum);
            break;
        }
        sum = sum.wrapping_add(v);
    }
}

/// One-way throughput into a process worker: `n` posts, then the worker's sum of them
/// (checked). Millions of messages per second, from the first post to the sum.
fn tput_process(n: u64) -> anyhow::Result<f64> {
    let worker: Worker<u64> =
        Worker::spawn(WorkerOptions::new().isolation(Process), sum_until_max)?;
    let start = Instant::now();
    for i in 0..n {
        worker.post_message(i)?;
    }
    worker.post_message(u64::MAX)?;
    let sum = worker.recv()?;
    let rate = per_sec_millions(start, n);
    anyhow::ensure!(
        sum == n * n.saturating_sub(1) / 2,
        "the worker's sum is {sum}"
    );
    worker.join()?;
    Ok(rate)
}

/// Echoes byte buffers until the port closes.
fn echo_bytes(ctx: WorkerContext<(), serde_bytes::ByteBuf>) {
    let port = ctx.parent_port();
    for v in port.iter() {
        if port.post_message(v).is_err() {
            break;
        }
    }
}

/// A 1 MiB message there and back through a process worker's parent port (bytes, as
/// `serde_bytes` encodes them): microseconds per round trip.
fn rt_process_1mib(n: u64) -> anyhow::Result<f64> {
    let worker: Worker<serde_bytes::ByteBuf> =
        Worker::spawn(WorkerOptions::new().isolation(Process), echo_bytes)?;
    let body: Vec<u8> = (0..MIB).map(|i| i as u8).collect();
    let mut message = serde_bytes::ByteBuf::from(body.clone());
    let start = Instant::now();
    for _ in 0..n {
        worker.post_message(message)?;
        message = worker.recv()?;
    }
    let us = per_op_us(start, n);
    anyhow::ensure!(message.as_slice() == body.as_slice(), "the bytes changed");
    worker.port().close();
    worker.join()?;
    Ok(us)
}

/// A process worker's entry for `rt_process_port` and the answering side of
/// `rt_process_pair`: echo on the port in its data until it closes.
fn echo_on_data_port(ctx: WorkerContext<MessagePort<u64>, ()>) {
    let port = ctx.worker_data();
    for v in port.iter() {
        if port.post_message(v).is_err() {
            break;
        }
    }
}

/// Round trip over a `MessagePort` given to a process worker in its data (relayed over the
/// worker's channel by a thread on each side): microseconds.
fn rt_process_port(n: u64) -> anyhow::Result<f64> {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let options = WorkerOptions::new().worker_data(port2).isolation(Process);
    let worker = Worker::<()>::spawn(options, echo_on_data_port)?;
    port1.post_message(u64::MAX)?;
    anyhow::ensure!(port1.recv()? == u64::MAX, "no echo");
    let start = Instant::now();
    for i in 0..n {
        port1.post_message(i)?;
        anyhow::ensure!(port1.recv()? == i, "out of order");
    }
    let us = per_op_us(start, n);
    drop(port1);
    worker.join()?;
    Ok(us)
}

/// The asking side of `rt_process_pair`: `n` round trips on the port in its data, then
/// the microseconds each took, to main.
fn ask_on_data_port(ctx: WorkerContext<(MessagePort<u64>, u64), (), f64>) {
    let (port, n) = ctx.worker_data();
    let _ = port.post_message(u64::MAX);
    let _ = port.recv();
    let start = Instant::now();
    for i in 0..*n {
        if port.post_message(i).is_err() || port.recv() != Ok(i) {
            return;
        }
    }
    let _ = ctx.parent_port().post_message(per_op_us(start, *n));
}

/// Round trip between two process workers over a port pair, each end in one worker's
/// data (both relayed through this process): microseconds.
fn rt_process_pair(n: u64) -> anyhow::Result<f64> {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let echo = Worker::<()>::spawn(
        WorkerOptions::new().worker_data(port2).isolation(Process),
        echo_on_data_port,
    )?;
    let ask = Worker::<(), f64>::spawn(
        WorkerOptions::new()
            .worker_data((port1, n))
            .isolation(Process),
        ask_on_data_port,
    )?;
    let us = ask.recv()?;
    ask.join()?;
    echo.join()?;
    Ok(us)
}

fn spawn_thread(n: u64) -> anyhow::Result<f64> {
    median_us(n, || {
        let start = Instant::now();
        let (tx, rx) = mpsc::channel();
        let handle = thread::spawn(move || tx.send(1u8));
        rx.recv()?;
        let elapsed = start.elapsed().as_secs_f64();
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("thread panicked"))??;
        Ok(elapsed)
    })
}

/// `spawn_thread` with a `MessageChannel` in place of `mpsc`: what a worker's spawn
/// costs over a bare thread apart from its channel (`spawn_worker` against this), and what
/// the channel's receive costs over std's (this against `spawn_thread`).
fn spawn_thread_port(n: u64) -> anyhow::Result<f64> {
    median_us(n, || {
        let start = Instant::now();
        let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
        let handle = thread::spawn(move || port2.post_message(1u8).is_ok());
        port1.recv()?;
        let elapsed = start.elapsed().as_secs_f64();
        let posted = handle
            .join()
            .map_err(|_| anyhow::anyhow!("thread panicked"))?;
        anyhow::ensure!(posted, "the post failed");
        Ok(elapsed)
    })
}

fn rss_kib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    line.split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .context("bad VmRSS")
}

/// RSS per idle worker, `n` of them; KiB.
fn idle_worker(n: u64) -> anyhow::Result<f64> {
    let before = rss_kib()?;
    let workers = (0..n)
        .map(|_| {
            Worker::spawn(WorkerOptions::new(), |ctx| {
                let _ = ctx.parent_port().post_message(());
                let _ = ctx.parent_port().recv();
            })
        })
        .collect::<Result<Vec<Worker<()>>, _>>()?;
    for worker in &workers {
        worker.recv()?;
    }
    let per = (rss_kib()? - before) / n.max(1) as f64;
    for worker in workers {
        worker.port().close();
        worker.join()?;
    }
    Ok(per)
}

fn idle_thread(n: u64) -> anyhow::Result<f64> {
    let before = rss_kib()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut stops = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..n {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let ready_tx = ready_tx.clone();
        handles.push(thread::spawn(move || {
            let _ = ready_tx.send(());
            let _ = stop_rx.recv();
        }));
        stops.push(stop_tx);
    }
    for _ in 0..n {
        ready_rx.recv()?;
    }
    let per = (rss_kib()? - before) / n.max(1) as f64;
    drop(stops);
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("thread panicked"))?;
    }
    Ok(per)
}

/// Waits until the counter is `2 * round + parity`, then moves it on, `rounds` times.
fn play(
    turn: &AtomicI32,
    rounds: i32,
    parity: i32,
    wait: &dyn Fn(&AtomicI32, i32),
    wake: &dyn Fn(&AtomicI32),
) {
    for round in 0..rounds {
        let mine = 2 * round + parity;
        loop {
            let now = turn.load(Ordering::SeqCst);
            if now == mine {
                break;
            }
            wait(turn, now);
        }
        turn.store(mine + 1, Ordering::SeqCst);
        wake(turn);
    }
}

fn ping_pong(n: u64, wait: fn(&AtomicI32, i32), wake: fn(&AtomicI32)) -> f64 {
    let rounds = i32::try_from(n).unwrap_or(i32::MAX / 2);
    let sab = SharedArrayBuffer::new(4);
    let other = sab.clone();
    let peer = thread::spawn(move || play(&other.as_i32()[0], rounds, 1, &wait, &wake));
    let start = Instant::now();
    play(&sab.as_i32()[0], rounds, 0, &wait, &wake);
    let turn = &sab.as_i32()[0];
    while turn.load(Ordering::SeqCst) != 2 * rounds {
        wait(turn, turn.load(Ordering::SeqCst));
    }
    let us = per_op_us(start, n);
    let _ = peer.join();
    us
}

fn atomics_ours(n: u64) -> f64 {
    ping_pong(
        n,
        |cell, seen| {
            atomics::wait(cell, seen, None);
        },
        |cell| {
            atomics::notify(cell, 1);
        },
    )
}

/// `n` tasks that each await a 10 ms timer, through an async pool (2 threads, 64 tasks
/// each, an unbounded queue as piscina's default): milliseconds for all of them.
fn async_pool(n: u64) -> anyhow::Result<f64> {
    async_pool_with(n, worker_threads::MaxQueue::Unbounded)
}

/// `async_pool` with the queue's default bound (`MaxQueue::Auto`), submitting with
/// `run_wait`: what a user who sets nothing gets.
fn async_pool_bounded(n: u64) -> anyhow::Result<f64> {
    async_pool_with(n, worker_threads::MaxQueue::Auto)
}

fn async_pool_with(n: u64, max_queue: worker_threads::MaxQueue) -> anyhow::Result<f64> {
    let pool = worker_threads::Pool::builder()
        .max_threads(2)
        .min_threads(2)
        .max_queue(max_queue)
        .concurrent_tasks_per_worker(64)
        .build_async(|i: u64| async move {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            i
        })?;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        handles.push(pool.run_wait(i).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    for (i, handle) in handles.into_iter().enumerate() {
        anyhow::ensure!(handle.join()? == i as u64, "wrong result");
    }
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// The square root of the Node chapter's pool, as a `fn` for a process pool.
fn square_root(i: u64) -> f64 {
    (i as f64).sqrt()
}

/// The Node chapter's `n` square roots through a process pool's `map` (items in chunks,
/// each chunk one round trip to a worker process): millions of tasks per second.
fn sqrt_process_map(n: u64) -> anyhow::Result<f64> {
    let pool = worker_threads::Pool::builder()
        .isolation(Process)
        .build(square_root)?;
    let start = Instant::now();
    let mut sum = 0.0;
    for root in pool.map(0..n) {
        sum += root?;
    }
    let rate = per_sec_millions(start, n);
    anyhow::ensure!(sum > 0.0 || n < 2, "no work done");
    pool.close();
    Ok(rate)
}

/// One task at a time through a process pool (`run` then `join`): microseconds per task.
fn rt_process_pool(n: u64) -> anyhow::Result<f64> {
    let pool = worker_threads::Pool::builder()
        .max_threads(1)
        .isolation(Process)
        .build(square_root)?;
    pool.run(0)?.join()?; // the process is started
    let start = Instant::now();
    for i in 0..n {
        let root = pool.run(i)?.join()?;
        anyhow::ensure!(root == (i as f64).sqrt(), "wrong root");
    }
    let us = per_op_us(start, n);
    pool.close();
    Ok(us)
}

/// One call at a time to a `ProcessFn` (the process pool's runner, without the pool's
/// hand-off to its thread): microseconds per call.
fn rt_process_fn(n: u64) -> anyhow::Result<f64> {
    let mut served = worker_threads::process::ProcessFn::spawn(square_root)?;
    served.call(&0)?; // the process is started
    let start = Instant::now();
    for i in 0..n {
        let root = served.call(&i)?;
        anyhow::ensure!(root == (i as f64).sqrt(), "wrong root");
    }
    let us = per_op_us(start, n);
    served.close();
    Ok(us)
}

/// The same round trip as `rt_process` over the `ipc-channel` crate: a child process
/// (this binary) echoes `u64`s on a pair of `ipc::channel`s it sends back through a
/// one-shot server. Microseconds per round trip.
#[cfg(target_os = "linux")]
fn rt_ipc_channel(n: u64) -> anyhow::Result<f64> {
    use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};
    type Pair = (IpcSender<u64>, IpcReceiver<u64>);
    let (server, name) = IpcOneShotServer::<Pair>::new()?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([IPC_CHANNEL_CHILD, &name])
        .spawn()?;
    let (_, (to_child, from_child)) = server.accept()?;
    to_child.send(u64::MAX)?;
    anyhow::ensure!(from_child.recv()? == u64::MAX, "no echo");
    let start = Instant::now();
    for i in 0..n {
        to_child.send(i)?;
        anyhow::ensure!(from_child.recv()? == i, "out of order");
    }
    let us = per_op_us(start, n);
    drop(to_child); // the child's receive fails: it exits
    child.wait()?;
    Ok(us)
}

/// `rt_process_1mib` over `ipc-channel`'s byte channels (`IpcBytesSender`, its fastest
/// path for bytes): a child (this binary) echoes 1 MiB. Microseconds per round trip.
#[cfg(target_os = "linux")]
fn rt_ipc_bytes_1mib(n: u64) -> anyhow::Result<f64> {
    use ipc_channel::ipc::{IpcBytesReceiver, IpcBytesSender, IpcOneShotServer};
    type Pair = (IpcBytesSender, IpcBytesReceiver);
    let (server, name) = IpcOneShotServer::<Pair>::new()?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([IPC_BYTES_CHILD, &name])
        .spawn()?;
    let (_, (to_child, from_child)) = server.accept()?;
    let body: Vec<u8> = (0..MIB).map(|i| i as u8).collect();
    let mut message = body.clone();
    let start = Instant::now();
    for _ in 0..n {
        to_child.send(&message)?;
        message = from_child.recv()?;
    }
    let us = per_op_us(start, n);
    anyhow::ensure!(message == body, "the bytes changed");
    drop(to_child);
    child.wait()?;
    Ok(us)
}

/// The child of `rt_ipc_bytes_1mib`: echoes bytes until the parent hangs up.
#[cfg(target_os = "linux")]
pub(crate) fn ipc_bytes_child() -> anyhow::Result<()> {
    use ipc_channel::ipc::{self, IpcBytesSender, IpcSender};
    let name = std::env::args()
        .nth(2)
        .context("the one-shot server's name")?;
    let bootstrap: IpcSender<(IpcBytesSender, ipc::IpcBytesReceiver)> = IpcSender::connect(name)?;
    let (to_child, from_parent) = ipc::bytes_channel()?;
    let (to_parent, from_child) = ipc::bytes_channel()?;
    bootstrap.send((to_child, from_child))?;
    while let Ok(v) = from_parent.recv() {
        if to_parent.send(&v).is_err() {
            break;
        }
    }
    Ok(())
}

/// The child of `rt_ipc_channel`: echoes until the parent hangs up.
#[cfg(target_os = "linux")]
pub(crate) fn ipc_channel_child() -> anyhow::Result<()> {
    use ipc_channel::ipc::{self, IpcSender};
    let name = std::env::args()
        .nth(2)
        .context("the one-shot server's name")?;
    let bootstrap: IpcSender<(IpcSender<u64>, ipc::IpcReceiver<u64>)> = IpcSender::connect(name)?;
    let (to_child, from_parent) = ipc::channel::<u64>()?;
    let (to_parent, from_child) = ipc::channel::<u64>()?;
    bootstrap.send((to_child, from_child))?;
    while let Ok(v) = from_parent.recv() {
        if to_parent.send(v).is_err() {
            break;
        }
    }
    Ok(())
}

/// The process worker of `atomics_process`: plays the odd turns.
fn play_odd(ctx: WorkerContext<(SharedArrayBuffer, i32), ()>) {
    let (sab, rounds) = ctx.worker_data();
    play(
        &sab.as_i32()[0],
        *rounds,
        1,
        &|cell, seen| {
            atomics::wait(cell, seen, None);
        },
        &|cell| {
            atomics::notify(cell, 1);
        },
    );
}

/// `atomics_ours` with the other player in a process worker (a memfd buffer, a shared
/// futex): microseconds per round trip.
fn atomics_process(n: u64) -> anyhow::Result<f64> {
    let rounds = i32::try_from(n).unwrap_or(i32::MAX / 2);
    let sab = SharedArrayBuffer::new_cross_process(4);
    let options = WorkerOptions::new()
        .worker_data((sab.clone(), rounds))
        .isolation(Process);
    let worker: Worker<()> = Worker::spawn(options, play_odd)?;
    let start = Instant::now();
    let (wait, wake) = (
        |cell: &AtomicI32, seen| {
            atomics::wait(cell, seen, None);
        },
        |cell: &AtomicI32| {
            atomics::notify(cell, 1);
        },
    );
    play(&sab.as_i32()[0], rounds, 0, &wait, &wake);
    let turn = &sab.as_i32()[0];
    while turn.load(Ordering::SeqCst) != 2 * rounds {
        wait(turn, turn.load(Ordering::SeqCst));
    }
    let us = per_op_us(start, n);
    worker.join()?;
    Ok(us)
}

/// The process worker of `sab_process`: answers each buffer with its length.
fn measure_buffer(ctx: WorkerContext<(), SharedArrayBuffer, u64>) {
    for sab in ctx.parent_port().iter() {
        sab.as_u8()[0].store(1, Ordering::Relaxed);
        if ctx
            .parent_port()
            .post_message(sab.byte_len() as u64)
            .is_err()
        {
            break;
        }
    }
}

/// A 64 MiB `SharedArrayBuffer` handed to a process worker and answered: milliseconds
/// per hand-off (the memfd crosses, not the bytes).
fn sab_process(reps: u64) -> anyhow::Result<f64> {
    let worker: Worker<SharedArrayBuffer, u64> =
        Worker::spawn(WorkerOptions::new().isolation(Process), measure_buffer)?;
    let sab = SharedArrayBuffer::new_cross_process(BUFFER);
    let start = Instant::now();
    for _ in 0..reps {
        worker.post_message(sab.clone())?;
        anyhow::ensure!(worker.recv()? == BUFFER as u64, "wrong size");
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / reps.max(1) as f64;
    anyhow::ensure!(
        sab.as_u8()[0].load(Ordering::Relaxed) == 1,
        "not the same memory"
    );
    worker.port().close();
    worker.join()?;
    Ok(ms)
}

#[cfg(target_os = "linux")]
fn atomics_futex(n: u64) -> f64 {
    use rustix::thread::futex;
    fn as_u32(cell: &AtomicI32) -> &std::sync::atomic::AtomicU32 {
        let cell: *const AtomicI32 = cell;
        // SAFETY: `AtomicI32` and `AtomicU32` have the same size, alignment and bit
        // validity, and both sides only use atomic operations of that size.
        unsafe { &*cell.cast() }
    }
    ping_pong(
        n,
        |cell, seen| {
            let _ = futex::wait(as_u32(cell), futex::Flags::PRIVATE, seen as u32, None);
        },
        |cell| {
            let _ = futex::wake(as_u32(cell), futex::Flags::PRIVATE, 1);
        },
    )
}

fn sqrt_pool() -> anyhow::Result<worker_threads::Pool<u64, f64>> {
    Ok(worker_threads::Pool::builder().build(|i: u64| (i as f64).sqrt())?)
}

/// The Node chapter's loop: `queue_size() == max_queue()` -> `wait_drain()` -> `run(i)`; millions
/// of tasks per second.
fn sqrt_seed(n: u64) -> anyhow::Result<f64> {
    let pool = sqrt_pool()?;
    let start = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..n {
        if pool.queue_size() == pool.max_queue() {
            pool.wait_drain();
        }
        pending.push_back(pool.run(i)?);
        while pending
            .front()
            .is_some_and(|h: &worker_threads::TaskHandle<f64>| h.is_finished())
        {
            if let Some(handle) = pending.pop_front() {
                anyhow::ensure!(handle.join()?.is_finite(), "not a number");
            }
        }
    }
    for handle in pending {
        anyhow::ensure!(handle.join()?.is_finite(), "not a number");
    }
    Ok(per_sec_millions(start, n))
}

fn sqrt_map(n: u64) -> anyhow::Result<f64> {
    let pool = sqrt_pool()?;
    let start = Instant::now();
    for root in pool.map(0..n) {
        anyhow::ensure!(root?.is_finite(), "not a number");
    }
    Ok(per_sec_millions(start, n))
}

fn sqrt_threadpool(n: u64) -> anyhow::Result<f64> {
    let threads = thread::available_parallelism().map_or(1, |n| n.get());
    let pool = threadpool::ThreadPool::new(threads);
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    for i in 0..n {
        let tx = tx.clone();
        pool.execute(move || {
            let _ = tx.send((i as f64).sqrt());
        });
    }
    drop(tx);
    let finite = rx.iter().filter(|r: &f64| r.is_finite()).count() as u64;
    anyhow::ensure!(finite == n, "lost results");
    Ok(per_sec_millions(start, n))
}

/// The ceiling of a bounded per-task hand-off on this machine: a lock-free
/// `ArrayQueue` of 4 (the Node chapter's `max_queue` with 2 threads), a `OnceLock` per result, every
/// thread spinning (never parking), and nothing else: no statistics, no drain signal, no
/// cancellation, no panic handling. The Node chapter's loop shape: wait while full, push, collect
/// the results that are in.
fn sqrt_ceiling(n: u64) -> anyhow::Result<f64> {
    use crossbeam_queue::ArrayQueue;
    use crossbeam_utils::Backoff;
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, OnceLock};

    type Slot = Arc<OnceLock<f64>>;
    fn wait(backoff: &Backoff) {
        if backoff.is_completed() {
            thread::yield_now();
        } else {
            backoff.snooze();
        }
    }
    let threads = thread::available_parallelism().map_or(1, |n| n.get());
    let queue: Arc<ArrayQueue<(u64, Slot)>> = Arc::new(ArrayQueue::new(threads * threads));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (queue, stop) = (Arc::clone(&queue), Arc::clone(&stop));
            thread::spawn(move || {
                let backoff = Backoff::new();
                while !stop.load(Ordering::Relaxed) {
                    match queue.pop() {
                        Some((i, slot)) => {
                            let _ = slot.set((i as f64).sqrt());
                            backoff.reset();
                        }
                        None => wait(&backoff),
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    let mut pending: VecDeque<Slot> = VecDeque::new();
    let mut finite = 0;
    for i in 0..n {
        let backoff = Backoff::new();
        while queue.is_full() {
            wait(&backoff);
        }
        let slot = Arc::new(OnceLock::new());
        anyhow::ensure!(
            queue.push((i, Arc::clone(&slot))).is_ok(),
            "full after a wait"
        );
        pending.push_back(slot);
        while let Some(root) = pending.front().and_then(|slot| slot.get().copied()) {
            finite += u64::from(root.is_finite());
            pending.pop_front();
        }
    }
    for slot in pending {
        let backoff = Backoff::new();
        loop {
            if let Some(root) = slot.get() {
                finite += u64::from(root.is_finite());
                break;
            }
            wait(&backoff);
        }
    }
    let rate = per_sec_millions(start, n);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    anyhow::ensure!(finite == n, "lost results");
    Ok(rate)
}

fn sqrt_rayon(n: u64) -> anyhow::Result<f64> {
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    for i in 0..n {
        let tx = tx.clone();
        rayon::spawn(move || {
            let _ = tx.send((i as f64).sqrt());
        });
    }
    drop(tx);
    let finite = rx.iter().filter(|r: &f64| r.is_finite()).count() as u64;
    anyhow::ensure!(finite == n, "lost results");
    Ok(per_sec_millions(start, n))
}

/// Primary <-> worker message round trip over cluster IPC, in microseconds. The worker is
/// this binary again (`main` sends it to `ipc_echo`), echoing `u64`s.
fn ipc_cluster(n: u64) -> anyhow::Result<f64> {
    use worker_threads::cluster::{Cluster, Event};
    let cluster = Cluster::<u64>::builder()
        .args(["case", "ipc_cluster", "0"])
        .build();
    let worker = cluster.fork()?;
    let round = |i: u64| -> anyhow::Result<()> {
        worker.send(i).map_err(|e| anyhow::anyhow!("{e}"))?;
        loop {
            match cluster.recv() {
                Event::Message { message, .. } if message == i => return Ok(()),
                Event::Exit { .. } => bail!("the worker exited"),
                _ => {}
            }
        }
    };
    for i in 0..n.min(1000) {
        round(i)?;
    }
    let start = Instant::now();
    for i in 0..n {
        round(i)?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

/// The worker's side of `ipc_cluster`: echo until the primary goes.
pub(crate) fn ipc_echo() {
    let primary = worker_threads::cluster::primary::<u64>();
    for message in primary.iter() {
        if primary.send(message).is_err() {
            break;
        }
    }
}
