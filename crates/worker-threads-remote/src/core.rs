//! The submitter's side of the protocol: publish a task and record it as pending, resolve
//! each pending task exactly once (its result, a cancel, the max-deliveries advisory, a
//! lost connection), and the tasks that listen for those on the pool's runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_nats::{Client, Event, HeaderMap};
use futures_util::StreamExt;
use tokio::sync::{Notify, oneshot};
use worker_threads_wait::lock;

use crate::body::Bodies;
use crate::wire::{self, Batch, Kind, MaxDeliveriesAdvisory, Names, Outcome, Reply};
use worker_threads_pool::TaskError;

/// What a pending task's handle receives: one result per task in its message, or an
/// error for all of them.
pub(crate) type Answer<R> = Result<Vec<Result<R, TaskError>>, TaskError>;

/// A submission's outcome: the task's id and its answer to come, or why not.
pub(crate) type Submitted<R> = Result<(u64, oneshot::Receiver<Answer<R>>), Refusal>;

/// Tasks that may have lost their answer: each one's id and stream sequence.
type Suspects = Vec<(u64, u64)>;

/// Checks of tasks that may have lost their answer: see [`Core::recover`].
const RECOVERY_CHECKS: u32 = 6;

/// How long one attempt to publish a task waits for JetStream's acknowledgement before
/// the next (with the same message id).
pub(crate) const ATTEMPT: Duration = Duration::from_secs(1);

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

/// A pending task: its handle's sender, its message and, once stored, its stream
/// sequence.
pub(crate) struct Entry<R> {
    tx: oneshot::Sender<Answer<R>>,
    /// The stream sequence, once JetStream acknowledged the publish.
    seq: Option<u64>,
    /// The task message and its kind, to publish it again if its answer was lost. Its
    /// body in the object store, if it has one, is deleted when the task resolves.
    message: Stowed,
    kind: Kind,
    /// Times it was published again.
    copies: u32,
}

struct Pending<R> {
    entries: HashMap<u64, Entry<R>>,
    by_seq: HashMap<u64, u64>,
}

/// A task's message as it is published: its payload, or its body's name in the object
/// store over an empty payload.
#[derive(Clone)]
struct Stowed {
    payload: bytes::Bytes,
    body: Option<String>,
}

/// A submitter's limits, from its builder and the server.
pub(crate) struct Settings {
    /// The stream's `max_msgs`, read from the server.
    pub(crate) max_queue: usize,
    /// How long a submission tries to have its task stored (attempts repeat, with the
    /// same message id, across a lost connection).
    pub(crate) publish_timeout: Duration,
    /// How long a lost connection may last before pending tasks fail `Disconnected`.
    pub(crate) reconnect_timeout: Duration,
}

