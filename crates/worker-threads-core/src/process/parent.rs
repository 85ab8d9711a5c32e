//! The parent's side of a process worker: start it, bridge its channel to the handle's
//! port, terminate it, and turn how it ended into the worker's outcome.
//!
//! Two threads per worker, and a third (the port relay of `worker_threads_process::ports`)
//! once a `MessagePort` crossed in the data or a message:
//!
//! - the writer sends what the handle's posts could not send themselves (`direct`: from
//!   the bridge end of a local port pair); when the handle terminates the port it sends
//!   `Terminate`, waits the grace period for the process to end, and kills it;
//! - the reader routes the child's frames (`Online` and `Exit` to the lifecycle, messages
//!   to the handle, port frames to the router) that no receive of the handle read first
//!   (`direct`), and at end of file reaps the process, decides the outcome, closes the
//!   bridge port, waits for the writer to end, closes the crossed ports (and waits for
//!   their relay), and reports `Exit`. It is the handle's `thread`, so a joined process
//!   worker has no thread left.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use worker_threads_channel::{MessageChannel, MessagePort, RecvError};
use worker_threads_process::codec::{decode, encode};
use worker_threads_process::ports::{self, Router, Side};
use worker_threads_process::rings::Rings;
use worker_threads_process::{Channel, Frame, IpcError, Limits, MAX_FDS, Process, Signal};

use crate::context::{WorkerContext, adopt_child};
use crate::error::{Limit, SpawnError, WorkerError};
use crate::isolation::Process as Isolated;
use crate::options::WorkerOptions;
use crate::outcome::{IntoExitCode, Outcome};
use crate::process::child::{self, Trampoline, child_main};
use crate::process::direct::{self, Dispatch, Flow, Incoming, Outgoing};
use crate::process::link::ProcessLink;
use crate::process::settings::ProcessSettings;
use crate::process::wire::{
    CHILD_ARGS, ErrorReport, ExeId, ExitReport, FromChild, MARKER, MAX_FRAME, RING_CAPACITY, Start,
    TAG_CONTROL, TAG_MESSAGE, TAG_PORT, ToChild,
};
use crate::shared::Reporter;
use crate::shared::Shared;
use crate::worker::{Parts, Worker, next_thread_id, parent_port};

/// What std's default allocation-error handler prints before it aborts.
const ALLOCATION_FAILED: &[u8] = b"memory allocation of ";

fn io_error(error: impl std::fmt::Display) -> SpawnError {
    SpawnError::new(std::io::Error::other(error.to_string()))
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| SpawnError::new(e.into()))
}

