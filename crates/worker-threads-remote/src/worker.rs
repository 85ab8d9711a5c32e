//! [`RemoteWorker`]: a local [`Pool`] serving a remote queue. It pulls task messages from
//! the queue's consumer (a bounded number at a time), runs each on the pool, publishes the
//! result to its submitter's subject, then acknowledges the message: a worker that dies
//! before the acknowledgement has its task delivered again (at-least-once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use async_nats::{Client, HeaderMap};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::runtime::Runtime;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use worker_threads_pool::{Pool, TaskHandle};
use worker_threads_wait::lock;

use crate::error::{ConnectError, ServeError};
use crate::queue::{self, QueueConfig};
use crate::wire::{self, Names, Outcome, Reply};

/// Settings of a [`RemoteWorker`]: [`RemoteWorker::builder`].
#[derive(Debug)]
pub struct RemoteWorkerBuilder {
    url: String,
    queue: String,
    options: Option<async_nats::ConnectOptions>,
    config: QueueConfig,
    prefetch: usize,
}

impl RemoteWorkerBuilder {
    /// Connection options passed to `async-nats` as they are (credentials, TLS, ...).
    pub fn options(mut self, options: async_nats::ConnectOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// The queue's settings, used if this worker creates the queue; see [`QueueConfig`].
    pub fn queue_config(mut self, config: QueueConfig) -> Self {
        self.config = config;
        self
    }

    /// Task messages this worker holds at most, running or waiting for room in its pool
    /// (default 256; at least 1). A held message is acknowledged as in progress every
    /// third of `ack_wait`, so it is not delivered to another worker meanwhile.
    pub fn prefetch(mut self, messages: usize) -> Self {
        self.prefetch = messages.max(1);
        self
    }

    /// Connects (creating the queue if it does not exist) and serves it with `pool` on a
    /// runtime thread of the worker's own, until [`RemoteWorker::stop`].
    ///
    /// # Errors
    ///
    /// [`ConnectError`]: the name, the server, JetStream.
    pub fn serve<T, R>(self, pool: Pool<T, R>) -> Result<RemoteWorker, ConnectError>
    where
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
    {
        let names = Names::new(&self.queue)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wt-remote-worker")
            .enable_all()
            .build()?;
        let options = self.options.unwrap_or_default();
        let (url, config, prefetch) = (self.url, self.config, self.prefetch);
        let served = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop) = watch::channel(false);
        let counter = Arc::clone(&served);
        let task = runtime.block_on(async move {
            let client = options.connect(url).await?;
            let js = jetstream::new(client.clone());
            let (_stream, mut consumer) = queue::ensure(&js, &names, &config).await?;
            let ack_wait = consumer
                .info()
                .await
                .map_err(|e| ConnectError::JetStream(e.to_string()))?
                .config
                .ack_wait;
            let cancels = client
                .subscribe(names.cancel.clone())
                .await
                .map_err(|e| ConnectError::Subscribe(e.to_string()))?;
            client
                .flush()
                .await
                .map_err(|e| ConnectError::Subscribe(e.to_string()))?;
            let serving = Arc::new(Serving {
                pool,
                client,
                running: Mutex::new(HashMap::new()),
                progress_every: (ack_wait / 3).max(Duration::from_millis(10)),
                served: counter,
            });
            tokio::spawn(listen_for_cancels(Arc::clone(&serving), cancels));
            Ok::<_, ConnectError>(tokio::spawn(serve(serving, consumer, prefetch, stop)))
        })?;
        Ok(RemoteWorker {
            runtime: Some(runtime),
            stop: stop_tx,
            task: Some(task),
            served,
        })
    }
}

/// A local [`Pool`] serving a remote queue for [`RemotePool`](crate::RemotePool)s; start
/// one with [`RemoteWorker::builder`]`(url, queue).serve(pool)`.
///
/// A task's handler runs on the pool as it would locally: a panic is that task's
/// `Panicked` result (not a redelivery), the pool's `task_timeout` and process isolation
/// apply. A cancel from the submitter cancels the running task
/// ([`is_cancelled`](worker_threads_pool::is_cancelled) turns true).
pub struct RemoteWorker {
    runtime: Option<Runtime>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    served: Arc<AtomicU64>,
}

