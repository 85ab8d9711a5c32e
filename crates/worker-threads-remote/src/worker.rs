//! [`RemoteWorker`]: a local [`Pool`] serving a remote queue. It pulls task messages from
//! the queue's consumer (a bounded number at a time), runs each on the pool, publishes the
//! result to its submitter's subject, then acknowledges the message: a worker that dies
//! before the acknowledgement has its task delivered again (at-least-once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::Client;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use worker_threads_pool::{Pool, Retry, TaskHandle};
use worker_threads_wait::lock;

use crate::body::Bodies;
use crate::connect::Reconnections;
use crate::error::{ConnectError, ServeError};
use crate::held::{Delivery, HeldMessages};
use crate::queue::{self, QueueConfig};
use crate::runtime::Driver;
use crate::wire::{self, Batch, Names, Outcome, Reply};

/// Settings of a [`RemoteWorker`]: [`RemoteWorker::builder`].
///
/// # Examples
///
/// ```no_run
/// use worker_threads_pool::{MaxQueue, Pool};
/// use worker_threads_remote::RemoteWorker;
///
/// let local = Pool::builder().max_queue(MaxQueue::Bounded(256)).build(|n: f64| n.sqrt())?;
/// let worker = RemoteWorker::builder("nats://127.0.0.1:4222", "sqrt")
///     .prefetch(64)
///     .serve(local)?;
/// worker.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// Their `event_callback` is replaced by the worker's own (it pulls again when the
    /// connection comes back).
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
    /// (default 256; at least 1). The worker asks the server for no more than it has room
    /// for, and acknowledges each held message as in progress every fifth of `ack_wait`,
    /// so it is not delivered to another worker meanwhile.
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
        let servers = crate::connect::servers(&self.url)?;
        if pool.max_queue() < SHALLOW_QUEUE {
            tracing::info!(
                max_queue = pool.max_queue(),
                "the local pool's queue is shallow: each task waits for the last to finish \
                 before it is submitted; MaxQueue::Bounded(256) keeps the threads busy"
            );
        }
        let runtime = Driver::start("wt-remote-worker")?;
        // Counts reconnections: a pull open when the connection was lost is forgotten by
        // the server, and the client would wait out its expiry and five seconds more.
        let (counter, reconnects) = Reconnections::new();
        let options = self
            .options
            .unwrap_or_default()
            .event_callback(move |event| {
                counter.on_event(&event);
                std::future::ready(())
            });
        let (config, prefetch) = (self.config, self.prefetch);
        let served = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop) = watch::channel(false);
        let counter = Arc::clone(&served);
        let task = runtime.block_on(async move {
            let client = options.connect(servers).await?;
            let js = jetstream::new(client.clone());
            let (_stream, mut consumer) = queue::ensure(&js, &names, &config).await?;
            let consumer_config = consumer
                .info()
                .await
                .map_err(|e| ConnectError::JetStream(e.to_string()))?
                .config
                .clone();
            let ack_wait = consumer_config.ack_wait;
            let cancels = client
                .subscribe(names.cancel.clone())
                .await
                .map_err(|e| ConnectError::Subscribe(e.to_string()))?;
            client
                .flush()
                .await
                .map_err(|e| ConnectError::Subscribe(e.to_string()))?;
            let (outbox, answers) = mpsc::unbounded_channel();
            let progress_every = (ack_wait / 5).max(Duration::from_millis(10));
            let max_payload = client.server_info().max_payload;
            let bodies = Bodies::new(&js, &names, &config, max_payload);
            let serving = Arc::new(Serving {
                pool,
                bodies,
                client: client.clone(),
                held: Arc::new(Mutex::new(HeldMessages::default())),
                outbox,
                max_deliver: u32::try_from(consumer_config.max_deliver)
                    .ok()
                    .filter(|deliveries| *deliveries > 0),
            });
            tokio::spawn(listen_for_cancels(Arc::clone(&serving), cancels));
            tokio::spawn(keep_in_progress(Arc::downgrade(&serving), progress_every));
            let held = Arc::clone(&serving.held);
            tokio::spawn(send_answers(client, answers, counter, max_payload, held));
            let pulls = Pulls {
                consumer,
                prefetch,
                reconnects,
            };
            Ok::<_, ConnectError>(tokio::spawn(serve(serving, pulls, stop)))
        })?;
        Ok(RemoteWorker {
            _runtime: runtime,
            stop: stop_tx,
            task: Some(task),
            served,
        })
    }
}

