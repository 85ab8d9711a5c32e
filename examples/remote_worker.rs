//! A worker machine: a local pool that serves the `sqrt` queue of a NATS JetStream server,
//! until stdin closes (Ctrl-D) or the process is stopped.
//!
//! ```text
//! nats-server -js &
//! cargo run --release --features remote --example remote_worker -- [nats://127.0.0.1:4222] [queue]
//! ```

use std::io::Read;

use worker_threads::remote::RemoteWorker;
use worker_threads::{MaxQueue, Pool};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let queue = args.next().unwrap_or_else(|| "sqrt".into());
    // The handler of the Node chapter's pool: a square root. A deep local queue keeps the
    // threads busy while the next tasks come over the network.
    let local = Pool::builder()
        .max_queue(MaxQueue::Bounded(256))
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
