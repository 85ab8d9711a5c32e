//! The "past one machine" cases: a real `nats-server -js` on a free loopback port (a
//! temporary store), two worker processes (this binary, `--remote-worker`), and the
//! submitter in the case's process. Also bare NATS request/reply, the floor of a round
//! trip through the server.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use worker_threads::Pool;
use worker_threads::remote::async_nats;
use worker_threads::remote::{QueueConfig, RemotePool, RemoteWorker};

/// The argument that makes this binary a remote worker: `--remote-worker URL QUEUE`.
pub(crate) const WORKER_CHILD: &str = "--remote-worker";
/// The argument that makes this binary a bare JetStream consumer (pull and acknowledge):
/// `--js-consumer URL`.
pub(crate) const CONSUMER_CHILD: &str = "--js-consumer";
/// The argument that makes this binary a bare NATS responder: `--nats-responder URL SUBJECT`.
pub(crate) const RESPONDER_CHILD: &str = "--nats-responder";

const QUEUE: &str = "compare";
/// The subject the queue `compare` takes tasks on.
const TASKS: &str = "wt.compare.tasks";

/// A `nats-server -js`, killed and its store removed on drop.
pub(crate) struct Server {
    child: Option<Child>,
    store: std::path::PathBuf,
    port: u16,
    extra: Vec<String>,
    pub(crate) url: String,
}

impl Server {
    pub(crate) fn start() -> anyhow::Result<Self> {
        Self::start_with(free_port()?, Vec::new())
    }

    /// On `port`, with `extra` arguments (a cluster's).
    pub(crate) fn start_with(port: u16, extra: Vec<String>) -> anyhow::Result<Self> {
        let store = std::env::temp_dir().join(format!("wt-compare-{}-{port}", std::process::id()));
        let mut server = Self {
            child: None,
            store,
            port,
            extra,
            url: format!("nats://127.0.0.1:{port}"),
        };
        server.restart()?;
        Ok(server)
    }

