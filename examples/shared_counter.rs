//! Shared memory between workers, the Node way: N workers increment a counter in a
//! `SharedArrayBuffer`, and the main thread sleeps in `atomics::wait` until they are all
//! done. Then a single-producer/single-consumer ring buffer over a second buffer, where
//! each side waits on the other's index.
//!
//! `cargo run --release --example shared_counter -- --workers 4 --increments 100000`
//!
//! With `--process` (Linux, feature `process`) the counting workers are processes of their
//! own, sharing the counter through a `SharedArrayBuffer::new_cross_process` (a memfd
//! mapped in each) and waking main through the same futex.

use std::sync::atomic::Ordering;

use anyhow::bail;
use clap::Parser;
use worker_threads::atomics::{self, WaitResult};
use worker_threads::{SharedArrayBuffer, Worker, WorkerOptions, worker_data};

/// Workers incrementing a `SharedArrayBuffer` counter while main sleeps in
/// `atomics::wait`, then a ring buffer between two workers.
#[derive(Parser)]
struct Args {
    /// Worker threads (or processes) incrementing the counter.
    #[arg(long, default_value_t = 4)]
    workers: i32,
    /// Increments per worker (and items through the ring).
    #[arg(long, default_value_t = 100_000)]
    increments: i32,
    /// Run the counter's workers in processes of their own (Linux).
    #[arg(long)]
    process: bool,
}

/// Cells of the counter buffer.
const COUNTER: usize = 0;
const DONE: usize = 1;

fn counter(args: &Args) -> anyhow::Result<()> {
    let sab = SharedArrayBuffer::new(2 * 4);
    let increments = args.increments;
    let workers: Vec<Worker<()>> = (0..args.workers)
        .map(|_| {
            Worker::spawn(WorkerOptions::new().worker_data(sab.clone()), move |_| {
                let cells = worker_data::<SharedArrayBuffer>();
                let cells = cells.as_i32();
                for _ in 0..increments {
                    cells[COUNTER].fetch_add(1, Ordering::Relaxed);
                }
                cells[DONE].fetch_add(1, Ordering::SeqCst);
                atomics::notify(&cells[DONE], 1);
            })
        })
        .collect::<Result<_, _>>()?;
    let total = wait_for_all(&sab, args, workers)?;
    println!(
        "counter: {} workers x {increments} increments = {total}",
        args.workers
    );
    Ok(())
}

/// Main sleeps in `atomics::wait` until every worker said it is done, joins them, and
/// checks the count: the total.
fn wait_for_all(
    sab: &SharedArrayBuffer,
    args: &Args,
    workers: Vec<Worker<()>>,
) -> anyhow::Result<i32> {
    let cells = sab.as_i32();
    loop {
        let done = cells[DONE].load(Ordering::SeqCst);
        if done == args.workers {
            break;
        }
        atomics::wait(&cells[DONE], done, None);
    }
    for worker in workers {
        worker.join()?;
    }
    let total = cells[COUNTER].load(Ordering::SeqCst);
    let expected = args.workers * args.increments;
    if total != expected {
        bail!("counter is {total}, expected {expected}");
    }
    Ok(total)
}

/// The ring's cells: where the consumer reads next, where the producer writes next, then
/// the slots.
const HEAD: usize = 0;
const TAIL: usize = 1;
const SLOTS: i32 = 64;

fn ring(items: i32) -> anyhow::Result<()> {
    let sab = SharedArrayBuffer::new((2 + SLOTS as usize) * 4);
    let producer: Worker<()> =
        Worker::spawn(WorkerOptions::new().worker_data(sab.clone()), move |_| {
            let ring = worker_data::<SharedArrayBuffer>();
            let cells = ring.as_i32();
            for item in 0..items {
                // Wait for room: the ring is full while tail - head == SLOTS.
                loop {
                    let head = cells[HEAD].load(Ordering::Acquire);
                    if item - head < SLOTS {
                        break;
                    }
                    atomics::wait(&cells[HEAD], head, None);
                }
                cells[2 + (item % SLOTS) as usize].store(item * 3, Ordering::Relaxed);
                cells[TAIL].store(item + 1, Ordering::Release);
                atomics::notify(&cells[TAIL], 1);
            }
        })?;
    let cells = sab.as_i32();
    let mut sum: i64 = 0;
    for next in 0..items {
        // Wait for an item: the ring is empty while tail == head.
        loop {
            let tail = cells[TAIL].load(Ordering::Acquire);
            if tail > next {
                break;
            }
            if atomics::wait(&cells[TAIL], tail, None) == WaitResult::TimedOut {
                bail!("no timeout was set");
            }
        }
        let value = cells[2 + (next % SLOTS) as usize].load(Ordering::Relaxed);
        if value != next * 3 {
            bail!("slot for item {next} holds {value}");
        }
        sum += i64::from(value);
        cells[HEAD].store(next + 1, Ordering::Release);
        atomics::notify(&cells[HEAD], 1);
    }
    producer.join()?;
    println!("ring: {items} items through {SLOTS} slots, sum {sum}");
    Ok(())
}

/// A counting worker in a process of its own: the same loop, over the mapped buffer.
#[cfg(all(feature = "process", target_os = "linux"))]
fn count_in_process(ctx: worker_threads::WorkerContext<(SharedArrayBuffer, i32), ()>) {
    let (sab, increments) = ctx.worker_data();
    let cells = sab.as_i32();
    for _ in 0..*increments {
        cells[COUNTER].fetch_add(1, Ordering::Relaxed);
    }
    cells[DONE].fetch_add(1, Ordering::SeqCst);
    atomics::notify(&cells[DONE], 1);
}

/// `counter` with process workers.
#[cfg(all(feature = "process", target_os = "linux"))]
fn counter_in_processes(args: &Args) -> anyhow::Result<()> {
    let sab = SharedArrayBuffer::new_cross_process(2 * 4);
    let workers: Vec<Worker<()>> = (0..args.workers)
        .map(|_| {
            let options = WorkerOptions::new()
                .worker_data((sab.clone(), args.increments))
                .isolation(worker_threads::Process);
            Worker::spawn(options, count_in_process)
        })
        .collect::<Result<_, _>>()?;
    let total = wait_for_all(&sab, args, workers)?;
    println!(
        "counter: {} worker processes x {} increments = {total}",
        args.workers, args.increments
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    #[cfg(all(feature = "process", target_os = "linux"))]
    worker_threads::process::init();
    let args = Args::parse();
    if args.process {
        #[cfg(all(feature = "process", target_os = "linux"))]
        return counter_in_processes(&args);
        #[cfg(not(all(feature = "process", target_os = "linux")))]
        bail!("--process needs Linux and the `process` feature");
    }
    counter(&args)?;
    ring(args.increments)
}