/// A local [`Pool`] serving a remote queue for [`RemotePool`](crate::RemotePool)s; start
/// one with [`RemoteWorker::builder`]`(url, queue).serve(pool)`.
///
/// The worker submits each task it pulls to the pool, waiting while the pool's queue is
/// full; give the pool a deep queue (`max_queue(MaxQueue::Bounded(256))`), or its threads
/// wait for the network between tasks: with the default `threads²` the same worker served
/// about a quarter of the `map` throughput in our measurements.
///
/// A task's handler runs on the pool as it would locally: a panic is that task's
/// `Panicked` result (not a redelivery), the pool's `task_timeout` and process isolation
/// apply. A cancel from the submitter cancels the running task
/// ([`is_cancelled`](worker_threads_pool::is_cancelled) turns true).
///
/// # Examples
///
/// ```no_run
/// use worker_threads_pool::Pool;
/// use worker_threads_remote::RemoteWorker;
///
/// // One per machine: a local pool with its own threads, serving the queue.
/// let local = Pool::builder().build(|n: f64| n.sqrt())?;
/// let worker = RemoteWorker::builder("nats://127.0.0.1:4222", "sqrt").serve(local)?;
/// // ... later: stop taking tasks, finish the ones taken, and return.
/// println!("served {} tasks", worker.served());
/// worker.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RemoteWorker {
    /// Stops its thread when dropped.
    _runtime: Driver,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    served: Arc<AtomicU64>,
}

impl RemoteWorker {
    /// Settings for a worker that serves the queue `queue` on the server at `url`, or on
    /// a cluster (several servers separated by commas, as
    /// [`RemotePool::builder`](crate::RemotePool::builder) takes them).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use worker_threads_pool::Pool;
    /// use worker_threads_remote::RemoteWorker;
    ///
    /// let worker = RemoteWorker::builder("nats://127.0.0.1:4222", "sqrt")
    ///     .serve(Pool::builder().build(|n: f64| n.sqrt())?)?;
    /// worker.join()?; // serves until the process ends
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// returns. Messages it holds but has not started are handed back at once (another
    /// worker takes them).
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
        match worker_threads_wait::block_on(task) {
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
    }
}

/// What the serving tasks share.
struct Serving<T, R> {
    pool: Pool<T, R>,
    /// Tasks and replies larger than a message.
    bodies: Bodies,
    client: Client,
    /// The task messages held (waiting for room in the pool, running, or answered and not
    /// yet acknowledged), by delivery.
    held: Arc<Mutex<HeldMessages>>,
    /// Answers go out through the outbox task, which batches them per submitter.
    outbox: mpsc::UnboundedSender<Out>,
    /// The queue's `max_deliver` (`None`: no limit): a retry policy's tries stop there.
    max_deliver: Option<u32>,
}

/// What the outbox task is given.
enum Out {
    /// An answered task message: publish its reply, then acknowledge it.
    Answered(Box<Answered>),
    /// Everything given before is published and acknowledged: say so.
    Flush(oneshot::Sender<()>),
}

/// Below this local `max_queue`, the worker is slowed by waiting for room (said once).
const SHALLOW_QUEUE: usize = 64;

/// A task message and its encoded reply.
struct Answered {
    reply_to: String,
    id: u64,
    reply: Vec<u8>,
    message: jetstream::Message,
    /// Its delivery in `held`: it is kept in progress until its acknowledgement went.
    delivery: Delivery,
}

/// Bytes of replies gathered before they are sent: a results message holds up to this
/// much, or one reply alone up to the server's `max_payload`.
const BATCH_BYTES: usize = 256 * 1024;

