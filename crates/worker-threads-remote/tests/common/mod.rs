//! A real `nats-server` with JetStream for the tests: started on a free loopback port with
//! a temporary store, stopped (and its store removed) when dropped. And worker processes:
//! this test binary run again on its `remote_worker_process` entry.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
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
        let child = spawn_server(port, &store);
        note_start();
        Self {
            child: Some(child),
            store,
            url: format!("nats://127.0.0.1:{port}"),
        }
    }

    /// Starts the server again after [`stop`](Self::stop): the same port, the same store
    /// (a file-stored queue comes back with what it held).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a stopped server");
        let port = self
            .url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("the server's port");
        self.child = Some(spawn_server(port, &self.store));
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

/// `nats-server -js` on `port` with its store in `store`, once it logged that it is ready.
fn spawn_server(port: u16, store: &std::path::Path) -> Child {
    let mut child = Command::new(nats_server())
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
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
    child
}

/// A TCP relay to the server that a test can cut: every connection through it closes,
/// and new ones are closed at once, until it is restored. A client connected through it
/// loses its connection while the server stays up.
pub struct Relay {
    pub url: String,
    cut: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Relays a loopback port to the server at `server` (`nats://127.0.0.1:PORT`).
    pub fn start(server: &str) -> Self {
        let upstream = server.trim_start_matches("nats://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("nats://{}", listener.local_addr().expect("its address"));
        let cut = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (cut_flag, all) = (Arc::clone(&cut), Arc::clone(&streams));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut_flag.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut streams = all.lock().expect("the relay's streams");
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                streams.extend([client, server]);
            }
        });
        Self { url, cut, streams }
    }

    /// Closes every connection through the relay, and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.streams.lock().expect("the relay's streams").drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
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
    /// Waits for [`open_gate`] in this process, then returns `n * n`.
    Gated(u64),
}

static GATE: (std::sync::Mutex<bool>, std::sync::Condvar) =
    (std::sync::Mutex::new(false), std::sync::Condvar::new());

/// Lets every [`Job::Gated`] task of this process finish.
pub fn open_gate() {
    *GATE.0.lock().expect("the gate") = true;
    GATE.1.notify_all();
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
        Job::Gated(n) => {
            let open = GATE.0.lock().expect("the gate");
            drop(GATE.1.wait_while(open, |open| !*open).expect("the gate"));
            n * n
        }
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
