//! The comparison runner: every case, medians, a table with ratios, JSON and a chart.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::http::Server;

/// Who a measurement is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum Side {
    Node,
    Ours,
    BareRust,
}

/// Whether a smaller or a larger value is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum Better {
    Lower,
    Higher,
}

/// How a case is run.
#[derive(Clone, Copy, Debug)]
enum Program {
    /// `compare case NAME N`.
    Rust(&'static str),
    /// `node node/SCRIPT ARGS... N`; `npm` if it needs the installed packages.
    Node {
        script: &'static str,
        args: &'static [&'static str],
        npm: bool,
    },
    /// A server process loaded by wrk for `N` seconds (`crate::http`).
    Http(crate::http::Server),
}

impl Program {
    /// Its name, as `compare rounds` takes it (`http/..` for the HTTP servers).
    fn id(&self) -> String {
        match self {
            Program::Rust(name) => (*name).to_owned(),
            Program::Node { script, args, .. } => {
                let args: String = args.iter().map(|arg| format!(",{arg}")).collect();
                format!("node/{script}{args}")
            }
            Program::Http(server) => format!("http/{server}"),
        }
    }
}

/// Whether a case of the full run has this id (`Program::id`).
#[cfg(test)]
pub(crate) fn has_case(id: &str) -> bool {
    CASES.iter().any(|case| case.program.id() == id)
}

#[derive(Clone, Copy, Debug)]
struct Case {
    group: &'static str,
    name: &'static str,
    side: Side,
    program: Program,
    unit: &'static str,
    better: Better,
    full: u64,
    smoke: u64,
    timeout: Duration,
    /// The name of our case this one is compared with (`None` for our own cases).
    versus: Option<&'static str>,
}

const MINUTE: Duration = Duration::from_secs(60);

/// The HTTP group: 2 workers, loaded by `wrk -t1 -c64 -d10s` on loopback.
const HTTP: &str = "HTTP hello, 2 workers, wrk -t1 -c64 -d10s";

/// The "past one machine" groups: a nats-server (or Redis) of their own on loopback, two
/// worker processes, the median of each case's runs.
const REMOTE_MAP: &str = "past one machine: the Node chapter's square roots, 2 worker processes";
const REMOTE_RUN: &str =
    "past one machine: one task per message, 512 in flight, 2 worker processes";
const REMOTE_RTT: &str = "past one machine: one task's round trip (median)";
const REMOTE_LOOP: &str =
    "past one machine: the Node chapter's loop as written, 2 worker processes";
const RECOVERY: &str = "past one machine: a worker killed (SIGKILL) with 100 tasks of 5 ms";
const FAILOVER: &str =
    "past one machine: round trips across a killed stream leader, 3-node cluster";

