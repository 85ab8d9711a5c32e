//! Loom models of the pool's hand-off on the real code: its queue, its count and drain
//! epoch (`handoff.rs`), and a task's cell and counting (`task.rs`), all through the wait
//! crate's switch. The pool's threads are std's, so the models play their parts.
//!
//! - **The exact bound survives a drain**: a lone submitter that waits for a drain
//!   whenever the queue is full is always admitted after it (the Node chapter's loop
//!   never errors), whatever the timing of the thread that takes the tasks. (With the
//!   count and the drain epoch in two words, a late epoch let the loop fail: this model
//!   finds that.)
//! - **Submit, cancel and take**: a task submitted while a canceller and a taker race is
//!   resolved exactly once and counted once, as its handle sees it; it leaves the queue
//!   exactly once (the count ends at zero, the drain epoch moved once); a drain waiter is
//!   never left asleep.
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-pool --lib
//! --release loom_model` alone;
//! `cargo xtask loom` runs every model, as `.ci/run` does.

use std::sync::Arc;

use loom::thread;
use worker_threads_wait::Deadline;
use worker_threads_wait::queue::PopError;

use super::handoff::{Bound, Handoff};
use crate::error::TaskError;
use crate::stats::Counts;
use crate::stats::Resolved;
use crate::task::Task;

#[test]
fn a_lone_submitter_is_admitted_after_every_drain() {
    loom::model(|| {
        let handoff = Arc::new(Handoff::<u32>::new());
        const TASKS: u32 = 3;
        let taker = thread::spawn({
            let handoff = Arc::clone(&handoff);
            move || {
                let mut taken = 0;
                while taken < TASKS {
                    match handoff.pop() {
                        Ok(_) => {
                            handoff.left();
                            taken += 1;
                        }
                        Err(PopError::Empty) => {
                            handoff
                                .work
                                .wait_until(|| handoff.has_job(), Deadline::Never);
                        }
                        Err(PopError::Closed) => unreachable!("never closed here"),
                    }
                }
            }
        });
        for n in 0..TASKS {
            // The Node chapter's loop: queue_size() == max_queue() -> wait_drain() -> run.
            if handoff.queued() == 1 {
                handoff.wait_drain();
            }
            assert!(
                handoff.admit(Bound::At(1), || 0).is_ok(),
                "run {n} refused after a drain"
            );
            handoff.push(n).unwrap();
        }
        taker.join().unwrap();
        assert_eq!(handoff.queued(), 0);
    });
}

#[test]
fn a_task_raced_by_a_cancel_and_a_taker_resolves_counts_and_leaves_once() {
    loom::model(|| {
        let handoff = Arc::new(Handoff::<Arc<Task<u32, u32>>>::new());
        let counts = Arc::new(Counts::default());
        let task = Task::new(0, worker_threads_wait::Stamp::now(), 6, 1);
        let epoch = handoff.drain_epoch();
        handoff.admit(Bound::At(4), || 0).unwrap();
        assert!(handoff.push(Arc::clone(&task)).is_ok());
        let taker = thread::spawn({
            let (handoff, counts) = (Arc::clone(&handoff), Arc::clone(&counts));
            move || {
                let job = handoff.pop().expect("the job is there");
                if let Some(input) = job.cell.claim() {
                    handoff.left();
                    job.resolve(Ok(input * 7), |output| counts.add(Resolved::of(output), 1));
                }
            }
        });
        let canceller = thread::spawn({
            let (handoff, counts, task) =
                (Arc::clone(&handoff), Arc::clone(&counts), Arc::clone(&task));
            move || {
                task.cancel_counted(None, &counts, || {
                    handoff.left();
                })
            }
        });
        // A drain waiter: the task leaves the queue one way or the other.
        handoff.wait_drain();
        let seen = task.cell.wait(Deadline::Never).expect("resolved");
        taker.join().unwrap();
        let cancelled = canceller.join().unwrap();
        assert_eq!(handoff.queued(), 0, "left the queue exactly once");
        assert_ne!(handoff.drain_epoch(), epoch, "the drain was signalled");
        let resolved = Resolved::of(&seen);
        assert_eq!(counts.get(resolved), 1, "counted once, as seen: {seen:?}");
        let total: u64 = [Resolved::Value, Resolved::Cancelled]
            .iter()
            .map(|r| counts.get(*r))
            .sum();
        assert_eq!(total, 1, "counted once in all");
        match seen {
            Ok(value) => assert_eq!(value, 42),
            Err(TaskError::Cancelled) => assert!(cancelled),
            Err(other) => panic!("no such outcome here: {other:?}"),
        }
    });
}
