//! How a cluster is configured: scheduling policy, restart policy, how workers are run.

use std::ffi::OsString;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::primary::Cluster;

/// How connections to an address reach the workers (Node's `cluster.schedulingPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchedulingPolicy {
    /// The primary accepts every connection and hands its descriptor to the next worker
    /// in turn (Node's default, `SCHED_RR`). Even spread; one extra hop per connection.
    #[default]
    RoundRobin,
    /// The primary binds and sends the listening socket itself to every worker, which all
    /// accept from it (Node's `SCHED_NONE`). The kernel picks who gets a connection.
    Shared,
    /// Each worker binds its own socket with `SO_REUSEPORT` and the kernel spreads
    /// connections by hash. The primary holds the port (bound, not listening). A worker
    /// that stops listening drops the connections still queued on its socket, so a
    /// rolling restart may reset a few (use the other policies when that matters).
    ReusePort,
}

/// Exponential back-off for restarting crashed workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first restart.
    pub initial: Duration,
    /// The longest delay: each consecutive crash doubles the delay up to this.
    pub max: Duration,
    /// A worker that ran this long before crashing starts its replacement's count again
    /// at `initial`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    /// 100 ms, doubling up to 30 s, reset after 30 s of service.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before restart number `crashes` (0 for the first) in a row.
    pub fn delay(&self, crashes: u32) -> Duration {
        let factor = 1u32.checked_shl(crashes.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// What the primary does when a worker exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Nothing (Node's behaviour: restarting is the program's job).
    #[default]
    Never,
    /// Fork a replacement, after a back-off, when a worker crashes: exits with a non-zero
    /// code or by a signal, or breaks the IPC protocol. Never after `disconnect()` or
    /// `kill()`, and never while the cluster shuts down.
    OnCrash(Backoff),
}

impl Restart {
    /// `OnCrash` with the default back-off.
    pub fn on_crash() -> Restart {
        Restart::OnCrash(Backoff::default())
    }
}

/// The settings a cluster runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) policy: SchedulingPolicy,
    pub(crate) restart: Restart,
    pub(crate) args: Option<Vec<OsString>>,
    pub(crate) max_frame: usize,
    /// How long a frame's later records may take once its first arrived.
    pub(crate) frame_timeout: Duration,
    /// Workers' stdout goes to /dev/null (under a test harness, its report is noise).
    pub(crate) discard_stdout: bool,
}

/// Configures a [`Cluster`] (Node's `cluster.setupPrimary`).
///
/// # Examples
///
/// ```
/// use worker_threads_cluster::{Cluster, Restart, SchedulingPolicy};
///
/// let cluster = Cluster::<String>::builder()
///     .policy(SchedulingPolicy::RoundRobin)
///     .restart(Restart::on_crash())
///     .build();
/// assert_eq!(cluster.policy(), SchedulingPolicy::RoundRobin);
/// ```
#[derive(Debug)]
pub struct ClusterBuilder<T> {
    config: Config,
    _message: PhantomData<fn(T) -> T>,
}

impl<T> Default for ClusterBuilder<T> {
    fn default() -> Self {
        ClusterBuilder {
            config: Config {
                policy: SchedulingPolicy::default(),
                restart: Restart::default(),
                args: None,
                max_frame: 64 << 20,
                frame_timeout: Duration::from_secs(10),
                discard_stdout: false,
            },
            _message: PhantomData,
        }
    }
}

impl<T> ClusterBuilder<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// How connections reach workers; [`SchedulingPolicy::RoundRobin`] by default.
    pub fn policy(mut self, policy: SchedulingPolicy) -> Self {
        self.config.policy = policy;
        self
    }

    /// What to do when a worker crashes; [`Restart::Never`] by default.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.config.restart = restart;
        self
    }

    /// The arguments workers are started with, instead of this process's own (Node's
    /// `setupPrimary({ args })`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.config.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Runs workers as the test `name` of this test binary, for clusters under
    /// `cargo test`: the worker re-runs the binary with `name --exact`, so only that test
    /// runs, and the test takes the worker's path when [`is_worker`](crate::is_worker).
    /// The worker's stdout (the harness's own report) is discarded; its stderr, where
    /// panics and assertion failures go, is inherited.
    ///
    /// ```no_run
    /// #[test]
    /// fn serves() {
    ///     if worker_threads_cluster::is_worker() {
    ///         // the worker's side of the test
    ///         return;
    ///     }
    ///     let cluster = worker_threads_cluster::Cluster::<()>::builder().test_harness("serves").build();
    ///     cluster.fork().unwrap();
    ///     // the primary's side
    /// }
    /// ```
    pub fn test_harness(mut self, name: &str) -> Self {
        self.config.discard_stdout = true;
        self.args([name, "--exact", "--nocapture", "--test-threads=1", "-q"])
    }

    /// The largest message, in bytes, either side accepts (64 MiB by default). A larger
    /// frame is refused before anything is allocated for it.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.config.max_frame = bytes.max(1);
        self
    }

    /// How long the rest of a frame may take once its first record arrived (10 s by
    /// default). A worker that sends part of a frame and stops is cut off when it passes,
    /// as for a malformed frame (`Event::Error`, then a kill), instead of holding the
    /// primary's reader for that worker forever.
    pub fn frame_timeout(mut self, timeout: Duration) -> Self {
        self.config.frame_timeout = timeout;
        self
    }

    /// The cluster. Nothing is started until [`Cluster::fork`].
    pub fn build(self) -> Cluster<T> {
        Cluster::from_config(self.config)
    }
}