impl RemoteWorker {
    /// Settings for a worker that serves the queue `queue` on the server at `url`.
    pub fn builder(url: impl Into<String>, queue: impl Into<String>) -> RemoteWorkerBuilder {
        RemoteWorkerBuilder {
            url: url.into(),
            queue: queue.into(),
            options: None,
            config: QueueConfig::default(),
            prefetch: 256,
        }
    }

    /// Task messages answered and acknowledged so far (a `map` chunk counts one).
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Stops taking tasks, finishes (answers and acknowledges) the ones it holds, and
    /// returns. Messages prefetched but not started are delivered again after `ack_wait`.
    ///
    /// # Errors
    ///
    /// What ended the serving before, if something did.
    pub fn stop(mut self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        self.wait()
    }

    /// Serves until the serving ends by itself (the local pool was closed), or forever.
    ///
    /// # Errors
    ///
    /// What ended the serving.
    pub fn join(mut self) -> Result<(), ServeError> {
        self.wait()
    }

    fn wait(&mut self) -> Result<(), ServeError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match futures_executor::block_on(task) {
            Ok(result) => result,
            Err(error) => Err(ServeError::Aborted(error.to_string())),
        }
    }
}

impl std::fmt::Debug for RemoteWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWorker")
            .field("served", &self.served())
            .finish_non_exhaustive()
    }
}

impl Drop for RemoteWorker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What the serving tasks share.
struct Serving<T, R> {
    pool: Pool<T, R>,
    client: Client,
    /// The running tasks by message id (`<submitter>.<task id>`), to cancel them.
    running: Mutex<HashMap<String, oneshot::Sender<()>>>,
    progress_every: Duration,
    served: Arc<AtomicU64>,
}

async fn listen_for_cancels<T, R>(serving: Arc<Serving<T, R>>, mut cancels: async_nats::Subscriber)
where
    T: Send + 'static,
    R: Send + 'static,
{
    while let Some(notice) = cancels.next().await {
        let Ok(key) = std::str::from_utf8(&notice.payload) else {
            continue;
        };
        if let Some(cancel) = lock(&serving.running).remove(key) {
            let _ = cancel.send(());
        }
    }
}

async fn serve<T, R>(
    serving: Arc<Serving<T, R>>,
    consumer: PullConsumer,
    prefetch: usize,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServeError>
where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    let room = Arc::new(Semaphore::new(prefetch));
    let mut backoff = Duration::from_millis(50);
    'pull: while !*stop.borrow() {
        let messages = consumer
            .stream()
            .max_messages_per_batch(prefetch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "pull subscription failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break 'pull,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&room).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break 'pull,
                },
                _ = stop.changed() => break 'pull,
            };
            let message = tokio::select! {
                message = messages.next() => message,
                _ = stop.changed() => break 'pull,
            };
            match message {
                Some(Ok(message)) => {
                    backoff = Duration::from_millis(50);
                    let serving = Arc::clone(&serving);
                    tokio::spawn(async move {
                        answer(&serving, message).await;
                        drop(permit);
                    });
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "pulling tasks");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => break 'pull,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                None => continue 'pull,
            }
        }
    }
    // Finish what is held: every permit back means every held message was answered.
    let closed = serving.pool.is_closed();
    let _ = room
        .acquire_many(u32::try_from(prefetch).unwrap_or(u32::MAX))
        .await;
    let _ = serving.client.flush().await;
    if closed {
        Err(ServeError::PoolClosed)
    } else {
        Ok(())
    }
}

