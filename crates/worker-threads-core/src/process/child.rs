//! The child's side: `init` finds the entry the parent named and runs it as a worker.
//!
//! The parent names the entry by the address of a trampoline (`child_main::<D, In, Out,
//! F, R>`, monomorphised in the parent for the user's entry type) relative to `init`. The
//! child is the same executable (checked: device, inode, size, modification time), so
//! the distance between two functions is the same in both, whatever address the image
//! was loaded at. The trampoline rebuilds the entry (a zero-sized, `Copy` value: nothing
//! crosses but its type), decodes the data, and runs it with the thread worker's own
//! `run`, bridged to the channel by two threads of this process, for what the entry's own
//! posts and receives do not send and read themselves (`direct`):
//!
//! - the reader: parent frames -> the local port (`Message`), `Close`, `Terminate`, and
//!   port frames -> the router (ports that crossed: relayed by a third thread, once one
//!   did);
//! - this (the process's main) thread: `Online`, then every message the entry posts that
//!   it queued (all of them until `Online` went), then (once the crossed ports were closed
//!   and their relay sent what they held) `Exit` with the outcome, in that order, then
//!   `std::process::exit(code)`.

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use serde::Serialize;
use serde::de::DeserializeOwned;
use worker_threads_channel::{MessageChannel, MessagePort};
use worker_threads_process::codec::{decode, encode};
use worker_threads_process::ports::{Router, Side};
use worker_threads_process::rings::Rings;
use worker_threads_process::{Channel, Frame, IpcError, Marker, fds};
use worker_threads_wait::Deadline;

use crate::context::WorkerContext;
use crate::context::install_panic_hook;
use crate::error::WorkerError;
use crate::lifecycle::Lifecycle;
use crate::outcome::{IntoExitCode, Outcome};
use crate::process::direct::{self, Dispatch, Flow, Incoming, Outgoing};
use crate::process::wire::{
    ANSWER_WATCH, Answer, ErrorReport, ExeId, ExitReport, FromChild, MARKER, MAX_FRAME, Start,
    TAG_CONTROL, TAG_MESSAGE, TAG_PORT, ToChild,
};
use crate::shared::Reporter;
use crate::shared::Shared;
use crate::worker::{parent_port, run};

/// Set once `init` took this process's marker.
static STARTED: AtomicBool = AtomicBool::new(false);

/// What a trampoline is called with.
pub(crate) struct ChildStart {
    channel: Channel,
    start: Start,
    /// The descriptors the data's values (shared buffers) take when decoded.
    data_fds: Vec<OwnedFd>,
}

/// The entry's trampoline: it never returns (it ends the process).
pub(crate) type Trampoline = fn(ChildStart);

/// Runs this process as a process worker if it was started as one, and never returns
/// then; returns at once otherwise. Call it first thing in `main` of every program that
/// spawns process workers (procspawn's `init`): a process worker is the same executable
/// started again, and this is where it takes the worker's path. In a test binary, where
/// `main` is the test harness's, [`process::test_support!`](crate::process::test_support)
/// calls it.
///
/// ```no_run
/// # #[allow(clippy::needless_doctest_main)]
/// fn main() {
///     worker_threads_core::process::init();
///     // ... the program, which may spawn process workers
/// }
/// ```
pub fn init() {
    let Some(marker) = Marker::from_env(MARKER) else {
        return;
    };
    if STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    let Err(error) = serve(&marker);
    tracing::error!(%error, "process worker cannot start");
    eprintln!("worker_threads: process worker cannot start: {error}");
    std::process::exit(70);
}

/// True in a process worker whose `main` has not called [`init`]: spawning a process
/// worker from there would start this program again, and again.
pub(crate) fn init_missing() -> bool {
    !STARTED.load(Ordering::Acquire) && Marker::from_env(MARKER).is_some()
}

fn anchor() -> usize {
    init as fn() as usize
}

/// Where a trampoline is, relative to `init`.
pub(crate) fn offset_of(trampoline: Trampoline) -> u64 {
    (trampoline as usize).wrapping_sub(anchor()) as u64
}

