//! Process isolation (feature `process`, Linux): `Pool::builder().isolation(Process)`
//! runs the same handler `fn` in worker processes, one per pool thread, so that a task
//! can be stopped in any state and can crash alone (piscina aborts a running task by
//! ending its worker; tinypool's `runtime: 'child_process'`).
//!
//! - A cancel or a deadline of a **running** task kills its process (`terminate`: the
//!   grace period, then `SIGKILL`); the task resolves `Cancelled` / `TimedOut`, and the
//!   thread starts a new process for its next task. (In a thread pool a cancel is
//!   cooperative.)
//! - A task that crashes its process (abort, segfault, out of memory) resolves
//!   [`TaskError::Crashed`](crate::TaskError::Crashed), that task only; the other tasks
//!   run on in their own processes, and the capacity comes back with a new process.
//! - `destroy` kills the processes running tasks.
//! - [`max_memory`](ProcessPoolBuilder::max_memory): a process whose resident memory is
//!   over it after a task is replaced (piscina users ask for this in their #492);
//!   [`resource_limits`](ProcessPoolBuilder::resource_limits): hard caps, and the task
//!   during which a process crosses one resolves
//!   [`TaskError::LimitExceeded`](crate::TaskError::LimitExceeded);
//!   [`isolate_workers`](ProcessPoolBuilder::isolate_workers): a fresh process per task.
//! - The queue, drain, statistics and exactly-once resolution are the thread pool's: the
//!   process pool is the same queue with a different runner on each thread.
//!
//! The handler is a `fn` (or a closure that captures nothing), and tasks and results are
//! `Serialize + DeserializeOwned`; the program calls `worker_threads::process::init()`
//! first in `main` (a test binary: `process::test_support!()`), as for process workers.

use serde::Serialize;
use serde::de::DeserializeOwned;
use worker_threads_core::Process;
use worker_threads_core::process::{ProcessFn, ResourceLimits};

use crate::builder::PoolBuilder;
use crate::error::BuildError;
use crate::inner::process_worker::{ProcessSettings, ProcessSpawner, ProcessWorker, serve};
use crate::pool::Pool;

/// The chunk sizes of a process pool's `map`: from 1,024 items, doubling up to 16,384.
const PROCESS_CHUNKS: (usize, usize) = (1_024, 16_384);

/// A [`PoolBuilder`] for a process pool: [`PoolBuilder::isolation`]`(Process)`. Set the
/// pool's other options (threads, queue, timeouts) on the `PoolBuilder` before.
///
/// # Examples
///
/// ```no_run
/// use worker_threads_core::Process;
/// use worker_threads_pool::Pool;
///
/// fn square(n: u64) -> u64 {
///     n * n
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     worker_threads_core::process::init(); // first in main: the workers start here
///     let pool = Pool::builder()
///         .max_threads(4)
///         .isolation(Process)
///         .max_memory(256 << 20)
///         .build(square)?;
///     assert_eq!(pool.run(12)?.join()?, 144);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct ProcessPoolBuilder {
    builder: PoolBuilder,
    settings: ProcessSettings,
}

impl PoolBuilder {
    /// Runs tasks in worker processes: one per pool thread (see the `process` module of
    /// this crate, feature `process`). Set the other options first.
    pub fn isolation(self, _isolation: Process) -> ProcessPoolBuilder {
        ProcessPoolBuilder {
            builder: self,
            settings: ProcessSettings::default(),
        }
    }
}

impl ProcessPoolBuilder {
    /// A fresh process for every task (tinypool's `isolateWorkers`): nothing a task leaves
    /// behind reaches the next. Costs a process start per task.
    pub fn isolate_workers(mut self, isolate: bool) -> Self {
        self.settings.isolate_workers = isolate;
        self
    }

    /// Replaces a worker process whose resident memory is over `bytes` after a task (a
    /// soft bound, looked at between tasks; [`resource_limits`](Self::resource_limits)
    /// is the hard one).
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.settings.max_memory = Some(bytes);
        self
    }

    /// Caps every worker process (tinypool's `resourceLimits`; rlimits, see
    /// [`ResourceLimits`]): a task during which its process crosses a cap resolves
    /// [`TaskError::LimitExceeded`](crate::TaskError::LimitExceeded), that task only, and
    /// the thread starts a new process for its next task. The memory cap is on address
    /// space, so leave room for the runtime (tens of MiB) above what tasks use.
    ///
    /// ```no_run
    /// use worker_threads_pool::{Pool, TaskError};
    /// use worker_threads_core::{Limit, Process, process::ResourceLimits};
    ///
    /// fn allocate(mib: usize) -> usize {
    ///     vec![1u8; mib << 20].len() >> 20
    /// }
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     worker_threads_core::process::init();
    ///     let pool = Pool::builder()
    ///         .isolation(Process)
    ///         .resource_limits(ResourceLimits::new().max_memory(512 << 20))
    ///         .build(allocate)?;
    ///     assert_eq!(pool.run(4096)?.join(), Err(TaskError::LimitExceeded { limit: Limit::Memory }));
    ///     assert_eq!(pool.run(16)?.join(), Ok(16));
    ///     Ok(())
    /// }
    /// ```
    pub fn resource_limits(mut self, limits: ResourceLimits) -> Self {
        self.settings.limits = limits;
        self
    }

    /// Builds the pool: each task goes to `handler` in a worker process.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for an impossible configuration or a refused thread.
    pub fn build<T, R, F>(self, handler: F) -> Result<Pool<T, R>, BuildError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(T) -> R + Copy + Send + Sync + 'static,
    {
        let mut config = self.builder.config()?;
        // A chunk is a round trip to another process (tens of microseconds): hand over
        // many items per chunk.
        config.chunks = (PROCESS_CHUNKS.0, PROCESS_CHUNKS.1);
        let limits = self.settings.limits;
        let spawner: Box<ProcessSpawner<T, R>> = Box::new(move || {
            let served = ProcessFn::spawn_limited(move |request| serve(request, handler), &limits)?;
            Ok(Box::new(served) as ProcessWorker<T, R>)
        });
        Pool::start_process(config, self.builder.on_event, spawner, self.settings)
    }
}
