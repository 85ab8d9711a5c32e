//! A worker in a process of its own: the Node chapter's ping-pong with the worker as a
//! process, timed over N rounds, then a worker stuck in `loop {}` that `terminate` ends
//! anyway (a thread worker would run on). Linux.
//!
//! `cargo run --release --example process_worker -- --rounds 10000`

use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use worker_threads::{Process, Worker, WorkerContext, WorkerEvent, WorkerOptions};

/// What travels over the parent port: both ways, so it serializes.
#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    Hello(String),
    Ping(u64),
}

/// The worker: greet, then answer every ping with the next number. A `fn`: it is found
/// again in the child process by `process::init`.
fn pong(ctx: WorkerContext<(), Msg>) -> anyhow::Result<()> {
    let port = ctx.parent_port();
    port.post_message(Msg::Hello("Hello, World!".into()))?;
    for msg in port.iter() {
        match msg {
            Msg::Hello(text) => println!("We got a message from the main thread: {text}"),
            Msg::Ping(n) => port.post_message(Msg::Ping(n + 1))?,
        }
    }
    Ok(())
}

/// A worker that never looks at `is_terminating()`.
fn stuck(ctx: WorkerContext<(), (), String>) {
    ctx.parent_port()
        .post_message(format!("process {} spinning", std::process::id()))
        .unwrap();
    #[allow(clippy::empty_loop)]
    loop {}
}

fn rounds_from_args() -> anyhow::Result<u64> {
    let mut args = std::env::args().skip(1);
    let mut rounds = 10_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                let value = args.next().context("--rounds needs a number")?;
                rounds = value
                    .parse()
                    .with_context(|| format!("bad --rounds {value}"))?;
            }
            other => bail!("unknown argument {other} (usage: process_worker [--rounds N])"),
        }
    }
    Ok(rounds)
}

fn main() -> anyhow::Result<()> {
    // A process worker is this program started again: this is where it takes its path.
    worker_threads::process::init();
    let rounds = rounds_from_args()?;

    let started = Instant::now();
    let worker: Worker<Msg> = Worker::spawn(WorkerOptions::new().isolation(Process), pong)?;
    match worker.recv()? {
        Msg::Hello(text) => {
            println!("first message after {:?}", started.elapsed());
            worker.post_message(Msg::Hello(text))?;
        }
        other => bail!("expected a greeting, got {other:?}"),
    }
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        worker.post_message(Msg::Ping(n))?;
        match worker.recv()? {
            Msg::Ping(next) if next == n + 1 => n = next,
            other => bail!("expected Ping({}), got {other:?}", n + 1),
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{rounds} round trips in {elapsed:?} ({:.2} us each) with worker process {}",
        elapsed.as_secs_f64() * 1e6 / rounds.max(1) as f64,
        worker.pid().unwrap_or_default()
    );
    worker.port().close();
    println!("worker exited with code {}", worker.join()?);

    let mut busy: Worker<(), String> =
        Worker::spawn(WorkerOptions::new().isolation(Process), stuck)?;
    println!("{}", busy.recv()?);
    let asked = Instant::now();
    busy.terminate();
    for event in busy.events() {
        if let WorkerEvent::Exit(code) = event {
            println!(
                "terminated worker exited with code {code} after {:?}",
                asked.elapsed()
            );
        }
    }
    Ok(())
}
