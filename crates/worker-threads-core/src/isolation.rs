//! Where a worker runs: a thread of this process (the default) or a process of its own.
//! The choice is a type ([`Thread`], [`Process`]) carried by
//! [`WorkerOptions`](crate::WorkerOptions), so that what a process worker needs (an entry
//! that captures nothing, messages that serialize) is checked when the program compiles.

/// A worker that is a thread of this process: the default.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Thread, Worker, WorkerOptions};
///
/// // The default: `WorkerOptions::new()` is `WorkerOptions<(), Thread>`.
/// let options: WorkerOptions<(), Thread> = WorkerOptions::new();
/// let worker = Worker::<()>::spawn(options, |_ctx| 5)?;
/// assert_eq!(worker.join()?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thread;

/// A worker that is a process of its own (Linux, feature `process`): the running
/// executable started again, which finds its entry through
/// `process::init`. It can be terminated in any state, crash
/// alone and be given resource limits; its entry must capture nothing and its data and
/// messages must be `Serialize + DeserializeOwned`. See `worker_threads_core::process` (feature `process`).
///
/// # Examples
///
/// ```no_run
/// use worker_threads_core::{Process, Worker, WorkerContext, WorkerOptions};
///
/// fn pong(ctx: WorkerContext<(), u32>) {
///     while let Ok(n) = ctx.parent_port().recv() {
///         let _ = ctx.parent_port().post_message(n + 1);
///     }
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     worker_threads_core::process::init(); // first in main: the worker starts here
///     let worker = Worker::<u32>::spawn(WorkerOptions::new().isolation(Process), pong)?;
///     worker.post_message(1)?;
///     assert_eq!(worker.recv()?, 2);
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Process;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Thread {}
    impl Sealed for super::Process {}
}

/// [`Thread`] or [`Process`]: what [`WorkerOptions::isolation`](crate::WorkerOptions::isolation)
/// accepts.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Isolation, Thread, WorkerOptions};
///
/// /// Options for either isolation, chosen by the caller's type.
/// fn named<I: Isolation>(options: WorkerOptions<(), I>) -> WorkerOptions<(), I> {
///     options.name("named")
/// }
///
/// let options: WorkerOptions<(), Thread> = named(WorkerOptions::new());
/// # drop(options);
/// ```
pub trait Isolation: sealed::Sealed + Send + Sync + 'static {}
impl Isolation for Thread {}
impl Isolation for Process {}
