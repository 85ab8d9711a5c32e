//! Workers in processes of their own (Linux): the same entry, handle and events as a
//! thread worker, with what a thread cannot have. Feature `process`.
//!
//! ```no_run
//! use worker_threads_core::{Process, Worker, WorkerContext, WorkerOptions};
//!
//! fn square(ctx: WorkerContext<(), u64>) {
//!     for n in ctx.parent_port().iter() {
//!         ctx.parent_port().post_message(n * n).unwrap();
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     worker_threads_core::process::init(); // a process worker starts here, and stays
//!     let options = WorkerOptions::new().isolation(Process);
//!     let worker: Worker<u64> = Worker::spawn(options, square)?;
//!     worker.post_message(12).unwrap();
//!     assert_eq!(worker.recv()?, 144);
//!     worker.terminate(); // ends it even in `loop {}`
//!     assert_eq!(worker.join()?, 1);
//!     Ok(())
//! }
//! ```
//!
//! # A function in a process
//!
//! [`ProcessFn`] is the leaner form: a `fn(Req) -> Rep` served by a process of its own,
//! each [`call`](ProcessFn::call) made from the calling thread (no thread of ours on
//! either side, so a call costs one socket round trip), a crash or a [`Killer`] giving
//! [`CallError::Ended`]. The process pool's isolation runs on it.
//!
//! # How the child finds its entry
//!
//! A process worker is the running executable started again. Its `main` must call
//! [`init`] first: in a process worker it runs the entry and ends the process; elsewhere
//! it returns at once. A test binary has the test harness's `main`: put
//! [`process::test_support!()`](crate::process::test_support) in it once (it defines a test
//! that the child runs, which calls `init`). A process worker whose program never calls
//! `init` runs `main` again instead; it cannot start process workers of its own (that
//! would start the program again, and again): `spawn` refuses there.
//!
//! # What differs from a thread worker
//!
//! - The entry is a `fn` or a closure that captures nothing (a capturing closure is a
//!   compile error), and the data and both message types are
//!   `Serialize + DeserializeOwned` (postcard on the wire).
//! - [`Worker::terminate`](crate::Worker::terminate) ends it in any state: the worker is
//!   told (its receives fail with `Terminated`, as a thread's), and a process still
//!   running after the grace period ([`terminate_grace`](crate::WorkerOptions::terminate_grace),
//!   100 ms by default) is killed with `SIGKILL`. The exit code is 1, as Node's, unless
//!   the entry ended by itself without noticing.
//! - A crash (a signal: segfault, `abort()`, `kill`) is `Error(Crashed { signal })` and
//!   `Exit(128 + signal)`; the parent and the other workers go on.
//! - [`resource_limits`](crate::WorkerOptions::resource_limits): see [`ResourceLimits`].
//! - stdout and stderr are inherited, or piped with
//!   [`stdout(true)`](crate::WorkerOptions::stdout) and read with
//!   [`Worker::take_stdout`](crate::Worker::take_stdout) (Node's `stdout: true` and
//!   `worker.stdout`).
//! - A message crosses on the threads that post and receive it: a post encodes it and
//!   writes it to the worker's socket, a receive that finds nothing waiting reads the
//!   socket itself for up to 50 us before it parks (a round trip costs 7-9 us here, a
//!   thread worker's under 1). What cannot go at once (a message over 64 KiB, one with a
//!   port inside, a worker that stopped reading, what arrives while nobody receives)
//!   goes by a writer thread and a reader thread on each side, keeping the order: a post
//!   never waits for the worker. A port with a
//!   [`port_capacity`](crate::WorkerOptions::port_capacity) always goes by those
//!   threads (they give its back-pressure).
//! - A [`MessagePort`](worker_threads_channel::MessagePort) in the data or a message
//!   (either way) arrives as a working port: it goes by an id, and one thread on each
//!   side relays all of a worker's ports over its one channel (no descriptor, no thread
//!   per port). Order holds;
//!   what was posted before a close is delivered, then the port reads `Closed`; a post
//!   made after the close reached the poster's side hands its message back, one that
//!   crossed the close in flight is dropped on the other side. A pair whose two ends
//!   went to two process workers is relayed through this process (two hops). The new
//!   port is unbounded whatever the original's bound; its end here delivers into the
//!   original port, so a bounded original makes the channel's reader wait for room.
//!   When the worker ends, every port that crossed to it closes. A crossed port is
//!   relayed by those threads, not by the posting and receiving ones: its round trip
//!   costs about four times the parent port's.
//! - A `SharedArrayBuffer` crosses if made with `new_cross_process` (the same memory on
//!   both sides); a heap one refuses to serialize. `BroadcastChannel` is per process.
//! - A malformed frame or an undecodable message from the child is
//!   `Error(Channel { .. })` and the child is killed; a message over 64 MiB, or one
//!   whose `Serialize` fails, is dropped with an error log (its post had already returned
//!   `Ok`).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::WorkerContext;
use crate::error::SpawnError;
use crate::isolation::Process;
use crate::options::WorkerOptions;
use crate::outcome::IntoExitCode;
use crate::worker::{Spawn, Worker};

