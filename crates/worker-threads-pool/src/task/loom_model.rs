//! loom models of the real [`Slot`] (its atomics, lock and condvar come through the wait
//! crate's switch): a task resolves exactly once, counted once as the outcome its handle
//! sees, whichever of the worker's value, a cancel and the deadline comes first; and a
//! blocking `join` (spin, then sleep on the condvar) is never left asleep by the
//! resolution, nor an async `.await` by its waker.
//!
//! Run with `RUSTFLAGS="--cfg worker_threads_loom" cargo test -p worker-threads-pool --lib
//! --release loom_model` (`.ci/run` does, with `LOOM_MAX_PREEMPTIONS=3`).

use std::sync::Arc;

use loom::thread;
use worker_threads_wait::lock;
use worker_threads_wait::sync::Mutex;

use super::{Resolved, Slot};
use crate::error::TaskError;

/// What the slot counted, in order.
#[derive(Default)]
struct Counted(Mutex<Vec<Resolved>>);

impl Counted {
    fn count(&self) -> impl FnOnce(Resolved) + '_ {
        |resolved| lock(&self.0).push(resolved)
    }

    fn once(&self) -> Resolved {
        let counted = lock(&self.0);
        assert_eq!(counted.len(), 1, "counted exactly once: {counted:?}");
        counted[0]
    }
}

/// A worker thread that resolves `slot` with its value.
fn worker(slot: &Arc<Slot<u32>>, counted: &Arc<Counted>) -> thread::JoinHandle<()> {
    let (slot, counted) = (Arc::clone(slot), Arc::clone(counted));
    thread::spawn(move || slot.resolve(Ok(7), counted.count()))
}

/// A thread that cancels `slot` as `TaskHandle::cancel` of a queued task does: mark, then
/// the pool resolves it.
fn canceller(slot: &Arc<Slot<u32>>, counted: &Arc<Counted>) -> thread::JoinHandle<()> {
    let (slot, counted) = (Arc::clone(slot), Arc::clone(counted));
    thread::spawn(move || {
        if slot.cancel() {
            slot.resolve(Err(TaskError::Cancelled), counted.count());
        }
    })
}

/// The outcome a handle sees, as the pool counts it.
fn as_counted(result: &Result<u32, TaskError>) -> Resolved {
    match result {
        Ok(_) => Resolved::Value,
        Err(TaskError::Cancelled) => Resolved::Cancelled,
        Err(TaskError::TimedOut) => Resolved::TimedOut,
        Err(other) => panic!("no such outcome in this model: {other:?}"),
    }
}

#[test]
fn a_blocking_join_is_woken_by_the_resolution() {
    loom::model(|| {
        let slot = Slot::<u32>::new();
        let counted = Arc::new(Counted::default());
        let worker = worker(&slot, &counted);
        assert_eq!(slot.wait(), Ok(7));
        worker.join().unwrap();
        assert_eq!(counted.once(), Resolved::Value);
    });
}

#[test]
fn a_value_a_cancel_and_a_deadline_resolve_a_joined_task_exactly_once() {
    loom::model(|| {
        let slot = Slot::<u32>::new();
        let counted = Arc::new(Counted::default());
        let worker = worker(&slot, &counted);
        let canceller = canceller(&slot, &counted);
        slot.expire(counted.count());
        let seen = slot.wait();
        worker.join().unwrap();
        canceller.join().unwrap();
        assert_eq!(
            counted.once(),
            as_counted(&seen),
            "the count is what join saw"
        );
    });
}

#[test]
fn an_awaited_handle_is_woken_by_the_resolution() {
    loom::model(|| {
        let slot = Slot::<u32>::new();
        let counted = Arc::new(Counted::default());
        let canceller = canceller(&slot, &counted);
        let seen = loom::future::block_on(std::future::poll_fn(|cx| slot.poll(cx)));
        canceller.join().unwrap();
        assert_eq!(seen, Err(TaskError::Cancelled));
        assert_eq!(counted.once(), Resolved::Cancelled);
    });
}