    /// Kills it now (SIGKILL), as a crash would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again): the same port, store and arguments; returns once it is ready.
    pub(crate) fn restart(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new(nats_server())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("no nats-server: `cargo xtask nats-server` installs one and prints its path for NATS_SERVER")?;
        let stderr = child.stderr.take().context("stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        loop {
            let line = lines
                .next()
                .context("nats-server ended before it was ready")??;
            if line.contains("Server is ready") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
        Ok(())
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A child of this binary that prints `ready` when it serves, and ends when its stdin
/// closes.
pub(crate) struct Helper {
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
}

impl Helper {
    pub(crate) fn spawn(args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        anyhow::ensure!(
            lines.next().transpose()?.as_deref() == Some("ready"),
            "a helper process did not start"
        );
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

pub(crate) fn wait_for_stdin_to_close() {
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

fn square_root(n: f64) -> f64 {
    n.sqrt()
}

/// `--remote-worker URL QUEUE`: a local pool (default threads, a queue of 256) serving
/// the queue.
pub(crate) fn worker_child(url: &str, queue: &str) -> anyhow::Result<()> {
    // A deep local queue keeps the threads busy while tasks come over the network.
    let local = Pool::builder()
        .max_queue(worker_threads::MaxQueue::Bounded(256))
        .build(square_root)?;
    let worker = RemoteWorker::builder(url, queue).serve(local)?;
    println!("ready");
    wait_for_stdin_to_close();
    worker.stop()?;
    Ok(())
}

/// `--nats-responder URL SUBJECT`: answers each request with its payload.
pub(crate) fn responder_child(url: &str, subject: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        use futures_util::StreamExt;
        let client = async_nats::connect(url).await?;
        let mut requests = client.subscribe(subject.to_string()).await?;
        client.flush().await?;
        println!("ready");
        let stdin_closed = tokio::task::spawn_blocking(wait_for_stdin_to_close);
        tokio::pin!(stdin_closed);
        loop {
            tokio::select! {
                request = requests.next() => {
                    let Some(request) = request else { break };
                    if let Some(reply) = request.reply {
                        client.publish(reply, request.payload).await?;
                    }
                }
                _ = &mut stdin_closed => break,
            }
        }
        anyhow::Ok(())
    })
}

/// The server, two worker processes and a connected submitter.
fn setup(max_queue: usize) -> anyhow::Result<(Server, [Helper; 2], RemotePool<f64, f64>)> {
    let server = Server::start()?;
    let pool = RemotePool::builder(&server.url, QUEUE)
        .queue_config(QueueConfig {
            max_queue,
            ..Default::default()
        })
        .connect()?;
    let workers = [
        Helper::spawn(&[WORKER_CHILD, &server.url, QUEUE])?,
        Helper::spawn(&[WORKER_CHILD, &server.url, QUEUE])?,
    ];
    Ok((server, workers, pool))
}

/// `remote_map`: the Node chapter's square roots through `RemotePool::map` (chunks of
/// 1,024), two worker processes; millions of tasks per second, end to end.
pub(crate) fn remote_map(n: u64) -> anyhow::Result<f64> {
    let (_server, _workers, pool) = setup(65_536)?;
    let start = Instant::now();
    let mut count = 0u64;
    for (i, root) in pool.map((0..n).map(|i| i as f64)).enumerate() {
        anyhow::ensure!(root? == (i as f64).sqrt(), "wrong root for {i}");
        count += 1;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64() / 1e6;
    anyhow::ensure!(count == n, "{count} of {n} results");
    Ok(rate)
}

/// `remote_run`: one task per message (`run_async`), 512 in flight, two worker processes;
/// thousands of tasks per second.
pub(crate) fn remote_run(n: u64) -> anyhow::Result<f64> {
    use futures_util::StreamExt;
    let (_server, _workers, pool) = setup(65_536)?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let start = Instant::now();
    let correct = runtime.block_on(
        futures_util::stream::iter(0..n)
            .map(|i| {
                let pool = &pool;
                async move {
                    let handle = pool.run_async(i as f64).await?;
                    anyhow::Ok(handle.await? == (i as f64).sqrt())
                }
            })
            .buffer_unordered(512)
            .fold(Ok(0u64), |count, ok| async move {
                match (count, ok) {
                    (Ok(count), Ok(true)) => Ok(count + 1),
                    (Ok(_), Ok(false)) => Err(anyhow::anyhow!("a wrong root")),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }),
    )?;
    let rate = correct as f64 / start.elapsed().as_secs_f64() / 1e3;
    anyhow::ensure!(correct == n, "{correct} of {n} results");
    Ok(rate)
}

/// `remote_loop`: the Node chapter's loop as written, through a `RemotePool` (two worker
/// processes): `queue_size()` against `max_queue()` before every `run`, `wait_drain()`
/// when full, every handle joined at the end; thousands of tasks per second.
pub(crate) fn remote_loop(n: u64) -> anyhow::Result<f64> {
    let (_server, _workers, pool) = setup(65_536)?;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        if pool.queue_size() >= pool.max_queue() {
            pool.wait_drain();
        }
        handles.push((i, pool.run(i as f64)?));
    }
    for (i, handle) in handles {
        anyhow::ensure!(handle.join()? == (i as f64).sqrt(), "a wrong root");
    }
    Ok(n as f64 / start.elapsed().as_secs_f64() / 1e3)
}

/// `js_serial`: the floor of `remote_loop`, with none of our code: publishes to the same
/// queue one at a time, each awaiting JetStream's acknowledgement, while two bare consumer
/// processes pull and acknowledge; thousands of messages per second until the queue is
/// empty.
pub(crate) fn js_serial(n: u64) -> anyhow::Result<f64> {
    through_bare_consumers(n, async |js, n| {
        for i in 0..n {
            js.publish(TASKS, (i as f64).to_le_bytes().to_vec().into())
                .await?
                .await?;
        }
        Ok(())
    })
}

/// `n` messages published by `publish` into the queue (made as a `RemotePool` makes it)
/// while two bare consumer processes pull and acknowledge them: thousands of messages per
/// second, from the first publish until the queue is empty.
fn through_bare_consumers(
    n: u64,
    publish: impl AsyncFnOnce(&async_nats::jetstream::Context, u64) -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let server = Server::start()?;
    // Creates the queue as a RemotePool does.
    let pool: RemotePool<f64, f64> = RemotePool::builder(&server.url, QUEUE).connect()?;
    let _consumers = [
        Helper::spawn(&[CONSUMER_CHILD, &server.url])?,
        Helper::spawn(&[CONSUMER_CHILD, &server.url])?,
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    runtime.block_on(async {
        let client = async_nats::connect(&server.url).await?;
        publish(&async_nats::jetstream::new(client), n).await
    })?;
    pool.wait_drain();
    Ok(n as f64 / start.elapsed().as_secs_f64() / 1e3)
}

/// `remote_rtt`: one task at a time, `run` then `join`; the median in microseconds.
pub(crate) fn remote_rtt(n: u64) -> anyhow::Result<f64> {
    let (_server, _workers, pool) = setup(65_536)?;
    pool.run(0.0)?.join()?; // both sides warm
    let mut times = Vec::with_capacity(n as usize);
    for i in 0..n {
        let start = Instant::now();
        let root = pool.run(i as f64)?.join()?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(root == (i as f64).sqrt(), "wrong root");
    }
    Ok(median(&mut times))
}

/// `nats_rr`: bare NATS core request/reply to a responder process, one at a time; the
/// median in microseconds.
pub(crate) fn nats_rr(n: u64) -> anyhow::Result<f64> {
    let server = Server::start()?;
    let _responder = Helper::spawn(&[RESPONDER_CHILD, &server.url, "compare.echo"])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = async_nats::connect(&server.url).await?;
        let mut times = Vec::with_capacity(n as usize);
        client.request("compare.echo", "0".into()).await?;
        for i in 0..n {
            let payload = (i as f64).to_le_bytes().to_vec();
            let start = Instant::now();
            let reply = client
                .request("compare.echo", payload.clone().into())
                .await?;
            times.push(start.elapsed().as_secs_f64() * 1e6);
            anyhow::ensure!(reply.payload.as_ref() == payload.as_slice(), "wrong echo");
        }
        Ok(median(&mut times))
    })
}

pub(crate) fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `--js-consumer URL`: pulls the `compare` queue's messages and acknowledges each, doing
/// nothing else; prints `ready` once bound.
pub(crate) fn consumer_child(url: &str) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = async_nats::connect(url).await?;
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream("WT_compare").await?;
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_consumer("wt-compare")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(256)
            .messages()
            .await?;
        println!("ready");
        let stdin_closed = tokio::task::spawn_blocking(wait_for_stdin_to_close);
        tokio::pin!(stdin_closed);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { break };
                    let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
                    // `js_rtt` asks for an answer: the payload back, on a core subject.
                    let answer_to = message
                        .headers
                        .as_ref()
                        .and_then(|headers| headers.get("Answer-To"))
                        .map(|subject| subject.as_str().to_string());
                    if let Some(subject) = answer_to {
                        message.context.client().publish(subject, message.payload.clone()).await?;
                    }
                    message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                _ = &mut stdin_closed => break,
            }
        }
        anyhow::Ok(())
    })
}

