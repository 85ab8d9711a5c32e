//! `compare`: measures worker-threads against Node, piscina and bare Rust on this machine,
//! in one run, and writes a table, JSON and an SVG chart.
//!
//! `cargo run --release -p compare` (full; installs piscina with npm into
//! `benches/compare/node/node_modules`), `cargo run -p compare -- --smoke` (tiny sizes;
//! what CI runs), `-- --out DIR` for where the JSON and SVG go (default `target/compare`).

mod cases;
mod chart;
mod http;
mod runner;

fn main() -> anyhow::Result<()> {
    if worker_threads::cluster::is_worker() {
        cases::ipc_echo();
        return Ok(());
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("case") {
        let name = args.get(1).map(String::as_str).unwrap_or_default();
        let n = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
        return cases::run(name, n);
    }
    runner::main(&args)
}
