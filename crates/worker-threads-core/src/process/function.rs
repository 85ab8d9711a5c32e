//! [`ProcessFn`]: a `fn` served by a process of its own, called from the caller's thread.
//!
//! No thread of ours on either side: `call` sends the request on the channel and blocks
//! in the receive of the reply; the child's main thread receives, runs the function
//! under `catch_unwind`, and sends the reply. Each side watches the socket briefly
//! before it sleeps (`wire::ANSWER_WATCH`), so a quick call costs no scheduler wake-up at all,
//! where a process worker's message crosses two bridge threads on each side.

use std::fs::File;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use worker_threads_process::codec::{decode, encode};
use worker_threads_process::{Channel, IpcError, Process, Signal, fds};

use crate::error::{Limit, SpawnError};
use crate::process::ResourceLimits;
use crate::process::child::{self, Trampoline, function_main};
use crate::process::parent::{Launched, forward_stderr, launch, pipe};
use crate::process::wire::{ANSWER_WATCH, Answer, ExeId, Start, TAG_MESSAGE};
use crate::worker::next_thread_id;

/// How a [`ProcessFn`]'s process ended: its exit code, or the signal that ended it.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_core::process::{CallError, ProcessFn};
///
/// fn crash((): ()) {
///     std::process::abort();
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     worker_threads_core::process::init();
///     let mut function = ProcessFn::<(), ()>::spawn(crash)?;
///     match function.call(&()) {
///         Err(CallError::Ended(ended)) => assert_eq!(ended.signal, Some(6)), // SIGABRT
///         other => panic!("expected a crash, got {other:?}"),
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ended {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did (`SIGKILL` is 9, `SIGABRT` 6).
    pub signal: Option<i32>,
}

/// Why a [`ProcessFn::call`] gave no value.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use worker_threads_core::process::{CallError, ProcessFn};
///
/// fn slow(ms: u64) -> u64 {
///     std::thread::sleep(Duration::from_millis(ms));
///     ms
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     worker_threads_core::process::init();
///     let mut function = ProcessFn::<u64, u64>::spawn(slow)?;
///     assert_eq!(function.call(&1)?, 1);
///     match function.call_timeout(&60_000, Duration::from_millis(10)) {
///         Err(CallError::TimedOut(_)) => {} // killed: later calls give `Ended`
///         other => panic!("expected a timeout, got {other:?}"),
///     }
///     Ok(())
/// }
/// ```
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The function panicked; the process serves on.
    #[error("the function panicked: {0}")]
    Panicked(String),
    /// The process has ended (a crash, a kill, or an earlier protocol error); every later
    /// call gives this too.
    #[error("the function's process ended (code {:?}, signal {:?})", .0.code, .0.signal)]
    Ended(Ended),
    /// No reply within a [`call_timeout`](ProcessFn::call_timeout) or before a
    /// [`call_deadline`](ProcessFn::call_deadline): the process was killed (as a process
    /// pool kills one past a task's deadline), and every later call gives
    /// [`Ended`](Self::Ended).
    #[error("no reply in time: the function's process was killed (code {:?}, signal {:?})", .0.code, .0.signal)]
    TimedOut(Ended),
    /// The process crossed a cap of its [`ResourceLimits`]
    /// ([`spawn_limited`](ProcessFn::spawn_limited)) during this call and was ended by
    /// it; every later call gives [`Ended`](Self::Ended).
    #[error("the function's process crossed its {limit} limit")]
    LimitExceeded {
        /// Which cap.
        limit: Limit,
        /// How the process ended.
        ended: Ended,
    },
    /// The request did not encode: it was not sent, and the process serves on.
    #[error("the request does not encode: {0}")]
    Encode(String),
    /// The reply did not encode in the child, or did not decode here: the call's value is
    /// lost, the process serves on.
    #[error("the reply does not cross: {0}")]
    Reply(String),
}

/// Kills a [`ProcessFn`]'s process from any thread (its running call then gives
/// [`CallError::Ended`]): what stops a call that does not return.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_core::process::{CallError, ProcessFn};
///
/// fn forever((): ()) {
///     loop {
///         std::thread::park();
///     }
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     worker_threads_core::process::init();
///     let mut function = ProcessFn::<(), ()>::spawn(forever)?;
///     let killer = function.killer();
///     std::thread::spawn(move || killer.kill());
///     assert!(matches!(function.call(&()), Err(CallError::Ended(_))));
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Killer {
    process: Arc<Process>,
    /// Raised before the kill, so that a `SIGKILL` of ours is not taken for the CPU cap's.
    killed: Arc<AtomicBool>,
}

