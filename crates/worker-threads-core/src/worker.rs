//! `Worker`: a thread that runs an entry function, talks through its parent port, and
//! reports its lifecycle.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use worker_threads_channel::{
    MessageChannel, MessagePort, PostError, RecvError, RecvTimeoutError, TryPostError, TryRecvError,
};
use worker_threads_wait::Deadline;

use futures_core::Stream;

use crate::context::install_panic_hook;
use crate::context::{Current, WorkerContext, adopt_child, take_children};
use crate::error::{JoinTimeoutError, SpawnError, WorkerError};
use crate::events::{Stage, WorkerEvent};
use crate::isolation::{Isolation, Thread};
use crate::options::WorkerOptions;
use crate::outcome::{IntoExitCode, Outcome};
use crate::shared::Reporter;
use crate::shared::Shared;

/// A worker thread: Node's `new Worker(...)`.
///
/// The main side posts `In` to the worker and receives `Out` from it, through the parent
/// port ([`post_message`](Worker::post_message), [`recv`](Worker::recv) and the rest of a
/// port's receive family, or [`events`](Worker::events) for the lifecycle too).
///
/// # Termination is cooperative
///
/// Rust cannot kill a thread. [`terminate`](Worker::terminate) terminates the parent port
/// and raises the worker thread's [`TerminationSignal`](worker_threads_channel::TerminationSignal), so
/// that any blocking receive in the worker, on any port, fails at once with `Terminated`;
/// it also turns
/// [`is_terminating`](crate::is_terminating) true for code that computes without
/// receiving; the worker then reports exit code 1, as in Node. A worker that neither
/// receives nor polls runs on until its entry returns.
///
/// # Dropping a `Worker`
///
/// Dropping the handle closes the parent port (the worker's receives then report
/// `Closed` after draining what was posted) and detaches the thread: it is not joined and
/// its exit is not observed. [`join`](Worker::join) to wait for it.
///
/// # Errors nobody looked at
///
/// A worker's error is *handled* once its handle returned its outcome ([`join`](Worker::join),
/// or [`events`](Worker::events) / the stream reaching `Error`/`Exit`). An error that was
/// not handled when the handle is dropped is logged once (`tracing::error!`). On a worker's
/// own thread it does more, as an unhandled `'error'` event does in Node: when the
/// spawning worker ends, the first unhandled error of a child that had already ended
/// becomes its own error ([`WorkerError::UnhandledChild`], exit code 1; its own panic,
/// error, `exit` or termination comes first), and the children still running are
/// terminated.
///
/// # Examples
///
/// Node's "bidirectional communication via the default message ports" program:
///
/// ```
/// use worker_threads_core::{Worker, WorkerOptions};
///
/// let worker: Worker<String> = Worker::spawn(WorkerOptions::new(), |ctx| {
///     let port = ctx.parent_port();
///     port.post_message("Hello, World!".to_string()).unwrap();
///     let msg = port.recv().unwrap();
///     println!("We got a message from the main thread: {msg}");
/// })?;
/// let msg = worker.recv()?;
/// worker.post_message(msg).unwrap();
/// assert_eq!(worker.join()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Worker<In, Out = In> {
    port: MessagePort<In, Out>,
    shared: Arc<Shared>,
    /// The worker's thread, or for a process worker the thread that reads its channel
    /// (it reports `Exit` last).
    thread: Option<JoinHandle<()>>,
    thread_id: u64,
    name: Option<Arc<str>>,
    stage: Stage,
    #[cfg(all(feature = "process", target_os = "linux"))]
    process: Option<crate::process::link::ProcessLink>,
}

/// What a spawn path hands [`Worker::assemble`].
pub(crate) struct Parts<In, Out> {
    pub(crate) port: MessagePort<In, Out>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) thread: JoinHandle<()>,
    pub(crate) thread_id: u64,
    pub(crate) name: Option<Arc<str>>,
}

/// The parent port's two ends: `parent` for the handle, `worker` for the entry, each
/// direction bounded by `capacity` if given.
pub(crate) fn parent_port<In: Send + 'static, Out: Send + 'static>(
    capacity: Option<usize>,
) -> MessageChannel<In, Out> {
    match capacity {
        Some(cap) => MessageChannel::asymmetric_bounded(cap),
        None => MessageChannel::asymmetric(),
    }
}

