//! A worker machine: a local pool that serves the `sqrt` queue of a NATS JetStream server,
//! until stdin closes (Ctrl-D) or the process is stopped.
//!
//! ```text
//! nats-server -js &
//! cargo run --release --features remote --example remote_worker -- [--url nats://127.0.0.1:4222] \
//!     [--queue sqrt]
//! ```

use std::io::Read;

use clap::Parser;

use worker_threads::remote::RemoteWorker;
use worker_threads::{MaxQueue, Pool};

/// A worker machine: a local pool serving a queue until stdin closes.
#[derive(Parser)]
struct Args {
    /// The NATS server (with JetStream) to serve.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// The queue's name.
    #[arg(long, default_value = "sqrt")]
    queue: String,
    /// The local pool's queue bound (tasks held ahead of its threads).
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
}

fn main() -> anyhow::Result<()> {
    let Args {
        url,
        queue,
        max_queue,
    } = Args::parse();
    // The handler of the Node chapter's pool: a square root. A deep local queue keeps the
    // threads busy while the next tasks come over the network.
    let local = Pool::builder()
        .max_queue(MaxQueue::Bounded(max_queue))
        .build(|n: f64| n.sqrt())?;
    let threads = local.thread_bounds().1;
    let worker = RemoteWorker::builder(&url, &queue).serve(local)?;
    eprintln!("serving queue {queue:?} on {url} with {threads} threads; Ctrl-D stops");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let served = worker.served();
    worker.stop()?;
    eprintln!("stopped after {served} task messages");
    Ok(())
}
