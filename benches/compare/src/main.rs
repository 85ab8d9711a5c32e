//! `compare`: measures worker-threads against Node, piscina and bare Rust on this machine,
//! in one run, and writes a table, JSON and an SVG chart. `compare --help` says how.

mod cases;
mod chart;
mod http;
mod remote;
mod runner;

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand};

/// Measures worker-threads against Node, piscina and bare Rust on this machine, in one
/// run: every case in a process of its own, medians of 3 runs, ratios to our side, a
/// table on stdout, and compare.json and compare.svg in --out.
///
/// With no command it runs every case: `cargo run --release -p compare` (the first full
/// run installs the pinned piscina versions with npm into benches/compare/node).
#[derive(Parser)]
#[command(name = "compare", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Run every case with tiny sizes (what CI runs; skips what needs npm unless it is
    /// installed already).
    #[arg(long)]
    smoke: bool,
    /// Where compare.json and compare.svg go.
    #[arg(long, value_name = "DIR", default_value = "target/compare")]
    out: PathBuf,
    /// Draw the chart again from an earlier run's JSON, measuring nothing.
    #[arg(long, value_name = "JSON")]
    redraw: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one Rust case alone with size N and print `{"value": ...}` on one line (what
    /// the runner does for each Rust case, in a process of its own).
    Case {
        /// The case (`compare list` says what each measures).
        #[arg(value_parser = PossibleValuesParser::new(cases::NAMES))]
        name: String,
        /// Its size: messages, rounds, tasks, workers or seconds, as the case counts.
        #[arg(default_value_t = 1)]
        n: u64,
    },
    /// List every comparison: its group, what is measured, and what runs it.
    List,
}

fn main() -> anyhow::Result<()> {
    // The process-worker cases start this binary again: a process worker stays in here.
    worker_threads::process::init();
    if std::env::args().nth(1).as_deref() == Some(cases::EXEC_CHILD) {
        cases::exec_child();
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    if std::env::args().nth(1).as_deref() == Some(cases::IPC_CHANNEL_CHILD) {
        return cases::ipc_channel_child();
    }
    let args: Vec<String> = std::env::args().skip(1).take(3).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [remote::WORKER_CHILD, url, queue] => return remote::worker_child(url, queue),
        [remote::RESPONDER_CHILD, url, subject] => return remote::responder_child(url, subject),
        [remote::CONSUMER_CHILD, url] => return remote::consumer_child(url),
        _ => {}
    }
    if worker_threads::cluster::is_worker() {
        cases::ipc_echo();
        return Ok(());
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Case { name, n }) => cases::run(&name, n),
        Some(Cmd::List) => {
            runner::list();
            Ok(())
        }
        None => runner::main(runner::Options {
            smoke: cli.smoke,
            out: cli.out,
            redraw: cli.redraw,
        }),
    }
}