impl Killer {
    /// Sends `SIGKILL` (nothing happens if the process has ended).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let _ = self.process.signal(Signal::KILL);
    }
}

/// A function served by a process of its own (Linux, feature `process`): procspawn's
/// one-shot `spawn`, kept alive for many calls. Each [`call`](Self::call) sends the
/// request and waits on the calling thread for the reply: no thread of ours on either
/// side, so a call costs one socket round trip. A panic in the function is that call's
/// [`CallError::Panicked`]; a crash (abort, segfault, a [`Killer`]) ends the process,
/// and that call and every later one give [`CallError::Ended`].
///
/// The function is a `fn` item or a closure that captures nothing (checked at compile
/// time), request and reply are `Serialize + DeserializeOwned`, and `main` calls
/// [`init`](crate::process::init) first, as for process workers.
///
/// ```no_run
/// use worker_threads_core::process::{CallError, ProcessFn};
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     worker_threads_core::process::init();
///     let mut square = ProcessFn::spawn(|n: u64| n * n)?;
///     assert_eq!(square.call(&12)?, 144);
///     let mut abort = ProcessFn::<(), ()>::spawn(|()| std::process::abort())?;
///     assert!(matches!(abort.call(&()), Err(CallError::Ended(ended)) if ended.signal == Some(6)));
///     Ok(())
/// }
/// ```
///
/// Dropping it kills the process (it may be stuck in a call that never returned);
/// [`close`](Self::close) lets it end by itself.
pub struct ProcessFn<Req, Rep> {
    channel: Channel,
    killer: Killer,
    child: Option<std::process::Child>,
    ended: Option<Ended>,
    /// The caps it runs under, to tell a cap's end from a crash.
    limits: ResourceLimits,
    /// Under a memory cap, the thread that passes the child's stderr through (joined when
    /// the process is reaped: the stderr ends with it).
    stderr: Option<JoinHandle<()>>,
    /// Raised by that thread at std's allocation-failure line: how the cap's `SIGABRT` is
    /// told from another.
    out_of_memory: Arc<AtomicBool>,
    buf: Vec<u8>,
    _types: PhantomData<fn(Req) -> Rep>,
}

impl<Req, Rep> ProcessFn<Req, Rep>
where
    Req: Serialize + DeserializeOwned + 'static,
    Rep: Serialize + DeserializeOwned + 'static,
{
    /// Starts a process serving `function`.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] if the process cannot start, or if this process is a process
    /// worker whose `main` did not call [`init`](crate::process::init).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use worker_threads_core::process::ProcessFn;
    ///
    /// fn double(n: u64) -> u64 {
    ///     n * 2
    /// }
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     worker_threads_core::process::init(); // first in main: the process starts here
    ///     let mut function = ProcessFn::<u64, u64>::spawn(double)?;
    ///     assert_eq!(function.call(&21)?, 42);
    ///     let ended = function.close();
    ///     assert_eq!(ended.code, Some(0));
    ///     Ok(())
    /// }
    /// ```
    pub fn spawn<F>(function: F) -> Result<Self, SpawnError>
    where
        F: Fn(Req) -> Rep + Copy + Send + 'static,
    {
        Self::spawn_limited(function, &ResourceLimits::new())
    }

    /// [`spawn`](Self::spawn), with the process under `limits` (rlimits: see
    /// [`ResourceLimits`]). A call during which the process crosses a cap gives
    /// [`CallError::LimitExceeded`]. Under a memory cap the child's stderr passes through
    /// a thread of this process, which watches for std's allocation-failure line.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use worker_threads_core::Limit;
    /// use worker_threads_core::process::{CallError, ProcessFn, ResourceLimits};
    ///
    /// fn allocate(bytes: usize) -> usize {
    ///     std::hint::black_box(vec![1u8; bytes]).len()
    /// }
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     worker_threads_core::process::init();
    ///     let limits = ResourceLimits::new().max_memory(256 << 20);
    ///     let mut function = ProcessFn::<usize, usize>::spawn_limited(allocate, &limits)?;
    ///     assert_eq!(function.call(&1024)?, 1024);
    ///     match function.call(&(1 << 30)) {
    ///         Err(CallError::LimitExceeded { limit: Limit::Memory, .. }) => {}
    ///         other => panic!("expected the memory cap, got {other:?}"),
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn spawn_limited<F>(_function: F, limits: &ResourceLimits) -> Result<Self, SpawnError>
    where
        F: Fn(Req) -> Rep + Copy + Send + 'static,
    {
        let stderr_pipe = match limits.max_memory {
            Some(_) => Some(pipe()?),
            None => None,
        };
        let start = Start {
            entry: child::offset_of(function_main::<Req, Rep, F> as Trampoline),
            exe: ExeId::current().map_err(SpawnError::new)?,
            thread_id: next_thread_id(),
            name: None,
            data: Vec::new(),
            stack_size: None,
            port_capacity: None,
            stdout: false,
            stderr: stderr_pipe.is_some(),
            rings: false, // `launch` decides
        };
        let (stderr_read, stderr_write) = stderr_pipe.unzip();
        let fds: Vec<_> = stderr_write.iter().map(AsFd::as_fd).collect();
        let launched = launch(limits, start, &fds);
        drop(fds);
        drop(stderr_write);
        let Launched {
            child,
            process,
            channel,
        } = launched?;
        let out_of_memory = Arc::new(AtomicBool::new(false));
        let stderr = stderr_read.and_then(|read| {
            let seen = Arc::clone(&out_of_memory);
            std::thread::Builder::new()
                .name(format!("process-fn-{}-stderr", process.pid()))
                .spawn(move || forward_stderr(File::from(read), Box::new(std::io::stderr()), &seen))
                .ok()
        });
        tracing::debug!(pid = process.pid(), "process function spawned");
        Ok(Self {
            channel,
            killer: Killer {
                process: Arc::new(process),
                killed: Arc::new(AtomicBool::new(false)),
            },
            child: Some(child),
            ended: None,
            limits: *limits,
            stderr,
            out_of_memory,
            buf: Vec::new(),
            _types: PhantomData,
        })
    }
}