/// The next worker id (Node's `threadId`), for threads and processes alike.
pub(crate) fn next_thread_id() -> u64 {
    static NEXT_THREAD_ID: AtomicU64 = AtomicU64::new(1);
    NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed)
}

impl<In: Send + 'static, Out: Send + 'static> Worker<In, Out> {
    /// Starts a thread running `entry` with the worker's [`WorkerContext`]. The entry may
    /// return `()`, an exit code, or a `Result` (see [`IntoExitCode`]).
    ///
    /// # Type inference
    ///
    /// The entry's body is checked before the result's type is known when the result
    /// goes through `?` or `unwrap()`: `let worker: Worker<X> = Worker::spawn(..)?` does
    /// not tell the entry that its port carries `X`. That is enough for most entries, but
    /// one that calls a method on what it received (a port sent over the parent port, for
    /// instance) needs the types where the call is: write `Worker::<X>::spawn(..)` (or
    /// `Worker::<In, Out>::spawn`).
    ///
    /// ```
    /// use worker_threads_channel::{MessageChannel, MessagePort};
    /// use worker_threads_core::{Worker, WorkerOptions};
    ///
    /// let worker = Worker::<MessagePort<u32>>::spawn(WorkerOptions::new(), |ctx| {
    ///     let port = ctx.parent_port().recv().unwrap(); // a MessagePort<u32>
    ///     port.post_message(7).unwrap();
    /// })?;
    /// let MessageChannel { port1, port2 } = MessageChannel::new();
    /// worker.post_message(port2)?;
    /// assert_eq!(port1.recv(), Ok(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Isolation
    ///
    /// The options decide where the worker runs: a thread (the default), or with
    /// [`WorkerOptions::isolation`]`(`[`Process`](crate::Process)`)` a process of its own
    /// (see the `process` module, feature `process`). The handle is the same either way.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] if the OS refuses a thread (or a process); nothing has started then.
    pub fn spawn<D, F, R, I>(options: WorkerOptions<D, I>, entry: F) -> Result<Self, SpawnError>
    where
        D: Send + Sync + 'static,
        F: FnOnce(WorkerContext<D, In, Out>) -> R + Send + 'static,
        R: IntoExitCode,
        I: Spawn<D, In, Out, F, R>,
    {
        I::spawn(options, entry)
    }
}

/// How a worker of isolation `Self` is started with data `D`, messages `In`/`Out`, entry
/// `F` returning `R`: the bounds each isolation needs. Used by
/// [`Worker::spawn`](crate::Worker::spawn); not implemented outside this crate.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Thread, Worker, WorkerContext, WorkerOptions};
///
/// // `Spawn` is what `Worker::spawn` asks of the isolation; code generic over it passes
/// // the bound on.
/// fn start<I>(options: WorkerOptions<(), I>) -> Worker<u8>
/// where
///     I: worker_threads_core::Spawn<(), u8, u8, fn(WorkerContext<(), u8>), ()>,
/// {
///     fn idle(_ctx: WorkerContext<(), u8>) {}
///     Worker::spawn(options, idle as fn(WorkerContext<(), u8>)).expect("a worker")
/// }
///
/// let worker = start::<Thread>(WorkerOptions::new());
/// assert_eq!(worker.join()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "this entry cannot run as a `{Self}` worker",
    label = "the entry given to `Worker::spawn`",
    note = "a process worker's entry must be a `fn` or a closure that captures nothing (it \
            runs in another process), and its data and both message types must be \
            `Serialize + DeserializeOwned`"
)]
pub trait Spawn<D, In, Out, F, R>: Isolation + Sized {
    /// Starts the worker.
    #[doc(hidden)]
    fn spawn(options: WorkerOptions<D, Self>, entry: F) -> Result<Worker<In, Out>, SpawnError>;
}

