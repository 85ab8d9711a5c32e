//! The seed's "Hello, World" server with `cluster`: the primary forks one worker per core
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

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use worker_threads::cluster::{self, Cluster, Event, Restart, SchedulingPolicy};

struct Args {
    workers: usize,
    policy: SchedulingPolicy,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        policy: SchedulingPolicy::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => {
                let value = args.next().context("--workers needs a number")?;
                parsed.workers = value
                    .parse()
                    .with_context(|| format!("bad --workers {value}"))?;
            }
            "--policy" => {
                parsed.policy = match args.next().as_deref() {
                    Some("rr") => SchedulingPolicy::RoundRobin,
                    Some("shared") => SchedulingPolicy::Shared,
                    Some("reuseport") => SchedulingPolicy::ReusePort,
                    other => bail!("--policy is rr, shared or reuseport, not {other:?}"),
                }
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(parsed)
}

fn port() -> anyhow::Result<u16> {
    match std::env::var("PORT") {
        Ok(port) => port.parse().with_context(|| format!("bad PORT {port}")),
        Err(_) => Ok(3000),
    }
}

fn main() -> anyhow::Result<()> {
    if cluster::is_primary() {
        primary(args()?)
    } else {
        worker(port()?)
    }
}

fn primary(args: Args) -> anyhow::Result<()> {
    println!("primary {} is running", std::process::id());
    let cluster = Cluster::<()>::builder()
        .policy(args.policy)
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
