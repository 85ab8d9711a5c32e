//! Counters and latency histograms (hdrhistogram). A pool thread records into its own
//! [`ThreadStats`] (its counters are its own atomics, its histograms under a lock only
//! readers share with it); resolutions made elsewhere (a cancel, a deadline, `destroy`, a
//! task run inline) go to the pool's shared [`Counts`]. Readers merge them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use worker_threads_wait::sync::Mutex;
use worker_threads_wait::{Stamp, lock};

use crate::error::TaskError;

/// How a task resolved: what the pool's counters count it as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The handler's value (for a chunk: per item).
    Value,
    /// The handler panicked.
    Panicked,
    /// Cancelled, by its handle, a token or `destroy`, before or while it ran.
    Cancelled,
    /// Its deadline passed first.
    TimedOut,
    /// Its worker process ended under it (a crash, or a cap of its resource limits).
    Crashed,
}

impl Resolved {
    /// How an output counts.
    pub(crate) fn of<R>(output: &Result<R, TaskError>) -> Self {
        match output {
            Ok(_) => Resolved::Value,
            Err(TaskError::Panicked(_)) => Resolved::Panicked,
            Err(TaskError::Cancelled) => Resolved::Cancelled,
            Err(TaskError::TimedOut) => Resolved::TimedOut,
            Err(TaskError::Crashed { .. }) => Resolved::Crashed,
            // The last try's way (each try before it was counted as it ended).
            Err(TaskError::Retried { last, .. }) => Self::of::<()>(&Err((**last).clone())),
            #[cfg(feature = "process")]
            Err(TaskError::LimitExceeded { .. }) => Resolved::Crashed,
            // A local pool never gives these (its tasks do not cross a network): counted as
            // the worker's failure if one ever did.
            Err(
                TaskError::MaxDeliveries { .. }
                | TaskError::BadTask(_)
                | TaskError::BadResult(_)
                | TaskError::Disconnected
                | TaskError::Closed,
            ) => Resolved::Crashed,
        }
    }
}

/// How many tasks resolved each way.
#[derive(Default)]
pub(crate) struct Counts {
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
    timed_out: AtomicU64,
    crashed: AtomicU64,
}

impl Counts {
    fn counter(&self, resolved: Resolved) -> &AtomicU64 {
        match resolved {
            Resolved::Value => &self.completed,
            Resolved::Panicked => &self.panicked,
            Resolved::Cancelled => &self.cancelled,
            Resolved::TimedOut => &self.timed_out,
            Resolved::Crashed => &self.crashed,
        }
    }

    /// Counts `items` tasks that resolved as `resolved`.
    #[inline]
    pub(crate) fn add(&self, resolved: Resolved, items: u64) {
        if items > 0 {
            self.counter(resolved).fetch_add(items, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self, resolved: Resolved) -> u64 {
        self.counter(resolved).load(Ordering::Relaxed)
    }
}

/// One pool thread's statistics.
#[derive(Default)]
pub(crate) struct ThreadStats {
    /// The resolutions this thread made.
    pub(crate) counts: Counts,
    /// Time spent running tasks, in nanoseconds.
    busy_nanos: AtomicU64,
    latency: Mutex<Latencies>,
}

struct Latencies {
    run: Histogram<u64>,
    wait: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            run: new_histogram(),
            wait: new_histogram(),
        }
    }
}

impl ThreadStats {
    /// Records `items` tasks that each waited `wait` and together ran `run` nanoseconds
    /// (each at the mean, rounded up: never below the true mean). How they resolved is
    /// counted when they resolve.
    /// Records a job accepted at `enqueued` on a thread free since `free` (when it ended
    /// its previous job), reading the clock once, as the job's end, and returns that end
    /// (the thread's next `free`). The start is taken as the later of the two: never
    /// after the true start (the thread was busy until `free`, and the job did not exist
    /// before `enqueued`), so a recorded run time is never below the true one, and a
    /// recorded wait never above the true wait.
    #[inline]
    pub(crate) fn record_job(&self, enqueued: Stamp, free: Stamp, items: u64) -> Stamp {
        let start = free.max(enqueued);
        let end = Stamp::now();
        self.record(start.nanos_since(enqueued), end.nanos_since(start), items);
        end
    }