impl<D, In, Out, F, R> Spawn<D, In, Out, F, R> for Thread
where
    D: Send + Sync + 'static,
    In: Send + 'static,
    Out: Send + 'static,
    F: FnOnce(WorkerContext<D, In, Out>) -> R + Send + 'static,
    R: IntoExitCode,
{
    fn spawn(options: WorkerOptions<D, Thread>, entry: F) -> Result<Worker<In, Out>, SpawnError> {
        spawn_thread(options, entry)
    }
}

/// A thread worker.
fn spawn_thread<D, In, Out, F, R>(
    options: WorkerOptions<D, Thread>,
    entry: F,
) -> Result<Worker<In, Out>, SpawnError>
where
    D: Send + Sync + 'static,
    In: Send + 'static,
    Out: Send + 'static,
    F: FnOnce(WorkerContext<D, In, Out>) -> R + Send + 'static,
    R: IntoExitCode,
{
    {
        install_panic_hook();
        let MessageChannel { port1, port2 } = parent_port(options.port_capacity);
        let thread_id = next_thread_id();
        let name: Option<Arc<str>> = options.name.map(Arc::from);
        let shared = Arc::new(Shared::default());
        adopt_child(thread_id, &shared);
        let ctx = WorkerContext::new(
            port2,
            options.data,
            thread_id,
            name.clone(),
            Arc::clone(&shared),
        );
        let reporter = Reporter::new(Arc::clone(&shared));
        // A worker without a name runs on an unnamed thread, as `std::thread::spawn`'s
        // (naming it costs the new thread a system call before it starts).
        let mut builder = thread::Builder::new();
        if let Some(name) = &name {
            builder = builder.name(name.to_string());
        }
        if let Some(bytes) = options.stack_size {
            builder = builder.stack_size(bytes);
        }
        let thread = builder
            .spawn(move || run(ctx, reporter, entry))
            .map_err(SpawnError::new)?;
        // The new thread's start is what the caller waits for next (its first message,
        // `Online`), and the scheduler often queues it on this CPU: let it start now
        // rather than after the caller's receive has spun out (a few microseconds per
        // spawn; a syscall's worth when it runs elsewhere).
        thread::yield_now();
        tracing::debug!(thread_id, name = name.as_deref(), "worker spawned");
        Ok(Worker::assemble(Parts {
            port: port1,
            shared,
            thread,
            thread_id,
            name,
        }))
    }
}

impl<In, Out> Worker<In, Out> {
    /// The handle over what a spawn path started.
    pub(crate) fn assemble(parts: Parts<In, Out>) -> Self {
        Self {
            port: parts.port,
            shared: parts.shared,
            thread: Some(parts.thread),
            thread_id: parts.thread_id,
            name: parts.name,
            stage: Stage::Start,
            #[cfg(all(feature = "process", target_os = "linux"))]
            process: None,
        }
    }

    /// Attaches a process worker's link (pid, piped output).
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn with_process(mut self, link: crate::process::link::ProcessLink) -> Self {
        self.process = Some(link);
        self
    }

    /// The process worker's link, if this is one.
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn process_link(&mut self) -> Option<&mut crate::process::link::ProcessLink> {
        self.process.as_mut()
    }

    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) fn process_ref(&self) -> Option<&crate::process::link::ProcessLink> {
        self.process.as_ref()
    }
}

