//! [`block_on`]: a blocking call's bridge to a future driven elsewhere.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes the thread blocked in [`block_on`] (a spurious wake only polls again).
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// This thread's waker, made once: a blocking call allocates nothing.
    static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
}

/// Runs `future` to completion on the calling thread, parking it between polls: the
/// bridge from a blocking method to a future whose I/O is driven by another thread (a
/// runtime's). Safe on any thread, inside an async runtime's too (it blocks that thread,
/// as any blocking call does), and nested in another `block_on`.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// let value = std::thread::spawn(move || {
///     worker_threads_wait::block_on(async move { rx.recv().unwrap() * 2 })
/// });
/// tx.send(21).unwrap();
/// assert_eq!(value.join().unwrap(), 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            thread::park();
        }
    })
}

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_future_woken_from_another_thread_gives_its_exact_value() {
        for round in 0..1_000u64 {
            let (tx, rx) = futures_channel_like();
            let sender = thread::spawn(move || tx.send(round));
            assert_eq!(block_on(rx), round);
            sender.join().unwrap();
        }
    }

    #[test]
    fn block_on_nests() {
        assert_eq!(block_on(async { block_on(async { 7 }) + 1 }), 8);
    }

    /// A one-shot channel as a future, from std parts: the value and the waker under a
    /// lock.
    fn futures_channel_like() -> (Sender, Receiver) {
        let shared = Arc::new(std::sync::Mutex::new((None, None::<Waker>)));
        (Sender(Arc::clone(&shared)), Receiver(shared))
    }

    type Shared = Arc<std::sync::Mutex<(Option<u64>, Option<Waker>)>>;
    struct Sender(Shared);
    struct Receiver(Shared);

    impl Sender {
        fn send(self, value: u64) {
            let waker = {
                let mut slot = self.0.lock().unwrap();
                slot.0 = Some(value);
                slot.1.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    impl Future for Receiver {
        type Output = u64;

        fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
            let mut slot = self.0.lock().unwrap();
            match slot.0.take() {
                Some(value) => Poll::Ready(value),
                None => {
                    slot.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }
}
