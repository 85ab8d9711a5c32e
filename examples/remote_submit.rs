//! The submitting machine: the Node chapter's square roots through a `RemotePool`, served
//! by `remote_worker`s. First the chapter's loop (`queue_size() == max_queue()` ->
//! `wait_drain()` -> `run(i)`, one task per message), then `map` (chunks of 1,024).
//!
//! ```text
//! cargo run --release --features remote --example remote_submit -- [--tasks 1000000] \
//!     [--url nats://127.0.0.1:4222] [--queue sqrt]
//! ```

use std::time::Instant;

use anyhow::ensure;
use clap::Parser;
use worker_threads::remote::{QueueConfig, RemotePool};

/// The submitting machine: the Node chapter's square roots through a `RemotePool`.
#[derive(Parser)]
struct Args {
    /// How many square roots (the chapter's loop runs a hundredth of them).
    #[arg(long, default_value_t = 1_000_000)]
    tasks: u32,
    /// The NATS server (with JetStream) the workers serve.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// The queue's name.
    #[arg(long, default_value = "sqrt")]
    queue: String,
}

fn main() -> anyhow::Result<()> {
    let Args {
        tasks: n,
        url,
        queue,
    } = Args::parse();
    let pool: RemotePool<f64, f64> = RemotePool::builder(&url, &queue)
        .queue_config(QueueConfig {
            max_queue: 1024,
            ..Default::default()
        })
        .connect()?;

    // The chapter's loop, on 1/100 of the tasks (each `run` waits for JetStream's ack).
    let loop_tasks = (n / 100).max(1);
    let start = Instant::now();
    let mut handles = Vec::new();
    for i in 0..loop_tasks {
        if pool.queue_size() == pool.max_queue() {
            pool.wait_drain();
        }
        handles.push(pool.run(f64::from(i))?);
    }
    for (i, handle) in handles.into_iter().enumerate() {
        let root = handle.join()?;
        ensure!(root == (i as f64).sqrt(), "task {i}: {root}");
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "run loop: {loop_tasks} tasks in {seconds:.2} s ({:.0} tasks/s)",
        f64::from(loop_tasks) / seconds
    );

    let start = Instant::now();
    let mut count = 0u32;
    for (i, root) in pool.map((0..n).map(f64::from)).enumerate() {
        let root = root?;
        ensure!(root == (i as f64).sqrt(), "task {i}: {root}");
        count += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "map: {count} tasks in {seconds:.2} s ({:.2} M tasks/s)",
        f64::from(count) / seconds / 1e6
    );
    pool.close();
    Ok(())
}
