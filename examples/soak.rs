//! The soak and fault run: for N seconds, drive ports, thread workers, process workers
//! (and ports crossed into them),
//! the pool (threads and processes) and a cluster with random closes, terminates, panics, cancels and SIGKILLs,
//! check every promise after each round, and print what was done and what was lost.
//!
//! `cargo run --release --example soak -- --seconds 60 [--seed N]`
//!
//! Exits non-zero on the first broken promise (with the seed, to replay it). Linux.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use serde::{Deserialize, Serialize};
use worker_threads::cluster::{self, Backoff, Cluster, Event, Restart, Signal};
use worker_threads::{
    MessageChannel, MessagePort, Pool, PostError, Process, TaskError, Worker, WorkerContext,
    WorkerError, WorkerEvent, WorkerOptions, is_cancelled, is_terminating,
};

/// xorshift64*: a reproducible stream of choices from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What was done and what went wrong, by name.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, u64>);

impl Tally {
    fn add(&mut self, what: &'static str, n: u64) {
        *self.0.entry(what).or_default() += n;
    }
}

/// Ports: a producer posts numbered messages into a port, closed at a random moment by
/// the receiving side; every message is received once, in order, or handed back.
fn ports(rng: &mut Rng, tally: &mut Tally) -> anyhow::Result<()> {
    let n = 200 + rng.below(2_000);
    let close_after = rng.below(n);
    let bounded = rng.below(2) == 0;
    let MessageChannel { port1, port2 } = if bounded {
        MessageChannel::<u64>::bounded(1 + rng.below(8) as usize)
    } else {
        MessageChannel::<u64>::new()
    };
    let producer = std::thread::spawn(move || {
        let mut handed_back = Vec::new();
        for i in 0..n {
            if let Err(PostError::Closed(m)) = port1.post_message(i) {
                handed_back.push(m);
            }
        }
        handed_back
    });
    let mut received = Vec::new();
    while let Ok(m) = port2.recv() {
        received.push(m);
        if received.len() as u64 == close_after {
            port2.close();
        }
    }
    let handed_back = producer
        .join()
        .map_err(|_| anyhow::anyhow!("producer panicked"))?;
    ensure!(
        received.iter().enumerate().all(|(i, &m)| m == i as u64),
        "ports: a message out of order or twice"
    );
    ensure!(
        received.len() + handed_back.len() == n as usize,
        "ports: {} posted, {} received, {} handed back",
        n,
        received.len(),
        handed_back.len()
    );
    tally.add("port messages", n);
    tally.add("port closes (fault)", 1);
    tally.add("posts handed back", handed_back.len() as u64);
    Ok(())
}

/// Thread workers: panics, exits, errors, terminates in `recv` and in a polling loop.
fn thread_workers(rng: &mut Rng, tally: &mut Tally) -> anyhow::Result<()> {
    let kind = rng.below(5);
    let worker: Worker<u32> =
        Worker::spawn(WorkerOptions::new(), move |ctx| -> Result<i32, String> {
            match kind {
                0 => panic!("soak panic"),
                1 => worker_threads::exit(7),
                2 => Err("soak error".into()),
                3 => {
                    let _ = ctx.parent_port().recv();
                    Ok(0)
                }
                _ => {
                    while !is_terminating() {
                        std::hint::spin_loop();
                    }
                    Ok(0)
                }
            }
        })?;
    if kind >= 3 {
        worker.terminate();
    }
    let outcome = worker.join();
    match (kind, outcome) {
        (0, Err(e)) if e.panic_message() == Some("soak panic") => {
            tally.add("worker panics (fault)", 1)
        }
        (1, Ok(7)) => tally.add("worker exits", 1),
        (2, Err(WorkerError::Failed(_))) => tally.add("worker errors (fault)", 1),
        (3 | 4, Ok(1)) => tally.add("worker terminates (fault)", 1),
        (kind, other) => bail!("thread worker of kind {kind} ended with {other:?}"),
    }
    Ok(())
}

/// A process worker's entry: counts up until its posts fail.
fn count_up(ctx: WorkerContext<(), (), u64>) {
    let mut n = 0;
    while ctx.parent_port().post_message(n).is_ok() {
        n += 1;
    }
}

/// A process worker's entry that crashes.
fn crash(_ctx: WorkerContext<(), (), u64>) {
    std::process::abort();
}

