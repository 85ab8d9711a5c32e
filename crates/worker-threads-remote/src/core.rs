//! The submitter's side of the protocol: publish a task and record it as pending, resolve
//! each pending task exactly once (its result, a cancel, the max-deliveries advisory, a
//! lost connection), and the tasks that listen for those on the pool's runtime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishError, message::PublishMessage, stream};
use async_nats::{Client, Event, HeaderMap};
use futures_util::StreamExt;
use tokio::sync::{Notify, oneshot};
use worker_threads_wait::lock;

use crate::wire::{self, Batch, MaxDeliveriesAdvisory, Names, Outcome, Reply};
use worker_threads_pool::TaskError;

/// What a pending task's handle receives: one result per task in its message, or an
/// error for all of them.
pub(crate) type Answer<R> = Result<Vec<Result<R, TaskError>>, TaskError>;

/// A submission's outcome: the task's id and its answer to come, or why not.
pub(crate) type Submitted<R> = Result<(u64, oneshot::Receiver<Answer<R>>), Refusal>;

/// Why a message was not accepted (the caller hands its task back).
#[derive(Debug)]
pub(crate) enum Refusal {
    Full,
    Closed,
    Nats(String),
}

impl Refusal {
    /// The error of a `map` item whose chunk could not be submitted.
    pub(crate) fn into_task_error(self) -> TaskError {
        match self {
            Self::Full | Self::Nats(_) => TaskError::Disconnected,
            Self::Closed => TaskError::Closed,
        }
    }
}

/// A pending task: its handle's sender and, once stored, its stream sequence.
pub(crate) struct Entry<R> {
    tx: oneshot::Sender<Answer<R>>,
    /// The stream sequence, once JetStream acknowledged the publish.
    seq: Option<u64>,
}

struct Pending<R> {
    entries: HashMap<u64, Entry<R>>,
    by_seq: HashMap<u64, u64>,
}

/// The state a submitter shares with its handles and its runtime's tasks.
pub(crate) struct Core<R> {
    pub(crate) client: Client,
    js: jetstream::Context,
    stream: stream::Stream,
    names: Names,
    results: String,
    pub(crate) max_queue: usize,
    pending: Mutex<Pending<R>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    /// Woken whenever a task resolves (room may have appeared; close waits for none).
    pub(crate) resolved: Notify,
}

impl<R> Core<R> {
    pub(crate) fn new(
        client: Client,
        js: jetstream::Context,
        stream: stream::Stream,
        names: Names,
        max_queue: usize,
    ) -> Self {
        let submitter = nuid::next().to_string();
        let results = names.results(&submitter);
        Self {
            client,
            js,
            stream,
            names,
            results,
            max_queue,
            pending: Mutex::new(Pending {
                entries: HashMap::new(),
                by_seq: HashMap::new(),
            }),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            resolved: Notify::new(),
        }
    }

    pub(crate) fn results_subject(&self) -> &str {
        &self.results
    }