/// Starts a process worker: its data encoded, its standard streams piped as asked, the
/// child launched, then the two bridge threads that carry the handle's port.
pub(crate) fn spawn<D, In, Out, F, R>(
    options: WorkerOptions<D, Isolated>,
    _entry: F,
) -> Result<Worker<In, Out>, SpawnError>
where
    D: Serialize + DeserializeOwned + Send + Sync + 'static,
    In: Serialize + DeserializeOwned + Send + 'static,
    Out: Serialize + DeserializeOwned + Send + 'static,
    F: FnOnce(WorkerContext<D, In, Out>) -> R + Copy + Send + 'static,
    R: IntoExitCode,
{
    let settings = options.process;
    let (data, data_fds, data_ports) = encode_data(&options.data)?;
    let exe = ExeId::current().map_err(SpawnError::new)?;
    let thread_id = next_thread_id();
    let pipes = StdPipes::new(&settings)?;
    let start = Start {
        entry: child::offset_of(child_main::<D, In, Out, F, R> as Trampoline),
        exe,
        thread_id,
        name: options.name.clone(),
        data,
        stack_size: options.stack_size.map(|b| b as u64),
        port_capacity: options.port_capacity.map(|c| c as u64),
        stdout: pipes.stdout_write.is_some(),
        stderr: pipes.stderr_write.is_some(),
        rings: false, // `launch` decides
    };
    let (launched, stdout_read, stderr_read) = pipes.launch(&settings.limits, start, data_fds)?;
    let Launched {
        child: child_process,
        process,
        channel,
    } = launched;
    let (process, channel) = (Arc::new(process), Arc::new(channel));
    let router = Router::new(Arc::clone(&channel), TAG_PORT, Side::Parent);
    router.relay(data_ports);

    let MessageChannel { mut port1, port2 } = parent_port::<In, Out>(options.port_capacity);
    let shared = Arc::new(Shared::default());
    adopt_child(thread_id, &shared);
    let bridge = Arc::new(port2);
    let reporter = Reporter::new(Arc::clone(&shared));
    let incoming = FromWorker::incoming(&channel, &router, &bridge, &shared, &process);
    // The handle's posts and receives use the socket themselves (`direct`).
    let outgoing = direct::attach(&mut port1, &incoming, false);
    let stderr = route_stderr(stderr_read, &settings, thread_id)?;
    let bridges = Bridges {
        thread_id,
        router,
        bridge,
        process,
        terminating: Arc::new(AtomicBool::new(false)),
        grace: settings.grace,
        limits: settings.limits,
    };
    let (reader, pid) = bridges.start(
        outgoing,
        incoming,
        child_process,
        stderr.forwarder,
        stderr.memory_exhausted,
        (shared.clone(), reporter),
    )?;
    tracing::debug!(thread_id, pid, "process worker spawned");
    let worker = Worker::assemble(Parts {
        port: port1,
        shared,
        thread: reader,
        thread_id,
        name: options.name.map(Arc::from),
    });
    Ok(worker.with_process(ProcessLink {
        pid,
        stdout: stdout_read.map(File::from),
        stderr: stderr.user,
    }))
}

/// The worker's data encoded for `Start`: its body, the descriptors of the buffers in it
/// (sent with `Start`), and the ports in it (relayed once the child has its channel).
fn encode_data<D: Serialize>(
    data: &D,
) -> Result<(Vec<u8>, Vec<OwnedFd>, ports::Ported), SpawnError> {
    let ports::Encoded {
        value: body,
        fds,
        ports,
    } = ports::encode(Side::Parent, || encode(data));
    let body = body.map_err(io_error)?;
    // `Start` carries them beside the two stdio pipes and the rings.
    let others = 2 + worker_threads_process::rings::FDS;
    if fds.len() + others > MAX_FDS {
        return Err(io_error(format!(
            "worker data with {} shared buffers: at most {} cross",
            fds.len(),
            MAX_FDS - others
        )));
    }
    Ok((body, fds, ports))
}

/// The pipes of a child's stdout and stderr, where they are piped.
struct StdPipes {
    stdout_read: Option<OwnedFd>,
    stdout_write: Option<OwnedFd>,
    stderr_read: Option<OwnedFd>,
    stderr_write: Option<OwnedFd>,
}

impl StdPipes {
    fn new(settings: &ProcessSettings) -> Result<Self, SpawnError> {
        let piped = |wanted: bool| -> Result<(Option<OwnedFd>, Option<OwnedFd>), SpawnError> {
            if wanted {
                let (r, w) = pipe()?;
                Ok((Some(r), Some(w)))
            } else {
                Ok((None, None))
            }
        };
        let (stdout_read, stdout_write) = piped(settings.stdout)?;
        let (stderr_read, stderr_write) = piped(settings.stderr || settings.watches_memory())?;
        Ok(Self {
            stdout_read,
            stdout_write,
            stderr_read,
            stderr_write,
        })
    }

    /// Launches the child with `start`, the pipes' write ends and the data's descriptors
    /// (closed here once sent); the child, and the read ends to keep.
    fn launch(
        self,
        limits: &crate::process::ResourceLimits,
        start: Start,
        data_fds: Vec<OwnedFd>,
    ) -> Result<(Launched, Option<OwnedFd>, Option<OwnedFd>), SpawnError> {
        let fds: Vec<_> = [&self.stdout_write, &self.stderr_write]
            .into_iter()
            .flatten()
            .chain(&data_fds)
            .map(|fd| fd.as_fd())
            .collect();
        let launched = launch(limits, start, &fds);
        drop(fds);
        drop((self.stdout_write, self.stderr_write, data_fds));
        Ok((launched?, self.stdout_read, self.stderr_read))
    }
}

