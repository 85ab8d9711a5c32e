//! The event async waiters sleep on: event-listener's, or, under
//! `--cfg worker_threads_loom`, one built on loom's lock so that loom sees every notify and
//! every registration.
//!
//! The loom event wakes every listener made before a notify, where event-listener wakes
//! as many as asked: a model then checks that a notify is sent whenever one is needed
//! (the lost wake-up), not which listener takes it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Where async waiters sleep until notified.
#[derive(Default)]
pub struct Event {
    #[cfg(not(worker_threads_loom))]
    inner: event_listener::Event,
    #[cfg(worker_threads_loom)]
    inner: loom_event::Event,
}

/// A registration on an [`Event`]: a future that is ready once a notify made after the
/// registration reaches it.
pub struct Listener {
    #[cfg(not(worker_threads_loom))]
    inner: event_listener::EventListener,
    #[cfg(worker_threads_loom)]
    inner: loom_event::Listener,
}

impl Event {
    /// An event with no listener.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a listener: notifies from now on reach it.
    pub fn listen(&self) -> Listener {
        Listener {
            inner: self.inner.listen(),
        }
    }

    /// Wakes `n` more listeners (event-listener's `notify(n.additional())`).
    pub fn notify_additional(&self, n: usize) {
        #[cfg(not(worker_threads_loom))]
        {
            use event_listener::IntoNotification;
            self.inner.notify(n.additional());
        }
        #[cfg(worker_threads_loom)]
        self.inner.notify(n);
    }

    /// Wakes every listener.
    pub fn notify_all(&self) {
        #[cfg(not(worker_threads_loom))]
        self.inner.notify(usize::MAX);
        #[cfg(worker_threads_loom)]
        self.inner.notify(usize::MAX);
    }
}

impl Future for Listener {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

#[cfg(worker_threads_loom)]
mod loom_event {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use crate::lock::lock;
    use crate::sync::{Arc, Mutex};

    #[derive(Default)]
    struct State {
        /// How many notifies were sent.
        notifies: u64,
        wakers: Vec<Waker>,
    }

    #[derive(Default)]
    pub(super) struct Event {
        state: Arc<Mutex<State>>,
    }

    pub(super) struct Listener {
        state: Arc<Mutex<State>>,
        /// `notifies` when the listener was made.
        seen: u64,
    }

    impl Event {
        pub(super) fn listen(&self) -> Listener {
            Listener {
                state: Arc::clone(&self.state),
                seen: lock(&self.state).notifies,
            }
        }

        pub(super) fn notify(&self, _n: usize) {
            let wakers = {
                let mut state = lock(&self.state);
                state.notifies += 1;
                std::mem::take(&mut state.wakers)
            };
            for waker in wakers {
                waker.wake();
            }
        }
    }

    impl Future for Listener {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut state = lock(&self.state);
            if state.notifies != self.seen {
                return Poll::Ready(());
            }
            state.wakers.push(cx.waker().clone());
            Poll::Pending
        }
    }
}
