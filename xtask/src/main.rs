//! The project's own tasks, run with `cargo xtask NAME` (an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask test [ARGS]`: `cargo test --workspace ARGS` with every set-up step the
//!   tests need: a `nats-server` for the remote pool's tests (found, or downloaded once
//!   into `target/tools`), and, for a whole-workspace run, a check that the remote tests
//!   really started their servers (a test that needs one never passes by skipping).
//! - `cargo xtask nats-server`: finds or downloads the server and prints its path.
//! - `cargo xtask doc-examples`: fails when a public type or constructor of a library
//!   crate has no example in its documentation.
//! - `cargo xtask import-circles`: fails when files of a library crate import each other
//!   in a circle.
//! - `cargo xtask loom`: builds every loom model once and runs each in its own process,
//!   one per core.

mod doc_examples;
mod import_circles;
mod loom;
mod nats;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};

/// The project's own tasks.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Runs `cargo test --workspace` with what the tests need (a nats-server included);
    /// arguments after `--` go to `cargo test`.
    Test {
        /// Passed to `cargo test` (for example `-- --test-threads 1`). With arguments, the
        /// check that every remote test file started a server is skipped.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Finds a nats-server (or downloads the pinned release) and prints its path.
    NatsServer,
    /// Documents the workspace and fails if a public type or constructor has no example.
    DocExamples,
    /// Fails if files of a library crate import each other in a circle.
    ImportCircles,
    /// Builds the loom models (`--cfg worker_threads_loom`, release) and runs each in its
    /// own process, one per core (`LOOM_MAX_PREEMPTIONS` defaults to 3).
    Loom,
}

/// The environment variable through which the tests find `nats-server`.
const NATS_SERVER: &str = "NATS_SERVER";
/// The environment variable naming the file where each started test server is noted.
const NATS_STARTS: &str = "WT_NATS_STARTS";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Task::NatsServer => {
            println!("{}", nats::find_or_install(&root)?.display());
            Ok(())
        }
        Task::Test { args } => test(&root, &args),
        Task::DocExamples => doc_examples::check(&root),
        Task::ImportCircles => import_circles::check(&root),
        Task::Loom => loom::run(&root),
    }
}

/// The workspace's root: this crate's parent folder.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo test --workspace ARGS` with `NATS_SERVER` set; then, for a whole run, checks
/// that each of the remote crate's test files started a server.
fn test(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let server = nats::find_or_install(root)?;
    eprintln!(
        "xtask: nats-server for the remote tests: {}",
        server.display()
    );
    let starts = root.join("target").join("xtask-nats-starts.txt");
    std::fs::create_dir_all(root.join("target"))?;
    // A fresh list: what this run's tests started.
    std::fs::write(&starts, "")?;
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["test", "--workspace"])
        .args(args)
        .env(NATS_SERVER, &server)
        .env(NATS_STARTS, &starts)
        .status()
        .context("running cargo test")?;
    ensure!(status.success(), "cargo test failed ({status})");
    if args.is_empty() {
        check_remote_tests_ran(root, &starts)?;
    }
    Ok(())
}

/// Every test file of the remote crate that starts a server must appear in `starts` (each
/// `NatsServer::start` writes its test binary's name there): a remote test that did not
/// run fails the task, so none passes by skipping.
fn check_remote_tests_ran(root: &Path, starts: &Path) -> anyhow::Result<()> {
    let started = std::fs::read_to_string(starts).context("reading the servers' list")?;
    let tests = root.join("crates/worker-threads-remote/tests");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&tests).with_context(|| format!("{}", tests.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        let uses_server = path.extension().is_some_and(|ext| ext == "rs")
            && std::fs::read_to_string(&path)?.contains("NatsServer::start");
        // A test binary is named `<file>-<hash>`.
        let ran = started.lines().any(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('-'))
        });
        if uses_server && !ran {
            missing.push(name.to_owned());
        }
    }
    if !missing.is_empty() {
        bail!(
            "these remote test files started no nats-server, so their tests did not run: {}",
            missing.join(", ")
        );
    }
    let count = started.lines().count();
    eprintln!("xtask: the remote tests started {count} nats-server processes");
    Ok(())
}