/// Adopts the channel, reads `Start`, checks the executable, sets up stdio, and calls the
/// trampoline (which does not return).
fn serve(marker: &Marker) -> Result<Infallible, String> {
    let fd = marker.adopt().map_err(|e| e.to_string())?;
    let channel = Channel::new(fd, MAX_FRAME);
    let frame = channel
        .recv(&mut Vec::new())
        .map_err(|e| e.to_string())?
        .ok_or("the parent went away before starting the worker")?;
    if frame.tag != TAG_CONTROL {
        return Err("the first frame is not a start".into());
    }
    let ToChild::Start(start) = decode::<ToChild>(&frame.body).map_err(|e| e.to_string())? else {
        return Err("the first frame is not a start".into());
    };
    let here = ExeId::current().map_err(|e| e.to_string())?;
    if here != start.exe {
        return Err("this executable is not the parent's (it was replaced on disk?)".into());
    }
    let mut fds = frame.fds;
    let channel = if start.rings {
        let Some(first) = fds.len().checked_sub(worker_threads_process::rings::FDS) else {
            return Err("the start frame came without its rings' descriptors".into());
        };
        let rings = Rings::adopt(fds.split_off(first)).map_err(|e| e.to_string())?;
        channel.with_rings(rings)
    } else {
        channel
    };
    let mut fds = fds.into_iter();
    if start.stdout {
        redirect(fds.next(), |fd| rustix::stdio::dup2_stdout(fd))?;
    }
    if start.stderr {
        redirect(fds.next(), |fd| rustix::stdio::dup2_stderr(fd))?;
    }
    // The rest belong to the data (shared buffers' memory).
    let data_fds: Vec<OwnedFd> = fds.collect();
    let target = anchor().wrapping_add(start.entry as usize);
    // SAFETY: `target` is the address of a `Trampoline` in the parent's image plus the
    // distance between images: the parent computed `start.entry` as the distance from
    // `init` to `child_main::<..>` (a `fn(ChildStart)`), in the same executable file as
    // this one (`ExeId` checked above), and an image is relocated as a whole, so the
    // distance holds here. A `usize` and a function pointer have the same size.
    let trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(target) };
    trampoline(ChildStart {
        channel,
        start,
        data_fds,
    });
    Err("the worker's entry returned to init".into())
}

fn redirect(
    fd: Option<OwnedFd>,
    dup2: fn(&OwnedFd) -> rustix::io::Result<()>,
) -> Result<(), String> {
    let fd = fd.ok_or("a piped stream without its descriptor")?;
    dup2(&fd).map_err(|e| e.to_string())
}

/// The parent's value of `F` (a process worker's entry, a process function), made here
/// from its type alone. A capturing closure or a `fn` pointer carries data that cannot
/// cross: the build fails.
fn conjure<F: Copy>() -> F {
    const {
        assert!(
            size_of::<F>() == 0,
            "a process worker's entry or a process function must capture nothing: it runs in \
             another process"
        );
    }
    // SAFETY: `F` is zero-sized (asserted above, at compile time) and `Copy`: a value of
    // it carries no bytes and has no drop, so every value is the one the parent had (the
    // parent holding one proves the type inhabited). Zeroing zero bytes makes that value.
    unsafe { std::mem::zeroed() }
}

