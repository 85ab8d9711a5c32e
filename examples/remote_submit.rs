//! The submitting machine: the Node chapter's square roots through a `RemotePool`, served
//! by `remote_worker`s. First the chapter's loop (`queue_size() == max_queue()` ->
//! `wait_drain()` -> `run(i)`, one task per message), then `map` (chunks of 1,024).
//!
//! ```text
//! cargo run --release --features remote --example remote_submit -- [tasks] [nats://127.0.0.1:4222] [queue]
//! ```

use std::time::Instant;

use anyhow::{Context, ensure};
use worker_threads::remote::{QueueConfig, RemotePool};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u32 = match args.next() {
        Some(n) => n.parse().with_context(|| format!("bad task count {n}"))?,
        None => 1_000_000,
    };
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let queue = args.next().unwrap_or_else(|| "sqrt".into());
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
