//! The fault cases past one machine: what a killed worker and a killed server cost a
//! submitter, with the default settings.
//!
//! - `remote_recovery_first`, `remote_recovery_last`: a worker process that holds every
//!   pending task is killed (SIGKILL) while another waits; the time from the kill to the
//!   first of its tasks done by the other, and to the last, in milliseconds (JetStream's
//!   default `ack_wait` would make both 30 s).
//! - `remote_failover_p99`, `remote_failover_max`: round trips one at a time through a
//!   three-node cluster (the queue on all three) while the stream's leader is killed and
//!   restarted; the 99th percentile and the longest, in milliseconds.

use std::time::{Duration, Instant};

use anyhow::Context;
use worker_threads::Pool;
use worker_threads::remote::async_nats;
use worker_threads::remote::{QueueConfig, RemotePool, RemoteWorker};

use crate::remote::{Helper, Server, WORKER_CHILD, free_port, wait_for_stdin_to_close};

/// The argument that makes this binary a worker whose tasks take 5 ms:
/// `--remote-slow-worker URL QUEUE`.
pub(crate) const SLOW_WORKER_CHILD: &str = "--remote-slow-worker";

/// `--remote-slow-worker URL QUEUE`: two threads; a task works 5 ms (a sleep stands for
/// the handler's work) and returns its number and this process's id.
pub(crate) fn slow_worker_child(url: &str, queue: &str) -> anyhow::Result<()> {
    let local = Pool::builder()
        .max_threads(2)
        .max_queue(worker_threads::MaxQueue::Bounded(256))
        .build(|n: u64| {
            std::thread::sleep(Duration::from_millis(5));
            (n, std::process::id())
        })?;
    let worker = RemoteWorker::builder(url, queue).serve(local)?;
    println!("ready");
    wait_for_stdin_to_close();
    worker.stop()?;
    Ok(())
}

/// From a worker's SIGKILL to the first and to the last of its `n` tasks done by another
/// worker, in milliseconds.
pub(crate) fn recovery(n: u64) -> anyhow::Result<(f64, f64)> {
    use futures_util::StreamExt;
    let server = Server::start()?;
    let pool: RemotePool<u64, (u64, u32)> =
        RemotePool::builder(&server.url, "recovery").connect()?;
    let mut doomed = Helper::spawn(&[SLOW_WORKER_CHILD, &server.url, "recovery"])?;
    let mut handles = (0..n.max(2))
        .map(|i| pool.run(i))
        .collect::<Result<Vec<_>, _>>()?;
    // Its first answer: it is at work, and holds the rest (it pulls what it has room for).
    handles.remove(0).join()?;
    let _rescuer = Helper::spawn(&[SLOW_WORKER_CHILD, &server.url, "recovery"])?;
    let doomed_pid = doomed.child.id();
    let killed = Instant::now();
    doomed.child.kill()?;
    doomed.child.wait()?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let rescued: Vec<f64> = runtime.block_on(async {
        let mut done = handles
            .into_iter()
            .map(|handle| async move { (handle.await, killed.elapsed()) })
            .collect::<futures_util::stream::FuturesUnordered<_>>();
        let mut rescued = Vec::new();
        while let Some((answer, at)) = done.next().await {
            let (_, pid) = answer?;
            if pid != doomed_pid {
                rescued.push(at.as_secs_f64() * 1e3);
            }
        }
        anyhow::Ok(rescued)
    })?;
    let first = rescued.iter().copied().fold(f64::INFINITY, f64::min);
    let last = rescued.iter().copied().fold(0.0, f64::max);
    anyhow::ensure!(!rescued.is_empty(), "the killed worker held no task");
    Ok((first, last))
}

/// `nats-server -js` processes routed into one cluster, each named `n<i>`.
struct Cluster {
    servers: Vec<Server>,
}

impl Cluster {
    fn start(size: usize) -> anyhow::Result<Self> {
        let ports: Vec<(u16, u16)> = (0..size)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let servers = ports
            .iter()
            .enumerate()
            .map(|(node, (port, cluster_port))| {
                let routes = ports
                    .iter()
                    .filter(|(other, _)| other != port)
                    .map(|(_, route)| format!("nats://127.0.0.1:{route}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let extra = [
                    "-n",
                    &format!("n{node}"),
                    "--cluster_name",
                    "wt",
                    "--cluster",
                    &format!("nats://127.0.0.1:{cluster_port}"),
                    "--routes",
                    &routes,
                ];
                Server::start_with(*port, extra.iter().map(ToString::to_string).collect())
            })
            .collect::<anyhow::Result<_>>()?;
        let cluster = Self { servers };
        cluster.wait_until_ready()?;
        Ok(cluster)
    }

    fn urls(&self) -> String {
        self.servers
            .iter()
            .map(|server| server.url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Until JetStream answers on every server (its first election is over).
    fn wait_until_ready(&self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            for server in &self.servers {
                let client = async_nats::connect(&server.url).await?;
                let js = async_nats::jetstream::new(client);
                while js.query_account().await.is_err() {
                    anyhow::ensure!(Instant::now() < deadline, "JetStream not ready");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            anyhow::Ok(())
        })
    }

    /// The index of the server that leads the stream `stream`.
    fn leader(&self, stream: &str) -> anyhow::Result<usize> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let leader = runtime.block_on(async {
            let client = async_nats::connect(&self.servers[0].url).await?;
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream(stream).await?;
            let info = stream.info().await?;
            let cluster = info.cluster.clone().context("not clustered")?;
            cluster.leader.context("no leader")
        })?;
        leader
            .strip_prefix('n')
            .and_then(|node| node.parse().ok())
            .context("a leader of another cluster")
    }
}

/// Round trips (`run` + `join`) one at a time through a three-node cluster, the stream's
/// leader killed and restarted after a third of them: the 99th percentile and the
/// longest, in milliseconds.
pub(crate) fn failover(n: u64) -> anyhow::Result<(f64, f64)> {
    let mut cluster = Cluster::start(3)?;
    let urls = cluster.urls();
    let pool: RemotePool<f64, f64> = RemotePool::builder(&urls, "failover")
        .queue_config(QueueConfig {
            replicas: 3,
            ..QueueConfig::default()
        })
        .connect()?;
    let _workers = [
        Helper::spawn(&[WORKER_CHILD, &urls, "failover"])?,
        Helper::spawn(&[WORKER_CHILD, &urls, "failover"])?,
    ];
    pool.run(0.0)?.join()?; // both sides warm
    let mut times = Vec::with_capacity(n as usize);
    for i in 0..n.max(3) {
        if i == n / 3 {
            let leader = cluster.leader("WT_failover")?;
            cluster.servers[leader].kill();
            cluster.servers[leader].restart()?;
        }
        let start = Instant::now();
        let root = pool.run(i as f64)?.join()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(root == (i as f64).sqrt(), "wrong root");
    }
    times.sort_by(f64::total_cmp);
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    let max = times[times.len() - 1];
    Ok((p99, max))
}