/// The trampoline for one entry type: runs the entry as a worker and ends the process.
pub(crate) fn child_main<D, In, Out, F, R>(child: ChildStart)
where
    D: DeserializeOwned + Send + Sync + 'static,
    In: DeserializeOwned + Send + 'static,
    Out: Serialize + Send + 'static,
    F: FnOnce(WorkerContext<D, In, Out>) -> R + Copy + Send + 'static,
    R: IntoExitCode,
{
    let entry: F = conjure();
    let ChildStart {
        channel,
        start,
        data_fds,
    } = child;
    let router = Router::new(Arc::new(channel), TAG_PORT, Side::Child);
    install_panic_hook();
    let data: D = match router.decode(data_fds, || decode(&start.data)) {
        Ok(data) => data,
        Err(error) => finish(&router, failed(format!("worker data: {error}"))),
    };
    let MessageChannel { port1, mut port2 } =
        parent_port::<In, Out>(start.port_capacity.map(|cap| cap as usize));
    let shared = Arc::new(Shared::default());
    let reporter = Reporter::new(Arc::clone(&shared));
    let port = Arc::new(port1);
    let incoming = Incoming::new(
        Arc::clone(router.channel()),
        FromParent {
            router: Arc::clone(&router),
            port: Arc::clone(&port),
            shared: Arc::clone(&shared),
        },
    );
    // The entry's posts and receives use the socket themselves (`direct`); its posts
    // queue until `Online` went.
    let outgoing = direct::attach(&mut port2, &incoming, true);
    let name: Option<Arc<str>> = start.name.map(Arc::from);
    let ctx = WorkerContext::new(
        port2,
        data,
        start.thread_id,
        name.clone(),
        Arc::clone(&shared),
    );
    {
        let reader = thread::Builder::new()
            .name("worker-process-ipc".into())
            .spawn(move || incoming.run());
        if let Err(error) = reader {
            finish(
                &router,
                failed(format!("cannot start the IPC thread: {error}")),
            );
        }
    }
    let mut builder = thread::Builder::new();
    if let Some(name) = &name {
        builder = builder.name(name.to_string());
    }
    if let Some(bytes) = start.stack_size {
        builder = builder.stack_size(bytes as usize);
    }
    if let Err(error) = builder.spawn(move || run(ctx, reporter, entry)) {
        finish(
            &router,
            failed(format!("cannot start the worker thread: {error}")),
        );
    }
    forward(&router, &port, outgoing.as_deref(), &shared.lifecycle)
}

/// The trampoline of a [`ProcessFn`](crate::process::ProcessFn): answers each call on
/// this (the process's main) thread, until the parent closes the channel.
pub(crate) fn function_main<Req, Rep, F>(child: ChildStart)
where
    Req: DeserializeOwned,
    Rep: Serialize,
    F: Fn(Req) -> Rep + Copy,
{
    let function: F = conjure();
    let channel = child.channel;
    let mut buf = Vec::new();
    loop {
        channel.spin_until_readable(ANSWER_WATCH);
        let frame = match channel.recv(&mut buf) {
            Ok(Some(frame)) if frame.tag == TAG_MESSAGE => frame,
            Ok(None) | Err(IpcError::Closed) => std::process::exit(0),
            Ok(Some(_)) | Err(_) => {
                tracing::error!("bad frame from the parent; exiting");
                std::process::exit(70);
            }
        };
        let request = match fds::provide(frame.fds, || decode::<Req>(&frame.body)) {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(%error, "undecodable request from the parent; exiting");
                std::process::exit(70);
            }
        };
        let answer =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| function(request))) {
                Ok(value) => Answer::Value(value),
                Err(payload) => Answer::Panicked(worker_threads_wait::panic_message(&*payload)),
            };
        let (body, fds) = fds::collect(|| encode(&answer));
        let body = body.or_else(|error| encode(&Answer::<Rep>::Unencodable(error.to_string())));
        let borrowed: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
        let sent = body.and_then(|body| channel.send(TAG_MESSAGE, &body, &borrowed));
        if sent.is_err() {
            std::process::exit(1); // the parent has gone
        }
    }
}

fn failed(message: String) -> Outcome {
    Outcome {
        code: 1,
        error: Some(WorkerError::Failed(Arc::from(Box::<
            dyn std::error::Error + Send + Sync,
        >::from(message)))),
    }
}

/// Where the parent's frames go, on the reader thread or in a receive of the entry: until
/// the parent goes (then this process ends: nobody can read its messages or its exit).
struct FromParent<In, Out> {
    router: Arc<Router>,
    port: Arc<MessagePort<In, Out>>,
    shared: Arc<Shared>,
}

