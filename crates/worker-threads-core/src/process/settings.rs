//! What a process worker is given besides its entry: caps ([`ResourceLimits`]) and the
//! process-only settings of its `WorkerOptions`.

use std::time::Duration;

/// Caps on a process worker (Node's `resourceLimits`), enforced by the kernel with
/// rlimits set before the program starts.
///
/// - `max_memory`: `RLIMIT_AS`, bytes of address space (not resident memory: thread
///   stacks and mappings count). An allocation past it fails; Rust's handler prints
///   `memory allocation of N bytes failed` and aborts, which the parent reports as
///   [`WorkerError::LimitExceeded`](crate::WorkerError)`{ limit: Memory }` (it reads the
///   child's stderr to tell it from any other abort; stderr passes through the parent
///   then).
/// - `max_cpu_time`: `RLIMIT_CPU`, rounded up to whole seconds: `SIGXCPU`, then `SIGKILL`
///   a second later: `LimitExceeded { limit: CpuTime }`.
///
/// Why rlimits and not cgroup v2: they need no privilege and no writable cgroup tree
/// (this project's CI machine has cgroup v1 only), and hold for the child's own children.
/// What they cannot do: cap resident memory or a group of processes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_core::process::ResourceLimits;
///
/// let limits = ResourceLimits::new()
///     .max_memory(512 << 20)
///     .max_cpu_time(Duration::from_secs(30));
/// assert_ne!(limits, ResourceLimits::default());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    pub(crate) max_memory: Option<u64>,
    pub(crate) max_cpu_time: Option<Duration>,
}

impl ResourceLimits {
    /// No caps.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_core::process::ResourceLimits;
    ///
    /// assert_eq!(ResourceLimits::new(), ResourceLimits::default()); // no cap
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps the worker's address space at `bytes` (Node's `maxOldGenerationSizeMb`, in
    /// spirit).
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.max_memory = Some(bytes);
        self
    }

    /// Caps the worker's CPU time (rounded up to whole seconds).
    pub fn max_cpu_time(mut self, time: Duration) -> Self {
        self.max_cpu_time = Some(time);
        self
    }
}

/// The process-only settings of a [`WorkerOptions`].
#[derive(Debug, Clone)]
pub(crate) struct ProcessSettings {
    pub(crate) limits: ResourceLimits,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) grace: Duration,
}

impl ProcessSettings {
    /// Under a memory cap stderr passes through the parent whatever `stderr` says: std's
    /// allocation-failure line is how a `SIGABRT` is told from the cap.
    pub(crate) fn watches_memory(&self) -> bool {
        self.limits.max_memory.is_some()
    }
}

impl Default for ProcessSettings {
    fn default() -> Self {
        ProcessSettings {
            limits: ResourceLimits::default(),
            stdout: false,
            stderr: false,
            grace: Duration::from_millis(100),
        }
    }
}