/// What a results message adds around its replies, at most: the batch's length and, per
/// reply, its id and its length (postcard varints of up to ten bytes each).
const BATCH_OVERHEAD: usize = 32;

async fn listen_for_cancels<T, R>(serving: Arc<Serving<T, R>>, mut cancels: async_nats::Subscriber)
where
    T: Send + 'static,
    R: Send + 'static,
{
    while let Some(notice) = cancels.next().await {
        let Ok(task) = std::str::from_utf8(&notice.payload) else {
            continue;
        };
        let cancels = lock(&serving.held).cancels_of(task);
        for cancel in cancels {
            let _ = cancel.send(());
        }
    }
}

/// Every `progress_every`, tells JetStream that each message held longer than that is
/// still in progress, so it is not delivered to another worker (one timer for all).
async fn keep_in_progress<T, R>(serving: std::sync::Weak<Serving<T, R>>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(serving) = serving.upgrade() else {
            return;
        };
        let now = Instant::now();
        let due = lock(&serving.held).due(now, every);
        for ack in due {
            let _ = serving.client.publish(ack, "+WPI".into()).await;
        }
    }
}

/// Publishes answers, as many as are ready in one message per submitter, then
/// acknowledges their task messages (a worker that dies between the two has the task run
/// again: at-least-once).
async fn send_answers(
    client: Client,
    mut outbox: mpsc::UnboundedReceiver<Out>,
    served: Arc<AtomicU64>,
    max_payload: usize,
    held: Arc<Mutex<HeldMessages>>,
) {
    while let Some(first) = outbox.recv().await {
        // Let the other answers that are ready join this one's message.
        tokio::task::yield_now().await;
        let mut flushes = Vec::new();
        let mut groups: HashMap<String, Vec<Gathered>> = HashMap::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(out) = next.take() {
            match out {
                Out::Answered(answered) => {
                    bytes += answered.reply.len();
                    gather(
                        groups.entry(answered.reply_to.clone()).or_default(),
                        *answered,
                        max_payload,
                    );
                }
                Out::Flush(done) => flushes.push(done),
            }
            if bytes < BATCH_BYTES {
                next = outbox.try_recv().ok();
            }
        }
        for (reply_to, messages) in groups {
            for gathered in messages {
                let deliveries = publish_answers(&client, &reply_to, gathered, &served).await;
                // Answered (or left to be delivered again): no longer kept in progress.
                let mut held = lock(&held);
                for delivery in deliveries {
                    held.release(delivery);
                }
            }
        }
        if !flushes.is_empty() {
            let _ = client.flush().await;
            for done in flushes {
                let _ = done.send(());
            }
        }
    }
}

/// Replies for one submitter that go in one results message, with their task messages.
#[derive(Default)]
struct Gathered {
    batch: Batch,
    messages: Vec<jetstream::Message>,
    deliveries: Vec<Delivery>,
    bytes: usize,
}

/// Adds `answered` to the last message for its submitter, or starts a new one where it
/// would not fit in `max_payload` (a reply that fits alone always goes: `finish` checked).
fn gather(group: &mut Vec<Gathered>, answered: Answered, max_payload: usize) {
    let Answered {
        id,
        reply,
        message,
        delivery,
        ..
    } = answered;
    let size = reply.len() + BATCH_OVERHEAD;
    let fits = group
        .last()
        .is_some_and(|last| last.bytes + size <= max_payload);
    if !fits {
        group.push(Gathered::default());
    }
    if let Some(last) = group.last_mut() {
        last.bytes += size;
        last.batch.push((id, reply));
        last.messages.push(message);
        last.deliveries.push(delivery);
    }
}

/// Publishes one results message, then acknowledges its task messages (not acknowledged
/// if it was not published: the tasks are delivered again, and answered then). Returns
/// the messages' deliveries.
async fn publish_answers(
    client: &Client,
    reply_to: &str,
    gathered: Gathered,
    served: &AtomicU64,
) -> Vec<Delivery> {
    let Gathered {
        batch,
        messages,
        deliveries,
        ..
    } = gathered;
    let payload = match postcard::to_stdvec(&batch) {
        Ok(payload) => payload,
        Err(error) => {
            tracing::warn!(%error, "answers could not be encoded (they will run again)");
            return deliveries;
        }
    };
    if let Err(error) = client.publish(reply_to.to_owned(), payload.into()).await {
        tracing::warn!(%error, "answers could not be published");
        return deliveries;
    }
    for message in messages {
        if let Err(error) = message.ack().await {
            tracing::warn!(%error, "a task could not be acknowledged (it will run again)");
        }
    }
    served.fetch_add(batch.len() as u64, Ordering::Relaxed);
    deliveries
}

