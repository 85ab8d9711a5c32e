//! Statistics that tell the truth: recorded latencies are the tasks' real durations, and
//! every accepted task is counted exactly once, as the outcome its handle resolved with.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::Gate;
use worker_threads_pool::{MaxQueue, Pool, TaskError};

const FIVE_MS: Duration = Duration::from_millis(5);

#[test]
fn a_5_ms_task_is_recorded_as_at_least_5_ms_through_run() {
    let pool = Pool::builder()
        .max_threads(1)
        .build(|(): ()| std::thread::sleep(FIVE_MS))
        .unwrap();
    // Two tasks on one thread: the second waits in the queue for the whole first one.
    let first = pool.run(()).unwrap();
    let second = pool.run_wait(()).unwrap();
    first.join().unwrap();
    second.join().unwrap();
    let run = pool.run_time();
    assert_eq!(run.count(), 2);
    assert!(
        run.percentile(0.0) >= FIVE_MS,
        "fastest run {:?}",
        run.percentile(0.0)
    );
    assert!(
        run.percentile(50.0) >= FIVE_MS,
        "p50 {:?}",
        run.percentile(50.0)
    );
    assert!(run.mean() >= FIVE_MS, "mean {:?}", run.mean());
    assert!(run.max() >= FIVE_MS, "max {:?}", run.max());
    let wait = pool.wait_time();
    assert_eq!(wait.count(), 2);
    assert!(
        wait.max() >= FIVE_MS,
        "the second task waited {:?}",
        wait.max()
    );
}

#[test]
fn a_5_ms_item_of_a_map_is_recorded_as_at_least_5_ms() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(|n: u32| {
            std::thread::sleep(FIVE_MS);
            n
        })
        .unwrap();
    let results: Vec<u32> = pool.map(0..8).map(Result::unwrap).collect();
    assert_eq!(results, (0..8).collect::<Vec<_>>());
    let run = pool.run_time();
    assert_eq!(run.count(), 8);
    assert!(
        run.percentile(0.0) >= FIVE_MS,
        "fastest item {:?}",
        run.percentile(0.0)
    );
    assert!(run.mean() >= FIVE_MS, "mean {:?}", run.mean());
    // Eight 5 ms items on two threads: some item waited at least one item's run.
    assert!(
        pool.wait_time().max() >= FIVE_MS,
        "{:?}",
        pool.wait_time().max()
    );
}

#[test]
fn a_task_cancelled_while_running_counts_as_cancelled_only() {
    let (started_tx, started) = mpsc::channel();
    let gate = Gate::default();
    let pool = Pool::builder()
        .max_threads(1)
        .build({
            let gate = gate.clone();
            move |n: u32| {
                started_tx.send(()).unwrap();
                gate.wait();
                n
            }
        })
        .unwrap();
    let task = pool.run(7).unwrap();
    started.recv().unwrap();
    assert!(task.cancel());
    gate.open();
    assert_eq!(task.join(), Err(TaskError::Cancelled));
    assert_eq!(pool.cancelled(), 1);
    assert_eq!(
        pool.completed(),
        0,
        "a cancelled task is not also completed"
    );
    assert_eq!(pool.panicked(), 0);
    // It ran, so its run is still in the histogram.
    assert_eq!(pool.run_time().count(), 1);
}

#[test]
fn a_panic_counts_as_panicked_only() {
    let pool = Pool::builder()
        .max_threads(1)
        .build(|n: u32| {
            assert!(n != 1, "task {n}");
            n
        })
        .unwrap();
    assert_eq!(pool.run(0).unwrap().join(), Ok(0));
    assert!(matches!(
        pool.run(1).unwrap().join(),
        Err(TaskError::Panicked(_))
    ));
    assert_eq!(pool.completed(), 1);
    assert_eq!(pool.panicked(), 1);
    assert_eq!(pool.cancelled(), 0);
}

/// What a task of the mixed runs does.
#[derive(Clone, Copy)]
enum Kind {
    Value,
    Panic,
    /// Runs until its handle is cancelled, then returns a value anyway.
    UntilCancelled,
}

fn mixed_pool(threads: usize) -> Pool<(Kind, u64), u64> {
    Pool::builder()
        .max_threads(threads)
        .build(|(kind, n): (Kind, u64)| match kind {
            Kind::Value => n,
            Kind::Panic => panic!("task {n}"),
            Kind::UntilCancelled => {
                while !worker_threads_pool::is_cancelled() {
                    std::hint::spin_loop();
                }
                n
            }
        })
        .unwrap()
}