/// Process workers: terminated while they post (what arrived is in order, then Exit(1)),
/// or crashing.
fn process_workers(rng: &mut Rng, tally: &mut Tally) -> anyhow::Result<()> {
    let options = WorkerOptions::new()
        .isolation(Process)
        .terminate_grace(Duration::from_millis(rng.below(20)));
    if rng.below(4) == 0 {
        let mut worker = Worker::<(), u64>::spawn(options, crash)?;
        let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
        ensure!(
            events == ["Online", "Error(Crashed { signal: 6 })", "Exit(134)"],
            "crashing process worker: {events:?}"
        );
        tally.add("process worker crashes (fault)", 1);
        return Ok(());
    }
    let mut worker = Worker::<(), u64>::spawn(options, count_up)?;
    let wanted = rng.below(200);
    for expected in 0..wanted {
        ensure!(worker.recv()? == expected, "process worker: out of order");
    }
    worker.terminate();
    let mut next = wanted;
    let mut exit = None;
    for event in worker.events() {
        match event {
            WorkerEvent::Message(n) => {
                ensure!(n == next, "process worker: {n} after {}", next - 1);
                next += 1;
            }
            WorkerEvent::Exit(code) => exit = Some(code),
            WorkerEvent::Online => {}
            WorkerEvent::Error(e) => bail!("terminated process worker: {e}"),
        }
    }
    ensure!(exit == Some(1), "terminated process worker exit {exit:?}");
    tally.add("process worker messages", next);
    tally.add("process worker terminates (fault)", 1);
    Ok(())
}

/// A process worker's entry: posts 0, 1, 2, ... on the port in its data until a post
/// fails, then reports how many were accepted and the value the failed post handed back.
fn flood_port(ctx: WorkerContext<MessagePort<u64>, (), (u64, u64)>) {
    let port = ctx.worker_data();
    let mut n = 0;
    let back = loop {
        match port.post_message(n) {
            Ok(()) => n += 1,
            Err(PostError::Closed(back)) => break back,
        }
    };
    let _ = ctx.parent_port().post_message((n, back));
}

/// A port that crossed into a process worker (in its data), which posts on it as fast as
/// it can: main closes it at a random point (the worker's first refused post is handed
/// back to it whole) or terminates the worker (what arrived is an in-order prefix, then
/// the port reads closed).
fn process_ports(rng: &mut Rng, tally: &mut Tally) -> anyhow::Result<()> {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let options = WorkerOptions::new()
        .worker_data(port2)
        .isolation(Process)
        .terminate_grace(Duration::from_millis(rng.below(20)));
    let mut worker = Worker::<(), (u64, u64)>::spawn(options, flood_port)?;
    let wanted = rng.below(200);
    for expected in 0..wanted {
        ensure!(port1.recv()? == expected, "crossed port: out of order");
    }
    if rng.below(2) == 0 {
        drop(port1);
        let (accepted, back) = worker.recv()?;
        ensure!(
            accepted >= wanted && back == accepted,
            "crossed port closed after {wanted}: {accepted} accepted, {back} handed back"
        );
        ensure!(worker.join()? == 0, "crossed port: worker failed");
        tally.add("crossed-port messages", wanted);
        tally.add("crossed-port closes (fault)", 1);
        return Ok(());
    }
    worker.terminate();
    let mut next = wanted;
    while let Ok(n) = port1.recv() {
        ensure!(n == next, "crossed port: {n} after {}", next - 1);
        next += 1;
    }
    let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
    ensure!(
        events == ["Online", "Exit(1)"],
        "terminated worker with a crossed port: {events:?}"
    );
    tally.add("crossed-port messages", next);
    tally.add("process worker terminates (fault)", 1);
    Ok(())
}

