//! `Cluster`: forks workers, serves their `listen` requests, supervises them.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use worker_threads_wait::Unpoison;
use worker_threads_wait::sync::{Condvar, Mutex};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use worker_threads_process::{Channel, Frame, IpcError, Limits, Signal};

use crate::config::{Config, Restart, SchedulingPolicy};
use crate::error::{ForkError, IpcRecvTimeoutError, IpcTryRecvError, RestartError};
use crate::event::Event;
use crate::lock;
use crate::primary::events::{Credit, Queued};
use crate::primary::server::{Member, Server};
use crate::primary::worker::{ClusterWorker, Status, WorkerInner};
use crate::wire::{self, Grant, MARKER, TAG_CONTROL, TAG_MESSAGE, ToPrimary, ToWorker};

/// The cluster's event receiver as a boxed stream.
type EventStream<T> = Pin<Box<dyn Stream<Item = Queued<T>> + Send>>;

/// A group of worker processes run from this one (Node's `cluster` in the primary).
///
/// Workers are this same executable, started again by [`fork`](Cluster::fork); in them
/// [`is_primary`](crate::is_primary) is false and the program takes its worker path. `T`
/// is the message type both ways. Events ([`Event`]) queue until read with
/// [`recv`](Cluster::recv) and friends; read them, or they accumulate.
///
/// Dropping the cluster kills its workers (`SIGKILL`) and closes its listening sockets;
/// call [`disconnect`](Cluster::disconnect) first for a graceful stop.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_cluster::{Cluster, Event};
///
/// if worker_threads_cluster::is_primary() {
///     let cluster = Cluster::<String>::new();
///     let worker = cluster.fork()?;
///     worker.send("hello".to_string()).map_err(|e| e.into_inner())?;
///     for event in cluster.iter() {
///         if let Event::Message { message, .. } = event {
///             println!("worker said {message}");
///             break;
///         }
///     }
/// } else {
///     let primary = worker_threads_cluster::primary::<String>();
///     let hello = primary.recv()?;
///     primary.send(format!("{hello} back")).map_err(|e| e.into_inner())?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cluster<T> {
    shared: Arc<Shared<T>>,
    /// The events as a stream, for the [`Stream`] impl (made on first poll). In a mutex
    /// only so that the cluster stays `Sync`: polling has `&mut self` and never locks.
    stream: Mutex<Option<EventStream<T>>>,
    /// Dropped first thing in `drop`: wakes restart back-offs so they give up.
    closing: Option<Sender<()>>,
}

struct Shared<T> {
    config: Config,
    events: flume::Sender<Queued<T>>,
    event_rx: flume::Receiver<Queued<T>>,
    closing: Receiver<()>,
    state: Mutex<State<T>>,
    next_id: AtomicUsize,
    next_key: AtomicU64,
}

struct State<T> {
    workers: BTreeMap<usize, ClusterWorker<T>>,
    servers: HashMap<SocketAddr, Arc<Server>>,
    threads: Vec<JoinHandle<()>>,
    closed: bool,
}

