//! `WorkerOptions`: what a worker is spawned with.

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
#[derive(Debug, Clone)]
pub struct WorkerOptions<D = ()> {
    pub(crate) name: Option<String>,
    pub(crate) data: D,
    pub(crate) stack_size: Option<usize>,
    pub(crate) port_capacity: Option<usize>,
}

impl WorkerOptions<()> {
    /// No name, no data, the default stack, an unbounded parent port.
    pub fn new() -> Self {
        Self {
            name: None,
            data: (),
            stack_size: None,
            port_capacity: None,
        }
    }
}

impl Default for WorkerOptions<()> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D> WorkerOptions<D> {
    /// The worker's name: its thread's name, and [`worker_name`](crate::worker_name) inside.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The worker's data, Node's `workerData`. It is moved into the worker: every port or
    /// buffer inside goes with it (Node's `transferList`). Clone it first to keep a copy.
    pub fn worker_data<D2>(self, data: D2) -> WorkerOptions<D2> {
        WorkerOptions {
            name: self.name,
            data,
            stack_size: self.stack_size,
            port_capacity: self.port_capacity,
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