    pub(crate) fn names(&self) -> &Names {
        &self.names
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Tasks submitted here and not yet resolved.
    pub(crate) fn pending(&self) -> usize {
        lock(&self.pending).entries.len()
    }

    pub(crate) fn is_pending(&self, id: u64) -> bool {
        lock(&self.pending).entries.contains_key(&id)
    }

    /// Resolves task `id` unless it resolved already. Returns the task's stream sequence
    /// (if known) when this call resolved it.
    pub(crate) fn resolve(&self, id: u64, answer: Answer<R>) -> Option<Option<u64>> {
        self.take(id).map(|entry| self.finish(entry, answer))
    }

    /// Takes task `id` out of the pending set unless it resolved already: the one place a
    /// handle's sender is taken, so each task resolves exactly once. Give the entry to
    /// [`finish`](Self::finish).
    pub(crate) fn take(&self, id: u64) -> Option<Entry<R>> {
        let mut pending = lock(&self.pending);
        let entry = pending.entries.remove(&id)?;
        if let Some(seq) = entry.seq {
            pending.by_seq.remove(&seq);
        }
        Some(entry)
    }

    /// Resolves a task [`take`](Self::take) took; returns its stream sequence, if known.
    pub(crate) fn finish(&self, entry: Entry<R>, answer: Answer<R>) -> Option<u64> {
        // The handle may have been dropped: the task resolved all the same.
        let _ = entry.tx.send(answer);
        self.resolved.notify_waiters();
        entry.seq
    }

    /// Resolves every pending task `Cancelled` (a `destroy`); returns each one's id and
    /// stream sequence, to withdraw.
    pub(crate) fn cancel_all(&self) -> Vec<(u64, Option<u64>)> {
        self.resolve_all(&TaskError::Cancelled)
    }

    /// Fails every pending task (a lost connection).
    pub(crate) fn fail_all(&self, error: &TaskError) {
        let failed = self.resolve_all(error);
        if !failed.is_empty() {
            tracing::warn!(tasks = failed.len(), %error, "failing pending remote tasks");
        }
    }

    /// Resolves every pending task with `error`: the one place the pending set is emptied
    /// at once. Each task's id and stream sequence (if known).
    fn resolve_all(&self, error: &TaskError) -> Vec<(u64, Option<u64>)> {
        let entries: Vec<(u64, Entry<R>)> = {
            let mut pending = lock(&self.pending);
            pending.by_seq.clear();
            pending.entries.drain().collect()
        };
        let resolved = entries
            .into_iter()
            .map(|(id, entry)| {
                let _ = entry.tx.send(Err(error.clone()));
                (id, entry.seq)
            })
            .collect();
        self.resolved.notify_waiters();
        resolved
    }

    /// Publishes one task message (`kind` is `one` or `chunk`) and waits for JetStream to
    /// store it. The task is pending from before the publish, so a result that comes back
    /// before the acknowledgement finds it.
    pub(crate) async fn submit(&self, payload: bytes::Bytes, kind: &'static str) -> Submitted<R> {
        if self.is_closed() {
            return Err(Refusal::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending)
            .entries
            .insert(id, Entry { tx, seq: None });
        let mut headers = HeaderMap::new();
        headers.insert(wire::ID, id.to_string());
        headers.insert(wire::REPLY, self.results.as_str());
        headers.insert(wire::KIND, kind);
        // No `Nats-Msg-Id`: a publish is not retried (a timeout hands the task back), and
        // the server's duplicate window would cost it a map entry per task.
        let message = PublishMessage::build().payload(payload).headers(headers);
        let published = match self
            .js
            .send_publish(self.names.tasks.clone(), message)
            .await
        {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        match published {
            Ok(ack) => {
                let resolved_meanwhile = {
                    let mut pending = lock(&self.pending);
                    match pending.entries.get_mut(&id) {
                        Some(entry) => {
                            entry.seq = Some(ack.sequence);
                            pending.by_seq.insert(ack.sequence, id);
                            false
                        }
                        None => true,
                    }
                };
                if resolved_meanwhile {
                    // Cancelled (or failed) while the publish was in flight: take it out of
                    // the queue now that its sequence is known.
                    self.withdraw(id, Some(ack.sequence)).await;
                }
                Ok((id, rx))
            }
            Err(error) => {
                lock(&self.pending).entries.remove(&id);
                if is_full(&error) {
                    Err(Refusal::Full)
                } else {
                    Err(Refusal::Nats(error.to_string()))
                }
            }
        }
    }

    /// As [`submit`](Self::submit), waiting for room while the queue is full.
    pub(crate) async fn submit_wait(
        &self,
        payload: bytes::Bytes,
        kind: &'static str,
    ) -> Submitted<R> {
        let mut poll = ServerPoll::new(Duration::from_micros(200));
        loop {
            // Before the attempt: a resolution while it is refused still wakes the wait.
            let resolved = self.resolved.notified();
            match self.submit(payload.clone(), kind).await {
                Err(Refusal::Full) => poll.wait(resolved).await,
                other => return other,
            }
        }
    }

    /// Takes a resolved task out of the queue (if it is still there) and tells the
    /// workers, so one running it sees its cancel.
    pub(crate) async fn withdraw(&self, id: u64, seq: Option<u64>) {
        if let Some(seq) = seq {
            // Fails when the task was acknowledged (ran) already: nothing to remove.
            let _ = self.stream.delete_message(seq).await;
        }
        if let Err(error) = self
            .client
            .publish(
                self.names.cancel.clone(),
                wire::task_key(&self.results, id).into(),
            )
            .await
        {
            tracing::debug!(%error, "cancel notice not sent");
        }
    }

    /// Messages in the queue now (queued and running), as the server counts them.
    pub(crate) async fn queue_size(&self) -> Result<usize, String> {
        let info = self.stream.get_info().await.map_err(|e| e.to_string())?;
        Ok(usize::try_from(info.state.messages).unwrap_or(usize::MAX))
    }

    /// Returns when the queue is empty: at once if it is, else when it empties (checked
    /// on every resolution here, and on a timer for other submitters' tasks). A server
    /// that cannot be asked ends the wait (the next submission reports why).
    pub(crate) async fn drained(&self) {
        let mut poll = ServerPoll::new(Duration::from_micros(500));
        loop {
            let resolved = self.resolved.notified();
            match self.queue_size().await {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "cannot read the queue's size; drain ends");
                    return;
                }
            }
            poll.wait(resolved).await;
        }
    }

    /// Returns when nothing submitted here is pending.
    pub(crate) async fn settled(&self) {
        loop {
            let resolved = self.resolved.notified();
            if self.pending() == 0 {
                return;
            }
            resolved.await;
        }
    }
}

impl<R: serde::de::DeserializeOwned> Core<R> {
    /// One message on the results subject: a worker's batch of answers.
    fn on_results(&self, message: &async_nats::Message) {
        let Ok(batch) = postcard::from_bytes::<Batch>(&message.payload) else {
            // Not from a worker of ours: no task id can be read from it.
            tracing::warn!(subject = %message.subject, "an unreadable results message: dropped");
            return;
        };
        for (id, reply) in batch {
            let answer = match postcard::from_bytes::<Reply<R>>(&reply) {
                Ok(Reply::Done(outcomes)) => {
                    Ok(outcomes.into_iter().map(Outcome::into_result).collect())
                }
                Ok(Reply::BadTask(error)) => Err(TaskError::BadTask(error)),
                Ok(Reply::BadResult(error)) => Err(TaskError::BadResult(error)),
                Err(error) => Err(TaskError::BadResult(error.to_string())),
            };
            // A second answer for the same task (it ran twice: at-least-once) finds
            // nothing.
            let _ = self.resolve(id, answer);
        }
    }