/// Where a child's stderr goes: the user's pipe, and the thread that forwards it while
/// watching for the allocation-failure line (under a memory cap).
struct Stderr {
    user: Option<File>,
    forwarder: Option<JoinHandle<()>>,
    memory_exhausted: Arc<AtomicBool>,
}

/// stderr: to the user's pipe or to ours, watching for the allocation failure.
fn route_stderr(
    read: Option<OwnedFd>,
    settings: &ProcessSettings,
    thread_id: u64,
) -> Result<Stderr, SpawnError> {
    let mut stderr = Stderr {
        user: None,
        forwarder: None,
        memory_exhausted: Arc::new(AtomicBool::new(false)),
    };
    let Some(read) = read else {
        return Ok(stderr);
    };
    if !settings.watches_memory() {
        stderr.user = Some(File::from(read));
        return Ok(stderr);
    }
    let sink: Box<dyn Write + Send> = if settings.stderr {
        let (r, w) = pipe()?;
        stderr.user = Some(File::from(r));
        Box::new(File::from(w))
    } else {
        Box::new(std::io::stderr())
    };
    let seen = Arc::clone(&stderr.memory_exhausted);
    stderr.forwarder = thread::Builder::new()
        .name(format!("worker-{thread_id}-stderr"))
        .spawn(move || forward_stderr(File::from(read), sink, &seen))
        .ok();
    Ok(stderr)
}

/// What the two bridge threads of a process worker share.
struct Bridges<In, Out> {
    thread_id: u64,
    router: Arc<Router>,
    bridge: Arc<MessagePort<Out, In>>,
    process: Arc<Process>,
    terminating: Arc<AtomicBool>,
    grace: Duration,
    limits: crate::process::ResourceLimits,
}

impl<In, Out> Bridges<In, Out>
where
    In: Serialize + DeserializeOwned + Send + 'static,
    Out: Serialize + DeserializeOwned + Send + 'static,
{
    /// Starts the thread that carries the handle's posts to the child ([`write_to_child`]).
    fn spawn_writer(
        &self,
        outgoing: Option<Arc<Outgoing>>,
        exited: mpsc::Receiver<()>,
    ) -> std::io::Result<JoinHandle<()>> {
        let (router, bridge, process, terminating) = (
            Arc::clone(&self.router),
            Arc::clone(&self.bridge),
            Arc::clone(&self.process),
            Arc::clone(&self.terminating),
        );
        let grace = self.grace;
        thread::Builder::new()
            .name(format!("worker-{}-send", self.thread_id))
            .spawn(move || {
                write_to_child(
                    &router,
                    &bridge,
                    outgoing.as_deref(),
                    &process,
                    &terminating,
                    &exited,
                    grace,
                );
            })
    }

    /// Starts the writer (the handle's posts to the child) and the reader (the child's
    /// frames, then its exit); the reader's handle and the child's pid. A thread the OS
    /// refuses kills the child.
    fn start(
        self,
        outgoing: Option<Arc<Outgoing>>,
        incoming: Arc<Incoming<FromWorker<In, Out>>>,
        mut child_process: std::process::Child,
        forwarder: Option<JoinHandle<()>>,
        memory_exhausted: Arc<AtomicBool>,
        (shared, reporter): (Arc<Shared>, Reporter),
    ) -> Result<(JoinHandle<()>, u32), SpawnError> {
        let (exited_tx, exited_rx) = mpsc::channel::<()>();
        let writer = self.spawn_writer(outgoing, exited_rx);
        let Self {
            thread_id,
            router,
            bridge,
            process,
            terminating,
            grace: _,
            limits,
        } = self;
        let writer = match writer {
            Ok(writer) => writer,
            Err(error) => {
                let _ = process.signal(Signal::KILL);
                let _ = child_process.wait();
                router.finish();
                return Err(SpawnError::new(error));
            }
        };
        let reader = {
            let router = Arc::clone(&router);
            thread::Builder::new()
                .name(format!("worker-{thread_id}-recv"))
                .spawn(move || {
                    let watch = Watch {
                        terminating: &terminating,
                        memory_exhausted: &memory_exhausted,
                        limits,
                    };
                    let outcome = read_from_child(&incoming, &watch, child_process, forwarder);
                    drop(exited_tx);
                    let _ = shared.ended.set(outcome.error.clone());
                    shared.report_if_unhandled(thread_id);
                    bridge.close();
                    // The writer ends on the closed bridge (and the dropped `exited_tx`):
                    // wait for it, so that `join` returns with both threads gone.
                    let _ = writer.join();
                    // Every port that crossed to the child closes (after what it held).
                    router.finish();
                    reporter.exit(outcome);
                })
        };
        match reader {
            Ok(reader) => Ok((reader, process.pid())),
            Err(error) => {
                let _ = process.signal(Signal::KILL);
                router.finish();
                Err(SpawnError::new(error))
            }
        }
    }
}

