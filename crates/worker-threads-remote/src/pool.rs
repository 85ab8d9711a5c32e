//! [`RemotePool`]: the pool's surface, for tasks that run on other machines.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::body::Bodies;
use crate::core::{self, Core, Refusal};
use crate::error::ConnectError;
use crate::handle::RemoteHandle;
use crate::queue::{self, QueueConfig};
use crate::runtime::Driver;
use crate::wire::{self, Kind, Names};
use worker_threads_pool::{Retry, RunError};

/// Settings of a [`RemotePool`]: [`RemotePool::builder`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use worker_threads_remote::{RemotePool, async_nats};
///
/// let pool: RemotePool<u64, u64> = RemotePool::builder("nats://127.0.0.1:4222", "square")
///     .options(async_nats::ConnectOptions::new().name("submitter"))
///     .chunk_size(4_096)
///     .publish_timeout(Duration::from_secs(2))
///     .connect()?;
/// # drop(pool);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RemotePoolBuilder {
    url: String,
    queue: String,
    options: Option<async_nats::ConnectOptions>,
    config: QueueConfig,
    chunk_size: usize,
    publish_timeout: Duration,
    reconnect_timeout: Duration,
    retry: Option<Retry>,
}

impl RemotePoolBuilder {
    /// Connection options passed to `async-nats` as they are: credentials, TLS, names,
    /// reconnection. Their `event_callback` is replaced by the pool's own (it watches for
    /// a lost connection).
    pub fn options(mut self, options: async_nats::ConnectOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// The queue's settings, used if this pool creates the queue; see [`QueueConfig`].
    pub fn queue_config(mut self, config: QueueConfig) -> Self {
        self.config = config;
        self
    }

    /// Tasks per message in [`map`](RemotePool::map) and
    /// [`map_unordered`](RemotePool::map_unordered) (default 1,024; at least 1).
    pub fn chunk_size(mut self, items: usize) -> Self {
        self.chunk_size = items.max(1);
        self
    }

    /// How long a submission tries to have its task stored (default 30 s, which rides out
    /// a restart or a cluster's election): an attempt that is not acknowledged within a
    /// second is repeated, with the same message id, so a server that restarts meanwhile
    /// stores the task once. After it the task comes back
    /// in [`RunError::Transport`] (it may have been stored: it then runs, and its answer
    /// is dropped). Keep it below the queue's
    /// [`duplicate_window`](QueueConfig::duplicate_window).
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// How long a lost connection may last before every pending handle fails with
    /// [`TaskError::Disconnected`](crate::TaskError::Disconnected) (default 30 s). Until
    /// then nothing fails: the client reconnects, the queue on the server keeps the tasks,
    /// and once back the pool publishes again every pending task whose message left the
    /// queue without its answer reaching the pool (answered while it was away; that task
    /// runs twice).
    pub fn reconnect_timeout(mut self, timeout: Duration) -> Self {
        self.reconnect_timeout = timeout;
        self
    }

    /// Tries every task as `retry` says (BullMQ's `attempts` and `backoff` as a queue's
    /// default; [`run_with_retry`](RemotePool::run_with_retry) for one task), as a local
    /// [`Pool::with_retry`](worker_threads_pool::Pool::with_retry) does: a try that
    /// panics, or whose worker process ends, is followed by another after the back-off,
    /// and a task whose tries all failed resolves
    /// [`TaskError::Retried`](crate::TaskError::Retried) with the last failure and the
    /// number of tries.
    ///
    /// The worker that saw the failure hands the task back to the queue with the back-off
    /// as its delay (JetStream's `Nak` with a delay), so a task waiting for its back-off
    /// stays in [`queue_size`](RemotePool::queue_size) and the submitter can come and go
    /// meanwhile. Tries are the queue's deliveries: they count against
    /// [`max_deliver`](QueueConfig::max_deliver), which caps them (the last delivery's
    /// failure is answered as `Retried`), and a delivery that ended otherwise counts too
    /// (its worker was killed or stalled past `ack_wait`, or stopped and handed it back
    /// unrun). `map` sends each item as its own message under a policy, tried on its own.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use worker_threads_remote::{Backoff, RemotePool, Retry};
    ///
    /// let retry = Retry::attempts(3).backoff(Backoff::exponential(Duration::from_millis(200)));
    /// let pool: RemotePool<u64, u64> =
    ///     RemotePool::builder("nats://127.0.0.1:4222", "flaky").retry(retry).connect()?;
    /// # drop(pool);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Connects, creating the queue if it does not exist. Blocks the calling thread.
    ///
    /// # Errors
    ///
    /// [`ConnectError`]: the name, the server, JetStream.
    pub fn connect<T, R>(self) -> Result<RemotePool<T, R>, ConnectError>
    where
        T: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        let names = Names::new(&self.queue)?;
        let servers = crate::connect::servers(&self.url)?;
        let runtime = Driver::start("wt-remote")?;
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let options = self
            .options
            .unwrap_or_default()
            .event_callback(move |event| {
                let events_tx = events_tx.clone();
                async move {
                    let _ = events_tx.send(event);
                }
            });
        let (config, publish_timeout) = (self.config, self.publish_timeout);
        let reconnect_timeout = self.reconnect_timeout;
        let core = runtime.block_on(async move {
            let client = options.connect(servers).await?;
            let js = async_nats::jetstream::ContextBuilder::new()
                .timeout(publish_timeout.min(core::ATTEMPT))
                .backpressure_on_inflight(true)
                .build(client.clone());
            let (mut stream, _consumer) = queue::ensure(&js, &names, &config).await?;
            let info = stream
                .info()
                .await
                .map_err(|e| ConnectError::JetStream(e.to_string()))?;
            let max_queue = usize::try_from(info.config.max_messages).unwrap_or(usize::MAX);
            let settings = core::Settings {
                max_queue,
                publish_timeout,
                reconnect_timeout,
            };
            let max_payload = client.server_info().max_payload;
            let bodies = Bodies::new(&js, &names, &config, max_payload);
            let core = Arc::new(Core::new(client, js, stream, names, settings, bodies));
            core::listen(Arc::clone(&core), events)
                .await
                .map_err(ConnectError::Subscribe)?;
            Ok::<_, ConnectError>(core)
        })?;
        tracing::debug!(queue = %self.queue, results = core.results_subject(), "remote pool connected");
        Ok(RemotePool {
            core,
            runtime,
            chunk_size: self.chunk_size,
            retry: self.retry,
            _task: PhantomData,
        })
    }
}