impl<In: DeserializeOwned + Send, Out: Send> Dispatch for FromParent<In, Out> {
    fn frame(&mut self, frame: Result<Option<Frame>, IpcError>) -> Flow {
        match frame {
            Ok(Some(frame)) if frame.tag == TAG_MESSAGE => {
                match self.router.decode(frame.fds, || decode::<In>(&frame.body)) {
                    Ok(message) => {
                        // Fails only once the worker closed or was terminated: as a thread's.
                        let _ = self.port.post_message(message);
                        Flow::Delivered
                    }
                    Err(error) => {
                        tracing::error!(%error, "undecodable message from the parent; exiting");
                        std::process::exit(70);
                    }
                }
            }
            Ok(Some(frame)) if frame.tag == TAG_PORT => {
                if let Err(error) = self.router.deliver(frame) {
                    tracing::error!(%error, "bad port frame from the parent; exiting");
                    std::process::exit(70);
                }
                Flow::Read
            }
            Ok(Some(frame)) if frame.tag == TAG_CONTROL => match decode::<ToChild>(&frame.body) {
                Ok(ToChild::Close) => {
                    self.port.close();
                    Flow::Read
                }
                Ok(ToChild::Terminate) => {
                    self.shared.termination.terminate();
                    self.port.terminate();
                    Flow::Read
                }
                Ok(ToChild::Start(_)) | Err(_) => {
                    tracing::error!("bad control frame from the parent; exiting");
                    std::process::exit(70);
                }
            },
            Ok(Some(_)) => {
                tracing::error!("unknown frame from the parent; exiting");
                std::process::exit(70);
            }
            Ok(None) | Err(IpcError::Closed) => {
                tracing::debug!("the parent has gone; exiting");
                std::process::exit(1);
            }
            Err(error) => {
                tracing::error!(%error, "broken channel to the parent; exiting");
                std::process::exit(70);
            }
        }
    }
}

/// `Online`, the messages, `Exit`, in order; then the process ends with the code.
fn forward<In, Out>(
    router: &Arc<Router>,
    port: &MessagePort<In, Out>,
    outgoing: Option<&Outgoing>,
    lifecycle: &Lifecycle,
) -> !
where
    Out: Serialize,
{
    let channel = router.channel();
    let caught_up = || {
        if let Some(outgoing) = outgoing {
            outgoing.caught_up(port);
        }
    };
    lifecycle.wait_online();
    if !lifecycle.was_online() {
        // It ended without running the entry: no `Online`, no messages.
        match lifecycle.outcome() {
            Some(outcome) => finish(router, outcome.clone()),
            None => finish(router, Outcome::vanished()),
        }
    }
    // Online, then every message the entry posts, even if it has ended already.
    send_control(channel, &FromChild::Online);
    caught_up();
    // Until the entry ended (its port closes first) or the worker was terminated.
    while let Ok(message) = port.recv() {
        match router.send(TAG_MESSAGE, &message) {
            Ok(()) => {}
            Err(IpcError::Encode(error)) => {
                tracing::error!(%error, "a message the worker posted does not encode: dropped")
            }
            Err(_) => std::process::exit(1), // the parent has gone
        }
        caught_up();
    }
    // No post written directly may follow the port's end (`Exit`) on the socket.
    if let Some(outgoing) = outgoing {
        outgoing.seal();
    }
    match lifecycle.wait_outcome(Deadline::Never) {
        Some(outcome) => finish(router, outcome.clone()),
        None => unreachable!("a wait without a deadline ends with the outcome"),
    }
}

fn send_control(channel: &Channel, control: &FromChild) {
    let sent = encode(control).and_then(|body| channel.send(TAG_CONTROL, &body, &[]));
    if sent.is_err() {
        std::process::exit(1); // the parent has gone
    }
}

/// Closes the ports that crossed (each sends what it holds first), reports the outcome,
/// and ends the process with its code.
fn finish(router: &Router, outcome: Outcome) -> ! {
    router.finish();
    let error = outcome.error.map(|error| match error {
        WorkerError::Panicked { message, location } => ErrorReport::Panicked { message, location },
        WorkerError::Failed(error) => ErrorReport::Failed(error.to_string()),
        other => ErrorReport::Failed(other.to_string()),
    });
    send_control(
        router.channel(),
        &FromChild::Exit(ExitReport {
            code: outcome.code,
            error,
        }),
    );
    std::process::exit(outcome.code)
}