/// A started child, told what to run.
pub(super) struct Launched {
    pub(super) child: std::process::Child,
    pub(super) process: Process,
    pub(super) channel: Channel,
}

/// Starts this executable again as a child under `limits` and sends it `start` (with
/// `fds`, the child's stdio first, then the data's): what a process worker and a
/// [`ProcessFn`](super::ProcessFn) both begin with.
pub(super) fn launch(
    limits: &crate::process::ResourceLimits,
    start: Start,
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> Result<Launched, SpawnError> {
    if child::init_missing() {
        return Err(io_error(
            "this process is a process worker whose main did not call \
             worker_threads::process::init() first: starting another would start this \
             program again, and again",
        ));
    }
    let mut command = Command::new(std::env::current_exe().map_err(SpawnError::new)?);
    command.args(CHILD_ARGS);
    let rlimits = Limits::none().address_space(limits.max_memory).cpu_seconds(
        limits
            .max_cpu_time
            .map(|t| t.as_secs() + u64::from(t.subsec_nanos() > 0)),
    );
    let spawned =
        worker_threads_process::spawn(&mut command, MARKER, &start.thread_id.to_string(), &rlimits)
            .map_err(SpawnError::new)?;
    let mut child = spawned.child;
    let channel = Channel::new(spawned.channel, MAX_FRAME);
    // The rings go with `Start`, after the caller's descriptors; without them (the
    // descriptor limit, no memfd) every frame takes the socket.
    let rings = Rings::create(RING_CAPACITY).and_then(|rings| Ok((rings.fds()?, rings)));
    let (ring_fds, rings) = match rings {
        Ok((ring_fds, rings)) => (ring_fds, Some(rings)),
        Err(error) => {
            tracing::debug!(%error, "no shared-memory rings for a process: frames take the socket");
            (Vec::new(), None)
        }
    };
    let start = Start {
        rings: rings.is_some(),
        ..start
    };
    let all_fds: Vec<_> = fds
        .iter()
        .copied()
        .chain(ring_fds.iter().map(AsFd::as_fd))
        .collect();
    let sent =
        encode(&ToChild::Start(start)).and_then(|body| channel.send(TAG_CONTROL, &body, &all_fds));
    if let Err(error) = sent {
        let _ = spawned.process.signal(Signal::KILL);
        let _ = child.wait();
        return Err(io_error(format!("starting the worker process: {error}")));
    }
    let channel = match rings {
        Some(rings) => channel.with_rings(rings),
        None => channel,
    };
    Ok(Launched {
        child,
        process: spawned.process,
        channel,
    })
}

/// What the reader needs to decide how the worker ended.
struct Watch<'a> {
    terminating: &'a AtomicBool,
    memory_exhausted: &'a AtomicBool,
    limits: crate::process::ResourceLimits,
}