/// The worker's thread: announce, run the entry, close the port, report the outcome.
pub(crate) fn run<D, In, Out, F, R>(ctx: WorkerContext<D, In, Out>, lifecycle: Reporter, entry: F)
where
    D: Send + Sync + 'static,
    In: Send + 'static,
    Out: Send + 'static,
    F: FnOnce(WorkerContext<D, In, Out>) -> R,
    R: IntoExitCode,
{
    let thread_id = ctx.thread_id();
    let _span = tracing::debug_span!("worker", thread_id, name = ctx.name()).entered();
    let port = Arc::clone(ctx.parent_port());
    let shared = Arc::clone(ctx.shared());
    let guard = Current::new(&ctx).install();
    let terminated_here = shared.termination.install();
    lifecycle.online();
    let mut outcome = match panic::catch_unwind(AssertUnwindSafe(move || entry(ctx))) {
        Ok(value) => Outcome::from_return(value),
        Err(payload) => Outcome::from_unwind(payload),
    };
    // The entry's last post has usually just woken a receiver, which on a machine with
    // few cores the scheduler often queues behind this thread (wake-affine): give it the
    // CPU before the exit work below (children, lifecycle, closing the ports). A spawned
    // worker's first message: 64-66 us without, 52-53 with (a bare thread: 33; 2 vCPUs).
    std::thread::yield_now();
    let children = take_children();
    drop(guard);
    if let Some(&code) = shared.exit_code.get() {
        // The first `exit` wins over whatever the entry did after catching its unwind.
        outcome = Outcome { code, error: None };
    } else if terminated_here.saw_termination() {
        // Node's code for a terminated worker, when the termination reached the entry (a
        // receive or post failed with it, or `is_terminating()` said so). A `terminate`
        // that raced an entry which ended by itself leaves the entry's own code.
        outcome.code = 1;
    } else if outcome.error.is_none() {
        // A child's error that nothing looked at ends this worker, as an unhandled
        // `'error'` event ends a Node worker.
        let unhandled = children
            .iter()
            .find_map(|(id, child)| child.unhandled_error().map(|error| (*id, error)));
        if let Some((thread_id, error)) = unhandled {
            outcome = Outcome {
                code: 1,
                error: Some(WorkerError::UnhandledChild {
                    thread_id,
                    error: Box::new(error),
                }),
            };
        }
    }
    // Children still running are terminated with their parent, as in Node.
    for (_, child) in &children {
        if child.ended.get().is_none() {
            child.termination.terminate();
        }
    }
    let _ = shared.ended.set(outcome.error.clone());
    shared.report_if_unhandled(thread_id);
    match &outcome.error {
        Some(error) => tracing::debug!(%error, code = outcome.code, "worker failed"),
        None => tracing::debug!(code = outcome.code, "worker exited"),
    }
    // Close before reporting the exit, so that every message comes before `Exit`.
    port.close();
    drop(port);
    lifecycle.exit(outcome);
}

impl<In, Out> Worker<In, Out> {
    /// Posts `msg` to the worker. Node's `worker.postMessage(msg)`.
    ///
    /// # Errors
    ///
    /// [`PostError::Closed`] with the message once the worker ended or was terminated.
    pub fn post_message(&self, msg: In) -> Result<(), PostError<In>> {
        self.port.post_message(msg)
    }

    /// Posts `msg` if that can be done without waiting (see
    /// [`MessagePort::try_post_message`]).
    ///
    /// # Errors
    ///
    /// [`TryPostError::Full`] or [`TryPostError::Closed`], with the message.
    pub fn try_post_message(&self, msg: In) -> Result<(), TryPostError<In>> {
        self.port.try_post_message(msg)
    }

    /// Receives the next message from the worker, waiting for one.
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once the worker ended and its messages were received,
    /// [`RecvError::Terminated`] once it was terminated.
    pub fn recv(&self) -> Result<Out, RecvError> {
        self.port.recv()
    }

    /// Receives a message from the worker if one is waiting.
    ///
    /// # Errors
    ///
    /// As [`MessagePort::try_recv`].
    pub fn try_recv(&self) -> Result<Out, TryRecvError> {
        self.port.try_recv()
    }

