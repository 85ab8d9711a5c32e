//! The HTTP case: a server process on a free loopback port, loaded by `wrk -t1 -c64`.
//!
//! Ours is the `cluster_http` example (built on demand next to this binary); Node's is
//! `node/cluster_http.js`, the Node chapter's program. Load starts once every worker says it
//! listens; the primary is then stopped with SIGTERM and its workers follow it (ours on
//! the IPC end-of-file, Node's on the IPC disconnect).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Which server a case starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Server {
    /// `cluster_http --workers 2 --policy POLICY`.
    Ours(&'static str),
    /// `node cluster_http.js WORKERS` (0: one process, no cluster).
    Node(&'static str),
}

impl std::fmt::Display for Server {
    /// `ours-POLICY` or `node-WORKERS`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Server::Ours(policy) => write!(f, "ours-{policy}"),
            Server::Node(workers) => write!(f, "node-{workers}"),
        }
    }
}

fn example() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile = exe.parent().ok_or("no target folder")?;
    let path = profile.join("examples").join("cluster_http");
    if !path.exists() {
        // `cargo run -p compare` sets CARGO; build the example in the same profile.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = profile.file_name().is_some_and(|name| name == "release");
        let mut build = Command::new(cargo);
        build.args(["build", "--example", "cluster_http", "--features", "tokio"]);
        if release {
            build.arg("--release");
        }
        let ok = build.status().is_ok_and(|s| s.success());
        if !ok || !path.exists() {
            return Err("could not build the cluster_http example".into());
        }
    }
    Ok(path)
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn start(server: Server, port: u16) -> Result<Child, String> {
    let mut command = match server {
        Server::Ours(policy) => {
            let mut c = Command::new(example()?);
            c.args(["--workers", "2", "--policy", policy]);
            c
        }
        Server::Node(workers) => {
            let mut c = Command::new("node");
            c.current_dir(crate::runner::node_dir())
                .args(["cluster_http.js", workers]);
            c
        }
    };
    command
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start the server: {e}"))
}

/// Waits until every worker said it listens: ours prints `serving` per worker, Node's
/// script `listening`.
fn ready(server: Server, child: &mut Child) -> Result<(), String> {
    let (word, count) = match server {
        Server::Ours(_) => ("serving", 2),
        Server::Node("0") => ("listening", 1),
        Server::Node(_) => ("listening", 2),
    };
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains(word) {
                seen += 1;
                if seen == count {
                    let _ = tx.send(());
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the server did not listen within 20 s".to_string())
}

fn stop(mut child: Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let _ = child.wait();
}

/// Requests per second, in thousands, over `seconds` of `wrk -t1 -c64`.
pub(crate) fn measure(server: Server, seconds: u64) -> Result<f64, String> {
    if Command::new("wrk").arg("--version").output().is_err() {
        return Err("wrk is not installed (apt-get install wrk)".into());
    }
    if matches!(server, Server::Node(_)) && Command::new("node").arg("--version").output().is_err()
    {
        return Err("node is not installed".into());
    }
    let port = free_port()?;
    let mut child = start(server, port)?;
    if let Err(why) = ready(server, &mut child) {
        stop(child);
        return Err(why);
    }
    let output = Command::new("wrk")
        .args(["-t1", "-c64", &format!("-d{seconds}s")])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output();
    stop(child);
    let output = output.map_err(|e| format!("wrk failed: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = text
        .lines()
        .any(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output: {text}"))?;
    if errors {
        return Err(format!("wrk saw errors: {text}"));
    }
    Ok(rps / 1000.0)
}
