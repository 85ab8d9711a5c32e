//! `WorkerOptions`: what a worker is spawned with.

use std::marker::PhantomData;

use crate::isolation::{Isolation, Thread};
#[cfg(all(feature = "process", target_os = "linux"))]
use crate::process::settings::ProcessSettings;

/// What a [`Worker`](crate::Worker) is spawned with: Node's `new Worker(file, options)`.
///
/// # Examples
///
/// ```
/// use worker_threads_core::WorkerOptions;
///
/// let options = WorkerOptions::new()
///     .name("resizer")
///     .worker_data(vec![1u8, 2, 3])
///     .stack_size(256 * 1024)
///     .port_capacity(64);
/// ```
///
/// `I` is where the worker runs: [`Thread`] (the default) or, with
/// [`isolation`](WorkerOptions::isolation), [`Process`](crate::Process).
#[derive(Debug, Clone)]
pub struct WorkerOptions<D = (), I = Thread> {
    pub(crate) name: Option<String>,
    pub(crate) data: D,
    pub(crate) stack_size: Option<usize>,
    pub(crate) port_capacity: Option<usize>,
    #[cfg(all(feature = "process", target_os = "linux"))]
    pub(crate) process: ProcessSettings,
    pub(crate) _isolation: PhantomData<I>,
}

impl WorkerOptions<()> {
    /// No name, no data, the default stack, an unbounded parent port, a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_core::{Worker, WorkerOptions};
    ///
    /// let worker = Worker::<()>::spawn(WorkerOptions::new(), |ctx| assert!(ctx.thread_id() > 0))?;
    /// assert_eq!(worker.join()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Self {
            name: None,
            data: (),
            stack_size: None,
            port_capacity: None,
            #[cfg(all(feature = "process", target_os = "linux"))]
            process: ProcessSettings::default(),
            _isolation: PhantomData,
        }
    }
}

impl Default for WorkerOptions<()> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D, I: Isolation> WorkerOptions<D, I> {
    /// Where the worker runs: [`Thread`] (the default) or [`Process`](crate::Process)
    /// (Linux, feature `process`; see `worker_threads_core::process` (feature `process`)). The same entry function runs
    /// either way; a process worker's must capture nothing, and its data and messages
    /// must serialize, which the compiler checks.
    pub fn isolation<I2: Isolation>(self, _isolation: I2) -> WorkerOptions<D, I2> {
        WorkerOptions {
            name: self.name,
            data: self.data,
            stack_size: self.stack_size,
            port_capacity: self.port_capacity,
            #[cfg(all(feature = "process", target_os = "linux"))]
            process: self.process,
            _isolation: PhantomData,
        }
    }

    /// The worker's name: its thread's name, and [`worker_name`](crate::worker_name) inside.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The worker's data, Node's `workerData`. It is moved into the worker: every port or
    /// buffer inside goes with it (Node's `transferList`). Clone it first to keep a copy.
    pub fn worker_data<D2>(self, data: D2) -> WorkerOptions<D2, I> {
        WorkerOptions {
            name: self.name,
            data,
            stack_size: self.stack_size,
            port_capacity: self.port_capacity,
            #[cfg(all(feature = "process", target_os = "linux"))]
            process: self.process,
            _isolation: PhantomData,
        }
    }

    /// The worker thread's stack size in bytes (Node's `resourceLimits.stackSizeMb`).
    /// The default is Rust's (2 MiB, or `RUST_MIN_STACK`); the memory is reserved, not
    /// used, until the worker touches it.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Bounds each direction of the parent port to `cap` messages (see
    /// [`MessageChannel::bounded`](worker_threads_channel::MessageChannel::bounded)). Unbounded by
    /// default, as in Node.
    pub fn port_capacity(mut self, cap: usize) -> Self {
        self.port_capacity = Some(cap);
        self
    }
}