    /// Receives the next message from the worker, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`MessagePort::recv_timeout`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Out, RecvTimeoutError> {
        self.port.recv_timeout(timeout)
    }

    /// Receives the next message from the worker, waiting until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`MessagePort::recv_deadline`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use worker_threads_core::{Worker, WorkerOptions};
    ///
    /// let worker = Worker::<(), u32>::spawn(WorkerOptions::new(), |ctx| {
    ///     let _ = ctx.parent_port().post_message(7);
    /// })?;
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// assert_eq!(worker.recv_deadline(deadline), Ok(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Out, RecvTimeoutError> {
        self.port.recv_deadline(deadline)
    }

    /// Receives the next message from the worker asynchronously, under any executor.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes (in `tokio::select!`, or on
    /// a timeout) loses no message; a message is taken from the queue only in the poll
    /// that returns it, so the next receive gets it.
    pub async fn recv_async(&self) -> Result<Out, RecvError> {
        self.port.recv_async().await
    }

    /// The main side's end of the parent port, for the rest of a port's API (`iter`,
    /// `recv_deadline`, `post_timeout`, `len`...).
    pub fn port(&self) -> &MessagePort<In, Out> {
        &self.port
    }

    /// The worker's lifecycle and messages, in order: `Online`, then each `Message`, then
    /// at most one `Error`, then exactly one `Exit(code)`; then the iterator ends.
    /// Node's `worker.on('online' | 'message' | 'error' | 'exit')`. Messages taken with
    /// [`recv`](Self::recv) are not seen here again.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_core::{Worker, WorkerEvent, WorkerOptions};
    ///
    /// let mut worker: Worker<(), &str> = Worker::spawn(WorkerOptions::new(), |ctx| -> i32 {
    ///     ctx.parent_port().post_message("working").unwrap();
    ///     panic!("out of coffee")
    /// })?;
    /// let events: Vec<String> = worker.events().map(|e| format!("{e:?}")).collect();
    /// assert_eq!(events[0], "Online");
    /// assert_eq!(events[1], r#"Message("working")"#);
    /// assert!(events[2].starts_with("Error(Panicked { message: \"out of coffee\""));
    /// assert_eq!(events[3], "Exit(1)");
    /// assert_eq!(events.len(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&mut self) -> Events<'_, In, Out> {
        Events::new(self)
    }

    /// Asks the worker to stop (cooperatively: see the type's docs). The parent port is
    /// terminated, so receives on both sides fail at once with `Terminated` and posts return
    /// their message; a blocking receive in the worker on any other port or `BroadcastChannel`
    /// fails with `Terminated` too, even with a message waiting (it stays queued: `try_recv`
    /// and `recv_async` do not look). The worker reports exit code 1 (Node's) once the
    /// termination reached its code: a receive or post failed with it, or
    /// [`is_terminating`](crate::is_terminating) said so; an entry that ended by itself without
    /// noticing keeps its own exit code. Calling it again, or on a worker that ended, does
    /// nothing more. A thread cannot be killed: bound the wait for one that never looks with
    /// [`join_timeout`](Self::join_timeout). Node's `worker.terminate()`.
    pub fn terminate(&self) {
        self.shared.termination.terminate();
        self.port.terminate();
        tracing::debug!(thread_id = self.thread_id, "worker terminate requested");
    }

    /// True once [`terminate`](Self::terminate) was called.
    pub fn is_terminating(&self) -> bool {
        self.shared.termination.is_terminated()
    }

    /// Waits for the worker to end and returns its exit code: 0 for an entry that returned
    /// `()` or `Ok`, the code given to [`exit`](crate::exit), 1 after `terminate`.
    ///
    /// # Errors
    ///
    /// The [`WorkerError`] if the entry panicked or returned an error (exit code 1). The
    /// panic never reaches the caller as a panic.
    pub fn join(mut self) -> Result<i32, WorkerError> {
        let outcome = self.wait_outcome().clone();
        if let Some(thread) = self.thread.take() {
            // The entry runs under `catch_unwind`: the thread itself does not panic.
            let _ = thread.join();
        }
        match outcome.error {
            Some(error) => Err(error),
            None => Ok(outcome.code),
        }
    }

    /// [`join`](Self::join) with a bound: the exit code if the worker ends within
    /// `timeout`. The handle stays usable: join again, or terminate. For a worker that may
    /// never look at [`is_terminating`](crate::is_terminating): its thread cannot be
    /// killed, and this is how to stop waiting for it.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] if it is still running then;
    /// [`JoinTimeoutError::Worker`] with the [`WorkerError`] `join` gives.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_core::{JoinTimeoutError, Worker, WorkerOptions};
    ///
    /// let mut worker = Worker::<()>::spawn(WorkerOptions::new(), |ctx| {
    ///     let _ = ctx.parent_port().recv(); // until the port closes or terminates
    /// })?;
    /// assert!(matches!(
    ///     worker.join_timeout(Duration::from_millis(1)),
    ///     Err(JoinTimeoutError::Timeout)
    /// ));
    /// worker.terminate();
    /// assert_eq!(worker.join_timeout(Duration::from_secs(60))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<i32, JoinTimeoutError> {
        self.join_deadline_at(Deadline::after(timeout))
    }

    /// [`join_timeout`](Self::join_timeout) until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`join_timeout`](Self::join_timeout).
    pub fn join_deadline(&mut self, deadline: Instant) -> Result<i32, JoinTimeoutError> {
        self.join_deadline_at(Deadline::At(deadline))
    }

    fn join_deadline_at(&mut self, deadline: Deadline) -> Result<i32, JoinTimeoutError> {
        let outcome = self
            .wait_outcome_until(deadline)
            .ok_or(JoinTimeoutError::Timeout)?
            .clone();
        if let Some(thread) = self.thread.take() {
            // The outcome is the thread's last message: it is about to end.
            let _ = thread.join();
        }
        match outcome.error {
            Some(error) => Err(error.into()),
            None => Ok(outcome.code),
        }
    }

    /// The worker's id, as [`thread_id`](crate::thread_id) says inside it. Node's
    /// `worker.threadId`.
    pub fn thread_id(&self) -> u64 {
        self.thread_id
    }

    /// The worker's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Waits for the outcome.
    pub(crate) fn wait_outcome(&self) -> &Outcome {
        match self.wait_outcome_until(Deadline::Never) {
            Some(outcome) => outcome,
            None => unreachable!("a wait without a deadline ends with the outcome"),
        }
    }

    /// [`wait_outcome`](Self::wait_outcome) until `deadline`; `None` if it passed first.
    fn wait_outcome_until(&self, deadline: Deadline) -> Option<&Outcome> {
        let outcome = self.shared.lifecycle.wait_outcome(deadline)?;
        self.shared.observed.store(true, Ordering::Release);
        Some(outcome)
    }

    /// The poll form of [`wait_outcome`](Self::wait_outcome), for the event stream.
    fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        self.shared.observed.store(true, Ordering::Release);
        self.shared.lifecycle.poll_outcome(cx).map(Outcome::clone)
    }

    pub(crate) fn wait_online(&self) {
        self.shared.lifecycle.wait_online();
    }

    pub(crate) fn stage_mut(&mut self) -> &mut Stage {
        &mut self.stage
    }
}

