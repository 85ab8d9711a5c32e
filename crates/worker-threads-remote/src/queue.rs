//! The queue on the server: one JetStream stream with work-queue retention (a message
//! leaves when a worker acknowledges it), bounded by `max_msgs` with discard-new (a full
//! queue refuses the publish), and one durable pull consumer that all workers share.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::error::ConnectError;
use crate::wire::Names;

/// The queue's settings. Whoever connects first (a submitter or a worker) creates the
/// stream and the consumer with them; later ones use what exists, and read
/// [`max_queue`](crate::RemotePool::max_queue) back from the server.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use worker_threads_remote::{QueueConfig, RemotePool};
///
/// let config = QueueConfig {
///     max_queue: 10_000,
///     ack_wait: Duration::from_secs(5),
///     ..QueueConfig::default()
/// };
/// let pool: RemotePool<u64, u64> = RemotePool::builder("nats://127.0.0.1:4222", "jobs")
///     .queue_config(config)
///     .connect()?;
/// assert_eq!(pool.max_queue(), 10_000); // read back from the server
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Messages the stream holds at most (queued and running tasks; a `map` chunk is one).
    pub max_queue: usize,
    /// How long a delivered task may go without an acknowledgement before JetStream
    /// delivers it again (a worker that died). Running tasks send progress
    /// acknowledgements every fifth of it, so a long task is not redelivered. 1.5 s by
    /// default: a killed worker's tasks run elsewhere that soon.
    pub ack_wait: Duration,
    /// Deliveries of one task before it ends with
    /// [`TaskError::MaxDeliveries`](crate::TaskError::MaxDeliveries).
    pub max_deliver: u32,
    /// Tasks delivered and not yet acknowledged, over all workers.
    pub max_ack_pending: u32,
    /// Keep the queue in memory instead of files (lost if the server restarts).
    pub memory: bool,
    /// How long the stream remembers a task's message id, to store a repeated publish
    /// once (a submitter repeats one whose acknowledgement was lost): longer than the
    /// submitters' `publish_timeout`. 60 s by default (JetStream's own is 2 minutes);
    /// the server keeps an entry per task for as long.
    pub duplicate_window: Duration,
    /// Copies of the queue kept on the servers of a JetStream cluster (1, 3 or 5; 1 by
    /// default). With 3, the queue survives the loss of any one server: a task stored
    /// (its `run` returned `Ok`) is on a majority of them.
    pub replicas: usize,
    /// How long a body over the server's `max_payload` (a task's or a reply's, kept in
    /// the queue's object store) is kept at most. A submitter deletes its tasks' bodies
    /// as they resolve and its replies' as it reads them; one nobody takes (its
    /// submitter died) leaves then. Longer than a task may wait in the queue: a task whose
    /// body left first fails with `BadTask`. A day by default.
    pub body_ttl: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_queue: 65_536,
            ack_wait: Duration::from_millis(1500),
            max_deliver: 5,
            max_ack_pending: 10_000,
            memory: false,
            duplicate_window: Duration::from_secs(60),
            replicas: 1,
            body_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// How long the max-deliveries advisories are kept for a submitter that was away.
const DEAD_KEPT: Duration = Duration::from_secs(3600);

/// The stream and the consumer of a queue, created if missing (with the stream that keeps
/// its max-deliveries advisories).
pub(crate) async fn ensure(
    js: &jetstream::Context,
    names: &Names,
    config: &QueueConfig,
) -> Result<(stream::Stream, consumer::PullConsumer), ConnectError> {
    let stream = js
        .get_or_create_stream(stream::Config {
            name: names.stream.clone(),
            subjects: vec![names.tasks.clone()],
            retention: stream::RetentionPolicy::WorkQueue,
            discard: stream::DiscardPolicy::New,
            max_messages: i64::try_from(config.max_queue).unwrap_or(i64::MAX),
            storage: if config.memory {
                stream::StorageType::Memory
            } else {
                stream::StorageType::File
            },
            duplicate_window: config.duplicate_window,
            num_replicas: config.replicas.max(1),
            ..Default::default()
        })
        .await
        .map_err(|e| ConnectError::JetStream(format!("stream {}: {e}", names.stream)))?;
    // The max-deliveries advisories of the queue's consumer, kept a while: the server
    // publishes each once, and a submitter disconnected then reads it on its return.
    js.get_or_create_stream(stream::Config {
        name: names.dead.clone(),
        subjects: vec![names.max_deliveries.clone()],
        max_age: DEAD_KEPT,
        storage: if config.memory {
            stream::StorageType::Memory
        } else {
            stream::StorageType::File
        },
        num_replicas: config.replicas.max(1),
        ..Default::default()
    })
    .await
    .map_err(|e| ConnectError::JetStream(format!("stream {}: {e}", names.dead)))?;
    let consumer = stream
        .get_or_create_consumer(
            &names.consumer,
            consumer::pull::Config {
                durable_name: Some(names.consumer.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_deliver: i64::from(config.max_deliver),
                max_ack_pending: i64::from(config.max_ack_pending),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| ConnectError::JetStream(format!("consumer {}: {e}", names.consumer)))?;
    Ok((stream, consumer))
}
