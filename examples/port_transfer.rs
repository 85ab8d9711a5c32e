//! The Node chapter's "Bidirectional communication via MessagePort created with MessageChannel":
//! main makes a channel and passes `port2` to a worker in its `worker_data` (the transfer
//! list is the move), and both sides echo. Then two sibling workers, each given one end of
//! a new channel, talk to each other directly without the main thread relaying.
//!
//! `cargo run --release --example port_transfer -- --count 1000`

use anyhow::bail;
use clap::Parser;
use worker_threads::{MessageChannel, MessagePort, Worker, WorkerOptions, worker_data};

/// The Node chapter's MessageChannel + workerData program, then two sibling workers
/// talking directly.
#[derive(Parser)]
struct Args {
    /// Numbers the producer sibling sends.
    #[arg(long, default_value_t = 1_000)]
    count: u64,
}

/// Part one: the Node chapter's program, with the port moved in `worker_data`.
fn seed_echo() -> anyhow::Result<()> {
    let MessageChannel { port1, port2 } = MessageChannel::<String>::new();
    let worker: Worker<()> = Worker::spawn(WorkerOptions::new().worker_data(port2), |_| {
        let port = worker_data::<MessagePort<String>>();
        port.post_message("Hello, World!".into())?;
        let msg = port.recv()?;
        println!("We got a message from the main thread: {msg}");
        Ok::<(), anyhow::Error>(())
    })?;
    // `port1.on('message', msg => port1.postMessage(msg))`, until the worker hangs up.
    for msg in &port1 {
        port1.post_message(msg)?;
    }
    worker.join()?;
    Ok(())
}

/// Part two: two siblings, one end each; main only starts them and reads the result.
fn siblings(count: u64) -> anyhow::Result<()> {
    let MessageChannel { port1, port2 } = MessageChannel::<u64>::new();
    let producer: Worker<()> = Worker::spawn(
        WorkerOptions::new().name("producer").worker_data(port1),
        move |ctx| {
            let sibling = ctx.worker_data();
            for i in 1..=count {
                sibling.post_message(i)?;
            }
            sibling.close();
            Ok::<(), anyhow::Error>(())
        },
    )?;
    let summer: Worker<(), u64> = Worker::spawn(
        WorkerOptions::new().name("summer").worker_data(port2),
        |ctx| {
            let total: u64 = ctx.worker_data().iter().sum();
            ctx.parent_port().post_message(total)?;
            Ok::<(), anyhow::Error>(())
        },
    )?;
    let total = summer.recv()?;
    producer.join()?;
    summer.join()?;
    let expected = count * (count + 1) / 2;
    if total != expected {
        bail!("siblings lost messages: {total} != {expected}");
    }
    println!("siblings: the summer received 1..={count} from the producer directly: {total}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let count = Args::parse().count;
    seed_echo()?;
    siblings(count)
}