/// The handle's posts that were queued for the child (all of them without `outgoing`,
/// the handle's direct path); `Close` or `Terminate` (then the grace, then the kill) when
/// the handle's port ends.
fn write_to_child<In: Serialize, Out>(
    router: &Arc<Router>,
    bridge: &MessagePort<Out, In>,
    outgoing: Option<&Outgoing>,
    process: &Process,
    terminating: &AtomicBool,
    exited: &mpsc::Receiver<()>,
    grace: Duration,
) {
    let channel = router.channel();
    loop {
        match bridge.recv() {
            Ok(message) => {
                match router.send(TAG_MESSAGE, &message) {
                    Ok(()) => {}
                    Err(IpcError::Closed) => return, // the process has ended
                    Err(error) => {
                        tracing::error!(%error, "a message for a process worker could not be sent: dropped");
                    }
                }
                if let Some(outgoing) = outgoing {
                    outgoing.caught_up(bridge);
                }
            }
            Err(RecvError::Terminated) => {
                terminating.store(true, Ordering::Release);
                if let Some(outgoing) = outgoing {
                    outgoing.seal();
                }
                if let Ok(body) = encode(&ToChild::Terminate) {
                    let _ = channel.send(TAG_CONTROL, &body, &[]);
                }
                if let Err(RecvTimeoutError::Timeout) = exited.recv_timeout(grace) {
                    tracing::debug!(pid = process.pid(), "grace period over: SIGKILL");
                    let _ = process.signal(Signal::KILL);
                }
                return;
            }
            Err(_) => {
                // No post written directly may follow the close on the socket.
                if let Some(outgoing) = outgoing {
                    outgoing.seal();
                }
                if let Ok(body) = encode(&ToChild::Close) {
                    let _ = channel.send(TAG_CONTROL, &body, &[]);
                }
                return;
            }
        }
    }
}

/// Where the child's frames go, on the reader thread or in a receive of the handle.
struct FromWorker<In, Out> {
    router: Arc<Router>,
    bridge: Arc<MessagePort<Out, In>>,
    /// `Online` is reported here; the reader thread reports the outcome.
    shared: Arc<Shared>,
    process: Arc<Process>,
    online: bool,
    report: Option<ExitReport>,
    /// Why the child was killed: it broke the protocol.
    failure: Option<String>,
}

impl<In: Send, Out: DeserializeOwned + Send> FromWorker<In, Out> {
    /// The reader of `channel`, dispatching to a new `FromWorker`.
    fn incoming(
        channel: &Arc<Channel>,
        router: &Arc<Router>,
        bridge: &Arc<MessagePort<Out, In>>,
        shared: &Arc<Shared>,
        process: &Arc<Process>,
    ) -> Arc<Incoming<Self>> {
        Incoming::new(
            Arc::clone(channel),
            FromWorker {
                router: Arc::clone(router),
                bridge: Arc::clone(bridge),
                shared: Arc::clone(shared),
                process: Arc::clone(process),
                online: false,
                report: None,
                failure: None,
            },
        )
    }
}

impl<In: Send, Out: DeserializeOwned + Send> Dispatch for FromWorker<In, Out> {
    fn frame(&mut self, frame: Result<Option<Frame>, IpcError>) -> Flow {
        let failure = match frame {
            Ok(Some(frame)) if frame.tag == TAG_MESSAGE && self.online && self.report.is_none() => {
                match self.router.decode(frame.fds, || decode::<Out>(&frame.body)) {
                    Ok(message) => {
                        // Fails only if the handle terminated the port: dropped, as a
                        // thread's.
                        drop(self.bridge.post_message(message));
                        return Flow::Delivered;
                    }
                    Err(error) => format!("undecodable message: {error}"),
                }
            }
            Ok(Some(frame)) if frame.tag == TAG_PORT => match self.router.deliver(frame) {
                Ok(()) => return Flow::Read,
                Err(error) => format!("bad port frame: {error}"),
            },
            Ok(Some(frame)) if frame.tag == TAG_CONTROL => match decode::<FromChild>(&frame.body) {
                Ok(FromChild::Online) if !self.online => {
                    self.online = true;
                    self.shared.lifecycle.report_online();
                    return Flow::Read;
                }
                Ok(FromChild::Exit(exit)) if self.report.is_none() => {
                    self.report = Some(exit);
                    return Flow::Read;
                }
                Ok(_) => "a control frame out of order".to_string(),
                Err(error) => format!("undecodable control frame: {error}"),
            },
            Ok(Some(frame)) => format!("unexpected frame (tag {})", frame.tag),
            Ok(None) | Err(IpcError::Closed) => return Flow::Ended,
            Err(error) => error.to_string(),
        };
        tracing::warn!(pid = self.process.pid(), message = %failure, "bad frame from a process worker: killing it");
        let _ = self.process.signal(Signal::KILL);
        // Wakes the reader thread, if this was a receive of the handle.
        self.router.channel().shutdown();
        self.failure = Some(failure);
        Flow::Ended
    }
}