const fn node(script: &'static str, args: &'static [&'static str]) -> Program {
    Program::Node {
        script,
        args,
        npm: false,
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { group: "round trip, small message", name: "ping_pong (Worker parent port)", side: Side::Ours, program: Program::Rust("rt_worker"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: None },
    Case { group: "round trip, small message", name: "Node parentPort", side: Side::Node, program: node("round_trip.js", &["parentport"]), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("ping_pong (Worker parent port)") },
    Case { group: "round trip, small message", name: "Node MessageChannel", side: Side::Node, program: node("round_trip.js", &["channel"]), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("ping_pong (Worker parent port)") },
    Case { group: "round trip, small message", name: "flume", side: Side::BareRust, program: Program::Rust("rt_flume"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("ping_pong (Worker parent port)") },
    Case { group: "round trip, small message", name: "crossbeam-channel", side: Side::BareRust, program: Program::Rust("rt_crossbeam"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("ping_pong (Worker parent port)") },
    Case { group: "one-way throughput, 1 M posts", name: "MessageChannel", side: Side::Ours, program: Program::Rust("tput_ours"), unit: "M msgs/s", better: Better::Higher, full: 1_000_000, smoke: 1_000, timeout: MINUTE, versus: None },
    Case { group: "one-way throughput, 1 M posts", name: "Node postMessage", side: Side::Node, program: node("one_way.js", &[]), unit: "M msgs/s", better: Better::Higher, full: 1_000_000, smoke: 1_000, timeout: MINUTE, versus: Some("MessageChannel") },
    Case { group: "one-way throughput, 1 M posts", name: "flume", side: Side::BareRust, program: Program::Rust("tput_flume"), unit: "M msgs/s", better: Better::Higher, full: 1_000_000, smoke: 1_000, timeout: MINUTE, versus: Some("MessageChannel") },
    Case { group: "one-way throughput, 1 M posts", name: "crossbeam-channel", side: Side::BareRust, program: Program::Rust("tput_crossbeam"), unit: "M msgs/s", better: Better::Higher, full: 1_000_000, smoke: 1_000, timeout: MINUTE, versus: Some("MessageChannel") },
    Case { group: "one-way, 10 M posts, then 10 M receives (no race)", name: "MessageChannel", side: Side::Ours, program: Program::Rust("tput_ours_apart"), unit: "M msgs/s", better: Better::Higher, full: 10_000_000, smoke: 1_000, timeout: MINUTE, versus: None },
    Case { group: "one-way, 10 M posts, then 10 M receives (no race)", name: "crossbeam-channel", side: Side::BareRust, program: Program::Rust("tput_crossbeam_apart"), unit: "M msgs/s", better: Better::Higher, full: 10_000_000, smoke: 1_000, timeout: MINUTE, versus: Some("MessageChannel") },
    Case { group: "64 MiB buffer round trip", name: "move", side: Side::Ours, program: Program::Rust("buf_move"), unit: "ms", better: Better::Lower, full: 20, smoke: 1, timeout: MINUTE, versus: None },
    Case { group: "64 MiB buffer round trip", name: "clone", side: Side::Ours, program: Program::Rust("buf_clone"), unit: "ms", better: Better::Lower, full: 10, smoke: 1, timeout: MINUTE, versus: None },
    Case { group: "64 MiB buffer round trip", name: "Node transfer", side: Side::Node, program: node("buffer.js", &["transfer"]), unit: "ms", better: Better::Lower, full: 20, smoke: 1, timeout: MINUTE, versus: Some("move") },
    Case { group: "64 MiB buffer round trip", name: "Node structured clone", side: Side::Node, program: node("buffer.js", &["clone"]), unit: "ms", better: Better::Lower, full: 10, smoke: 1, timeout: MINUTE, versus: Some("clone") },
    Case { group: "spawn to first message", name: "Worker::spawn", side: Side::Ours, program: Program::Rust("spawn_worker"), unit: "us", better: Better::Lower, full: 2_000, smoke: 2, timeout: MINUTE, versus: None },
    Case { group: "spawn to first message", name: "Node new Worker", side: Side::Node, program: node("spawn.js", &[]), unit: "us", better: Better::Lower, full: 50, smoke: 2, timeout: MINUTE, versus: Some("Worker::spawn") },
    Case { group: "spawn to first message", name: "std::thread", side: Side::BareRust, program: Program::Rust("spawn_thread"), unit: "us", better: Better::Lower, full: 2_000, smoke: 2, timeout: MINUTE, versus: Some("Worker::spawn") },
    Case { group: "spawn to first message", name: "std::thread + MessageChannel", side: Side::BareRust, program: Program::Rust("spawn_thread_port"), unit: "us", better: Better::Lower, full: 2_000, smoke: 2, timeout: MINUTE, versus: Some("Worker::spawn") },
    Case { group: "memory per idle worker (32 idle)", name: "Worker", side: Side::Ours, program: Program::Rust("idle_worker"), unit: "KiB", better: Better::Lower, full: 32, smoke: 2, timeout: MINUTE, versus: None },
    Case { group: "memory per idle worker (32 idle)", name: "Node Worker", side: Side::Node, program: node("idle.js", &[]), unit: "KiB", better: Better::Lower, full: 32, smoke: 2, timeout: MINUTE, versus: Some("Worker") },
    Case { group: "memory per idle worker (32 idle)", name: "std::thread", side: Side::BareRust, program: Program::Rust("idle_thread"), unit: "KiB", better: Better::Lower, full: 32, smoke: 2, timeout: MINUTE, versus: Some("Worker") },
    Case { group: "Atomics wait/notify round trip", name: "atomics::wait/notify", side: Side::Ours, program: Program::Rust("atomics_ours"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: None },
    Case { group: "Atomics wait/notify round trip", name: "Node Atomics.wait/notify", side: Side::Node, program: node("atomics.js", &[]), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("atomics::wait/notify") },
    Case { group: "Atomics wait/notify round trip", name: "bare futex", side: Side::BareRust, program: Program::Rust("atomics_futex"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("atomics::wait/notify") },
    Case { group: "the Node chapter's 10 M square roots", name: "sqrt_pool (the chapter's loop)", side: Side::Ours, program: Program::Rust("sqrt_seed"), unit: "M tasks/s", better: Better::Higher, full: 10_000_000, smoke: 2_000, timeout: MINUTE, versus: None },
    Case { group: "the Node chapter's 10 M square roots", name: "sqrt_pool (pool.map)", side: Side::Ours, program: Program::Rust("sqrt_map"), unit: "M tasks/s", better: Better::Higher, full: 10_000_000, smoke: 2_000, timeout: MINUTE, versus: None },
    Case { group: "the Node chapter's 10 M square roots", name: "piscina 4.9.4 (maxQueue auto + drain)", side: Side::Node, program: Program::Node { script: "sqrt_piscina.js", args: &["piscina4"], npm: true }, unit: "M tasks/s", better: Better::Higher, full: 10_000_000, smoke: 2_000, timeout: Duration::from_secs(400), versus: Some("sqrt_pool (the chapter's loop)") },
    Case { group: "the Node chapter's 10 M square roots", name: "piscina 5.3.2 (maxQueue auto + drain)", side: Side::Node, program: Program::Node { script: "sqrt_piscina.js", args: &["piscina5"], npm: true }, unit: "M tasks/s", better: Better::Higher, full: 10_000_000, smoke: 2_000, timeout: Duration::from_secs(120), versus: Some("sqrt_pool (the chapter's loop)") },
    Case { group: "the Node chapter's 10 M square roots", name: "threadpool (unbounded)", side: Side::BareRust, program: Program::Rust("sqrt_threadpool"), unit: "M tasks/s", better: Better::Higher, full: 10_000_000, smoke: 2_000, timeout: MINUTE, versus: Some("sqrt_pool (the chapter's loop)") },
    Case { group: "the Node chapter's 10 M square roots", name: "rayon::spawn (unbounded)", side: Side::BareRust, program: Program::Rust("sqrt_rayon"), unit: "M tasks/s", better: Better::Higher, full: 10_000_000, smoke: 2_000, timeout: MINUTE, versus: Some("sqrt_pool (the chapter's loop)") },
    Case { group: "the Node chapter's 10 M square roots", name: "bare ArrayQueue(4) + OnceLock, all spinning (ceiling)", side: Side::BareRust, program: Program::Rust("sqrt_ceiling"), unit: "M tasks/s", better: Better::Higher, full: 10_000_000, smoke: 2_000, timeout: MINUTE, versus: Some("sqrt_pool (the chapter's loop)") },
    Case { group: "cluster IPC round trip, primary <-> worker", name: "Worker::send / Event::Message", side: Side::Ours, program: Program::Rust("ipc_cluster"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: None },
    Case { group: "cluster IPC round trip, primary <-> worker", name: "Node worker.send / process.send", side: Side::Node, program: node("cluster_ipc.js", &[]), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("Worker::send / Event::Message") },
    Case { group: "process worker, spawn to first message", name: "Worker::spawn, isolation(Process)", side: Side::Ours, program: Program::Rust("spawn_process"), unit: "us", better: Better::Lower, full: 200, smoke: 2, timeout: MINUTE, versus: None },
    Case { group: "process worker, spawn to first message", name: "Node new Worker (a thread)", side: Side::Node, program: node("spawn.js", &[]), unit: "us", better: Better::Lower, full: 50, smoke: 2, timeout: MINUTE, versus: Some("Worker::spawn, isolation(Process)") },
    Case { group: "process worker, spawn to first message", name: "bare fork+exec of the same binary", side: Side::BareRust, program: Program::Rust("spawn_exec"), unit: "us", better: Better::Lower, full: 200, smoke: 2, timeout: MINUTE, versus: Some("Worker::spawn, isolation(Process)") },
    Case { group: "process worker, round trip", name: "Worker parent port, isolation(Process)", side: Side::Ours, program: Program::Rust("rt_process"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: None },
    Case { group: "process worker, one-way throughput, 1 M posts", name: "Worker parent port, isolation(Process)", side: Side::Ours, program: Program::Rust("tput_process"), unit: "M msgs/s", better: Better::Higher, full: 1_000_000, smoke: 1_000, timeout: MINUTE, versus: None },
    Case { group: "process worker, 1 MiB round trip", name: "Worker parent port, isolation(Process) (serde_bytes)", side: Side::Ours, program: Program::Rust("rt_process_1mib"), unit: "us", better: Better::Lower, full: 2_000, smoke: 5, timeout: MINUTE, versus: None },
    Case { group: "process worker, 1 MiB round trip", name: "ipc-channel 0.23 IpcBytesSender (a child echoing)", side: Side::BareRust, program: Program::Rust("rt_ipc_bytes_1mib"), unit: "us", better: Better::Lower, full: 2_000, smoke: 5, timeout: MINUTE, versus: Some("Worker parent port, isolation(Process) (serde_bytes)") },
    Case { group: "process worker, round trip", name: "MessagePort in a process worker's data", side: Side::Ours, program: Program::Rust("rt_process_port"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: None },
    Case { group: "process worker, round trip", name: "MessagePort pair between two process workers (relayed by main)", side: Side::Ours, program: Program::Rust("rt_process_pair"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: None },
    Case { group: "process worker, round trip", name: "ipc-channel 0.23 (a child echoing on ipc::channel)", side: Side::BareRust, program: Program::Rust("rt_ipc_channel"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("Worker parent port, isolation(Process)") },
    Case { group: "process worker, round trip", name: "Node process.send (cluster IPC)", side: Side::Node, program: node("cluster_ipc.js", &[]), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("Worker parent port, isolation(Process)") },
    Case { group: "Atomics wait/notify round trip", name: "atomics::wait/notify, peer in a process worker", side: Side::Ours, program: Program::Rust("atomics_process"), unit: "us", better: Better::Lower, full: 100_000, smoke: 200, timeout: MINUTE, versus: Some("atomics::wait/notify") },
    Case { group: "64 MiB buffer round trip", name: "SharedArrayBuffer to a process worker", side: Side::Ours, program: Program::Rust("sab_process"), unit: "ms", better: Better::Lower, full: 200, smoke: 2, timeout: MINUTE, versus: Some("move") },
    Case { group: "async pool, 1,000 tasks awaiting a 10 ms timer", name: "build_async, 2 threads x 64 tasks", side: Side::Ours, program: Program::Rust("async_pool"), unit: "ms", better: Better::Lower, full: 1_000, smoke: 20, timeout: MINUTE, versus: None },
    Case { group: "async pool, 1,000 tasks awaiting a 10 ms timer", name: "build_async, default queue bound, run_wait", side: Side::Ours, program: Program::Rust("async_pool_bounded"), unit: "ms", better: Better::Lower, full: 1_000, smoke: 20, timeout: MINUTE, versus: None },
    Case { group: "async pool, 1,000 tasks awaiting a 10 ms timer", name: "piscina 4.9.4, async handler, 2 threads x 64 concurrentTasksPerWorker", side: Side::Node, program: Program::Node { script: "async_piscina.js", args: &["piscina4"], npm: true }, unit: "ms", better: Better::Lower, full: 1_000, smoke: 20, timeout: MINUTE, versus: Some("build_async, 2 threads x 64 tasks") },
    Case { group: "the Node chapter's 10 M square roots", name: "process pool, pool.map (chunks to worker processes)", side: Side::Ours, program: Program::Rust("sqrt_process_map"), unit: "M tasks/s", better: Better::Higher, full: 10_000_000, smoke: 2_000, timeout: MINUTE, versus: Some("sqrt_pool (pool.map)") },
    Case { group: "process pool, one task at a time", name: "run + join, isolation(Process)", side: Side::Ours, program: Program::Rust("rt_process_pool"), unit: "us", better: Better::Lower, full: 20_000, smoke: 20, timeout: MINUTE, versus: None },
    Case { group: "process pool, one task at a time", name: "ProcessFn::call (the pool's runner, no pool)", side: Side::Ours, program: Program::Rust("rt_process_fn"), unit: "us", better: Better::Lower, full: 20_000, smoke: 20, timeout: MINUTE, versus: None },
    Case { group: "process pool, one task at a time", name: "tinypool 2.2.0, runtime: 'child_process'", side: Side::Node, program: Program::Node { script: "tinypool_rt.js", args: &[], npm: true }, unit: "us", better: Better::Lower, full: 20_000, smoke: 20, timeout: MINUTE, versus: Some("run + join, isolation(Process)") },
    Case { group: "process pool, one task at a time", name: "piscina 4.9.4 (worker threads, not processes)", side: Side::Node, program: Program::Node { script: "piscina_rt.js", args: &["piscina4"], npm: true }, unit: "us", better: Better::Lower, full: 20_000, smoke: 20, timeout: MINUTE, versus: Some("run + join, isolation(Process)") },
    Case { group: REMOTE_MAP, name: "RemotePool::map (chunks of 1,024)", side: Side::Ours, program: Program::Rust("remote_map"), unit: "M tasks/s", better: Better::Higher, full: 10_000_000, smoke: 10_000, timeout: MINUTE, versus: None },
    Case { group: REMOTE_RUN, name: "RemotePool::run_async, one task per message", side: Side::Ours, program: Program::Rust("remote_run"), unit: "k tasks/s", better: Better::Higher, full: 100_000, smoke: 1_000, timeout: MINUTE, versus: None },
    Case { group: REMOTE_RUN, name: "JetStream alone: publish + pull + ack, no handler, no result (ceiling)", side: Side::BareRust, program: Program::Rust("js_ceiling"), unit: "k tasks/s", better: Better::Higher, full: 200_000, smoke: 1_000, timeout: MINUTE, versus: Some("RemotePool::run_async, one task per message") },
    Case { group: REMOTE_RUN, name: "BullMQ 6.7 on Redis, add() x 512 in flight, 2 workers x concurrency 64", side: Side::Node, program: Program::Node { script: "bullmq.js", args: &["run"], npm: true }, unit: "k tasks/s", better: Better::Higher, full: 20_000, smoke: 200, timeout: MINUTE, versus: Some("RemotePool::run_async, one task per message") },
    Case { group: REMOTE_RTT, name: "RemotePool::run + join", side: Side::Ours, program: Program::Rust("remote_rtt"), unit: "us", better: Better::Lower, full: 5_000, smoke: 50, timeout: MINUTE, versus: None },
    Case { group: REMOTE_RTT, name: "NATS core request/reply (no JetStream)", side: Side::BareRust, program: Program::Rust("nats_rr"), unit: "us", better: Better::Lower, full: 5_000, smoke: 50, timeout: MINUTE, versus: Some("RemotePool::run + join") },
    Case { group: REMOTE_RTT, name: "JetStream alone: publish + ack, a bare consumer answers (floor)", side: Side::BareRust, program: Program::Rust("js_rtt"), unit: "us", better: Better::Lower, full: 5_000, smoke: 50, timeout: MINUTE, versus: Some("RemotePool::run + join") },
    Case { group: REMOTE_RTT, name: "BullMQ 6.7 on Redis, add + waitUntilFinished", side: Side::Node, program: Program::Node { script: "bullmq.js", args: &["rtt"], npm: true }, unit: "us", better: Better::Lower, full: 1_000, smoke: 20, timeout: MINUTE, versus: Some("RemotePool::run + join") },
    Case { group: REMOTE_LOOP, name: "RemotePool: queue_size() >= max_queue() -> wait_drain(), run", side: Side::Ours, program: Program::Rust("remote_loop"), unit: "k tasks/s", better: Better::Higher, full: 20_000, smoke: 200, timeout: MINUTE, versus: None },
    Case { group: REMOTE_LOOP, name: "JetStream alone: one publish at a time, each acknowledged (floor)", side: Side::BareRust, program: Program::Rust("js_serial"), unit: "k tasks/s", better: Better::Higher, full: 20_000, smoke: 200, timeout: MINUTE, versus: Some("RemotePool: queue_size() >= max_queue() -> wait_drain(), run") },
    Case { group: RECOVERY, name: "kill to the first of its tasks done by another worker", side: Side::Ours, program: Program::Rust("remote_recovery_first"), unit: "ms", better: Better::Lower, full: 100, smoke: 100, timeout: MINUTE, versus: None },
    Case { group: RECOVERY, name: "kill to the last of its tasks done", side: Side::Ours, program: Program::Rust("remote_recovery_last"), unit: "ms", better: Better::Lower, full: 100, smoke: 100, timeout: MINUTE, versus: None },
    Case { group: FAILOVER, name: "RemotePool::run + join, 99th percentile", side: Side::Ours, program: Program::Rust("remote_failover_p99"), unit: "ms", better: Better::Lower, full: 3_000, smoke: 30, timeout: MINUTE, versus: None },
    Case { group: FAILOVER, name: "RemotePool::run + join, the longest", side: Side::Ours, program: Program::Rust("remote_failover_max"), unit: "ms", better: Better::Lower, full: 3_000, smoke: 30, timeout: MINUTE, versus: None },
    Case { group: HTTP, name: "cluster_http, RoundRobin (default)", side: Side::Ours, program: Program::Http(Server::Ours("rr")), unit: "k req/s", better: Better::Higher, full: 10, smoke: 1, timeout: MINUTE, versus: None },
    Case { group: HTTP, name: "cluster_http, Shared", side: Side::Ours, program: Program::Http(Server::Ours("shared")), unit: "k req/s", better: Better::Higher, full: 10, smoke: 1, timeout: MINUTE, versus: None },
    Case { group: HTTP, name: "cluster_http, ReusePort", side: Side::Ours, program: Program::Http(Server::Ours("reuseport")), unit: "k req/s", better: Better::Higher, full: 10, smoke: 1, timeout: MINUTE, versus: None },
    Case { group: HTTP, name: "Node cluster, 2 workers", side: Side::Node, program: Program::Http(Server::Node("2")), unit: "k req/s", better: Better::Higher, full: 10, smoke: 1, timeout: MINUTE, versus: Some("cluster_http, RoundRobin (default)") },
    Case { group: HTTP, name: "Node, one process", side: Side::Node, program: Program::Http(Server::Node("0")), unit: "k req/s", better: Better::Higher, full: 10, smoke: 1, timeout: MINUTE, versus: Some("cluster_http, RoundRobin (default)") },
];

/// What is not measured, and why.
const NOT_MEASURED: &[(&str, &str)] = &[];

/// One case's outcome.
#[derive(Debug, Serialize)]
pub(crate) struct Outcome {
    /// What runs it, as `compare rounds` names it: a Rust case, `node/SCRIPT[,ARG...]`,
    /// or `http/SERVER`.
    pub(crate) id: String,
    pub(crate) group: &'static str,
    pub(crate) name: &'static str,
    pub(crate) side: Side,
    pub(crate) unit: &'static str,
    pub(crate) better: Better,
    pub(crate) size: u64,
    /// Every run's value.
    pub(crate) runs: Vec<f64>,
    /// The median, if the case ran.
    pub(crate) median: Option<f64>,
    /// How many times better ours is (above 1: ours is better).
    pub(crate) ours_better_by: Option<f64>,
    /// The name of our case it is compared with.
    pub(crate) versus: Option<&'static str>,
    /// Why there is no value, or what was odd.
    pub(crate) note: Option<String>,
}

pub(crate) struct Options {
    pub(crate) smoke: bool,
    pub(crate) out: PathBuf,
    /// Draw the chart again from an earlier run's JSON, measuring nothing.
    pub(crate) redraw: Option<PathBuf>,
}

/// Prints every comparison: group, name, and what runs it (quietly stopping if stdout
/// closes, as when piped into `head`).
pub(crate) fn list() {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for case in CASES {
        let runs = match case.program {
            Program::Rust(name) => format!("compare case {name} N"),
            Program::Node { script, args, .. } => {
                format!("node node/{script} {} N", args.join(" "))
            }
            Program::Http(server) => format!("HTTP server {server:?}, loaded by wrk"),
        };
        if writeln!(out, "{} | {} | {runs}", case.group, case.name).is_err() {
            return;
        }
    }
}

pub(crate) fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// The output of a short command, or `None`.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Cores, CPU, kernel and versions, in one line.
pub(crate) fn machine_line() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(|_| std::env::consts::OS.into());
    // `rustc 1.95.0 (59807616e 2026-04-14)`: the version, without the commit and its date.
    let rustc = output_of("rustc", &["--version"]).map_or_else(
        || "rustc ?".into(),
        |v| v.split(" (").next().unwrap_or(&v).to_owned(),
    );
    let node =
        output_of("node", &["--version"]).map_or("node: missing".into(), |v| format!("node {v}"));
    let date = output_of("date", &["-u", "+%Y-%m-%d"]).unwrap_or_default();
    format!("{date}, {cores} cores, {cpu}, Linux {kernel}, {rustc}, {node}")
}

/// Runs `command` with a time-out; kills it (by its own pid) if it runs over. Returns the
/// value of the JSON line it printed, and its whole JSON.
pub(crate) fn run_once(
    command: &mut Command,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("could not start: {err}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(err) => return Err(format!("wait failed: {err}")),
        }
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let line = stdout.lines().rev().find(|line| line.starts_with('{'));
    match line.and_then(|line| serde_json::from_str(line).ok()) {
        Some(json) => Ok(json),
        None => Err(format!(
            "no result (stderr: {})",
            stderr.lines().last().unwrap_or("").trim()
        )),
    }
}

fn command_for(case: &Case, size: u64, npm_ready: bool) -> Result<Command, String> {
    match case.program {
        Program::Rust(name) => {
            let exe = std::env::current_exe().map_err(|err| err.to_string())?;
            let mut command = Command::new(exe);
            command.args(["case", name, &size.to_string()]);
            Ok(command)
        }
        Program::Http(_) => Err("an HTTP case is measured by crate::http".into()),
        Program::Node { script, args, npm } => {
            if output_of("node", &["--version"]).is_none() {
                return Err("node is not installed".into());
            }
            if npm && !npm_ready {
                return Err("the npm packages (piscina, tinypool, bullmq) are not installed (npm install failed or was skipped)".into());
            }
            node_command(script, args, size)
        }
    }
}

/// `node SCRIPT ARGS SIZE` in the Node folder; an error naming what is missing if the
/// script needs a server that is not installed (BullMQ's scripts start a `redis-server`).
pub(crate) fn node_command(script: &str, args: &[&str], size: u64) -> Result<Command, String> {
    if script == "bullmq.js" && output_of("redis-server", &["--version"]).is_none() {
        return Err(
            "redis-server is not installed (BullMQ's cases start one: apt-get install redis-server)"
                .into(),
        );
    }
    let mut command = Command::new("node");
    command
        .current_dir(node_dir())
        .arg(script)
        .args(args)
        .arg(size.to_string());
    Ok(command)
}

/// The median of `values` (the upper one of an even count), if there are any.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// The full run's case that runs `program`, if there is one.
fn case_running(program: &crate::rounds::Program) -> Option<&'static Case> {
    CASES.iter().find(|case| match (program, case.program) {
        (crate::rounds::Program::Rust(name), Program::Rust(ours)) => name == ours,
        (
            crate::rounds::Program::Node { script, args },
            Program::Node {
                script: ours,
                args: our_args,
                ..
            },
        ) => script == ours && args.iter().map(String::as_str).eq(our_args.iter().copied()),
        _ => false,
    })
}

/// The size the full run gives `program`.
pub(crate) fn full_size(program: &crate::rounds::Program) -> Option<u64> {
    case_running(program).map(|case| case.full)
}

/// The unit of what `program` prints.
pub(crate) fn unit_of(program: &crate::rounds::Program) -> Option<&'static str> {
    case_running(program).map(|case| case.unit)
}

/// How long the full run lets `program` run.
pub(crate) fn timeout_of(program: &crate::rounds::Program) -> Option<Duration> {
    case_running(program).map(|case| case.timeout)
}

/// Installs the pinned npm packages if they are not there yet; an error if that fails.
pub(crate) fn ensure_node_packages() -> anyhow::Result<()> {
    if node_packages_installed() || install_node_packages() {
        Ok(())
    } else {
        anyhow::bail!("the pinned npm packages are not installed and npm install failed")
    }
}

/// Whether every pinned package is there (an older install may lack the newer ones).
fn node_packages_installed() -> bool {
    ["piscina4", "piscina5", "tinypool", "bullmq", "ioredis"]
        .iter()
        .all(|package| node_dir().join("node_modules").join(package).exists())
}

/// Runs one case: three times and the median, or once if a run takes over 30 s. The smoke
/// runs each case once: it checks that every case still runs, it measures nothing.
fn measure(case: &Case, smoke: bool, npm_ready: bool) -> Outcome {
    let size = if smoke { case.smoke } else { case.full };
    let mut outcome = Outcome {
        id: case.program.id(),
        group: case.group,
        name: case.name,
        side: case.side,
        unit: case.unit,
        better: case.better,
        size,
        runs: Vec::new(),
        median: None,
        ours_better_by: None,
        versus: case.versus,
        note: None,
    };
    let runs = if smoke { 1 } else { 3 };
    for _ in 0..runs {
        if let Program::Http(server) = case.program {
            match crate::http::measure(server, size) {
                Ok(value) => outcome.runs.push(value),
                Err(why) => {
                    outcome.note = Some(why);
                    return outcome;
                }
            }
            continue;
        }
        let mut command = match command_for(case, size, npm_ready) {
            Ok(command) => command,
            Err(why) => {
                outcome.note = Some(why);
                return outcome;
            }
        };
        let started = Instant::now();
        match run_once(&mut command, case.timeout) {
            Ok(json) => {
                if let Some(completed) = json.get("completed").and_then(serde_json::Value::as_u64) {
                    if completed < size {
                        outcome.note = Some(format!(
                            "stopped after {completed} of {size} tasks, exit 0 (the Node chapter's loop hangs on 'drain': piscina #868)"
                        ));
                        return outcome;
                    }
                }
                match json.get("value").and_then(serde_json::Value::as_f64) {
                    Some(value) => outcome.runs.push(value),
                    None => {
                        outcome.note = Some("no value in the result".into());
                        return outcome;
                    }
                }
            }
            Err(why) => {
                outcome.note = Some(why);
                return outcome;
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            outcome.note = Some("one run (over 30 s)".into());
            break;
        }
    }
    outcome.median = median(&outcome.runs);
    outcome
}

/// Sets each outcome's ratio against the case of ours it is compared with.
fn ratios(outcomes: &mut [Outcome]) {
    let ours: Vec<(&'static str, &'static str, Option<f64>)> = outcomes
        .iter()
        .filter(|o| o.side == Side::Ours)
        .map(|o| (o.group, o.name, o.median))
        .collect();
    for (outcome, case) in outcomes.iter_mut().zip(CASES) {
        let Some(versus) = case.versus else { continue };
        let reference = ours
            .iter()
            .find(|(group, name, _)| *group == case.group && *name == versus)
            .and_then(|(_, _, median)| *median);
        outcome.ours_better_by = match (reference, outcome.median) {
            (Some(ours), Some(theirs)) if ours > 0.0 && theirs > 0.0 => Some(match case.better {
                Better::Lower => theirs / ours,
                Better::Higher => ours / theirs,
            }),
            _ => None,
        };
    }
}

fn print_table(machine: &str, outcomes: &[Outcome]) {
    println!("\nmachine: {machine}\n");
    println!("| case | implementation | side | median | ours better by |\n|---|---|---|---|---|");
    for o in outcomes {
        let value = o.median.map_or_else(
            || o.note.clone().unwrap_or_default(),
            |v| format!("{v:.3} {}", o.unit),
        );
        let ratio = o
            .ours_better_by
            .map_or(String::from("-"), |r| format!("{r:.2}x"));
        println!(
            "| {} | {} | {:?} | {} | {} |",
            o.group, o.name, o.side, value, ratio
        );
    }
    for (case, why) in NOT_MEASURED {
        println!("| {case} | - | - | not measured: {why} | - |");
    }
}

/// The runner's entry point.
pub(crate) fn main(options: Options) -> anyhow::Result<()> {
    if let Some(json) = &options.redraw {
        return redraw(json, &options.out);
    }
    let machine = machine_line();
    println!(
        "compare ({}): {machine}",
        if options.smoke { "smoke" } else { "full" }
    );
    let npm_ready = node_packages_installed() || (!options.smoke && install_node_packages());
    let mut outcomes = Vec::new();
    for case in CASES {
        let outcome = measure(case, options.smoke, npm_ready);
        match (&outcome.median, &outcome.note) {
            (Some(v), _) => println!("  {}: {}: {v:.3} {}", case.group, case.name, case.unit),
            (None, note) => println!(
                "  {}: {}: {}",
                case.group,
                case.name,
                note.as_deref().unwrap_or("?")
            ),
        }
        outcomes.push(outcome);
    }
    ratios(&mut outcomes);
    print_table(&machine, &outcomes);
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let json = serde_json::json!({
        "machine": machine,
        "mode": if options.smoke { "smoke" } else { "full" },
        "results": outcomes,
        "not_measured": NOT_MEASURED.iter().map(|(case, why)| serde_json::json!({"case": case, "why": why})).collect::<Vec<_>>(),
    });
    let json_path = options.out.join("compare.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)?;
    let svg_path = options.out.join("compare.svg");
    crate::chart::draw(&svg_path, &machine, &bars(&outcomes))?;
    println!("\nwrote {} and {}", json_path.display(), svg_path.display());
    crate::report::write(&options.out)?;
    Ok(())
}

/// `npm install` of the pinned piscina versions into `node/node_modules` (ignored by git).
fn install_node_packages() -> bool {
    if output_of("npm", &["--version"]).is_none() {
        println!("npm is missing: the piscina cases are skipped");
        return false;
    }
    println!(
        "installing piscina 4 and 5, tinypool and bullmq with npm into {}",
        node_dir().display()
    );
    Command::new("npm")
        .args(["install", "--no-audit", "--no-fund"])
        .current_dir(node_dir())
        .status()
        .is_ok_and(|status| status.success())
}

/// The chart's bars: every outcome with a ratio.
fn bars(outcomes: &[Outcome]) -> Vec<crate::chart::Bar> {
    outcomes
        .iter()
        .filter_map(|o| {
            o.ours_better_by.map(|ratio| crate::chart::Bar {
                label: format!("{}: vs {}", o.group, o.name),
                ratio,
                node: o.side == Side::Node,
            })
        })
        .collect()
}

/// Draws the chart of an earlier run again (`--redraw compare.json`).
fn redraw(json: &Path, out: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let run: serde_json::Value = serde_json::from_str(&text)?;
    let machine = run["machine"].as_str().unwrap_or_default();
    let bars: Vec<crate::chart::Bar> = run["results"]
        .as_array()
        .context("no results")?
        .iter()
        .filter_map(|r| {
            Some(crate::chart::Bar {
                label: format!("{}: vs {}", r["group"].as_str()?, r["name"].as_str()?),
                ratio: r["ours_better_by"].as_f64()?,
                node: r["side"].as_str() == Some("Node"),
            })
        })
        .collect();
    std::fs::create_dir_all(out)?;
    let svg = out.join("compare.svg");
    crate::chart::draw(&svg, machine, &bars)?;
    println!("wrote {}", svg.display());
    Ok(())
}