impl<In, Out> fmt::Debug for Worker<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("thread_id", &self.thread_id)
            .field("name", &self.name)
            .field("terminating", &self.is_terminating())
            .finish_non_exhaustive()
    }
}

/// The iterator of [`Worker::events`]. It blocks for the next event and ends after
/// `Exit`; a second call to `events` continues where the first stopped.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerEvent, WorkerOptions};
///
/// let mut worker = Worker::<(), u32>::spawn(WorkerOptions::new(), |ctx| {
///     for i in 0..3 {
///         ctx.parent_port().post_message(i).unwrap();
///     }
/// })?;
/// let mut sum = 0;
/// for event in worker.events() {
///     match event {
///         WorkerEvent::Message(n) => sum += n,
///         WorkerEvent::Exit(code) => assert_eq!(code, 0),
///         _ => {}
///     }
/// }
/// assert_eq!(sum, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Events<'a, In, Out> {
    worker: &'a mut Worker<In, Out>,
}

impl<'a, In, Out> Events<'a, In, Out> {
    pub(crate) fn new(worker: &'a mut Worker<In, Out>) -> Self {
        Self { worker }
    }
}

impl<In, Out> Iterator for Events<'_, In, Out> {
    type Item = WorkerEvent<Out>;

    fn next(&mut self) -> Option<WorkerEvent<Out>> {
        loop {
            match *self.worker.stage_mut() {
                Stage::Start => {
                    self.worker.wait_online();
                    *self.worker.stage_mut() = Stage::Messages;
                    return Some(WorkerEvent::Online);
                }
                Stage::Messages => match self.worker.recv() {
                    Ok(msg) => return Some(WorkerEvent::Message(msg)),
                    Err(_) => *self.worker.stage_mut() = Stage::Ending,
                },
                Stage::Ending => {
                    *self.worker.stage_mut() = Stage::Exit;
                    if let Some(error) = &self.worker.wait_outcome().error {
                        return Some(WorkerEvent::Error(error.clone()));
                    }
                }
                Stage::Exit => {
                    *self.worker.stage_mut() = Stage::Done;
                    return Some(WorkerEvent::Exit(self.worker.wait_outcome().code));
                }
                Stage::Done => return None,
            }
        }
    }
}