mod child;
mod direct;
mod function;
pub(crate) mod link;
mod parent;
pub(crate) mod settings;
mod wire;

#[doc(inline)]
pub use crate::process_test_support as test_support;
pub use child::init;
pub use function::{CallError, Ended, Killer, ProcessFn};
pub use settings::ResourceLimits;

impl<D> WorkerOptions<D, Process> {
    /// Caps the worker process's memory and CPU time (Node's `resourceLimits`); see
    /// [`ResourceLimits`].
    pub fn resource_limits(mut self, limits: ResourceLimits) -> Self {
        self.process.limits = limits;
        self
    }

    /// Pipes the worker's stdout to this process, readable from
    /// [`Worker::take_stdout`] (Node's `stdout: true`). Inherited by default.
    pub fn stdout(mut self, piped: bool) -> Self {
        self.process.stdout = piped;
        self
    }

    /// Pipes the worker's stderr, readable from [`Worker::take_stderr`] (Node's
    /// `stderr: true`). Inherited by default.
    pub fn stderr(mut self, piped: bool) -> Self {
        self.process.stderr = piped;
        self
    }

    /// How long [`Worker::terminate`] lets the process end by itself before `SIGKILL`
    /// (100 ms by default; zero kills at once).
    pub fn terminate_grace(mut self, grace: Duration) -> Self {
        self.process.grace = grace;
        self
    }
}

impl<D, In, Out, F, R> Spawn<D, In, Out, F, R> for Process
where
    D: Serialize + DeserializeOwned + Send + Sync + 'static,
    In: Serialize + DeserializeOwned + Send + 'static,
    Out: Serialize + DeserializeOwned + Send + 'static,
    F: FnOnce(WorkerContext<D, In, Out>) -> R + Copy + Send + 'static,
    R: IntoExitCode,
{
    fn spawn(options: WorkerOptions<D, Process>, entry: F) -> Result<Worker<In, Out>, SpawnError> {
        parent::spawn(options, entry)
    }
}

impl<In, Out> Worker<In, Out> {
    /// The worker's process id, for a process worker; `None` for a thread.
    pub fn pid(&self) -> Option<u32> {
        self.process_ref().map(|link| link.pid)
    }

    /// The read end of the worker's piped stdout, once (Node's `worker.stdout`); `None`
    /// for a thread, without [`WorkerOptions::stdout`]`(true)`, or when taken already. It
    /// reads to end of file once the process and its children have closed it.
    pub fn take_stdout(&mut self) -> Option<std::fs::File> {
        self.process_link().and_then(|link| link.stdout.take())
    }

    /// The read end of the worker's piped stderr, once (see
    /// [`take_stdout`](Self::take_stdout)).
    pub fn take_stderr(&mut self) -> Option<std::fs::File> {
        self.process_link().and_then(|link| link.stderr.take())
    }
}

/// Makes a test binary able to run process workers: defines the test that a process
/// worker started from this binary runs, which calls [`init`]. Put it once in each test
/// crate (at its root or anywhere) that spawns process workers. Reached as
/// `process::test_support!` (here at the crate root only because `macro_export` puts it
/// there).
///
/// ```ignore
/// worker_threads_core::process::test_support!();
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! process_test_support {
    () => {
        #[test]
        fn __worker_threads_process_child() {
            $crate::process::init();
        }
    };
}