/// How long one pull for messages stays open on the server when fewer come.
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// Where a worker pulls its tasks from, and how many it holds at most.
struct Pulls {
    consumer: PullConsumer,
    prefetch: usize,
    /// Changes when the connection came back.
    reconnects: watch::Receiver<u64>,
}

async fn serve<T, R>(
    serving: Arc<Serving<T, R>>,
    pulls: Pulls,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServeError>
where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    let Pulls {
        consumer,
        prefetch,
        mut reconnects,
    } = pulls;
    let room = Arc::new(Semaphore::new(prefetch));
    // Every message delivered is held at once (kept in progress from then on) and started
    // in order by one submitter, which waits while the local pool is full.
    let (ready, to_start) = mpsc::unbounded_channel();
    // Set once this loop's last pull is closed: the submitter gives messages back only
    // then (a message given back while our own pull is open can be delivered to it again,
    // and be lost with it until `ack_wait`).
    let (pulls_closed_tx, pulls_closed) = watch::channel(false);
    let submitter = tokio::spawn(start_in_order(Arc::clone(&serving), to_start, pulls_closed));
    let mut backoff = Duration::from_millis(50);
    'pull: while !*stop.borrow() {
        // Ask for as many messages as there is room for, no more: nothing is delivered to
        // this worker that it does not hold at once.
        let Some(mut permits) = take_room(&room, &mut stop).await else {
            break;
        };
        let batch = consumer
            .batch()
            .max_messages(permits.len())
            .expires(PULL_EXPIRES)
            // No idle heartbeats: `async-nats` 0.51's batch stops listening after the first
            // one (it returns `Pending` without a wake-up) until its own timer, the expiry
            // plus 5 s, so a killed worker's tasks waited 7 s for a worker that was idle.
            // A lost connection is seen by the client's events instead.
            .messages()
            .await;
        let mut messages = match batch {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "pulling tasks failed; retrying");
                if !back_off(&mut backoff, &mut stop).await {
                    break 'pull;
                }
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                _ = stop.changed() => {
                    hand_back_delivered(messages).await;
                    break 'pull;
                }
                _ = reconnects.changed() => {
                    // The server forgot this pull: ask again.
                    hand_back_delivered(messages).await;
                    continue 'pull;
                }
            };
            match message {
                Some(Ok(message)) => {
                    backoff = Duration::from_millis(50);
                    let Some(permit) = permits.pop() else {
                        // More than was asked for: not ours to hold.
                        let _ = message.ack_with(AckKind::Nak(None)).await;
                        continue;
                    };
                    if let Some(holding) = hold(&serving, message).await {
                        let _ = ready.send((holding, permit));
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "pulling tasks");
                    if !back_off(&mut backoff, &mut stop).await {
                        hand_back_delivered(messages).await;
                        break 'pull;
                    }
                }
                None => continue 'pull,
            }
        }
    }
    let _ = pulls_closed_tx.send(true);
    drop(ready);
    let _ = submitter.await;
    finish_held(&serving, &room, prefetch).await
}

/// Waits for room for one message, then takes all the room there is; `None` once the
/// worker is stopped.
async fn take_room(
    room: &Arc<Semaphore>,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = tokio::select! {
        permit = Arc::clone(room).acquire_owned() => permit.ok()?,
        _ = stop.changed() => return None,
    };
    let mut permits = vec![first];
    while let Ok(permit) = Arc::clone(room).try_acquire_owned() {
        permits.push(permit);
    }
    Some(permits)
}