/// Runs one task message and answers it.
async fn answer<T, R>(serving: &Serving<T, R>, message: jetstream::Message)
where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str().to_string())
    };
    let (Some(id), Some(reply_to), Some(kind)) =
        (header(wire::ID), header(wire::REPLY), header(wire::KIND))
    else {
        // Not one of ours: nobody to answer. Terminate it so it is not redelivered.
        tracing::warn!(subject = %message.subject, "a task message without our headers: terminated");
        let _ = message.ack_with(AckKind::Term).await;
        return;
    };
    let key = header("Nats-Msg-Id").unwrap_or_default();
    let reply: Reply<R> = match kind.as_str() {
        wire::ONE => match postcard::from_bytes::<T>(&message.payload) {
            Ok(task) => match run_one(serving, &message, &key, task).await {
                Some(outcome) => Reply::Done(vec![outcome]),
                None => {
                    // The local pool is closed: leave the task to another worker.
                    let _ = message.ack_with(AckKind::Nak(None)).await;
                    return;
                }
            },
            Err(error) => Reply::BadTask(error.to_string()),
        },
        wire::CHUNK => match postcard::from_bytes::<Vec<T>>(&message.payload) {
            Ok(tasks) => Reply::Done(run_chunk(serving, &message, tasks).await),
            Err(error) => Reply::BadTask(error.to_string()),
        },
        other => Reply::BadTask(format!("unknown task kind {other:?}")),
    };
    let payload = postcard::to_stdvec(&reply).unwrap_or_else(|error| {
        postcard::to_stdvec(&Reply::<R>::BadResult(error.to_string())).unwrap_or_default()
    });
    let mut headers = HeaderMap::new();
    headers.insert(wire::ID, id.as_str());
    if let Err(error) = serving
        .client
        .publish_with_headers(reply_to, headers, payload.into())
        .await
    {
        // Not acknowledged: the task is delivered again, and answered then.
        tracing::warn!(%error, "a result could not be published");
        return;
    }
    if let Err(error) = message.ack().await {
        tracing::warn!(%error, "a task could not be acknowledged (it will run again)");
    }
    serving.served.fetch_add(1, Ordering::Relaxed);
}

/// One task on the local pool, with progress acknowledgements while it waits and runs,
/// and the submitter's cancel. `None` if the pool is closed.
async fn run_one<T, R>(
    serving: &Serving<T, R>,
    message: &jetstream::Message,
    key: &str,
    task: T,
) -> Option<Outcome<R>>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let (cancel_tx, mut cancelled) = oneshot::channel();
    lock(&serving.running).insert(key.to_string(), cancel_tx);
    let mut ticks = progress_ticks(serving.progress_every);
    let submitted = serving.pool.run_async(task);
    tokio::pin!(submitted);
    let handle: Option<TaskHandle<R>> = loop {
        tokio::select! {
            submitted = &mut submitted => break submitted.ok(),
            _ = ticks.tick() => { let _ = message.ack_with(AckKind::Progress).await; }
        }
    };
    let outcome = match handle {
        None => None,
        Some(mut handle) => {
            let mut cancel_seen = false;
            let result = loop {
                tokio::select! {
                    result = &mut handle => break result,
                    _ = &mut cancelled, if !cancel_seen => {
                        cancel_seen = true;
                        handle.cancel();
                    }
                    _ = ticks.tick() => { let _ = message.ack_with(AckKind::Progress).await; }
                }
            };
            Some(Outcome::from(result))
        }
    };
    lock(&serving.running).remove(key);
    outcome
}

/// A chunk on the local pool (its own `map`, in order), with progress acknowledgements.
async fn run_chunk<T, R>(
    serving: &Serving<T, R>,
    message: &jetstream::Message,
    tasks: Vec<T>,
) -> Vec<Outcome<R>>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let mut outcomes = Vec::with_capacity(tasks.len());
    let mut ticks = progress_ticks(serving.progress_every);
    // Boxed: the pool's stream needs an `Unpin` iterator, and `T` need not be `Unpin`.
    let tasks: Box<dyn Iterator<Item = T> + Send> = Box::new(tasks.into_iter());
    let results = serving.pool.map_stream(tasks);
    tokio::pin!(results);
    loop {
        tokio::select! {
            result = results.next() => match result {
                Some(result) => outcomes.push(Outcome::from(result)),
                None => break,
            },
            _ = ticks.tick() => { let _ = message.ack_with(AckKind::Progress).await; }
        }
    }
    outcomes
}

fn progress_ticks(every: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}