    /// The server's advisory that a task reached `max_deliver`: fail it, and remove it
    /// from the queue (a work queue keeps a message nobody acknowledged).
    async fn on_max_deliveries(&self, message: &async_nats::Message) {
        let Ok(advisory) = serde_json::from_slice::<MaxDeliveriesAdvisory>(&message.payload) else {
            tracing::warn!("an unreadable max-deliveries advisory: dropped");
            return;
        };
        let id = lock(&self.pending)
            .by_seq
            .get(&advisory.stream_seq)
            .copied();
        let Some(id) = id else {
            return; // another submitter's task
        };
        let attempts = advisory.deliveries;
        if let Some(seq) = self.resolve(id, Err(TaskError::MaxDeliveries { attempts })) {
            self.withdraw(id, seq).await;
        }
    }
}

/// Subscribes to the submitter's results and to the max-deliveries advisories, and makes
/// sure the server has both subscriptions before anything is published.
pub(crate) async fn listen<R>(
    core: std::sync::Arc<Core<R>>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> Result<(), String>
where
    R: serde::de::DeserializeOwned + Send + 'static,
{
    let mut results = core
        .client
        .subscribe(core.results.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut advisories = core
        .client
        .subscribe(core.names.max_deliveries.clone())
        .await
        .map_err(|e| e.to_string())?;
    core.client.flush().await.map_err(|e| e.to_string())?;
    let weak = std::sync::Arc::downgrade(&core);
    drop(core);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = results.next() => {
                    let (Some(message), Some(core)) = (message, weak.upgrade()) else { break };
                    core.on_results(&message);
                }
                message = advisories.next() => {
                    let (Some(message), Some(core)) = (message, weak.upgrade()) else { break };
                    core.on_max_deliveries(&message).await;
                }
                event = events.recv() => {
                    let (Some(event), Some(core)) = (event, weak.upgrade()) else { break };
                    if matches!(event, Event::Disconnected) {
                        core.fail_all(&TaskError::Disconnected);
                    }
                }
            }
        }
    });
    Ok(())
}

/// A publish refused because the stream holds `max_msgs` (discard-new): JetStream's
/// error 10077, "maximum messages exceeded".
fn is_full(error: &PublishError) -> bool {
    let api_error = std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<jetstream::Error>());
    match api_error {
        Some(api_error) => {
            api_error.error_code() == jetstream::ErrorCode::STREAM_STORE_FAILED
                || api_error.to_string().contains("maximum messages")
        }
        None => false,
    }
}

/// How a submitter waits for a state only the server knows (room in the queue, an empty
/// queue): until one of its own tasks resolves, or a timer that doubles from `first` up
/// to 20 ms (other submitters' tasks resolve without telling it).
struct ServerPoll {
    next: Duration,
}

impl ServerPoll {
    const MAX: Duration = Duration::from_millis(20);

    fn new(first: Duration) -> Self {
        ServerPoll { next: first }
    }

    async fn wait(&mut self, resolved: tokio::sync::futures::Notified<'_>) {
        let _ = tokio::time::timeout(self.next, resolved).await;
        self.next = (self.next * 2).min(Self::MAX);
    }
}