/// Closes a pull and gives back (`Nak`) what it had delivered: another worker takes it at
/// once, not after `ack_wait`. The pull's subscription goes first, so the server does not
/// deliver a message given back to this very pull again.
async fn hand_back_delivered(mut messages: jetstream::consumer::pull::Batch) {
    let mut delivered = Vec::new();
    while let Some(Some(Ok(message))) = messages.next().now_or_never() {
        delivered.push(message);
    }
    drop(messages);
    for message in delivered {
        let _ = message.ack_with(AckKind::Nak(None)).await;
    }
}

/// Starts held messages in the order they came, each once the local pool has room; once
/// the worker's pulls are closed (it is stopping), gives back (`Nak`) those not started,
/// for other workers.
async fn start_in_order<T, R>(
    serving: Arc<Serving<T, R>>,
    mut to_start: mpsc::UnboundedReceiver<(Holding, OwnedSemaphorePermit)>,
    mut stop: watch::Receiver<bool>,
) where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    while let Some((holding, permit)) = to_start.recv().await {
        if *stop.borrow() {
            leave(&serving, holding.message, holding.delivery).await;
            continue;
        }
        if let Some(started) = start(&serving, holding, &mut stop).await {
            let serving = Arc::clone(&serving);
            tokio::spawn(async move {
                finish(&serving, started).await;
                drop(permit);
            });
        }
    }
}

/// Waits `backoff` before a retry (doubling it, up to 2 s, for the next one); false if the
/// worker was stopped meanwhile.
async fn back_off(backoff: &mut Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(*backoff) => {}
        _ = stop.changed() => return false,
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(2));
    true
}

/// Finishes what is held: every permit back means every held message was answered; the
/// flush returns once the outbox published and acknowledged them.
async fn finish_held<T, R>(
    serving: &Serving<T, R>,
    room: &Semaphore,
    prefetch: usize,
) -> Result<(), ServeError> {
    let closed = serving.pool.is_closed();
    let _ = room
        .acquire_many(u32::try_from(prefetch).unwrap_or(u32::MAX))
        .await;
    let (flushed_tx, flushed) = oneshot::channel();
    if serving.outbox.send(Out::Flush(flushed_tx)).is_ok() {
        let _ = flushed.await;
    }
    if closed {
        Err(ServeError::PoolClosed)
    } else {
        Ok(())
    }
}

/// A task message taken from the queue and started on the local pool.
struct Started<R> {
    message: jetstream::Message,
    id: u64,
    reply_to: String,
    delivery: Delivery,
    work: Work<R>,
    retry: Option<Retry>,
    /// Its task came through the object store: its reply is likely large too, and is
    /// encoded off the runtime's thread.
    large: bool,
}

/// What a started message waits for.
enum Work<R> {
    One {
        handle: TaskHandle<R>,
        cancelled: oneshot::Receiver<()>,
    },
    Chunk(tokio::task::JoinHandle<Vec<Outcome<R>>>),
    /// Answered without running: the message could not be read.
    Answered(Reply<R>),
}

/// A task message held by this worker: registered (kept in progress, cancellable) and
/// waiting to be started.
struct Holding {
    message: jetstream::Message,
    id: u64,
    reply_to: String,
    kind: String,
    delivery: Delivery,
    cancelled: oneshot::Receiver<()>,
    /// The task's retry policy (`Wt-Retry`), if it has one.
    retry: Option<Retry>,
    /// Its body's name in the object store, if it is larger than a message (`Wt-Body`).
    body: Option<String>,
}

/// Reads a task message's headers and holds it. `None` if it is not one of ours (it is
/// terminated: nobody could be answered).
async fn hold<T, R>(serving: &Serving<T, R>, message: jetstream::Message) -> Option<Holding> {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str().to_string())
    };
    let (Some(id), Some(reply_to), Some(kind)) = (
        header(wire::ID).and_then(|id| id.parse::<u64>().ok()),
        header(wire::REPLY),
        header(wire::KIND),
    ) else {
        tracing::warn!(subject = %message.subject, "a task message without our headers: terminated");
        let _ = message.ack_with(AckKind::Term).await;
        return None;
    };
    let retry = header(wire::RETRY).and_then(|header| wire::parse_retry(&header));
    let body = header(wire::BODY);
    let (cancel, cancelled) = oneshot::channel();
    let task = wire::task_key(&reply_to, id);
    let delivery = lock(&serving.held).hold(task, message.reply.clone(), cancel);
    Some(Holding {
        message,
        id,
        reply_to,
        kind,
        delivery,
        cancelled,
        retry,
        body,
    })
}

