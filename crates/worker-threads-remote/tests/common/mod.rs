//! A real `nats-server` with JetStream for the tests: started on a free loopback port with
//! a temporary store, stopped (and its store removed) when dropped. And worker processes:
//! this test binary run again on its `remote_worker_process` entry.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The bound on waiting for a process to say it is ready: a hang fails, it does not wait
/// forever. Not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct NatsServer {
    child: Option<Child>,
    store: PathBuf,
    pub url: String,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free loopback port; returns once it logged that it
    /// is ready.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let store =
            std::env::temp_dir().join(format!("wt-remote-test-{}-{port}", std::process::id()));
        let mut child = Command::new(nats_server())
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("no nats-server: run the tests with `cargo xtask test`, which installs one, or set NATS_SERVER");
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("Server is ready")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        ready
            .recv_timeout(PATIENCE)
            .expect("nats-server did not become ready");
        note_start();
        Self {
            child: Some(child),
            store,
            url: format!("nats://127.0.0.1:{port}"),
        }
    }

    /// Stops the server now (SIGKILL), as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// The tests' task: what the handler does.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Job {
    /// Returns `n * n`.
    Square(u64),
    /// Works `ms` milliseconds (the handler's workload), then returns `n * n`.
    Slow { n: u64, ms: u64 },
    /// Panics.
    Panic,
    /// Aborts the worker process.
    Abort,
}

/// The tests' result: the value and the process that computed it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Answer {
    pub value: u64,
    pub pid: u32,
}

pub fn handle(job: Job) -> Answer {
    let value = match job {
        Job::Square(n) => n * n,
        Job::Slow { n, ms } => {
            std::thread::sleep(Duration::from_millis(ms));
            n * n
        }
        Job::Panic => panic!("asked to panic"),
        Job::Abort => std::process::abort(),
    };
    Answer {
        value,
        pid: std::process::id(),
    }
}

/// A worker process: this test binary run on its ignored `remote_worker_process` test,
/// which serves `queue` until its stdin closes (dropping this, or the test ending).
pub struct WorkerProcess {
    pub child: Child,
    stdin: Option<ChildStdin>,
}

impl WorkerProcess {
    pub fn spawn(url: &str, queue: &str, config: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "remote_worker_process",
                "--ignored",
                "--nocapture",
            ])
            .env("WT_REMOTE_URL", url)
            .env("WT_REMOTE_QUEUE", queue)
            .env("WT_REMOTE_CONFIG", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a worker process");
        // The child prints `serving` once its consumer is bound.
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "serving"
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        // A worker that dies before serving (a poison task it pulled at once) is fine.
        let _ = ready.recv_timeout(PATIENCE);
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it: closes its stdin and waits for it to finish what it holds and exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.stdin.take();
        self.child.wait().expect("wait for a worker process")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A queue config from its environment encoding: `max_queue,ack_wait_ms,max_deliver`, or
/// `default`.
pub fn config_from(encoded: &str) -> worker_threads_remote::QueueConfig {
    if encoded == "default" {
        return worker_threads_remote::QueueConfig::default();
    }
    let parts: Vec<u64> = encoded
        .split(',')
        .map(|part| part.parse().expect("a number"))
        .collect();
    worker_threads_remote::QueueConfig {
        max_queue: usize::try_from(parts[0]).expect("fits"),
        ack_wait: Duration::from_millis(parts[1]),
        max_deliver: u32::try_from(parts[2]).expect("fits"),
        ..Default::default()
    }
}

/// The server to start: `$NATS_SERVER` (set by `cargo xtask test`, which installs one),
/// else `nats-server` on the `PATH`, else Debian's in `/usr/sbin`.
fn nats_server() -> std::ffi::OsString {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return path;
    }
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("nats-server").is_file())
    });
    if on_path {
        "nats-server"
    } else {
        "/usr/sbin/nats-server"
    }
    .into()
}

/// Notes a started server in `$WT_NATS_STARTS`, if set, under this test binary's name:
/// `cargo xtask test` checks that every remote test file started one (so no remote test
/// passes by not running).
fn note_start() {
    use std::io::Write;
    let Some(list) = std::env::var_os("WT_NATS_STARTS") else {
        return;
    };
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(list)
        .expect("the list of started servers");
    // One write of the whole line: appends from parallel tests do not interleave.
    file.write_all(format!("{binary}\n").as_bytes())
        .expect("noting a started server");
}