/// A pool whose tasks run on other machines: they go into a NATS JetStream work queue,
/// and [`RemoteWorker`](crate::RemoteWorker)s serve it, each with a local
/// [`Pool`](worker_threads_pool::Pool). The surface is the pool's: [`run`](Self::run)
/// gives a [`RemoteHandle`] to `join`, `.await` or `cancel`, the queue is bounded
/// ([`RunError::QueueFull`] hands the task back), [`wait_drain`](Self::wait_drain) and
/// [`map`](Self::map) work as they do locally.
///
/// Tasks run at least once (a worker that dies mid-task has it delivered again) and each
/// handle resolves exactly once (a second result for a task is dropped here). The pool
/// keeps a runtime thread of its own for the connection; its blocking methods may be
/// called from any thread, and its async ones awaited under any executor.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_remote::RemotePool;
///
/// let pool: RemotePool<f64, f64> = RemotePool::builder("nats://127.0.0.1:4222", "sqrt").connect()?;
/// // The Node chapter's loop, as on a local pool.
/// let mut handles = Vec::new();
/// for i in 0..1_000 {
///     if pool.queue_size() >= pool.max_queue() {
///         pool.wait_drain();
///     }
///     handles.push(pool.run(f64::from(i))?);
/// }
/// for handle in handles {
///     assert!(handle.join()?.is_finite());
/// }
/// pool.close();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RemotePool<T, R> {
    core: Arc<Core<R>>,
    runtime: Driver,
    chunk_size: usize,
    /// Every task's retry policy ([`RemotePoolBuilder::retry`]).
    retry: Option<Retry>,
    _task: PhantomData<fn(T)>,
}

