//! A worker in a process of its own: the Node chapter's ping-pong with the worker as a
//! process, timed over N rounds, then a worker stuck in `loop {}` that `terminate` ends
//! anyway (a thread worker would run on), then two process workers talking over a
//! `MessageChannel` whose ends main gave them in their data. Linux.
//!
//! `cargo run --release --example process_worker -- --rounds 10000`

use std::time::Instant;

use anyhow::bail;
use clap::Parser;
use serde::{Deserialize, Serialize};
use worker_threads::{
    MessageChannel, MessagePort, Process, Worker, WorkerContext, WorkerEvent, WorkerOptions,
};

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

/// One end of a channel to a sibling process: ask it to double 1..=5, tell main the sum.
fn ask(ctx: WorkerContext<MessagePort<u64>, (), u64>) -> anyhow::Result<()> {
    let sibling = ctx.worker_data();
    let mut sum = 0;
    for n in 1..=5 {
        sibling.post_message(n)?;
        sum += sibling.recv()?;
    }
    ctx.parent_port().post_message(sum)?;
    Ok(()) // the port closes with the worker: the sibling's loop ends
}

/// The other end: double whatever comes until the port closes.
fn double(ctx: WorkerContext<MessagePort<u64>, (), u64>) -> anyhow::Result<()> {
    let sibling = ctx.worker_data();
    for n in sibling.iter() {
        sibling.post_message(n * 2)?;
    }
    Ok(())
}

/// The ping-pong with the worker in a process of its own, then a stuck worker that
/// `terminate` ends, then two worker processes on one channel.
#[derive(Parser)]
struct Args {
    /// Timed round trips after the greeting.
    #[arg(long, default_value_t = 10_000)]
    rounds: u64,
}

fn main() -> anyhow::Result<()> {
    // A process worker is this program started again: this is where it takes its path.
    worker_threads::process::init();
    let Args { rounds } = Args::parse();

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

    // A port is a value: put it in a process worker's data (or a message) and it works
    // there, relayed over that worker's channel.
    let MessageChannel { port1, port2 } = MessageChannel::new();
    let options = |port| WorkerOptions::new().worker_data(port).isolation(Process);
    let asker: Worker<(), u64> = Worker::spawn(options(port1), ask)?;
    let doubler: Worker<(), u64> = Worker::spawn(options(port2), double)?;
    let sum = asker.recv()?;
    println!("two worker processes over one MessageChannel: 2 + 4 + 6 + 8 + 10 = {sum}");
    if sum != 30 {
        bail!("expected 30, got {sum}");
    }
    asker.join()?;
    doubler.join()?;
    Ok(())
}
