//! The Node chapter's "Computing ten million square roots with piscina, without crashing", line
//! for line: a pool with `maxQueue: 'auto'`; for each number, if `queueSize === maxQueue`
//! wait for `drain`, then `run(i)` and check the result. `--mode map` does the same with
//! the idiomatic `pool.map`, which applies back-pressure by itself.
//!
//! `cargo run --release --example sqrt_pool -- [--tasks 10000000] [--mode loop|map] [--threads N]`

use std::collections::VecDeque;
use std::time::Instant;

use anyhow::ensure;
use clap::Parser;
use worker_threads::{MaxQueue, Pool, TaskHandle};

/// How the tasks are submitted.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// The chapter's loop: `queue_size() == max_queue()` -> `wait_drain()` -> `run(i)`.
    Loop,
    /// `pool.map`, which applies back-pressure by itself.
    Map,
}

/// The Node chapter's ten million square roots through a pool with a bounded queue.
#[derive(Parser)]
struct Args {
    /// How many square roots.
    #[arg(long, default_value_t = 10_000_000)]
    tasks: u64,
    /// How the tasks are submitted.
    #[arg(long, value_enum, default_value_t = Mode::Loop)]
    mode: Mode,
    /// The pool's threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// The process's peak resident memory, from Linux's `/proc/self/status`.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The Node chapter's `assert.ok(typeof squareRootOfI === 'number')`, for a handle that finished.
fn check(handle: TaskHandle<f64>) -> anyhow::Result<()> {
    let root = handle.join()?;
    ensure!(root.is_finite(), "not a number: {root}");
    Ok(())
}

fn chapter_loop(pool: &Pool<u64, f64>, n: u64) -> anyhow::Result<usize> {
    let mut pending = VecDeque::new();
    let mut largest_queue = 0;
    for i in 0..n {
        if pool.queue_size() == pool.max_queue() {
            pool.wait_drain();
        }
        pending.push_back(pool.run(i)?);
        largest_queue = largest_queue.max(pool.queue_size());
        // `.then(...)`: check the results that are in.
        while pending.front().is_some_and(TaskHandle::is_finished) {
            if let Some(handle) = pending.pop_front() {
                check(handle)?;
            }
        }
    }
    for handle in pending {
        check(handle)?;
    }
    Ok(largest_queue)
}

fn map(pool: &Pool<u64, f64>, n: u64) -> anyhow::Result<usize> {
    for root in pool.map(0..n) {
        let root = root?;
        ensure!(root.is_finite(), "not a number: {root}");
    }
    Ok(pool.max_queue())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut builder = Pool::builder().max_queue(MaxQueue::Auto);
    if let Some(threads) = args.threads {
        builder = builder.max_threads(threads);
    }
    let pool = builder.build(|i: u64| (i as f64).sqrt())?;

    let start = Instant::now();
    let largest_queue = match args.mode {
        Mode::Loop => chapter_loop(&pool, args.tasks)?,
        Mode::Map => map(&pool, args.tasks)?,
    };
    let elapsed = start.elapsed();
    ensure!(
        pool.completed() == args.tasks,
        "completed {} of {}",
        pool.completed(),
        args.tasks
    );

    let mode = match args.mode {
        Mode::Loop => "the chapter's loop (queue_size == max_queue -> wait_drain -> run)",
        Mode::Map => "pool.map",
    };
    println!("sqrt_pool: {mode}");
    println!("tasks: {} in {elapsed:.2?}", args.tasks);
    println!("tasks/s: {:.0}", args.tasks as f64 / elapsed.as_secs_f64());
    println!("threads: {}", pool.threads());
    println!("max_queue: {}", pool.max_queue());
    if args.mode == Mode::Loop {
        println!("largest queue seen: {largest_queue}");
    }
    match peak_rss_mib() {
        Some(mib) => println!("peak RSS: {mib:.1} MiB"),
        None => println!("peak RSS: unknown (not Linux)"),
    }
    let wait = pool.wait_time();
    println!(
        "wait time p50 {:?} p99 {:?}; utilization {:.0}%",
        wait.percentile(50.0),
        wait.percentile(99.0),
        pool.utilization() * 100.0
    );
    Ok(())
}