/// The child's frames until end of file, then its reaping: the worker's outcome.
fn read_from_child<In: Send, Out: DeserializeOwned + Send>(
    incoming: &Incoming<FromWorker<In, Out>>,
    watch: &Watch<'_>,
    mut child: std::process::Child,
    forwarder: Option<JoinHandle<()>>,
) -> Outcome {
    incoming.run();
    let (failure, report, online) =
        incoming.with(|seen| (seen.failure.take(), seen.report.take(), seen.online));
    let status = child.wait();
    if let Some(forwarder) = forwarder {
        let _ = forwarder.join();
    }
    let (code, signal) = match status {
        Ok(status) => worker_threads_process::exit_of(status),
        Err(error) => {
            tracing::error!(%error, "waitpid failed");
            (None, None)
        }
    };
    decide(
        failure,
        report,
        online,
        code,
        signal.map(Signal::as_raw),
        watch,
    )
}

/// The worker's outcome from everything the reader saw.
fn decide(
    failure: Option<String>,
    report: Option<ExitReport>,
    online: bool,
    code: Option<i32>,
    signal: Option<i32>,
    watch: &Watch<'_>,
) -> Outcome {
    let error = |error| Outcome {
        code: 1,
        error: Some(error),
    };
    if let Some(message) = failure {
        return error(WorkerError::Channel { message });
    }
    if let Some(report) = report {
        return Outcome {
            code: report.code,
            error: report.error.map(|report| match report {
                ErrorReport::Panicked { message, location } => {
                    WorkerError::Panicked { message, location }
                }
                ErrorReport::Failed(message) => {
                    WorkerError::Failed(Arc::from(
                        Box::<dyn std::error::Error + Send + Sync>::from(message),
                    ))
                }
            }),
        };
    }
    if let Some(signal) = signal {
        if watch.terminating.load(Ordering::Acquire) {
            return Outcome {
                code: 1,
                error: None,
            };
        }
        let cpu_capped = watch.limits.max_cpu_time.is_some();
        if signal == Signal::XCPU.as_raw() || (cpu_capped && signal == Signal::KILL.as_raw()) {
            return error(WorkerError::LimitExceeded {
                limit: Limit::CpuTime,
            });
        }
        if watch.memory_exhausted.load(Ordering::Acquire) {
            return error(WorkerError::LimitExceeded {
                limit: Limit::Memory,
            });
        }
        return Outcome {
            code: 128 + signal,
            error: Some(WorkerError::Crashed { signal }),
        };
    }
    if !online {
        return error(WorkerError::EntryNotRun { code });
    }
    // It ended the process itself (`std::process::exit`) after `Online`.
    Outcome {
        code: code.unwrap_or(1),
        error: None,
    }
}

/// Copies the child's stderr to `sink`, raising `seen` at std's allocation-failure line.
pub(crate) fn forward_stderr(mut from: File, mut sink: Box<dyn Write + Send>, seen: &AtomicBool) {
    let mut buf = [0u8; 8192];
    // The tail of the previous read, so that the line is found across two reads.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let _ = sink.write_all(&buf[..n]);
        tail.extend_from_slice(&buf[..n]);
        if tail
            .windows(ALLOCATION_FAILED.len())
            .any(|window| window == ALLOCATION_FAILED)
        {
            seen.store(true, Ordering::Release);
        }
        let keep = tail.len().saturating_sub(ALLOCATION_FAILED.len());
        tail.drain(..keep);
    }
}