/// A small deterministic generator (xorshift), so a failure can be rerun.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Outcomes seen on the handles, to compare with the pool's counters.
#[derive(Default, Debug, PartialEq, Eq)]
struct Tally {
    completed: u64,
    panicked: u64,
    cancelled: u64,
}

impl Tally {
    fn add(&mut self, n: u64, result: Result<u64, TaskError>) {
        match result {
            Ok(value) => {
                assert_eq!(value, n, "the task's own value came back");
                self.completed += 1;
            }
            Err(TaskError::Panicked(message)) => {
                assert_eq!(message, format!("task {n}"));
                self.panicked += 1;
            }
            Err(TaskError::Cancelled) => self.cancelled += 1,
            Err(other) => panic!("task {n}: {other}, with no deadline and no process"),
        }
    }

    fn of(pool: &Pool<(Kind, u64), u64>) -> Self {
        Self {
            completed: pool.completed(),
            panicked: pool.panicked(),
            cancelled: pool.cancelled(),
        }
    }
}

#[test]
fn cancel_racing_the_end_of_a_task_is_counted_as_the_handle_resolved() {
    // A cancel from another thread lands anywhere: before the task starts, while it runs,
    // between the handler's return and the resolution, or after it. 3,000 trials.
    let pool = mixed_pool(2);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = Tally::default();
    for n in 0..3_000u64 {
        let kind = if rng.below(10) == 0 {
            Kind::Panic
        } else {
            Kind::Value
        };
        let spins = rng.below(2_000);
        let handle = pool.run_wait((kind, n)).unwrap();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..spins {
                    std::hint::spin_loop();
                }
                handle.cancel();
            });
        });
        seen.add(n, handle.join());
        // Counted by the time the handle resolved, every time.
        assert_eq!(Tally::of(&pool), seen, "after task {n}");
    }
    assert_eq!(seen.completed + seen.panicked + seen.cancelled, 3_000);
    assert!(
        seen.cancelled > 0 && seen.completed > 0 && seen.panicked > 0,
        "{seen:?}"
    );
}

#[test]
fn any_mix_of_outcomes_adds_up_to_the_tasks_accepted() {
    // Values, panics, cancels while queued and while running, a map with panicking items,
    // and a destroy with work still queued: every accepted task is counted exactly once.
    let pool = mixed_pool(2);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut seen = Tally::default();
    let mut accepted = 0u64;
    for round in 0..20u64 {
        let mut handles = Vec::new();
        for i in 0..500u64 {
            let n = round * 1_000 + i;
            let kind = match rng.below(20) {
                0 => Kind::Panic,
                1 => Kind::UntilCancelled,
                _ => Kind::Value,
            };
            let handle = pool.run_wait((kind, n)).unwrap();
            accepted += 1;
            if matches!(kind, Kind::UntilCancelled) || rng.below(30) == 0 {
                handle.cancel();
            }
            handles.push((n, handle));
        }
        for (n, handle) in handles {
            seen.add(n, handle.join());
        }
        let items: Vec<(Kind, u64)> = (0..200)
            .map(|i| {
                let n = round * 1_000 + 500 + i;
                (
                    if i % 50 == 3 {
                        Kind::Panic
                    } else {
                        Kind::Value
                    },
                    n,
                )
            })
            .collect();
        for (item, result) in items.clone().into_iter().zip(pool.map(items)) {
            seen.add(item.1, result);
            accepted += 1;
        }
        assert_eq!(Tally::of(&pool), seen, "after round {round}");
    }
    assert_eq!(seen.completed + seen.panicked + seen.cancelled, accepted);
    // Destroy with tasks queued behind two that run until cancelled.
    let (started_tx, started) = mpsc::channel();
    let gate = Gate::default();
    let blocking = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(3))
        .build({
            let gate = gate.clone();
            move |n: u64| {
                started_tx.send(()).unwrap();
                gate.wait();
                n
            }
        })
        .unwrap();
    let running = blocking.run(0).unwrap();
    started.recv().unwrap();
    let queued: Vec<_> = (1..=3).map(|n| blocking.run(n).unwrap()).collect();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // The running task holds the only thread: only destroy empties the queue.
            common::eventually("destroy emptied the queue", || blocking.queue_size() == 0);
            gate.open();
        });
        blocking.destroy();
    });
    // The running task was cancelled by destroy (it returned a value, too late).
    assert_eq!(running.join(), Err(TaskError::Cancelled));
    for handle in queued {
        assert_eq!(handle.join(), Err(TaskError::Cancelled));
    }
    assert_eq!(
        (
            blocking.completed(),
            blocking.cancelled(),
            blocking.panicked()
        ),
        (0, 4, 0)
    );
}
