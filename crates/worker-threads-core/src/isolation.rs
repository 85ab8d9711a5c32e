//! Where a worker runs: a thread of this process (the default) or a process of its own.
//! The choice is a type ([`Thread`], [`Process`]) carried by
//! [`WorkerOptions`](crate::WorkerOptions), so that what a process worker needs (an entry
//! that captures nothing, messages that serialize) is checked when the program compiles.

use crate::error::SpawnError;
use crate::options::WorkerOptions;
use crate::worker::Worker;

/// A worker that is a thread of this process: the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thread;

/// A worker that is a process of its own (Linux, feature `process`): the running
/// executable started again, which finds its entry through
/// `process::init`. It can be terminated in any state, crash
/// alone and be given resource limits; its entry must capture nothing and its data and
/// messages must be `Serialize + DeserializeOwned`. See `worker_threads_core::process` (feature `process`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Process;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Thread {}
    impl Sealed for super::Process {}
}

/// [`Thread`] or [`Process`]: what [`WorkerOptions::isolation`] accepts.
pub trait Isolation: sealed::Sealed + Send + Sync + 'static {}
impl Isolation for Thread {}
impl Isolation for Process {}

/// How a worker of isolation `Self` is started with data `D`, messages `In`/`Out`, entry
/// `F` returning `R`: the bounds each isolation needs. Used by
/// [`Worker::spawn`](crate::Worker::spawn); not implemented outside this crate.
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