impl RemotePool<(), ()> {
    /// Settings for a pool that submits to the queue `queue` on the server at `url`
    /// (`nats://127.0.0.1:4222`), or on a cluster: several servers separated by commas
    /// (`nats://a:4222,nats://b:4222,nats://c:4222`; the client learns the others from
    /// the one it reaches, and moves to another when its server goes). For a queue that
    /// survives a server's loss, [`QueueConfig::replicas`] 3.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use worker_threads_remote::RemotePool;
    ///
    /// let pool: RemotePool<String, usize> =
    ///     RemotePool::builder("nats://127.0.0.1:4222", "lengths").connect()?;
    /// assert_eq!(pool.run("four".to_string())?.join()?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(url: impl Into<String>, queue: impl Into<String>) -> RemotePoolBuilder {
        RemotePoolBuilder {
            url: url.into(),
            queue: queue.into(),
            options: None,
            config: QueueConfig::default(),
            chunk_size: 1024,
            publish_timeout: Duration::from_secs(30),
            reconnect_timeout: Duration::from_secs(30),
            retry: None,
        }
    }
}

impl<T, R> RemotePool<T, R>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
{
    /// Submits `task` if the queue has room; returns when JetStream stored it (one round
    /// trip to the server).
    ///
    /// # Errors
    ///
    /// [`RunError::QueueFull`], [`RunError::Closed`], [`RunError::Encode`],
    /// [`RunError::Transport`], each with the task.
    pub fn run(&self, task: T) -> Result<RemoteHandle<R>, RunError<T>> {
        self.submit(task, self.retry)
    }

    /// Submits `task` if the queue has room, tried as `retry` says (whatever the pool's
    /// policy): BullMQ's per-job `attempts` and `backoff`. See
    /// [`RemotePoolBuilder::retry`].
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub fn run_with_retry(&self, task: T, retry: Retry) -> Result<RemoteHandle<R>, RunError<T>> {
        self.submit(task, Some(retry))
    }

    fn submit(&self, task: T, retry: Option<Retry>) -> Result<RemoteHandle<R>, RunError<T>> {
        let payload = match wire::encode(&task) {
            Ok(payload) => payload,
            Err(error) => return Err(RunError::Encode { task, error }),
        };
        // On this thread, with the runtime's context for the client's timers: no hop to
        // the runtime thread and back (the connection task still sends and receives).
        let submitted = self
            .runtime()
            .block_on(self.core.submit(payload, Kind::one(retry)));
        self.handle(Ok(submitted), task)
    }

    /// The retry policy every task gets ([`RemotePoolBuilder::retry`]); `None`: one try.
    pub fn retry(&self) -> Option<Retry> {
        self.retry
    }

    /// Submits `task`, waiting for room in the queue.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run), except `QueueFull`.
    pub fn run_wait(&self, task: T) -> Result<RemoteHandle<R>, RunError<T>> {
        let payload = match wire::encode(&task) {
            Ok(payload) => payload,
            Err(error) => return Err(RunError::Encode { task, error }),
        };
        let submitted = self
            .runtime()
            .block_on(self.core.submit_wait(payload, Kind::one(self.retry)));
        self.handle(Ok(submitted), task)
    }

    /// Submits `task`, awaiting room in the queue, under any executor.
    ///
    /// # Errors
    ///
    /// As [`run_wait`](Self::run_wait).
    ///
    /// # Cancel safety
    ///
    /// The submission runs on the pool's runtime: dropping this future does not stop it,
    /// and a task stored in the queue then runs with no handle to see its result.
    pub async fn run_async(&self, task: T) -> Result<RemoteHandle<R>, RunError<T>> {
        let payload = match wire::encode(&task) {
            Ok(payload) => payload,
            Err(error) => return Err(RunError::Encode { task, error }),
        };
        let (core, kind) = (Arc::clone(&self.core), Kind::one(self.retry));
        let submitted = self
            .runtime()
            .spawn(async move { core.submit_wait(payload, kind).await })
            .await;
        self.handle(submitted, task)
    }

