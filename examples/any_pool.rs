//! One function, three pools: the Node chapter's loop and a `map` through a thread pool, a
//! process pool and a `RemotePool`, written once against [`TaskPool`]. Only the
//! constructor differs.
//!
//! ```text
//! cargo run --release --features remote --example any_pool -- [--tasks 10000] [--url URL]
//! ```
//!
//! Without `--url`, the remote pool runs on a `nats-server` this example starts on a free
//! loopback port (`$NATS_SERVER`, else `nats-server` on the `PATH`; `cargo xtask
//! nats-server` installs one and prints its path), served by a `RemoteWorker` in this
//! process. With `--url`, it submits to that server, and `remote_worker`s serve the queue.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use worker_threads::remote::{QueueConfig, RemotePool, RemoteWorker};
use worker_threads::{MaxQueue, Pool, PoolHandle, Process, TaskError, TaskPool};

/// The Node chapter's square roots through every kind of pool.
#[derive(Parser)]
struct Args {
    /// Tasks in the chapter's loop and in the `map`, on each pool.
    #[arg(long, default_value_t = 10_000)]
    tasks: u32,
    /// A NATS server with JetStream whose `sqrt` queue `remote_worker`s serve; without
    /// it, this example starts a server and a worker of its own.
    #[arg(long)]
    url: Option<String>,
}

/// The chapter's handler.
fn sqrt(n: f64) -> f64 {
    n.sqrt()
}

/// The Node chapter's loop: submit until the queue is full, then wait for it to drain;
/// then the same tasks through `map`. Returns both sums of the roots.
fn chapter<P: TaskPool<f64, f64>>(pool: &P, tasks: u32) -> anyhow::Result<(f64, f64)> {
    let mut handles = Vec::with_capacity(tasks as usize);
    for i in 0..tasks {
        if pool.queue_size() >= pool.max_queue() {
            pool.wait_drain();
        }
        handles.push(pool.run(f64::from(i))?);
    }
    let looped = handles
        .into_iter()
        .map(PoolHandle::join)
        .sum::<Result<f64, TaskError>>()?;
    let mapped = pool
        .map((0..tasks).map(f64::from))
        .sum::<Result<f64, TaskError>>()?;
    Ok((looped, mapped))
}

/// Runs [`chapter`] on `pool`, checks both sums against the roots computed here, and
/// prints the time.
fn report<P: TaskPool<f64, f64>>(name: &str, pool: &P, tasks: u32) -> anyhow::Result<()> {
    let expected: f64 = (0..tasks).map(|i| f64::from(i).sqrt()).sum();
    let start = Instant::now();
    let (looped, mapped) = chapter(pool, tasks)?;
    let elapsed = start.elapsed();
    // The same roots added in the same order: the sums are equal to the bit.
    ensure!(
        looped == expected,
        "{name}: the loop's sum {looped} != {expected}"
    );
    ensure!(
        mapped == expected,
        "{name}: the map's sum {mapped} != {expected}"
    );
    println!(
        "{name:>8}: {tasks} tasks looped and {tasks} mapped in {elapsed:.2?}, sum {looped:.3}"
    );
    pool.close();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // A process pool's workers are this program run again: first thing in `main`.
    worker_threads::process::init();
    let Args { tasks, url } = Args::parse();

    let threads = Pool::builder().build(sqrt)?;
    report("threads", &threads, tasks)?;

    let processes = Pool::builder().isolation(Process).build(sqrt)?;
    report("processes", &processes, tasks)?;

    // The remote pool: on the given server, whose `remote_worker`s serve `sqrt`; else on
    // a server started here, served by a worker in this process.
    let (server, worker, url, queue) = match url {
        Some(url) => (None, None, url, "sqrt".to_string()),
        None => {
            let server = NatsServer::start()?;
            let queue = format!("any-pool-{}", std::process::id());
            let local = Pool::builder()
                .max_queue(MaxQueue::Bounded(256))
                .build(sqrt)?;
            let worker = RemoteWorker::builder(&server.url, &queue).serve(local)?;
            let url = server.url.clone();
            (Some(server), Some(worker), url, queue)
        }
    };
    let remote: RemotePool<f64, f64> = RemotePool::builder(&url, &queue)
        .queue_config(QueueConfig {
            max_queue: 1024,
            ..Default::default()
        })
        .connect()?;
    report("remote", &remote, tasks)?;
    if let Some(worker) = worker {
        worker.stop()?;
    }
    drop(server);
    Ok(())
}

/// A `nats-server -js` on a free loopback port with a temporary store, killed and its
/// store removed on drop.
struct NatsServer {
    child: Child,
    store: PathBuf,
    url: String,
}

impl NatsServer {
    fn start() -> anyhow::Result<Self> {
        let binary = std::env::var_os("NATS_SERVER").unwrap_or_else(|| "nats-server".into());
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let store = std::env::temp_dir().join(format!("wt-any-pool-{}", std::process::id()));
        let mut child = Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {}: install one with `cargo xtask nats-server` and set \
                     NATS_SERVER to the path it prints, or pass --url",
                    binary.to_string_lossy()
                )
            })?;
        // Ready when it says so; its log is read to the end so that it never blocks on it.
        let stderr = child.stderr.take().context("nats-server's stderr")?;
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = ready_tx.send(());
                }
            }
        });
        let server = Self {
            child,
            store,
            url: format!("nats://127.0.0.1:{port}"),
        };
        ready
            .recv_timeout(Duration::from_secs(60))
            .context("nats-server did not become ready")?;
        Ok(server)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
