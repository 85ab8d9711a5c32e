//! The task messages a worker holds, one entry per delivery: each is kept in progress
//! until its acknowledgement went, and a cancel notice for its task reaches it.
//!
//! By delivery, not by task: the same task can be delivered to the same worker twice (a
//! progress acknowledgement lost across a restart), and with one entry per task the first
//! copy's end took the second's entry with it, so the second, still running, had no
//! progress acknowledgements and was delivered a third time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// One delivery's number among those a worker holds.
pub(crate) type Delivery = u64;

/// A held delivery of a task message.
struct Held {
    /// The task's key ([`wire::task_key`](crate::wire::task_key)), which cancel notices
    /// name.
    task: String,
    /// Where its acknowledgements go.
    ack: Option<async_nats::Subject>,
    since: Instant,
    /// Set while a single task runs: the submitter's cancel goes through it.
    cancel: Option<oneshot::Sender<()>>,
}

/// The deliveries a worker holds.
#[derive(Default)]
pub(crate) struct HeldMessages {
    held: HashMap<Delivery, Held>,
    next: Delivery,
}

impl HeldMessages {
    /// Holds a delivery of `task` (acknowledged through `ack`), cancellable through
    /// `cancel`; its number.
    pub(crate) fn hold(
        &mut self,
        task: String,
        ack: Option<async_nats::Subject>,
        cancel: oneshot::Sender<()>,
    ) -> Delivery {
        let delivery = self.next;
        self.next += 1;
        self.held.insert(
            delivery,
            Held {
                task,
                ack,
                since: Instant::now(),
                cancel: Some(cancel),
            },
        );
        delivery
    }

    /// Lets a delivery go (answered and acknowledged, or given back).
    pub(crate) fn release(&mut self, delivery: Delivery) {
        self.held.remove(&delivery);
    }

    /// The cancels of every delivery of `task` still running, taken (each fires once).
    pub(crate) fn cancels_of(&mut self, task: &str) -> Vec<oneshot::Sender<()>> {
        self.held
            .values_mut()
            .filter(|held| held.task == task)
            .filter_map(|held| held.cancel.take())
            .collect()
    }

    /// Where to acknowledge as in progress each delivery held for `every` or longer.
    pub(crate) fn due(&self, now: Instant, every: Duration) -> Vec<async_nats::Subject> {
        self.held
            .values()
            .filter(|held| now.duration_since(held.since) >= every)
            .filter_map(|held| held.ack.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_deliveries_of_one_task_are_held_and_cancelled_apart() {
        let mut held = HeldMessages::default();
        let (first_cancel, mut first_cancelled) = oneshot::channel();
        let (second_cancel, mut second_cancelled) = oneshot::channel();
        let first = held.hold("t#1".into(), Some("ack.1".into()), first_cancel);
        let second = held.hold("t#1".into(), Some("ack.2".into()), second_cancel);
        assert_ne!(first, second);
        // The first copy ends: the second is still kept in progress.
        held.release(first);
        let later = Instant::now() + Duration::from_secs(1);
        let due = held.due(later, Duration::from_millis(300));
        assert_eq!(due, vec![async_nats::Subject::from("ack.2")]);
        assert!(
            held.due(Instant::now(), Duration::from_secs(60)).is_empty(),
            "not yet"
        );
        // A cancel notice for the task reaches the copy that runs, once.
        for cancel in held.cancels_of("t#1") {
            cancel.send(()).unwrap();
        }
        assert!(second_cancelled.try_recv().is_ok());
        assert!(
            first_cancelled.try_recv().is_err(),
            "released: its sender is gone"
        );
        assert!(held.cancels_of("t#1").is_empty());
        assert!(held.cancels_of("t#2").is_empty());
        held.release(second);
        assert!(held.due(later, Duration::ZERO).is_empty());
    }
}
