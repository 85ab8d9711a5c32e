//! `cargo xtask loom`: every loom model of the workspace, built once and run one model per
//! process, as many at a time as the machine has cores.
//!
//! One `cargo test --no-run` builds them all (one set of features, so nothing is built
//! twice); then each model (one `#[test]`) runs alone in its own process. A test binary
//! runs its tests on a few threads but the binaries one after the other, so its longest
//! model ran alone while the other core waited; here the next model starts on any free
//! core. A model's output is printed only when it fails.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

/// Where the models are, in the order they start: the packages' integration tests named,
/// then the library unit tests whose names contain [`LIB_FILTER`]. Integration tests of
/// the wait crate come first: they hold the longest model, which should not start last.
const MODELS: &[(&str, &[&str])] = &[
    ("worker-threads-wait", &["loom_queue"]),
    ("worker-threads-channel", &["loom_remote", "loom_port"]),
    ("worker-threads-shared", &["loom_notify"]),
    ("worker-threads-pool", &[]),
    ("worker-threads-process", &[]),
];

/// The unit tests of a library that are loom models have this in their path.
const LIB_FILTER: &str = "loom_model";

/// The preemption bound when `LOOM_MAX_PREEMPTIONS` is not set.
const DEFAULT_PREEMPTIONS: &str = "3";

/// One model: a test of a test binary.
struct Model {
    binary: PathBuf,
    test: String,
}

/// Builds every model with `--cfg worker_threads_loom` in release (into `target/loom`),
/// then runs them, each in its own process; fails if any failed.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let binaries = build(root)?;
    let mut models = VecDeque::new();
    for (binary, is_lib) in binaries {
        for test in list(&binary)? {
            if !is_lib || test.contains(LIB_FILTER) {
                models.push_back(Model {
                    binary: binary.clone(),
                    test,
                });
            }
        }
    }
    ensure!(!models.is_empty(), "no loom model was found");
    let preemptions =
        std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| DEFAULT_PREEMPTIONS.into());
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    eprintln!(
        "xtask: {} loom models, LOOM_MAX_PREEMPTIONS={preemptions}, {cores} at a time",
        models.len()
    );
    let queue = Mutex::new(models);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                while let Some(model) = next(&queue) {
                    if let Err(why) = run_one(&model, &preemptions) {
                        eprintln!("{why:#}");
                        failed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(model.test);
                    }
                }
            });
        }
    });
    let failed = failed
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !failed.is_empty() {
        bail!("loom models failed: {}", failed.join(", "));
    }
    Ok(())
}

/// The next model to run, if any is left.
fn next(queue: &Mutex<VecDeque<Model>>) -> Option<Model> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pop_front()
}

/// `cargo test --no-run` of every model; the test binaries in [`MODELS`]' order, each with
/// whether it is a library's unit tests.
fn build(root: &Path) -> anyhow::Result<Vec<(PathBuf, bool)>> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(root)
        .env("RUSTFLAGS", "--cfg worker_threads_loom")
        .args([
            "test",
            "--no-run",
            "--release",
            "--target-dir",
            "target/loom",
        ])
        .args(["--message-format", "json-render-diagnostics"])
        // The remote model needs the channel's process side.
        .args(["--features", "worker-threads-channel/process"]);
    for (package, tests) in MODELS {
        command.args(["-p", package]);
        for test in *tests {
            command.args(["--test", test]);
        }
    }
    // `--lib` builds the unit tests of every package named; only the libraries that hold
    // a model are run (below).
    command.arg("--lib").stderr(Stdio::inherit());
    let output = command.output().context("running cargo test --no-run")?;
    ensure!(
        output.status.success(),
        "building the loom models failed ({})",
        output.status
    );
    let mut found: Vec<(usize, PathBuf, bool)> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(executable) = message.get("executable").and_then(|e| e.as_str()) else {
            continue;
        };
        let target = &message["target"];
        let name = target["name"].as_str().unwrap_or_default();
        let is_lib = target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "lib"));
        let package = message["package_id"].as_str().unwrap_or_default();
        // The package's place in MODELS orders the binaries; a library runs only if
        // its package names no integration test (the ones whose models are unit tests).
        let Some(place) = MODELS.iter().position(|(wanted, tests)| {
            package_matches(package, wanted)
                && if is_lib {
                    tests.is_empty()
                } else {
                    tests.contains(&name)
                }
        }) else {
            continue;
        };
        found.push((place, PathBuf::from(executable), is_lib));
    }
    found.sort_by_key(|(place, _, _)| *place);
    Ok(found
        .into_iter()
        .map(|(_, binary, is_lib)| (binary, is_lib))
        .collect())
}

/// Whether cargo's package id (`path+file:///...#name@version`, or `...#version` when the
/// folder has the package's name) names `package`.
fn package_matches(id: &str, package: &str) -> bool {
    let Some((path, fragment)) = id.rsplit_once('#') else {
        return false;
    };
    match fragment.split_once('@') {
        Some((name, _)) => name == package,
        None => path.rsplit('/').next() == Some(package),
    }
}

/// The tests of a test binary (`--list`).
fn list(binary: &Path) -> anyhow::Result<Vec<String>> {
    let output = Command::new(binary)
        .args(["--list", "--format", "terse"])
        .output()
        .with_context(|| format!("listing {}", binary.display()))?;
    ensure!(
        output.status.success(),
        "listing {} failed",
        binary.display()
    );
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect())
}

/// Runs one model in its own process; its output is the error if it fails.
fn run_one(model: &Model, preemptions: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let output = Command::new(&model.binary)
        .args(["--exact", &model.test, "--test-threads", "1"])
        .env("LOOM_MAX_PREEMPTIONS", preemptions)
        .output()
        .with_context(|| format!("running {}", model.binary.display()))?;
    let took = seconds(started.elapsed());
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `--exact` with a name that matched nothing passes with 0 tests: count it as a failure.
    let ran = stdout.contains("1 passed") || stdout.contains("1 failed");
    if output.status.success() && ran {
        eprintln!("loom model {} ... ok ({took})", model.test);
        return Ok(());
    }
    bail!(
        "loom model {} FAILED ({took}, {}):\n{stdout}{}",
        model.test,
        output.status,
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A duration as whole seconds with one decimal.
fn seconds(took: Duration) -> String {
    format!("{:.1} s", took.as_secs_f64())
}