    #[inline]
    fn record(&self, wait: u64, run: u64, items: u64) {
        let each = if items > 1 { run.div_ceil(items) } else { run };
        {
            let mut latency = lock(&self.latency);
            record_n(&mut latency.wait, wait, items.max(1));
            record_n(&mut latency.run, each, items.max(1));
        }
        // Only this thread adds to it: a load and a store, no locked instruction.
        self.busy_nanos.store(
            self.busy_nanos.load(Ordering::Relaxed).saturating_add(run),
            Ordering::Relaxed,
        );
    }
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant figures, growing as needed: creating one cannot fail.
    Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures are valid"))
}

/// Records `value` `count` times, growing the histogram to hold it. (A new auto-resizing
/// histogram tracks values up to 2 only; `saturating_record_n` clamps to that instead of
/// growing, which once made every latency read 2 ns.) Only a value beyond what any
/// histogram can hold (about 2^63 ns) is clamped.
#[inline]
fn record_n(histogram: &mut Histogram<u64>, value: u64, count: u64) {
    if histogram.record_n(value, count).is_err() {
        histogram.saturating_record_n(value, count);
    }
}

#[inline]
fn nanos(d: Duration) -> u64 {
    // Whole seconds first: `as_nanos` is a u128 product.
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// A pool's statistics: the shared counts and every thread's, kept after it ends.
pub(crate) struct Stats {
    started: Instant,
    /// Resolutions made off the pool's threads.
    pub(crate) shared: Counts,
    threads: Mutex<Vec<Arc<ThreadStats>>>,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            shared: Counts::default(),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// A new thread's statistics, kept after the thread ends.
    pub(crate) fn for_thread(&self) -> Arc<ThreadStats> {
        let stats = Arc::new(ThreadStats::default());
        lock(&self.threads).push(Arc::clone(&stats));
        stats
    }

    /// Tasks that resolved as `resolved`, on every thread.
    pub(crate) fn count(&self, resolved: Resolved) -> u64 {
        let threads: u64 = lock(&self.threads)
            .iter()
            .map(|thread| thread.counts.get(resolved))
            .sum();
        threads + self.shared.get(resolved)
    }

    fn merged(&self, pick: impl Fn(&Latencies) -> &Histogram<u64>) -> Latency {
        let mut merged = new_histogram();
        for thread in lock(&self.threads).iter() {
            let latency = lock(&thread.latency);
            // Auto-resizing histograms of the same precision always merge.
            let _ = merged.add(pick(&latency));
        }
        Latency { histogram: merged }
    }

    pub(crate) fn run_time(&self) -> Latency {
        self.merged(|latency| &latency.run)
    }

    pub(crate) fn wait_time(&self) -> Latency {
        self.merged(|latency| &latency.wait)
    }

    pub(crate) fn utilization(&self, max_threads: usize) -> f64 {
        let elapsed = nanos(self.started.elapsed()).max(1) as f64;
        let busy: u64 = lock(&self.threads)
            .iter()
            .map(|thread| thread.busy_nanos.load(Ordering::Relaxed))
            .sum();
        (busy as f64 / (elapsed * max_threads.max(1) as f64)).min(1.0)
    }
}

/// A snapshot of a latency distribution (piscina's `runTime` / `waitTime`), backed by an
/// hdrhistogram in nanoseconds with 3 significant figures.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_pool::Pool;
///
/// let pool = Pool::builder().build(|ms: u64| std::thread::sleep(Duration::from_millis(ms)))?;
/// pool.run(5)?.join()?;
/// let run_time = pool.run_time();
/// assert_eq!(run_time.count(), 1);
/// assert!(run_time.max() >= Duration::from_millis(5));
/// assert!(run_time.percentile(50.0) >= Duration::from_millis(5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Latency {
    /// The number of recorded tasks.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The value below which `percentile` percent (0.0-100.0) of the tasks fall.
    pub fn percentile(&self, percentile: f64) -> Duration {
        Duration::from_nanos(self.histogram.value_at_percentile(percentile))
    }

    /// The mean.
    pub fn mean(&self) -> Duration {
        Duration::from_nanos(self.histogram.mean() as u64)
    }

    /// The largest recorded value.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.histogram.max())
    }

    /// The underlying histogram, in nanoseconds.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }
}