impl<Req: Serialize, Rep: DeserializeOwned> ProcessFn<Req, Rep> {
    /// Calls the function with `request` in its process and waits for the reply.
    ///
    /// # Errors
    ///
    /// [`CallError::Panicked`] (the process serves on), [`CallError::Ended`] (it has
    /// ended: now or before), [`CallError::Encode`] / [`CallError::Reply`] (the value
    /// did not cross; the process serves on).
    pub fn call(&mut self, request: &Req) -> Result<Rep, CallError> {
        self.call_until(request, None)
    }

    /// [`call`](Self::call), waiting at most `timeout` for the reply; past it the process
    /// is killed (a function stuck in a call cannot be stopped any other way) and the call
    /// gives [`CallError::TimedOut`]. procspawn's `join_timeout`.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call), and [`CallError::TimedOut`].
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use worker_threads_core::process::{CallError, ProcessFn};
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     worker_threads_core::process::init();
    ///     let mut stuck = ProcessFn::<(), ()>::spawn(|()| loop {
    ///         std::thread::park();
    ///     })?;
    ///     let timed_out = stuck.call_timeout(&(), Duration::from_millis(50));
    ///     assert!(matches!(timed_out, Err(CallError::TimedOut(ended)) if ended.signal == Some(9)));
    ///     assert!(matches!(stuck.call(&()), Err(CallError::Ended(_))));
    ///     Ok(())
    /// }
    /// ```
    pub fn call_timeout(&mut self, request: &Req, timeout: Duration) -> Result<Rep, CallError> {
        self.call_until(request, Instant::now().checked_add(timeout))
    }

    /// [`call_timeout`](Self::call_timeout) with a deadline.
    ///
    /// # Errors
    ///
    /// As [`call_timeout`](Self::call_timeout).
    pub fn call_deadline(&mut self, request: &Req, deadline: Instant) -> Result<Rep, CallError> {
        self.call_until(request, Some(deadline))
    }

