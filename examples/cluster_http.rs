//! The Node chapter's "Hello, World" server with `cluster`: the primary forks one worker per core
//! (`--workers N`), each worker listens on the same port of 127.0.0.1 (`PORT`, default
//! 3000) and answers every request with `Hello, World!\n` through hyper on a
//! single-threaded tokio runtime. The primary prints which worker pid serves and restarts
//! a worker that dies.
//!
//! `cargo run --release --example cluster_http -- [--workers N] [--policy rr|shared|reuseport]`
//!
//! A worker told to disconnect stops accepting, lets its open connections finish, and
//! exits 0.

use std::convert::Infallible;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use worker_threads::cluster::{self, Cluster, Event, Restart, SchedulingPolicy};

/// Node's "Hello, World" cluster: one worker process per core on port 3000 (`PORT`).
#[derive(Parser)]
struct Args {
    /// Worker processes (default: the machine's cores).
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    workers: usize,
    /// How connections reach the workers.
    #[arg(long, value_enum, default_value_t = Policy::Rr)]
    policy: Policy,
}

/// The scheduling policies, as the command line names them.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Policy {
    /// The primary accepts and hands each connection to the next worker (Node's default).
    Rr,
    /// Every worker accepts on the listening socket the primary shares.
    Shared,
    /// Every worker binds its own socket with `SO_REUSEPORT`.
    Reuseport,
}

impl From<Policy> for SchedulingPolicy {
    fn from(policy: Policy) -> Self {
        match policy {
            Policy::Rr => SchedulingPolicy::RoundRobin,
            Policy::Shared => SchedulingPolicy::Shared,
            Policy::Reuseport => SchedulingPolicy::ReusePort,
        }
    }
}

fn port() -> anyhow::Result<u16> {
    match std::env::var("PORT") {
        Ok(port) => port.parse().with_context(|| format!("bad PORT {port}")),
        Err(_) => Ok(3000),
    }
}

fn main() -> anyhow::Result<()> {
    if cluster::is_primary() {
        primary(Args::parse())
    } else {
        worker(port()?)
    }
}

fn primary(args: Args) -> anyhow::Result<()> {
    println!("primary {} is running", std::process::id());
    let cluster = Cluster::<()>::builder()
        .policy(args.policy.into())
        .restart(Restart::on_crash())
        .build();
    for _ in 0..args.workers {
        cluster.fork()?;
    }
    for event in cluster.iter() {
        match event {
            Event::Listening { worker, address } => {
                let pid = cluster.worker(worker).map_or(0, |w| w.pid());
                println!("worker {worker} (pid {pid}) serving http://{address}");
            }
            Event::Exit {
                worker,
                code,
                signal,
                planned,
            } => {
                let why = signal.map_or(format!("code {code:?}"), |s| format!("signal {s}"));
                let next = if planned { "" } else { ", restarting it" };
                println!("worker {worker} died ({why}){next}");
            }
            Event::RestartFailed { worker, error } => {
                println!("could not restart worker {worker}: {error}");
            }
            _ => {}
        }
    }
    Ok(())
}

async fn hello(_: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!\n",
    ))))
}

fn worker(port: u16) -> anyhow::Result<()> {
    let listener = cluster::listen(("127.0.0.1", port))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = listener.into_tokio()?;
        let graceful = GracefulShutdown::new();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => break,
                Err(_) => continue,
            };
            let _ = stream.set_nodelay(true);
            let connection = http1::Builder::new()
                .writev(false)
                .serve_connection(TokioIo::new(stream), service_fn(hello));
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
        // Disconnected: finish what is in flight (bounded, as Node's servers are not).
        let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
        anyhow::Ok(())
    })
}
