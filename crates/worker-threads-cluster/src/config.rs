//! How a cluster is configured: scheduling policy, restart policy, how workers are run.

use std::ffi::OsString;
use std::time::Duration;

/// How connections to an address reach the workers (Node's `cluster.schedulingPolicy`).
///
/// # Examples
///
/// ```
/// use worker_threads_cluster::{Cluster, SchedulingPolicy};
///
/// let cluster = Cluster::<()>::builder().policy(SchedulingPolicy::ReusePort).build();
/// assert_eq!(cluster.policy(), SchedulingPolicy::ReusePort);
/// assert_eq!(SchedulingPolicy::default(), SchedulingPolicy::RoundRobin); // Node's default
/// ```
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
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_cluster::Backoff;
///
/// let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1), ..Backoff::default() };
/// assert_eq!(backoff.delay(0), Duration::from_millis(100));
/// assert_eq!(backoff.delay(2), Duration::from_millis(400));
/// assert_eq!(backoff.delay(10), Duration::from_secs(1)); // capped
/// ```
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
///
/// # Examples
///
/// ```
/// use worker_threads_cluster::{Backoff, Cluster, Restart};
///
/// // Replace a crashed worker after 100 ms, 200 ms, 400 ms... (Node leaves it to you).
/// let cluster = Cluster::<()>::builder().restart(Restart::OnCrash(Backoff::default())).build();
/// # drop(cluster);
/// assert_eq!(Restart::default(), Restart::Never);
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_cluster::{Backoff, Restart};
    ///
    /// assert_eq!(Restart::on_crash(), Restart::OnCrash(Backoff::default()));
    /// ```
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
    /// How long a send to a worker may wait for it to read before the worker is
    /// considered hung (and killed).
    pub(crate) send_timeout: Duration,
    /// Bytes of a worker's messages the primary keeps unread before it kills the worker.
    pub(crate) max_unread: usize,
    /// Workers' stdout goes to /dev/null (under a test harness, its report is noise).
    pub(crate) discard_stdout: bool,
}
