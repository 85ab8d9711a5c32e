//! Counters and latency histograms (hdrhistogram), recorded per thread and merged on read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::{Duration, Instant};
use worker_threads_wait::lock;
use worker_threads_wait::sync::Mutex;

use hdrhistogram::Histogram;

use crate::task::Resolved;

/// One thread's histograms, in nanoseconds.
pub(crate) struct ThreadStats {
    run: Histogram<u64>,
    wait: Histogram<u64>,
}

impl ThreadStats {
    fn new() -> Self {
        Self {
            run: new_histogram(),
            wait: new_histogram(),
        }
    }

    /// Records `count` tasks that each waited `wait` and ran `run`.
    pub(crate) fn record_n(&mut self, wait: Duration, run: Duration, count: u64) {
        record_n(&mut self.wait, nanos(wait), count);
        record_n(&mut self.run, nanos(run), count);
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
fn record_n(histogram: &mut Histogram<u64>, value: u64, count: u64) {
    if histogram.record_n(value, count).is_err() {
        histogram.saturating_record_n(value, count);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A pool's statistics.
pub(crate) struct Stats {
    pub(crate) started: Instant,
    pub(crate) completed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) crashed: AtomicU64,
    pub(crate) run_nanos: AtomicU64,
    threads: Mutex<Vec<Arc<Mutex<ThreadStats>>>>,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            crashed: AtomicU64::new(0),
            run_nanos: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Counts `items` tasks that resolved as `resolved`.
    pub(crate) fn count(&self, resolved: Resolved, items: u64) {
        let counter = match resolved {
            Resolved::Value => &self.completed,
            Resolved::Panicked => &self.panicked,
            Resolved::Cancelled => &self.cancelled,
            Resolved::TimedOut => &self.timed_out,
            Resolved::Crashed => &self.crashed,
        };
        counter.fetch_add(items, Ordering::Relaxed);
    }

    /// A new thread's histograms, kept after the thread ends.
    pub(crate) fn for_thread(&self) -> Arc<Mutex<ThreadStats>> {
        let stats = Arc::new(Mutex::new(ThreadStats::new()));
        lock(&self.threads).push(Arc::clone(&stats));
        stats
    }

    pub(crate) fn merged(&self, pick: impl Fn(&ThreadStats) -> &Histogram<u64>) -> Latency {
        let mut merged = new_histogram();
        for thread in lock(&self.threads).iter() {
            let thread = lock(thread);
            // Auto-resizing histograms of the same precision always merge.
            let _ = merged.add(pick(&thread));
        }
        Latency { histogram: merged }
    }

    pub(crate) fn run_time(&self) -> Latency {
        self.merged(|thread| &thread.run)
    }

    pub(crate) fn wait_time(&self) -> Latency {
        self.merged(|thread| &thread.wait)
    }
}

/// A snapshot of a latency distribution (piscina's `runTime` / `waitTime`), backed by an
/// hdrhistogram in nanoseconds with 3 significant figures.
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

impl Stats {
    pub(crate) fn utilization(&self, max_threads: usize) -> f64 {
        let elapsed = nanos(self.started.elapsed()).max(1) as f64;
        let busy = self.run_nanos.load(Ordering::Relaxed) as f64;
        (busy / (elapsed * max_threads.max(1) as f64)).min(1.0)
    }
}