    fn handle(
        &self,
        submitted: Result<core::Submitted<R>, tokio::task::JoinError>,
        task: T,
    ) -> Result<RemoteHandle<R>, RunError<T>> {
        match submitted {
            Ok(Ok((id, rx))) => Ok(RemoteHandle::new(
                id,
                rx,
                Arc::clone(&self.core),
                self.runtime().handle().clone(),
            )),
            Ok(Err(Refusal::Full)) => Err(RunError::QueueFull(task)),
            Ok(Err(Refusal::Closed)) => Err(RunError::Closed(task)),
            Ok(Err(Refusal::Nats(error))) => Err(RunError::Transport { task, error }),
            Err(error) => Err(RunError::Transport {
                task,
                error: error.to_string(),
            }),
        }
    }
}

impl<T, R: Send + 'static> RemotePool<T, R> {
    /// Messages in the remote queue (queued and running tasks of every submitter; a `map`
    /// chunk counts one), as the server counts them: one request to it. (A local
    /// [`Pool`](worker_threads_pool::Pool)'s counts only its queued tasks, not the running
    /// ones.) If the server
    /// cannot answer, `0` (logged): the next submission reports why.
    pub fn queue_size(&self) -> usize {
        match self.runtime().block_on(self.core.queue_size()) {
            Ok(size) => size,
            Err(error) => {
                tracing::warn!(%error, "queue_size: the server did not answer");
                0
            }
        }
    }

    /// The queue's bound: the stream's `max_msgs`, read from the server at connect.
    pub fn max_queue(&self) -> usize {
        self.core.settings.max_queue
    }

    /// True when the queue is full (`queue_size() >= max_queue()`).
    pub fn needs_drain(&self) -> bool {
        self.queue_size() >= self.max_queue()
    }

    /// Tasks submitted through this pool that have not resolved.
    pub fn pending(&self) -> usize {
        self.core.pending()
    }

    /// Waits until the remote queue is empty: every task in it (this pool's and other
    /// submitters') was acknowledged by a worker, removed, or cancelled.
    pub fn wait_drain(&self) {
        self.runtime().block_on(self.core.drained());
    }

    /// [`wait_drain`](Self::wait_drain) under any executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops nothing but the wait.
    pub async fn drained(&self) {
        let core = Arc::clone(&self.core);
        let _ = self
            .runtime()
            .spawn(async move { core.drained().await })
            .await;
    }

    /// Refuses new tasks ([`RunError::Closed`]) and waits until every task submitted here
    /// resolved.
    pub fn close(&self) {
        self.core.close();
        self.runtime().block_on(async {
            self.core.settled().await;
            let _ = self.core.client.flush().await;
        });
    }

    /// Refuses new tasks ([`RunError::Closed`]) and cancels every task submitted here:
    /// each handle resolves `Cancelled` at once, queued tasks are removed from the queue
    /// and running ones are told, as [`RemoteHandle::cancel`] does for one. Returns when
    /// the removals and notices were sent. Other submitters' tasks are not touched.
    pub fn destroy(&self) {
        self.core.close();
        let withdrawn = self.core.cancel_all();
        self.runtime().block_on(async {
            for (id, seq) in withdrawn {
                self.core.withdraw(id, seq).await;
            }
            let _ = self.core.client.flush().await;
        });
    }

    /// True once [`close`](Self::close) or [`destroy`](Self::destroy) was called.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    pub(crate) fn core(&self) -> &Arc<Core<R>> {
        &self.core
    }

    pub(crate) fn runtime(&self) -> &Driver {
        &self.runtime
    }

    /// Items per `map` message: one each under a retry policy (a message is what is
    /// tried again).
    pub(crate) fn chunk_size(&self) -> usize {
        if self.retry.is_some() {
            1
        } else {
            self.chunk_size
        }
    }

    /// The kind of a `map` chunk's message.
    pub(crate) fn chunk_kind(&self) -> Kind {
        Kind::chunk(self.retry)
    }
}

impl<T, R> std::fmt::Debug for RemotePool<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotePool")
            .field("queue", &self.core.names().stream)
            .field("max_queue", &self.core.settings.max_queue)
            .field("pending", &self.core.pending())
            .finish_non_exhaustive()
    }
}

impl<T, R> Drop for RemotePool<T, R> {
    fn drop(&mut self) {
        // Pending handles resolve `Closed` as their senders go with the runtime's tasks;
        // the runtime stops without blocking, so a pool may be dropped in async code.
        self.core.fail_all(&crate::TaskError::Closed);
    }
}
