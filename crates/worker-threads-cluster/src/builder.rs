//! `ClusterBuilder`: what a `Cluster` is configured with (Node's `cluster.setupPrimary`).

use std::ffi::OsString;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{Config, Restart, SchedulingPolicy};
use crate::primary::Cluster;

impl<T> Cluster<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// A cluster with the default settings (round-robin, no restarts).
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_cluster::{Cluster, SchedulingPolicy};
    ///
    /// let cluster = Cluster::<String>::new(); // round-robin, no restarts: Node's defaults
    /// assert_eq!(cluster.policy(), SchedulingPolicy::RoundRobin);
    /// assert!(cluster.workers().is_empty());
    /// ```
    pub fn new() -> Self {
        ClusterBuilder::default().build()
    }

    /// Configure a cluster.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_cluster::{Cluster, Restart, SchedulingPolicy};
    ///
    /// let cluster = Cluster::<String>::builder()
    ///     .policy(SchedulingPolicy::Shared)
    ///     .restart(Restart::on_crash())
    ///     .build();
    /// assert_eq!(cluster.policy(), SchedulingPolicy::Shared);
    /// ```
    pub fn builder() -> ClusterBuilder<T> {
        ClusterBuilder::default()
    }
}

impl<T> Default for Cluster<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn default() -> Self {
        Self::new()
    }
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
                send_timeout: Duration::from_secs(10),
                max_unread: 64 << 20,
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

    /// How long a send to a worker ([`ClusterWorker::send`](crate::ClusterWorker::send),
    /// [`ClusterWorker::disconnect`](crate::ClusterWorker::disconnect), an answer to its `listen`) may
    /// wait for it to read (10 s by default). A worker that does not read for that long
    /// (stopped, or stuck without reading its channel) is treated as hung: the send
    /// fails with [`IpcError::SendTimedOut`](crate::IpcError), handing the message back,
    /// and the worker gets `Event::Error` and `SIGKILL` (then its restart policy).
    /// Round-robin hand-offs never wait: a worker whose channel is full is skipped.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.config.send_timeout = timeout;
        self
    }

    /// How many bytes of one worker's messages the primary keeps unread (64 MiB by
    /// default, counting each message's encoded size plus the event's own). A worker
    /// that sends more while the primary does not read is an error
    /// ([`IpcError::Overflow`](crate::IpcError), `Event::Error`) and is killed, so a
    /// flooding worker cannot grow the primary without bound.
    pub fn max_unread(mut self, bytes: usize) -> Self {
        self.config.max_unread = bytes.max(1);
        self
    }

    /// The cluster. Nothing is started until [`Cluster::fork`].
    pub fn build(self) -> Cluster<T> {
        Cluster::from_config(self.config)
    }
}