    /// A call whose reply is awaited until `deadline` (`None`: without one).
    fn call_until(&mut self, request: &Req, deadline: Option<Instant>) -> Result<Rep, CallError> {
        if let Some(ended) = self.ended {
            return Err(CallError::Ended(ended));
        }
        let (body, fds) = fds::collect(|| encode(request));
        let body = body.map_err(|error| CallError::Encode(error.to_string()))?;
        let borrowed: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
        match self.channel.send(TAG_MESSAGE, &body, &borrowed) {
            Ok(()) => {}
            Err(IpcError::Closed) => return Err(self.ended_under_call()),
            Err(error) => return Err(self.broken(&error)),
        }
        drop(borrowed);
        drop(fds);
        let watch = deadline.map_or(ANSWER_WATCH, |deadline| {
            ANSWER_WATCH.min(deadline.saturating_duration_since(Instant::now()))
        });
        let readable = self.channel.spin_until_readable(watch);
        if let (Some(deadline), false) = (deadline, readable) {
            match self.channel.wait_readable_until(deadline) {
                Ok(true) => {}
                Ok(false) => return Err(self.timed_out()),
                Err(error) => return Err(self.broken(&error)),
            }
        }
        let frame = match self.channel.recv(&mut self.buf) {
            Ok(Some(frame)) if frame.tag == TAG_MESSAGE => frame,
            Ok(None) | Err(IpcError::Closed) => return Err(self.ended_under_call()),
            Ok(Some(_)) => return Err(self.broken(&"a frame that is not a reply")),
            Err(error) => return Err(self.broken(&error)),
        };
        match fds::provide(frame.fds, || decode::<Answer<Rep>>(&frame.body)) {
            Ok(Answer::Value(value)) => Ok(value),
            Ok(Answer::Panicked(message)) => Err(CallError::Panicked(message)),
            Ok(Answer::Unencodable(message)) => Err(CallError::Reply(message)),
            Err(error) => Err(CallError::Reply(error.to_string())),
        }
    }
}

impl<Req, Rep> ProcessFn<Req, Rep> {
    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.killer.process.pid()
    }

    /// What kills the process from another thread.
    pub fn killer(&self) -> Killer {
        self.killer.clone()
    }

    /// Ends the process by closing its channel (it exits 0 once the call it runs, if
    /// any, returns), and waits for it.
    pub fn close(mut self) -> Ended {
        self.channel.shutdown();
        self.reap()
    }

    /// No reply by the deadline: the process is killed, and reaped.
    #[cold]
    fn timed_out(&mut self) -> CallError {
        tracing::debug!(pid = self.pid(), "process function call timed out: killed");
        self.killer.kill();
        CallError::TimedOut(self.reap())
    }

    /// The process ended under a call: by a cap of its limits (`LimitExceeded`), or
    /// otherwise (`Ended`).
    fn ended_under_call(&mut self) -> CallError {
        let ended = self.reap();
        match self.limit_crossed(ended) {
            Some(limit) => CallError::LimitExceeded { limit, ended },
            None => CallError::Ended(ended),
        }
    }

    /// Which cap ended the process, if one did: `SIGXCPU`, or a `SIGKILL` under a CPU cap
    /// that no kill of ours sent (the kernel's, a second after `SIGXCPU`); a `SIGABRT`
    /// after std's allocation-failure line under a memory cap.
    fn limit_crossed(&self, ended: Ended) -> Option<Limit> {
        let signal = ended.signal?;
        let ours = self.killer.killed.load(Ordering::SeqCst);
        if signal == Signal::XCPU.as_raw()
            || (signal == Signal::KILL.as_raw() && self.limits.max_cpu_time.is_some() && !ours)
        {
            return Some(Limit::CpuTime);
        }
        let out_of_memory = self.out_of_memory.load(Ordering::Acquire);
        (signal == Signal::ABRT.as_raw() && out_of_memory).then_some(Limit::Memory)
    }

    /// A channel that broke under a call: kill the process, it cannot be trusted.
    fn broken(&mut self, why: &dyn std::fmt::Display) -> CallError {
        tracing::error!(pid = self.pid(), %why, "process function channel broken: killed");
        self.killer.kill();
        CallError::Ended(self.reap())
    }

    /// Waits for the process (it has ended, or is ending) and records how it ended.
    fn reap(&mut self) -> Ended {
        if let Some(ended) = self.ended {
            return ended;
        }
        let ended = match self.child.take().map(|mut child| child.wait()) {
            Some(Ok(status)) => {
                let (code, signal) = worker_threads_process::exit_of(status);
                Ended {
                    code,
                    signal: signal.map(Signal::as_raw),
                }
            }
            Some(Err(_)) | None => Ended {
                code: None,
                signal: None,
            },
        };
        // The child's stderr ends with it: what it wrote last (the allocation-failure
        // line) has been read once the forwarder is done.
        if let Some(thread) = self.stderr.take() {
            let _ = thread.join();
        }
        self.ended = Some(ended);
        ended
    }
}

impl<Req, Rep> Drop for ProcessFn<Req, Rep> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.killer.kill();
            let _ = child.wait();
        }
        if let Some(thread) = self.stderr.take() {
            let _ = thread.join();
        }
    }
}

impl<Req, Rep> std::fmt::Debug for ProcessFn<Req, Rep> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessFn")
            .field("pid", &self.killer.process.pid())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
