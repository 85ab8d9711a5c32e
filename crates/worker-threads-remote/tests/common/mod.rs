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
        let port = free_port();
        let store =
            std::env::temp_dir().join(format!("wt-remote-test-{}-{port}", std::process::id()));
        let child = spawn_server(port, &store, &[]);
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
        self.child = Some(spawn_server(port, &self.store, &[]));
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

/// `nats-server -js` on `port` with its store in `store` (and `extra` arguments), once it
/// logged that it is ready.
fn spawn_server(port: u16, store: &std::path::Path, extra: &[String]) -> Child {
    let mut child = Command::new(nats_server())
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("no nats-server: run the tests with `cargo xtask test`, which installs one, or set NATS_SERVER");
    let stderr = child.stderr.take().expect("piped stderr");
    once_a_line(stderr, |line| line.contains("Server is ready"))
        .recv_timeout(PATIENCE)
        .expect("nats-server did not become ready");
    child
}

/// Reads `output` to its end on a thread of its own; the receiver hears once a line that
/// `wanted` accepts was read.
fn once_a_line(
    output: impl std::io::Read + Send + 'static,
    wanted: impl Fn(&str) -> bool + Send + 'static,
) -> mpsc::Receiver<()> {
    let (seen_tx, seen) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen_tx = Some(seen_tx);
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if wanted(&line)
                && let Some(tx) = seen_tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    seen
}

/// Runs `work` with a JetStream context on the server(s) at `url`, on a runtime of its
/// own.
pub fn with_jetstream<T>(
    url: &str,
    work: impl AsyncFnOnce(worker_threads_remote::async_nats::jetstream::Context) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let servers = url
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<worker_threads_remote::async_nats::ServerAddr>, _>>()?;
        let client = worker_threads_remote::async_nats::connect(servers).await?;
        work(worker_threads_remote::async_nats::jetstream::new(client)).await
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A JetStream cluster on loopback: `nats-server -js` processes routed into one cluster,
/// each with its own store; stopped (and their stores removed) when dropped.
pub struct NatsCluster {
    nodes: Vec<Node>,
}

struct Node {
    port: u16,
    cluster_port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts `size` servers routed to each other; returns once JetStream answers on
    /// every one (its first leader election is over).
    pub fn start(size: usize) -> Self {
        let nodes: Vec<Node> = (0..size)
            .map(|_| {
                let port = free_port();
                Node {
                    port,
                    cluster_port: free_port(),
                    store: std::env::temp_dir()
                        .join(format!("wt-remote-cluster-{}-{port}", std::process::id())),
                    child: None,
                }
            })
            .collect();
        let mut cluster = Self { nodes };
        for node in 0..size {
            cluster.restart(node);
        }
        note_start();
        cluster.wait_until_ready();
        cluster
    }

    /// Every server's URL, separated by commas: what a builder takes for a cluster.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|node| self.url(node))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn url(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[node].port)
    }

    /// The server's name in the cluster (`n0`, `n1`, ...).
    pub fn name(node: usize) -> String {
        format!("n{node}")
    }

    /// Kills the server now (SIGKILL), as a crash would.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again): the same ports, the same store.
    pub fn restart(&mut self, node: usize) {
        let routes = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != node)
            .map(|(_, other)| format!("nats://127.0.0.1:{}", other.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let this = &self.nodes[node];
        let extra = [
            "-n".to_string(),
            Self::name(node),
            "--cluster_name".to_string(),
            "wt".to_string(),
            "--cluster".to_string(),
            format!("nats://127.0.0.1:{}", this.cluster_port),
            "--routes".to_string(),
            routes,
        ];
        let child = spawn_server(this.port, &this.store, &extra);
        self.nodes[node].child = Some(child);
    }

    /// Waits until JetStream answers on every running server.
    pub fn wait_until_ready(&self) {
        let deadline = std::time::Instant::now() + PATIENCE;
        for node in (0..self.nodes.len()).filter(|node| self.nodes[*node].child.is_some()) {
            with_jetstream(&self.url(node), async |js| {
                while js.query_account().await.is_err() {
                    anyhow::ensure!(std::time::Instant::now() < deadline, "JetStream not ready");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(())
            })
            .expect("JetStream on every server");
        }
    }

    /// The index of the server that leads the stream of queue `queue`, once the stream has
    /// a leader and every other copy is current (caught up).
    pub fn stream_leader(&self, queue: &str) -> usize {
        let running = (0..self.nodes.len())
            .filter(|node| self.nodes[*node].child.is_some())
            .map(|node| self.url(node))
            .collect::<Vec<_>>()
            .join(",");
        let size = self.nodes.len();
        with_jetstream(&running, async |js| {
            let deadline = std::time::Instant::now() + PATIENCE;
            loop {
                anyhow::ensure!(std::time::Instant::now() < deadline, "no current leader");
                if let Some(leader) = current_leader(&js, queue, size).await {
                    return Ok(leader);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .expect("a stream leader")
    }
}

/// The index of the stream's leader if every other copy of it is current.
async fn current_leader(
    js: &worker_threads_remote::async_nats::jetstream::Context,
    queue: &str,
    size: usize,
) -> Option<usize> {
    let mut stream = js.get_stream(format!("WT_{queue}")).await.ok()?;
    let cluster = stream.info().await.ok()?.cluster.clone()?;
    let current = cluster.replicas.len() + 1 == size
        && cluster
            .replicas
            .iter()
            .all(|peer| peer.current && !peer.offline);
    let leader = cluster.leader?;
    if !current {
        return None;
    }
    (0..size).find(|node| NatsCluster::name(*node) == leader)
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
            let _ = std::fs::remove_dir_all(&self.nodes[node].store);
        }
    }
}

/// The handle's answer, failing (not hanging) if it does not come within `PATIENCE`.
pub fn join_within(handle: worker_threads_remote::RemoteHandle<Answer>) -> anyhow::Result<Answer> {
    Ok(resolution_within(handle)??)
}

/// What `handle` resolves with, if it resolves within `PATIENCE` (a failure, not a hang,
/// if it does not).
pub fn resolution_within<R: Send + 'static>(
    handle: worker_threads_remote::RemoteHandle<R>,
) -> anyhow::Result<Result<R, worker_threads_remote::TaskError>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(async { tokio::time::timeout(PATIENCE, handle).await })
        .map_err(|_| anyhow::anyhow!("no answer: the task is pending still"))
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
    /// Panics with its try number (`try N failed`) until try `succeed_on` (0: never),
    /// which returns `key`; tries are counted by `key` in this process ([`tries_of`]).
    Flaky { key: u64, succeed_on: u32 },
}

/// When each try of each [`Job::Flaky`] key began, in this process.
static TRIES: std::sync::Mutex<Vec<(u64, std::time::Instant)>> = std::sync::Mutex::new(Vec::new());

/// When each try of the [`Job::Flaky`] task `key` began, in this process.
pub fn tries_of(key: u64) -> Vec<std::time::Instant> {
    let tries = TRIES.lock().expect("the tries");
    tries
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, at)| *at)
        .collect()
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
        Job::Flaky { key, succeed_on } => {
            let attempt = {
                let mut tries = TRIES.lock().expect("the tries");
                tries.push((key, std::time::Instant::now()));
                tries.iter().filter(|(k, _)| *k == key).count()
            };
            if attempt != succeed_on as usize {
                panic!("try {attempt} failed");
            }
            key
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
        let ready = once_a_line(stdout, |line| line.trim() == "serving");
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