/// `js_ceiling`: what JetStream itself allows for one message per task on this machine:
/// the same queue (work-queue stream and shared pull consumer, as `RemotePool` makes
/// them), publishes pipelined 512 deep, two consumer processes that only pull and
/// acknowledge (no handler, no result); thousands of messages per second until the queue
/// is empty.
pub(crate) fn js_ceiling(n: u64) -> anyhow::Result<f64> {
    through_bare_consumers(n, async |js, n| {
        use futures_util::StreamExt;
        futures_util::stream::iter(0..n)
            .map(|i| async move {
                let ack = js
                    .publish(TASKS, (i as f64).to_le_bytes().to_vec().into())
                    .await?;
                ack.await?;
                anyhow::Ok(())
            })
            .buffer_unordered(512)
            .fold(Ok(()), |done, r| async move { done.and(r) })
            .await
    })
}

/// `js_rtt`: the floor of a task's round trip through JetStream, with none of our code: a
/// publish to the same queue (awaiting JetStream's acknowledgement, as `run` does) that a
/// bare consumer process answers on a core subject; one at a time, the median in
/// microseconds.
pub(crate) fn js_rtt(n: u64) -> anyhow::Result<f64> {
    use futures_util::StreamExt;
    let server = Server::start()?;
    let pool: RemotePool<f64, f64> = RemotePool::builder(&server.url, QUEUE).connect()?;
    let _consumer = Helper::spawn(&[CONSUMER_CHILD, &server.url])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let median_us = runtime.block_on(async {
        let client = async_nats::connect(&server.url).await?;
        let js = async_nats::jetstream::new(client.clone());
        let mut answers = client.subscribe("compare.answers").await?;
        client.flush().await?;
        let mut times = Vec::with_capacity(n as usize);
        for i in 0..=n {
            let payload = (i as f64).to_le_bytes().to_vec();
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Answer-To", "compare.answers");
            let start = Instant::now();
            let ack = js
                .publish_with_headers(TASKS, headers, payload.clone().into())
                .await?;
            ack.await?;
            let answer = answers.next().await.context("no answer")?;
            if i > 0 {
                times.push(start.elapsed().as_secs_f64() * 1e6);
            }
            anyhow::ensure!(
                answer.payload.as_ref() == payload.as_slice(),
                "wrong answer"
            );
        }
        anyhow::Ok(median(&mut times))
    })?;
    drop(pool);
    Ok(median_us)
}

/// The server to start: `$NATS_SERVER` (what `cargo xtask nats-server` prints, and
/// `.ci/run` sets), else `nats-server` on the `PATH`, else Debian's in `/usr/sbin`.
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
