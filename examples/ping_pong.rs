//! Ping-pong between the main thread and one worker over the default parent port: the
//! Node chapter's "Bidirectional communication via the default MessagePorts", then N timed rounds.
//!
//! `cargo run --release --example ping_pong -- --rounds 100000`

use std::time::Instant;

use anyhow::bail;
use clap::Parser;
use worker_threads::{Worker, WorkerOptions};

/// What travels over the parent port.
#[derive(Debug)]
enum Msg {
    Hello(String),
    Ping(u64),
}

/// Ping-pong between the main thread and one worker over the parent port.
#[derive(Parser)]
struct Args {
    /// Timed round trips after the greeting.
    #[arg(long, default_value_t = 100_000)]
    rounds: u64,
}

fn main() -> anyhow::Result<()> {
    let Args { rounds } = Args::parse();

    // The worker: greet, then answer every ping with the next number.
    let worker: Worker<Msg> = Worker::spawn(WorkerOptions::new().name("pong"), |ctx| {
        let port = ctx.parent_port();
        port.post_message(Msg::Hello("Hello, World!".into()))?;
        for msg in port.iter() {
            match msg {
                Msg::Hello(text) => println!("We got a message from the main thread: {text}"),
                Msg::Ping(n) => port.post_message(Msg::Ping(n + 1))?,
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;

    // The main thread: echo the greeting back, as the Node chapter does.
    match worker.recv()? {
        Msg::Hello(text) => worker.post_message(Msg::Hello(text))?,
        other => bail!("expected a greeting, got {other:?}"),
    }

    let start = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        worker.post_message(Msg::Ping(n))?;
        match worker.recv()? {
            Msg::Ping(next) => n = next,
            other => bail!("expected a ping, got {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    if n != rounds {
        bail!("lost a round: {n} of {rounds}");
    }
    worker.port().close();
    let code = worker.join()?;
    let per_round = elapsed.as_secs_f64() * 1e6 / rounds.max(1) as f64;
    println!("{rounds} round trips in {elapsed:.2?}: {per_round:.3} us per round trip");
    println!("worker exited with code {code}");
    Ok(())
}