impl<In, Out> fmt::Debug for Events<'_, In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

/// The worker's events as a stream: the same events, in the same order, as
/// [`Worker::events`] (`Online`, every `Message`, at most one `Error`, then `Exit`; then
/// the stream ends), without blocking the executor; it continues where `events` stopped
/// and the other way round. Dropping a pending `next()` loses no event.
///
/// # Examples
///
/// ```
/// use tokio_stream::StreamExt;
/// use worker_threads_core::{Worker, WorkerEvent, WorkerOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = Worker::<u32>::spawn(WorkerOptions::new(), |ctx| {
///     ctx.parent_port().post_message(7).unwrap();
/// })?;
/// let events: Vec<String> = worker.map(|event| format!("{event:?}")).collect().await;
/// assert_eq!(events, ["Online", "Message(7)", "Exit(0)"]);
/// # Ok(())
/// # }
/// ```
impl<In, Out> Stream for Worker<In, Out> {
    type Item = WorkerEvent<Out>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WorkerEvent<Out>>> {
        let worker = self.get_mut();
        loop {
            match worker.stage {
                Stage::Start => {
                    if worker.shared.lifecycle.poll_online(cx).is_pending() {
                        return Poll::Pending;
                    }
                    worker.stage = Stage::Messages;
                    return Poll::Ready(Some(WorkerEvent::Online));
                }
                Stage::Messages => match worker.port.poll_recv(cx) {
                    Poll::Ready(Ok(msg)) => return Poll::Ready(Some(WorkerEvent::Message(msg))),
                    Poll::Ready(Err(_)) => worker.stage = Stage::Ending,
                    Poll::Pending => return Poll::Pending,
                },
                Stage::Ending => {
                    let Poll::Ready(outcome) = worker.poll_outcome(cx) else {
                        return Poll::Pending;
                    };
                    worker.stage = Stage::Exit;
                    if let Some(error) = outcome.error {
                        return Poll::Ready(Some(WorkerEvent::Error(error)));
                    }
                }
                Stage::Exit => {
                    let Poll::Ready(outcome) = worker.poll_outcome(cx) else {
                        return Poll::Pending;
                    };
                    worker.stage = Stage::Done;
                    return Poll::Ready(Some(WorkerEvent::Exit(outcome.code)));
                }
                Stage::Done => return Poll::Ready(None),
            }
        }
    }
}

impl<In, Out> Drop for Worker<In, Out> {
    fn drop(&mut self) {
        // Nothing can look at the outcome any more: an error it already has, or gets, is
        // logged once (and, on a worker's thread, becomes that worker's error when it ends).
        self.shared.handle_gone.store(true, Ordering::Release);
        self.shared.report_if_unhandled(self.thread_id);
    }
}

// Nothing in a `Worker` is pinned (ports, an `Arc`, a join handle); the message types
// appear only as `PhantomData` inside the port handles.
impl<In, Out> Unpin for Worker<In, Out> {}

#[cfg(test)]
mod tests {
    use super::Worker;
    use crate::context::kept_children;
    use crate::options::WorkerOptions;

    #[test]
    fn a_worker_keeps_only_the_children_that_still_matter() {
        // 200 children spawned and joined one after another, then one still running: the
        // parent keeps only the running one (each ended child is dropped at the next
        // spawn), not 201.
        let parent = Worker::<usize>::spawn(WorkerOptions::new(), |ctx| {
            for _ in 0..200 {
                Worker::<()>::spawn(WorkerOptions::new(), |_| {})
                    .unwrap()
                    .join()
                    .unwrap();
            }
            let running = Worker::<()>::spawn(WorkerOptions::new(), |ctx| {
                let _ = ctx.parent_port().recv();
            })
            .unwrap();
            ctx.parent_port().post_message(kept_children()).unwrap();
            drop(running);
        })
        .unwrap();
        assert_eq!(parent.recv(), Ok(1));
        assert_eq!(parent.join().unwrap(), 0);
    }
}