/// The pool: tasks that return, panic, or wait to be cancelled; random cancels; a
/// destroy now and then. Every handle resolves once, and the counters add up to what
/// was accepted.
fn pool(rng: &mut Rng, tally: &mut Tally) -> anyhow::Result<()> {
    let pool: Pool<u64, u64> =
        Pool::builder()
            .max_threads(2)
            .build(|task: u64| match task % 4 {
                0 => panic!("soak task panic"),
                1 => {
                    while !is_cancelled() {
                        std::thread::yield_now();
                    }
                    task
                }
                _ => task * 2,
            })?;
    let n = 50 + rng.below(300);
    let mut handles = Vec::new();
    for i in 0..n {
        let task = i * 4 + rng.below(4);
        let handle = pool.run_wait(task).map_err(|e| anyhow::anyhow!("{e}"))?;
        // A task of kind 1 runs until cancelled: cancel it now (queued or running), or
        // the two threads would spin on such tasks and the queue never empty.
        if task % 4 == 1 {
            handle.cancel();
        }
        handles.push((task, handle));
    }
    let destroy = rng.below(8) == 0;
    let (mut ok, mut panicked, mut cancelled) = (0u64, 0u64, 0u64);
    for (_, handle) in &handles {
        if rng.below(10) == 0 {
            handle.cancel();
        }
    }
    if destroy {
        pool.destroy();
    }
    for (task, handle) in handles {
        match handle.join() {
            Ok(v) => {
                ensure!(
                    v == task * 2 || (task % 4 == 1 && v == task),
                    "pool: task {task} gave {v}"
                );
                ok += 1;
            }
            Err(TaskError::Panicked(_)) => panicked += 1,
            Err(TaskError::Cancelled) => cancelled += 1,
            Err(other) => bail!("pool: task {task}: {other}"),
        }
    }
    pool.close();
    ensure!(
        (pool.completed(), pool.panicked(), pool.cancelled()) == (ok, panicked, cancelled),
        "pool counters {:?} but handles resolved {:?}",
        (pool.completed(), pool.panicked(), pool.cancelled()),
        (ok, panicked, cancelled)
    );
    tally.add("pool tasks", n);
    tally.add("task panics (fault)", panicked);
    tally.add("task cancels (fault)", cancelled);
    tally.add("pool destroys (fault)", u64::from(destroy));
    Ok(())
}

