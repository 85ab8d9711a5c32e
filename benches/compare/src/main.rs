//! `compare`: measures worker-threads against Node, piscina and bare Rust on this machine,
//! in one run, and writes a table, JSON and an SVG chart. `compare --help` says how.

mod cases;
mod chart;
mod faults;
mod http;
mod remote;
mod report;
mod rounds;
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
    /// Run every case once with tiny sizes (what CI runs; skips what needs npm unless it
    /// is installed already).
    #[arg(long)]
    smoke: bool,
    /// Where compare.json, compare.svg, rounds.json and benchmarks.md go (`docs` for the
    /// project's own, which also rewrites the README's speed table).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "target/compare",
        global = true
    )]
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
    /// Alternated rounds: run the cases in turn, round after round, and print each case's
    /// runs, its median, and the first case's median over each one's. Speed claims are
    /// made this way (the host drifts too much for cases run one after the other).
    ///
    /// Example: `compare rounds 9 sqrt_seed sqrt_threadpool sqrt_rayon sqrt_ceiling`.
    Rounds {
        /// How many rounds.
        rounds: usize,
        /// The cases: `CASE[:N]` (a Rust case; N defaults to its size in the full run) or
        /// `node/SCRIPT.js[,ARG...]:N` (a Node program of benches/compare/node).
        #[arg(required = true, value_name = "CASE[:N]")]
        cases: Vec<String>,
        /// Save the set under this key in `<out>/rounds.json` (replacing one of the same
        /// key) and write `<out>/benchmarks.md` again.
        #[arg(long, value_name = "KEY")]
        save: Option<String>,
        /// What the set checks, in a sentence (its heading in benchmarks.md).
        #[arg(long, requires = "save")]
        title: Option<String>,
    },
    /// Write benchmarks.md (and, for `--out docs`, the README's speed table) again from
    /// the saved JSON, measuring nothing.
    Report,
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
    #[cfg(target_os = "linux")]
    if std::env::args().nth(1).as_deref() == Some(cases::IPC_BYTES_CHILD) {
        return cases::ipc_bytes_child();
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
        [faults::SLOW_WORKER_CHILD, url, queue] => return faults::slow_worker_child(url, queue),
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
        Some(Cmd::Rounds {
            rounds,
            cases,
            save,
            title,
        }) => rounds::main(&rounds::Options {
            rounds,
            specs: &cases,
            save,
            title,
            out: &cli.out,
        }),
        Some(Cmd::Report) => report::write(&cli.out),
        None => runner::main(runner::Options {
            smoke: cli.smoke,
            out: cli.out,
            redraw: cli.redraw,
        }),
    }
}