/// Decodes a held message's task and submits it to the local pool, waiting for room.
/// `None` if the local pool is closed, or the worker is stopped while it waits for room
/// (the message is given back: the task was not accepted, so it never runs here).
async fn start<T, R>(
    serving: &Arc<Serving<T, R>>,
    holding: Holding,
    stop: &mut watch::Receiver<bool>,
) -> Option<Started<R>>
where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    let Holding {
        message,
        id,
        reply_to,
        kind,
        delivery,
        cancelled,
        retry,
        body,
    } = holding;
    let large = body.is_some();
    let payload = match body {
        None => Ok(message.payload.clone()),
        Some(name) => serving.bodies.get(&name).await.map(bytes::Bytes::from),
    };
    let work = match payload {
        // Its submitter resolved it (and deleted the body), or the body outlived
        // `body_ttl`.
        Err(error) => Work::Answered(Reply::BadTask(error)),
        Ok(payload) => match kind.as_str() {
            wire::ONE => match wire::decode::<T>(payload).await {
                // Without waiting when the pool has room (the common case), else waiting.
                Ok(task) => match serving.pool.run(task) {
                    Ok(handle) => Work::One { handle, cancelled },
                    Err(refused) if refused.is_full() => {
                        // `run_async` accepts the task only in the poll that returns its
                        // handle: dropped for the stop, it leaves the task unrun.
                        let task = refused.into_inner();
                        let accepted = tokio::select! {
                            biased;
                            accepted = serving.pool.run_async(task) => accepted.ok(),
                            _ = stop.wait_for(|stopped| *stopped) => None,
                        };
                        match accepted {
                            Some(handle) => Work::One { handle, cancelled },
                            None => return leave(serving, message, delivery).await,
                        }
                    }
                    Err(_) => return leave(serving, message, delivery).await,
                },
                Err(error) => Work::Answered(Reply::BadTask(error)),
            },
            wire::CHUNK => match wire::decode::<Vec<T>>(payload).await {
                Ok(tasks) => {
                    let serving = Arc::clone(serving);
                    Work::Chunk(tokio::spawn(
                        async move { run_chunk(&serving, tasks).await },
                    ))
                }
                Err(error) => Work::Answered(Reply::BadTask(error)),
            },
            other => Work::Answered(Reply::BadTask(format!("unknown task kind {other:?}"))),
        },
    };
    Some(Started {
        message,
        id,
        reply_to,
        delivery,
        work,
        retry,
        large,
    })
}

/// The local pool is closed, or the worker stopped: the task is left to another worker.
async fn leave<T, R>(
    serving: &Serving<T, R>,
    message: jetstream::Message,
    delivery: Delivery,
) -> Option<Started<R>> {
    lock(&serving.held).release(delivery);
    let _ = message.ack_with(AckKind::Nak(None)).await;
    None
}