impl<T> Cluster<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    pub(crate) fn from_config(config: Config) -> Self {
        let (events, event_rx) = flume::unbounded();
        let (closing_tx, closing) = crossbeam_channel::bounded(0);
        Cluster {
            stream: Mutex::new(None),
            shared: Arc::new(Shared {
                config,
                events,
                event_rx,
                closing,
                state: Mutex::new(State {
                    workers: BTreeMap::new(),
                    servers: HashMap::new(),
                    threads: Vec::new(),
                    closed: false,
                }),
                next_id: AtomicUsize::new(1),
                next_key: AtomicU64::new(1),
            }),
            closing: Some(closing_tx),
        }
    }

    /// The scheduling policy.
    pub fn policy(&self) -> SchedulingPolicy {
        self.shared.config.policy
    }

    /// Starts a worker: this executable again, with the same arguments (or the builder's)
    /// and the same environment plus the cluster's marker. Stdout and stderr are inherited.
    ///
    /// # Errors
    ///
    /// [`ForkError`] if the executable cannot be found or the process cannot start, or if
    /// the cluster is shutting down.
    pub fn fork(&self) -> Result<ClusterWorker<T>, ForkError> {
        Shared::spawn(&self.shared, Vec::new(), 0)
    }

    /// [`fork`](Cluster::fork) with extra environment variables (Node's `cluster.fork(env)`).
    ///
    /// # Errors
    ///
    /// As [`fork`](Cluster::fork).
    pub fn fork_with<I, K, V>(&self, env: I) -> Result<ClusterWorker<T>, ForkError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let env = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Shared::spawn(&self.shared, env, 0)
    }

    /// The live workers, by id (Node's `cluster.workers`).
    pub fn workers(&self) -> Vec<ClusterWorker<T>> {
        lock(&self.shared.state).workers.values().cloned().collect()
    }

    /// The live worker with this id.
    pub fn worker(&self, id: usize) -> Option<ClusterWorker<T>> {
        lock(&self.shared.state).workers.get(&id).cloned()
    }

    /// The next event, waiting for one.
    pub fn recv(&self) -> Event<T> {
        // The cluster holds a sender, so the channel never disconnects while `self` lives.
        loop {
            if let Ok(queued) = crate::wait::recv(&self.shared.event_rx) {
                return queued.into_event();
            }
        }
    }

    /// The next event, if one is waiting.
    ///
    /// # Errors
    ///
    /// [`IpcTryRecvError::Empty`] when none is (the cluster's events never close while it
    /// lives, so no other variant comes).
    pub fn try_recv(&self) -> Result<Event<T>, IpcTryRecvError> {
        self.shared
            .event_rx
            .try_recv()
            .map(Queued::into_event)
            .map_err(|_| IpcTryRecvError::Empty)
    }

    /// The next event, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`IpcRecvTimeoutError::Timeout`] when none came in time (no other variant comes).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use worker_threads_cluster::{Cluster, Event};
    ///
    /// let cluster = Cluster::<String>::new();
    /// cluster.fork()?;
    /// match cluster.recv_timeout(Duration::from_secs(5)) {
    ///     Ok(Event::Online { worker }) => println!("worker {worker} is up"),
    ///     Ok(_) => {}
    ///     Err(err) => assert!(err.is_timeout()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event<T>, IpcRecvTimeoutError> {
        match worker_threads_wait::Deadline::after(timeout) {
            worker_threads_wait::Deadline::At(deadline) => self.recv_deadline(deadline),
            // Further than an `Instant` reaches: wait as long as it takes.
            worker_threads_wait::Deadline::Never => Ok(self.recv()),
        }
    }

    /// The next event, waiting until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Event<T>, IpcRecvTimeoutError> {
        self.shared
            .event_rx
            .recv_deadline(deadline)
            .map(Queued::into_event)
            .map_err(|_| IpcRecvTimeoutError::Timeout)
    }

    /// The next event, awaited under any executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an event is taken only in the poll that returns it, so dropping the
    /// future loses none. The cluster is also a [`Stream`] of its events.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() {
    /// use worker_threads_cluster::{Cluster, Event};
    ///
    /// let cluster = Cluster::<String>::new();
    /// cluster.fork().unwrap();
    /// loop {
    ///     match cluster.recv_async().await {
    ///         Event::Message { message, .. } => println!("{message}"),
    ///         Event::Exit { .. } => break,
    ///         _ => {}
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn recv_async(&self) -> Event<T> {
        loop {
            // The cluster holds a sender, so the channel never disconnects while it lives.
            if let Ok(queued) = self.shared.event_rx.recv_async().await {
                return queued.into_event();
            }
        }
    }

    /// Events as they come, forever.
    pub fn iter(&self) -> impl Iterator<Item = Event<T>> + '_ {
        std::iter::repeat_with(|| self.recv())
    }

    /// Replaces every live worker, one at a time: fork a replacement, wait until it
    /// listens on as many addresses as the old one did (or is online, if the old one did
    /// not listen), then disconnect the old one and wait for it to exit. The listening
    /// sockets stay open in the primary throughout, so with `RoundRobin` and `Shared` no
    /// connection is refused.
    ///
    /// # Errors
    ///
    /// [`RestartError`] if a replacement cannot be forked or dies before it is ready; the
    /// worker it was to replace keeps running.
    pub fn rolling_restart(&self) -> Result<(), RestartError> {
        for old in self.workers() {
            if old.exited_after_disconnect() {
                continue;
            }
            let (listening, env) = (lock(&old.inner.status).listening, old.inner.env.clone());
            let new = Shared::spawn(&self.shared, env, 0)?;
            if !new.inner.wait_ready(listening) {
                return Err(RestartError::ReplacementDied { id: new.id() });
            }
            old.disconnect();
            old.wait();
        }
        Ok(())
    }

    /// Disconnects every worker and waits until they have all exited (Node's
    /// `cluster.disconnect()`). No worker is restarted for it. A worker that does not exit
    /// after its listeners stop (it never returns from its own work) keeps this waiting, as
    /// in Node; [`ClusterWorker::kill`] ends it.
    pub fn disconnect(&self) {
        let workers = self.workers();
        for worker in &workers {
            worker.disconnect();
        }
        for worker in &workers {
            worker.wait();
        }
    }
}