/// The state a submitter shares with its handles and its runtime's tasks.
pub(crate) struct Core<R> {
    pub(crate) client: Client,
    js: jetstream::Context,
    stream: stream::Stream,
    names: Names,
    /// This submitter's unique name (a NUID): in its results subject and message ids.
    submitter: String,
    results: String,
    pub(crate) settings: Settings,
    /// Bodies over `max_payload`.
    bodies: Arc<Bodies>,
    /// The pool's runtime, for work started off it (a body's deletion).
    runtime: tokio::runtime::Handle,
    pending: Mutex<Pending<R>>,
    /// Tasks that may have lost their answer, for the listener to [`recover`](Self::recover).
    suspects: tokio::sync::mpsc::UnboundedSender<Suspects>,
    suspected: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Suspects>>>,
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
        settings: Settings,
        bodies: Bodies,
    ) -> Self {
        let submitter = nuid::next().to_string();
        let results = names.results(&submitter);
        let (suspects, suspected) = tokio::sync::mpsc::unbounded_channel();
        Self {
            suspects,
            suspected: Mutex::new(Some(suspected)),
            submitter,
            client,
            js,
            stream,
            names,
            results,
            settings,
            bodies: Arc::new(bodies),
            runtime: tokio::runtime::Handle::current(),
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
        self.forget_body(entry.message.body);
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
                self.forget_body(entry.message.body);
                (id, entry.seq)
            })
            .collect();
        self.resolved.notify_waiters();
        resolved
    }

    /// Publishes one task message (`kind` is `one` or `chunk`) and waits for JetStream to
    /// store it. The task is pending from before the publish, so a result that comes back
    /// before the acknowledgement finds it.
    pub(crate) async fn submit(&self, payload: bytes::Bytes, kind: Kind) -> Submitted<R> {
        let message = self.stow(payload).await?;
        let submitted = self.submit_stowed(&message, kind).await;
        if submitted.is_err() {
            self.forget_body(message.body);
        }
        submitted
    }

    /// A task's message: its payload as it is, or (larger than a message) put into the
    /// object store, the message carrying the name.
    async fn stow(&self, payload: bytes::Bytes) -> Result<Stowed, Refusal> {
        if self.is_closed() {
            return Err(Refusal::Closed);
        }
        if self.bodies.fits(payload.len()) {
            return Ok(Stowed {
                payload,
                body: None,
            });
        }
        let name = format!("task.{}.{}", self.submitter, nuid::next());
        self.bodies
            .put(&name, &payload)
            .await
            .map_err(Refusal::Nats)?;
        Ok(Stowed {
            payload: bytes::Bytes::new(),
            body: Some(name),
        })
    }

    /// [`submit`](Self::submit) of a stowed message; its body stays on a refusal (the
    /// caller may try again).
    async fn submit_stowed(&self, message: &Stowed, kind: Kind) -> Submitted<R> {
        if self.is_closed() {
            return Err(Refusal::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let entry = Entry {
            tx,
            seq: None,
            message: message.clone(),
            kind,
            copies: 0,
        };
        lock(&self.pending).entries.insert(id, entry);
        let published = self.publish(message, id, kind, 0).await;
        match published {
            Ok((seq, duplicate)) => {
                self.stored(id, seq).await;
                if duplicate {
                    // An attempt before this one was stored, perhaps while this submitter
                    // was away: the task may have run and lost its answer.
                    let _ = self.suspects.send(vec![(id, seq)]);
                }
                Ok((id, rx))
            }
            Err(refusal) => {
                // Not accepted: its entry goes without resolving (the body is the
                // caller's).
                lock(&self.pending).entries.remove(&id);
                Err(refusal)
            }
        }
    }

    /// Deletes a task's body from the object store, if it has one (on the pool's runtime:
    /// a task may resolve on any thread).
    fn forget_body(&self, body: Option<String>) {
        if let Some(name) = body {
            let bodies = Arc::clone(&self.bodies);
            self.runtime
                .spawn(async move { bodies.delete(&name).await });
        }
    }

    /// A task message's headers; `copy` counts the times it was published again.
    fn headers(&self, id: u64, kind: Kind, body: Option<&str>, copy: u32) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(wire::ID, id.to_string());
        headers.insert(wire::REPLY, self.results.as_str());
        headers.insert(wire::KIND, kind.name);
        if let Some(body) = body {
            headers.insert(wire::BODY, body);
        }
        if let Some(retry) = &kind.retry {
            headers.insert(wire::RETRY, wire::retry_header(retry));
        }
        // The stream drops a second copy within its duplicate window: an attempt repeated
        // after a lost acknowledgement (the server restarted) stores the task once. A
        // copy published again on purpose has an id of its own.
        let message_id = if copy == 0 {
            format!("{}.{id}", self.submitter)
        } else {
            format!("{}.{id}.{copy}", self.submitter)
        };
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id);
        headers
    }

    /// Records that task `id` is stored at `seq`; takes it out of the queue again if it
    /// resolved while the publish was in flight (cancelled, failed).
    async fn stored(&self, id: u64, seq: u64) {
        let resolved_meanwhile = {
            let mut pending = lock(&self.pending);
            let pending = &mut *pending;
            match pending.entries.get_mut(&id) {
                Some(entry) => {
                    if let Some(old) = entry.seq.replace(seq) {
                        pending.by_seq.remove(&old);
                    }
                    pending.by_seq.insert(seq, id);
                    false
                }
                None => true,
            }
        };
        if resolved_meanwhile {
            self.withdraw(id, Some(seq)).await;
        }
    }

    /// The pending tasks stored in the queue, each with its stream sequence: after a
    /// reconnection, each may have lost its answer.
    pub(crate) fn stored_tasks(&self) -> Vec<(u64, u64)> {
        lock(&self.pending)
            .entries
            .iter()
            .filter_map(|(id, entry)| entry.seq.map(|seq| (*id, seq)))
            .collect()
    }

    /// Checks tasks that may have lost their answer (`(id, stream sequence)`): a worker
    /// acknowledges a task once its answer is published, and an answer to a submitter
    /// that is away is lost, so a pending task whose message left the queue was answered
    /// unheard; it is published again (a new message id) and runs again. Checked at once,
    /// then 1, 2, 4, 8 and 16 s later while a message is still there: an acknowledgement
    /// in flight, or a consumer's election, keeps a message in the queue a while after its
    /// answer went.
    pub(crate) async fn recover(&self, mut suspects: Vec<(u64, u64)>) {
        let mut pause = Duration::ZERO;
        for _ in 0..RECOVERY_CHECKS {
            tokio::time::sleep(pause).await;
            suspects = self.send_again_if_lost(suspects).await;
            if suspects.is_empty() {
                return;
            }
            pause = (pause * 2).max(Duration::from_secs(1));
        }
    }

    /// Publishes again each suspect that is still pending and whose message left the
    /// queue; returns those whose message is still there (or could not be looked up).
    async fn send_again_if_lost(&self, suspects: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        let mut queued = Vec::new();
        let mut again = 0usize;
        for (id, seq) in suspects {
            let current = lock(&self.pending).entries.get(&id).and_then(|e| e.seq);
            if current != Some(seq) {
                continue; // resolved, or published again already
            }
            match self.stream.get_raw_message(seq).await {
                Ok(_) => {
                    queued.push((id, seq)); // queued or running: its answer may come
                    continue;
                }
                Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {}
                Err(error) => {
                    tracing::debug!(%error, "cannot tell yet whether a task's answer was lost");
                    queued.push((id, seq));
                    continue;
                }
            }
            let copy = {
                let mut pending = lock(&self.pending);
                let pending = &mut *pending;
                let Some(entry) = pending.entries.get_mut(&id) else {
                    continue; // answered meanwhile
                };
                if entry.seq != Some(seq) {
                    continue; // another check publishes it again
                }
                // Unstored until the copy is: a check running beside this one skips it.
                entry.seq = None;
                pending.by_seq.remove(&seq);
                entry.copies += 1;
                (entry.message.clone(), entry.kind, entry.copies)
            };
            let (message, kind, copy) = copy;
            match self.publish(&message, id, kind, copy).await {
                Ok((seq, _)) => {
                    again += 1;
                    self.stored(id, seq).await;
                }
                Err(refusal) => {
                    tracing::warn!(
                        ?refusal,
                        "a task whose answer was lost could not be sent again"
                    );
                    self.resolve(id, Err(TaskError::Disconnected));
                }
            }
        }
        if again > 0 {
            tracing::info!(tasks = again, "tasks whose answer was lost were sent again");
        }
        queued
    }

    /// Publishes task `id`'s message until JetStream stores it (its stream sequence, and
    /// whether an earlier attempt had stored it already), it
    /// is refused for good (a full queue, a message too large), or `publish_timeout`
    /// passed. An attempt waits at most [`ATTEMPT`] for its acknowledgement (the JetStream
    /// context's timeout); the next one repeats the same message id, so the stream keeps
    /// one copy.
    async fn publish(
        &self,
        stowed: &Stowed,
        id: u64,
        kind: Kind,
        copy: u32,
    ) -> Result<(u64, bool), Refusal> {
        let deadline = Instant::now() + self.settings.publish_timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let message = PublishMessage::build()
                .payload(stowed.payload.clone())
                .headers(self.headers(id, kind, stowed.body.as_deref(), copy));
            let published = match self
                .js
                .send_publish(self.names.tasks.clone(), message)
                .await
            {
                Ok(ack) => ack.await,
                Err(error) => Err(error),
            };
            let error = match published {
                Ok(ack) => return Ok((ack.sequence, ack.duplicate)),
                Err(error) if is_full(&error) => return Err(Refusal::Full),
                Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(Refusal::Nats(error.to_string()));
                }
                Err(error) => error,
            };
            if Instant::now() + pause >= deadline {
                return Err(Refusal::Nats(error.to_string()));
            }
            tracing::debug!(%error, "a task's publish is tried again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// As [`submit`](Self::submit), waiting for room while the queue is full.
    pub(crate) async fn submit_wait(&self, payload: bytes::Bytes, kind: Kind) -> Submitted<R> {
        // A body goes into the object store once, however long the wait.
        let message = self.stow(payload).await?;
        let mut poll = ServerPoll::new(Duration::from_micros(200));
        loop {
            // Before the attempt: a resolution while it is refused still wakes the wait.
            let resolved = self.resolved.notified();
            match self.submit_stowed(&message, kind).await {
                Err(Refusal::Full) => poll.wait(resolved).await,
                other => {
                    if other.is_err() {
                        self.forget_body(message.body);
                    }
                    return other;
                }
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

impl<R: serde::de::DeserializeOwned + Send + 'static> Core<R> {
    /// One message on the results subject: a worker's batch of answers.
    fn on_results(self: &Arc<Self>, message: &async_nats::Message) {
        let Ok(batch) = postcard::from_bytes::<Batch>(&message.payload) else {
            // Not from a worker of ours: no task id can be read from it.
            tracing::warn!(subject = %message.subject, "an unreadable results message: dropped");
            return;
        };
        for (id, reply) in batch {
            let answer = match postcard::from_bytes::<Reply<R>>(&reply) {
                Ok(Reply::Body(name)) => {
                    // Larger than a message: read from the object store, off this loop.
                    let core = Arc::clone(self);
                    tokio::spawn(async move { core.on_body_reply(id, name).await });
                    continue;
                }
                reply => answer_of(reply.map_err(|error| error.to_string())),
            };
            // A second answer for the same task (it ran twice: at-least-once) finds
            // nothing.
            let _ = self.resolve(id, answer);
        }
    }

    /// A reply kept in the object store: read it (unless the task resolved already),
    /// resolve the task with it, delete it.
    async fn on_body_reply(&self, id: u64, name: String) {
        if self.is_pending(id) {
            let reply = match self.bodies.get(&name).await {
                Ok(bytes) => wire::decode::<Reply<R>>(bytes.into()).await,
                Err(error) => Err(error),
            };
            let _ = self.resolve(id, answer_of(reply));
        }
        self.bodies.delete(&name).await;
    }

    /// The server's advisory that a task reached `max_deliver`: fail it, and remove it
    /// from the queue (a work queue keeps a message nobody acknowledged).
    async fn on_max_deliveries(&self, advisory: &[u8]) {
        let Ok(advisory) = serde_json::from_slice::<MaxDeliveriesAdvisory>(advisory) else {
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

/// A decoded reply as its task's answer (`Body` is read first, by the caller).
fn answer_of<R>(reply: Result<Reply<R>, String>) -> Answer<R> {
    match reply {
        Ok(Reply::Done(outcomes)) => Ok(outcomes.into_iter().map(Outcome::into_result).collect()),
        Ok(Reply::BadTask(error)) => Err(TaskError::BadTask(error)),
        Ok(Reply::BadResult(error)) => Err(TaskError::BadResult(error)),
        // A body names another only if a worker is not ours.
        Ok(Reply::Body(name)) => Err(TaskError::BadResult(format!("an unread body {name}"))),
        Err(error) => Err(TaskError::BadResult(error)),
    }
}

/// Subscribes to the submitter's results and to the max-deliveries advisories (kept in a
/// stream, read by an ordered consumer), and makes sure the server has both before
/// anything is published.
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
    // The advisories through the stream that keeps them, read in order from now on: an
    // ordered consumer picks up after its last one when the connection comes back, so an
    // advisory published while this submitter was away still reaches it.
    let mut advisories = core
        .js
        .get_stream(core.names.dead.clone())
        .await
        .map_err(|e| e.to_string())?
        .create_consumer(jetstream::consumer::push::OrderedConfig {
            deliver_subject: core.client.new_inbox(),
            deliver_policy: jetstream::consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    core.client.flush().await.map_err(|e| e.to_string())?;
    let mut advisories_open = true;
    let reconnect_timeout = core.settings.reconnect_timeout;
    let mut suspected = lock(&core.suspected)
        .take()
        .ok_or("the pool listens once")?;
    let weak = std::sync::Arc::downgrade(&core);
    drop(core);
    tokio::spawn(async move {
        // Since when the connection is lost, while it is.
        let mut lost_since: Option<tokio::time::Instant> = None;
        loop {
            let give_up = async {
                match lost_since {
                    Some(since) => tokio::time::sleep_until(since + reconnect_timeout).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = results.next() => {
                    let (Some(message), Some(core)) = (message, weak.upgrade()) else { break };
                    core.on_results(&message);
                }
                message = advisories.next(), if advisories_open => {
                    let Some(core) = weak.upgrade() else { break };
                    match message {
                        Some(Ok(message)) => core.on_max_deliveries(&message.payload).await,
                        Some(Err(error)) => tracing::warn!(%error, "max-deliveries advisories"),
                        None => {
                            // Results still come: only the advisories stopped.
                            tracing::error!("the max-deliveries advisories ended");
                            advisories_open = false;
                        }
                    }
                }
                event = events.recv() => {
                    let Some(event) = event else { break };
                    match event {
                        Event::Disconnected => {
                            tracing::info!("the connection to NATS is lost; pending tasks wait \
                                for it to come back");
                            lost_since.get_or_insert_with(tokio::time::Instant::now);
                        }
                        Event::Connected => {
                            if lost_since.take().is_some() && let Some(core) = weak.upgrade() {
                                let suspects = core.stored_tasks();
                                tokio::spawn(async move { core.recover(suspects).await });
                            }
                        }
                        _ => {}
                    }
                }
                Some(suspects) = suspected.recv() => {
                    let Some(core) = weak.upgrade() else { break };
                    tokio::spawn(async move { core.recover(suspects).await });
                }
                () = give_up => {
                    lost_since = None;
                    let Some(core) = weak.upgrade() else { break };
                    core.fail_all(&TaskError::Disconnected);
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