/// Waits for a started message's result (cancelling the task if its submitter says so)
/// and hands the answer to the outbox.
async fn finish<T, R>(serving: &Serving<T, R>, started: Started<R>)
where
    R: Serialize + Send + 'static,
{
    let Started {
        message,
        id,
        reply_to,
        delivery,
        work,
        retry,
        large,
    } = started;
    let reply = match work {
        Work::One {
            mut handle,
            mut cancelled,
        } => {
            let result = tokio::select! {
                result = &mut handle => result,
                Ok(()) = &mut cancelled => {
                    handle.cancel();
                    handle.await
                }
            };
            Reply::Done(vec![Outcome::from(result)])
        }
        Work::Chunk(chunk) => match chunk.await {
            Ok(outcomes) => Reply::Done(outcomes),
            Err(error) => Reply::BadResult(format!("the chunk's task ended: {error}")),
        },
        Work::Answered(reply) => reply,
    };
    let reply = match retry {
        Some(retry) => match try_again(serving, retry, &message, reply) {
            Tried::Again(wait) => {
                // Handed back with the back-off as its delay: the queue delivers it again
                // then, to any worker. Not held any more: no progress acknowledgements.
                lock(&serving.held).release(delivery);
                let _ = message.ack_with(AckKind::Nak(Some(wait))).await;
                return;
            }
            Tried::Answer(reply) => reply,
        },
        None => reply,
    };
    let encoded = if large {
        wire::off_runtime(move || postcard::to_stdvec(&reply).map_err(|e| e.to_string())).await
    } else {
        postcard::to_stdvec(&reply).map_err(|e| e.to_string())
    };
    let mut encoded = encoded.unwrap_or_else(|error| encode_reply(&Reply::<R>::BadResult(error)));
    if !serving.bodies.fits(encoded.len() + BATCH_OVERHEAD) {
        // Larger than a message: into the object store; the submitter reads and deletes it.
        let name = format!("result.{reply_to}.{id}.{}", nuid::next());
        encoded = match serving.bodies.put(&name, &encoded).await {
            Ok(()) => encode_reply(&Reply::<R>::Body(name)),
            Err(error) => encode_reply(&Reply::<R>::BadResult(error)),
        };
    }
    let answered = Out::Answered(Box::new(Answered {
        reply_to,
        id,
        reply: encoded,
        message,
        delivery,
    }));
    if serving.outbox.send(answered).is_err() {
        lock(&serving.held).release(delivery);
        tracing::warn!("the outbox is gone: a task will run again");
    }
}

/// What a failed try of a task with a retry policy comes to.
enum Tried<R> {
    /// Another try, after this wait.
    Again(Duration),
    /// No other try: this is the answer.
    Answer(Reply<R>),
}

/// Decides whether a task message's reply is its answer, or its task is tried again: one
/// task (a message of one, `run`'s or a `map` item's under a policy) that failed in a way
/// a new try could change, with deliveries left under the policy and `max_deliver`. Its
/// last try's failure is answered as `Retried`.
fn try_again<T, R>(
    serving: &Serving<T, R>,
    retry: Retry,
    message: &jetstream::Message,
    reply: Reply<R>,
) -> Tried<R> {
    let Reply::Done(mut outcomes) = reply else {
        return Tried::Answer(reply);
    };
    if outcomes.len() != 1 || !outcomes[0].is_retried() || retry.max_attempts() == 1 {
        return Tried::Answer(Reply::Done(outcomes));
    }
    // This delivery's number is the try's: a delivery that ended otherwise (a killed
    // worker, a hand-back) counted too.
    let delivered = message
        .info()
        .map_or(1, |info| u32::try_from(info.delivered).unwrap_or(u32::MAX));
    let last_try = serving
        .max_deliver
        .map_or(retry.max_attempts(), |cap| cap.min(retry.max_attempts()));
    if delivered < last_try
        && let Some(wait) = retry.delay_before(delivered + 1)
    {
        return Tried::Again(wait);
    }
    let last = outcomes.remove(0);
    Tried::Answer(Reply::Done(vec![Outcome::Retried {
        attempts: delivered,
        last: Box::new(last),
    }]))
}

fn encode_reply<R: Serialize>(reply: &Reply<R>) -> Vec<u8> {
    postcard::to_stdvec(reply).unwrap_or_default()
}

/// A chunk on the local pool (its own `map`, in order).
async fn run_chunk<T, R>(serving: &Serving<T, R>, tasks: Vec<T>) -> Vec<Outcome<R>>
where
    T: Send + 'static,
    R: Send + 'static,
{
    // Boxed: the pool's stream needs an `Unpin` iterator, and `T` need not be `Unpin`.
    let tasks: Box<dyn Iterator<Item = T> + Send> = Box::new(tasks.into_iter());
    serving
        .pool
        .map_stream(tasks)
        .map(Outcome::from)
        .collect()
        .await
}