/// The process pool's handler: 0 a value, 1 spin until killed, 2 abort the process.
fn process_task(task: (u8, u64)) -> u64 {
    match task.0 {
        1 =>
        {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        2 => std::process::abort(),
        _ => task.1 + 1,
    }
}

/// A process pool: values, crashes, and running tasks cancelled (their process killed);
/// every handle resolves once as its kind says, and the counters add up.
fn process_pool(rng: &mut Rng, tally: &mut Tally) -> anyhow::Result<()> {
    let pool: Pool<(u8, u64), u64> = Pool::builder()
        .max_threads(2)
        .isolation(Process)
        .build(process_task)?;
    let n = 5 + rng.below(40);
    let mut handles = Vec::new();
    for i in 0..n {
        let kind = match rng.below(10) {
            0 => 1,
            1 => 2,
            _ => 0,
        };
        let handle = pool
            .run_wait((kind, i))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if kind == 1 {
            handle.cancel(); // queued or running: either way it must end now
        }
        handles.push((kind, i, handle));
    }
    let (mut ok, mut crashed, mut cancelled) = (0u64, 0u64, 0u64);
    for (kind, i, handle) in handles {
        match (kind, handle.join()) {
            (0, Ok(v)) if v == i + 1 => ok += 1,
            (1, Err(TaskError::Cancelled)) => cancelled += 1,
            (2, Err(TaskError::Crashed { signal: Some(6) })) => crashed += 1,
            (kind, other) => bail!("process pool: task of kind {kind} gave {other:?}"),
        }
    }
    pool.close();
    ensure!(
        (pool.completed(), pool.crashed(), pool.cancelled()) == (ok, crashed, cancelled),
        "process pool counters {:?} but handles {:?}",
        (pool.completed(), pool.crashed(), pool.cancelled()),
        (ok, crashed, cancelled)
    );
    tally.add("process pool tasks", n);
    tally.add("process pool crashes (fault)", crashed);
    tally.add("process pool kills by cancel (fault)", cancelled);
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
struct Ping(u64);

/// A cluster worker of the soak: echoes until killed.
fn cluster_worker() -> anyhow::Result<()> {
    let primary = cluster::primary::<Ping>();
    while let Ok(Ping(n)) = primary.recv() {
        if primary.send(Ping(n)).is_err() {
            break;
        }
    }
    Ok(())
}

/// A cluster under SIGKILLs from outside (not `Worker::kill`, which marks the exit
/// planned): every kill is an `Exit` with the signal, then the restart policy's new
/// worker, which answers.
fn cluster_round(cluster: &Cluster<Ping>, rng: &mut Rng, tally: &mut Tally) -> anyhow::Result<()> {
    let workers = cluster.workers();
    ensure!(
        workers.len() == 2,
        "cluster: {} workers, not 2",
        workers.len()
    );
    let victim = &workers[rng.below(workers.len() as u64) as usize];
    let id = victim.id();
    let pid = rustix::process::Pid::from_raw(victim.pid() as i32).context("pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut exited = false;
    let fresh = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match cluster
            .recv_timeout(left)
            .context("cluster: no Exit and restart after SIGKILL")?
        {
            Event::Exit {
                worker,
                signal,
                planned,
                ..
            } if worker == id => {
                ensure!(
                    signal == Some(Signal::KILL) && !planned,
                    "cluster: exit by {signal:?}"
                );
                exited = true;
            }
            Event::Online { worker } if exited => break worker,
            _ => {}
        }
    };
    let fresh = cluster.worker(fresh).context("the restarted worker")?;
    let probe = rng.next();
    fresh
        .send(Ping(probe))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match cluster.recv_timeout(left).context("cluster: no answer")? {
            Event::Message {
                worker,
                message: Ping(n),
            } if worker == fresh.id() => {
                ensure!(n == probe, "cluster: answer {n} for {probe}");
                break;
            }
            _ => {}
        }
    }
    tally.add("cluster SIGKILLs (fault)", 1);
    tally.add("cluster restarts by policy", 1);
    Ok(())
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn status_field(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The soak and fault run: every part under injected faults, every promise checked after
/// each round; exits non-zero on a broken promise.
#[derive(Parser)]
struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The random seed (default: from the clock; printed, to replay a run).
    #[arg(long)]
    seed: Option<u64>,
}

fn args() -> anyhow::Result<(u64, u64)> {
    let Args { seconds, seed } = Args::parse();
    let seed = match seed {
        Some(seed) => seed,
        None => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64
                | 1
        }
    };
    Ok((seconds, seed))
}

fn main() -> anyhow::Result<()> {
    worker_threads::process::init();
    if cluster::is_worker() {
        return cluster_worker();
    }
    let (seconds, seed) = args()?;
    println!("soak: {seconds} s, seed {seed}");
    // The injected panics are expected: keep them off stderr; any other one is printed.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|message| message.starts_with("soak"));
        if !injected {
            default_hook(info);
        }
    }));
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let cluster = Cluster::<Ping>::builder()
        .restart(Restart::OnCrash(Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(10),
            reset_after: Duration::from_millis(1),
        }))
        .build();
    for _ in 0..2 {
        cluster.fork()?;
    }
    // Warm up every part once, then take the resource counts the run must come back to.
    ports(&mut rng, &mut tally)?;
    thread_workers(&mut rng, &mut tally)?;
    process_workers(&mut rng, &mut tally)?;
    process_ports(&mut rng, &mut tally)?;
    pool(&mut rng, &mut tally)?;
    process_pool(&mut rng, &mut tally)?;
    cluster_round(&cluster, &mut rng, &mut tally)?;
    let (fds, threads, rss) = (
        open_descriptors(),
        status_field("Threads:"),
        status_field("VmRSS:"),
    );
    let mut rounds = 0u64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        let what = rng.below(11);
        let result = match what {
            0..=2 => ports(&mut rng, &mut tally),
            3..=4 => thread_workers(&mut rng, &mut tally),
            5 => process_workers(&mut rng, &mut tally),
            6 => process_ports(&mut rng, &mut tally),
            7..=8 => pool(&mut rng, &mut tally),
            9 => process_pool(&mut rng, &mut tally),
            _ => cluster_round(&cluster, &mut rng, &mut tally),
        };
        if let Err(error) = result {
            eprintln!(
                "soak: BROKEN after {:?} (seed {seed}): {error:#}",
                started.elapsed()
            );
            std::process::exit(1);
        }
        rounds += 1;
    }
    // The cluster keeps its two workers: same descriptors and threads as at the start.
    // A thread's last act (posting `Exit`, leaving the pool's count, a restart's back-off)
    // comes a moment before the OS thread is gone (with the descriptors it still holds),
    // and nothing reports that moment for a detached thread: give them up to 10 s to go.
    let settled = Instant::now() + Duration::from_secs(10);
    while (status_field("Threads:") > threads || open_descriptors() > fds)
        && Instant::now() < settled
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (fds_after, threads_after, rss_after) = (
        open_descriptors(),
        status_field("Threads:"),
        status_field("VmRSS:"),
    );
    println!("{:<40} {:>12}", "what", "count");
    for (what, n) in &tally.0 {
        println!("{what:<40} {n:>12}");
    }
    println!("{:<40} {:>12}", "rounds", rounds);
    println!(
        "descriptors: {fds} -> {fds_after}; threads: {threads} -> {threads_after}; RSS: {rss} -> {rss_after} KiB"
    );
    ensure!(fds_after == fds, "descriptors {fds} -> {fds_after}");
    ensure!(
        threads_after <= threads,
        "threads {threads} -> {threads_after}"
    );
    ensure!(
        rss_after <= rss + 32 * 1024,
        "RSS grew from {rss} to {rss_after} KiB"
    );
    println!(
        "lost: 0 (every message delivered once or handed back, every task resolved once, counters add up)"
    );
    Ok(())
}