impl<T> std::fmt::Debug for Cluster<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("policy", &self.shared.config.policy)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for Cluster<T> {
    fn drop(&mut self) {
        drop(self.closing.take());
        let (workers, servers, threads) = {
            let mut state = lock(&self.shared.state);
            state.closed = true;
            (
                std::mem::take(&mut state.workers),
                state.servers.values().cloned().collect::<Vec<_>>(),
                std::mem::take(&mut state.threads),
            )
        };
        for worker in workers.values() {
            lock(&worker.inner.status).planned = true;
            let _ = worker.inner.signal(Signal::KILL);
            worker.inner.ipc.shutdown();
        }
        for server in servers {
            server.stop();
        }
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl<T> Shared<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn emit(&self, event: Event<T>) {
        self.emit_with(event, None);
    }

    /// Queues `event`, holding `credit` until it is read.
    fn emit_with(&self, event: Event<T>, credit: Option<Credit>) {
        let _ = self.events.send(Queued { event, credit });
    }

    /// Starts one worker process and its supervising thread.
    /// The command a worker runs: this executable again, with the cluster's arguments
    /// (or this process's) and `env`.
    fn command(&self, env: &[(OsString, OsString)]) -> Result<Command, ForkError> {
        let exe = std::env::current_exe().map_err(ForkError::CurrentExe)?;
        let args: Vec<OsString> = match &self.config.args {
            Some(args) => args.clone(),
            None => std::env::args_os().skip(1).collect(),
        };
        let mut command = Command::new(exe);
        command.args(args).envs(env.iter().map(|(k, v)| (k, v)));
        if self.config.discard_stdout {
            command.stdout(std::process::Stdio::null());
        }
        Ok(command)
    }

    fn spawn(
        this: &Arc<Self>,
        env: Vec<(OsString, OsString)>,
        crashes: u32,
    ) -> Result<ClusterWorker<T>, ForkError> {
        if lock(&this.state).closed {
            return Err(ForkError::Closed);
        }
        let mut command = this.command(&env)?;
        let id = this.next_id.fetch_add(1, Ordering::Relaxed);
        let spawned =
            worker_threads_process::spawn(&mut command, MARKER, &id.to_string(), &Limits::none())
                .map_err(ForkError::Spawn)?;
        let child = spawned.child;
        let pid = spawned.process.pid();
        let ipc = Channel::new(spawned.channel, this.config.max_frame)
            .with_frame_timeout(this.config.frame_timeout)
            .with_send_timeout(this.config.send_timeout);
        let ipc = match ipc {
            Ok(ipc) => ipc,
            Err(error) => {
                let _ = spawned.process.signal(Signal::KILL);
                let mut child = child;
                let _ = child.wait();
                return Err(ForkError::Spawn(error));
            }
        };
        let inner = Arc::new(WorkerInner {
            id,
            ipc: Arc::new(ipc),
            process: spawned.process,
            env,
            crashes,
            started: Instant::now(),
            status: Mutex::new(Status::default()),
            changed: Condvar::new(),
            unread: Arc::default(),
            failure: Mutex::new(None),
        });
        let worker = ClusterWorker {
            inner,
            _message: PhantomData,
        };
        let mut state = lock(&this.state);
        if state.closed {
            drop(state);
            let _ = worker.inner.signal(Signal::KILL);
            let mut child = child;
            let _ = child.wait();
            return Err(ForkError::Closed);
        }
        state.workers.insert(id, worker.clone());
        this.emit(Event::Fork { worker: id });
        tracing::debug!(worker = id, pid, "forked");
        let shared = Arc::clone(this);
        let supervised = worker.clone();
        let thread = std::thread::Builder::new()
            .name(format!("cluster-worker-{id}"))
            .spawn(move || shared.supervise(supervised, child));
        match thread {
            Ok(handle) => {
                state.threads.retain(|t| !t.is_finished());
                state.threads.push(handle);
                Ok(worker)
            }
            Err(e) => {
                state.workers.remove(&id);
                drop(state);
                let _ = worker.inner.signal(Signal::KILL);
                // The `Child` went down with the thread's closure: reap by pid.
                worker.inner.process.reap();
                Err(ForkError::Spawn(e))
            }
        }
    }

    /// The worker's whole life as the primary sees it, on its own thread.
    fn supervise(self: Arc<Self>, worker: ClusterWorker<T>, mut child: Child) {
        let inner = &worker.inner;
        let mut buf = Vec::new();
        let failure = loop {
            match inner.ipc.recv(&mut buf) {
                Ok(Some(frame)) => {
                    if let Err(error) = self.handle(&worker, frame) {
                        break Some(error);
                    }
                }
                Ok(None) | Err(IpcError::Closed) => break None,
                Err(error) => break Some(error),
            }
        };
        if let Some(error) = failure {
            tracing::warn!(worker = inner.id, %error, "bad frame: disconnecting the worker");
            // Kill first: the worker must not see the shutdown as a graceful end.
            let _ = inner.signal(Signal::KILL);
            inner.ipc.shutdown();
            self.emit(Event::Error {
                worker: inner.id,
                error,
            });
        } else if let Some(error) = lock(&inner.failure).take() {
            // A send gave up on it (and killed it).
            self.emit(Event::Error {
                worker: inner.id,
                error,
            });
        }
        let servers = std::mem::take(&mut lock(&inner.status).servers);
        for server in servers {
            server.leave(inner.id);
        }
        self.emit(Event::Disconnect { worker: inner.id });
        let (code, signal) = match child.wait() {
            Ok(status) => worker_threads_process::exit_of(status),
            Err(error) => {
                tracing::error!(worker = inner.id, %error, "waitpid failed");
                (None, None)
            }
        };
        // Leave the map before the exit is recorded: recording it wakes `ClusterWorker::wait`,
        // and `Cluster::disconnect` promises an empty `workers()` when it returns.
        lock(&self.state).workers.remove(&inner.id);
        let mut planned = false;
        inner.update(|status| {
            status.exit = Some((code, signal));
            planned = status.planned;
        });
        tracing::debug!(worker = inner.id, ?code, ?signal, planned, "exited");
        self.emit(Event::Exit {
            worker: inner.id,
            code,
            signal,
            planned,
        });
        if !planned && code != Some(0) {
            self.restart(inner);
        }
    }

    /// Applies the restart policy to a crashed worker.
    fn restart(self: &Arc<Self>, old: &WorkerInner) {
        let Restart::OnCrash(backoff) = self.config.restart else {
            return;
        };
        let crashes = if old.started.elapsed() >= backoff.reset_after {
            0
        } else {
            old.crashes + 1
        };
        let delay = backoff.delay(crashes.saturating_sub(1));
        let this = Arc::clone(self);
        let (id, env) = (old.id, old.env.clone());
        let thread = std::thread::Builder::new()
            .name(format!("cluster-restart-{id}"))
            .spawn(move || {
                if let Err(RecvTimeoutError::Disconnected) = this.closing.recv_timeout(delay) {
                    return; // the cluster was dropped during the back-off
                }
                tracing::info!(worker = id, ?delay, "restarting a crashed worker");
                match Shared::spawn(&this, env, crashes) {
                    Ok(_) | Err(ForkError::Closed) => {}
                    Err(error) => this.emit(Event::RestartFailed { worker: id, error }),
                }
            });
        match thread {
            Ok(handle) => lock(&self.state).threads.push(handle),
            Err(error) => tracing::error!(worker = id, %error, "cannot start the restart thread"),
        }
    }

    /// One frame from a worker. An error disconnects the worker.
    fn handle(self: &Arc<Self>, worker: &ClusterWorker<T>, frame: Frame) -> Result<(), IpcError> {
        let id = worker.inner.id;
        if !frame.fds.is_empty() {
            return Err(IpcError::Malformed("a worker sent descriptors"));
        }
        match frame.tag {
            TAG_MESSAGE => {
                let cost = frame.body.len() + std::mem::size_of::<Event<T>>();
                let unread = worker.inner.unread.load(Ordering::Acquire);
                if unread.saturating_add(cost) > self.config.max_unread {
                    return Err(IpcError::Overflow {
                        max: self.config.max_unread,
                    });
                }
                let message = wire::decode::<T>(&frame.body)?;
                let credit = Credit::take(&worker.inner.unread, cost);
                self.emit_with(
                    Event::Message {
                        worker: id,
                        message,
                    },
                    Some(credit),
                );
            }
            TAG_CONTROL => match wire::decode::<ToPrimary>(&frame.body)? {
                ToPrimary::Online => {
                    worker.inner.update(|s| s.online = true);
                    self.emit(Event::Online { worker: id });
                }
                ToPrimary::Listen { seq, addr } => self.listen(worker, seq, addr)?,
                ToPrimary::Bound { addr } => self.listening(worker, addr, None),
                ToPrimary::Unlisten { key } => Self::unlisten(worker, key),
            },
            _ => return Err(IpcError::Malformed("unknown frame tag")),
        }
        Ok(())
    }

    /// Takes `worker` out of round-robin server `key`: it dropped its listener.
    fn unlisten(worker: &ClusterWorker<T>, key: u64) {
        let mut server = None;
        worker.inner.update(|s| {
            if let Some(at) = s.servers.iter().position(|server| server.key == key) {
                server = Some(s.servers.remove(at));
                s.listening = s.listening.saturating_sub(1);
            }
        });
        if let Some(server) = server {
            server.leave(worker.inner.id);
        }
    }

    /// The server for `addr`, bound on first use.
    fn server(&self, addr: SocketAddr) -> Result<Arc<Server>, String> {
        let mut state = lock(&self.state);
        if let Some(server) = state.servers.get(&addr) {
            return Ok(Arc::clone(server));
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let policy = self.config.policy;
        let server = Arc::new(Server::bind(addr, key, policy).map_err(|e| e.to_string())?);
        if policy == SchedulingPolicy::RoundRobin {
            let accepting = Arc::clone(&server);
            let handle = std::thread::Builder::new()
                .name(format!("cluster-accept-{}", server.addr))
                .spawn(move || accepting.accept_loop())
                .map_err(|e| e.to_string())?;
            state.threads.push(handle);
        }
        state.servers.insert(addr, Arc::clone(&server));
        tracing::debug!(%addr, bound = %server.addr, ?policy, "listening");
        Ok(server)
    }

    /// Answers a worker's `listen(addr)`.
    fn listen(
        &self,
        worker: &ClusterWorker<T>,
        seq: u64,
        addr: SocketAddr,
    ) -> Result<(), IpcError> {
        let server = self.server(addr);
        let (grant, fd) = match &server {
            Err(reason) => (Err(reason.clone()), None),
            Ok(server) => {
                let addr = server.addr;
                match server.policy {
                    SchedulingPolicy::RoundRobin => (
                        Ok(Grant::Handoff {
                            key: server.key,
                            addr,
                        }),
                        None,
                    ),
                    SchedulingPolicy::Shared => {
                        (Ok(Grant::Shared { addr }), Some(server.socket.as_fd()))
                    }
                    SchedulingPolicy::ReusePort => (Ok(Grant::ReusePort { addr }), None),
                }
            }
        };
        let answer = ToWorker::Listening { seq, grant };
        wire::send_control(&worker.inner.ipc, &answer, fd.as_slice())?;
        match server {
            // `ReusePort`: the worker binds first, then says `Bound`.
            Ok(server) if server.policy != SchedulingPolicy::ReusePort => {
                self.listening(worker, server.addr, Some(server));
            }
            _ => {}
        }
        Ok(())
    }

    /// Records that `worker` serves `addr` and joins it to the round-robin rotation.
    fn listening(&self, worker: &ClusterWorker<T>, addr: SocketAddr, server: Option<Arc<Server>>) {
        let id = worker.inner.id;
        let mut planned = false;
        worker.inner.update(|s| {
            s.listening += 1;
            planned = s.planned;
            if let Some(server) = &server {
                s.servers.push(Arc::clone(server));
            }
        });
        if let Some(server) =
            server.filter(|s| !planned && s.policy == SchedulingPolicy::RoundRobin)
        {
            server.join(Member {
                id,
                ipc: Arc::clone(&worker.inner.ipc),
            });
        }
        self.emit(Event::Listening {
            worker: id,
            address: addr,
        });
    }
}

/// The cluster's events, as [`recv_async`](Cluster::recv_async) gives them: the stream
/// never ends while the cluster lives. Dropping a pending `next()` loses no event.
impl<T: Send + 'static> Stream for Cluster<T> {
    type Item = Event<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event<T>>> {
        let this = self.get_mut();
        let shared = &this.shared;
        this.stream
            .get_mut()
            .unpoison()
            .get_or_insert_with(|| Box::pin(shared.event_rx.clone().into_stream()))
            .as_mut()
            .poll_next(cx)
            .map(|queued| queued.map(Queued::into_event))
    }
}
