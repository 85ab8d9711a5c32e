//! `TerminationSignal`: ends every blocking receive on the threads it is installed on.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Arc;

use crate::close::{CloseSignal, Ended};

thread_local! {
    static CURRENT: RefCell<Option<Arc<CloseSignal>>> = const { RefCell::new(None) };
    /// Set when an operation on this thread failed because of a termination.
    static SEEN: Cell<bool> = const { Cell::new(false) };
    /// Whether `CURRENT` holds a signal: the blocking receives' first look, one load
    /// (a `Cell<bool>` has no destructor, so its access checks no registration state).
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
}

/// A signal that, once raised, makes every blocking receive (`recv`, `recv_timeout`,
/// `recv_deadline`, `iter`) on a thread where it is installed fail with `Terminated`, on
/// any port, whoever created it. This is how `Worker::terminate` reaches the ports a worker
/// received in its data or its messages, not only its parent port.
///
/// Once it is raised, a blocking receive there fails even when a message is waiting (the
/// message stays in its queue), as a terminated Node worker runs no more `message`
/// handlers; non-blocking ones (`try_recv`) and `recv_async` do not look at the signal.
///
/// # Examples
///
/// ```
/// use worker_threads_channel::{MessageChannel, RecvError, TerminationSignal};
///
/// let signal = TerminationSignal::new();
/// let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
/// let worker = std::thread::spawn({
///     let signal = signal.clone();
///     move || {
///         let _installed = signal.install();
///         port2.recv() // blocks: nobody posts
///     }
/// });
/// signal.terminate();
/// assert_eq!(worker.join().unwrap(), Err(RecvError::Terminated));
/// drop(port1);
/// ```
#[derive(Clone)]
pub struct TerminationSignal {
    signal: Arc<CloseSignal>,
}

impl TerminationSignal {
    /// A signal not raised yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let signal = worker_threads_channel::TerminationSignal::new();
    /// assert!(!signal.is_terminated());
    /// signal.terminate();
    /// assert!(signal.is_terminated());
    /// ```
    pub fn new() -> Self {
        Self {
            signal: CloseSignal::new(Vec::new()),
        }
    }

    /// Raises the signal: blocked receives on the threads where it is installed wake and
    /// fail with `Terminated`, and later ones fail at once. Raising it twice does nothing.
    pub fn terminate(&self) {
        self.signal.close(Ended::Terminated);
    }

    /// True once raised.
    pub fn is_terminated(&self) -> bool {
        self.signal.is_closed()
    }

    /// [`is_terminated`](Self::is_terminated), for the thread the signal is installed on:
    /// a `true` is also recorded as seen there (see [`Installed::saw_termination`]).
    pub fn observe(&self) -> bool {
        let terminated = self.is_terminated();
        if terminated {
            note_seen();
        }
        terminated
    }

    /// Installs the signal on the calling thread until the guard drops (the previous one,
    /// if any, comes back then).
    pub fn install(&self) -> Installed {
        let previous = CURRENT.with(|current| current.replace(Some(Arc::clone(&self.signal))));
        let seen_before = SEEN.with(|seen| seen.replace(false));
        INSTALLED.with(|installed| installed.set(true));
        Installed {
            previous,
            seen_before,
        }
    }
}

impl Default for TerminationSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TerminationSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminationSignal")
            .field("terminated", &self.is_terminated())
            .finish()
    }
}

/// The guard of [`TerminationSignal::install`].
///
/// # Examples
///
/// ```
/// use worker_threads_channel::{MessageChannel, RecvError, TerminationSignal};
///
/// let signal = TerminationSignal::new();
/// let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
/// let installed = signal.install();
/// signal.terminate();
/// assert_eq!(port2.recv(), Err(RecvError::Terminated));
/// assert!(installed.saw_termination());
/// drop((installed, port1));
/// ```
#[must_use = "the signal is uninstalled when the guard drops"]
pub struct Installed {
    previous: Option<Arc<CloseSignal>>,
    seen_before: bool,
}

impl Installed {
    /// Whether, since the install, an operation on this thread failed because of a
    /// termination: a receive or a post that returned `Terminated` or failed on a
    /// terminated port, on any port. A worker uses it to tell a termination its code
    /// noticed from one that raced its natural end.
    pub fn saw_termination(&self) -> bool {
        SEEN.with(Cell::get)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        INSTALLED.with(|installed| installed.set(previous.is_some()));
        CURRENT.with(|current| *current.borrow_mut() = previous);
        SEEN.with(|seen| seen.set(self.seen_before));
    }
}

impl fmt::Debug for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Installed").finish_non_exhaustive()
    }
}

/// Records that an operation on this thread failed because of a termination.
pub(crate) fn note_seen() {
    SEEN.with(|seen| seen.set(true));
}

/// Whether the calling thread has a signal installed and it was raised (the blocking
/// receives' first look): one thread-local load on a thread without a signal; on one
/// with a signal, a borrow and a load more, no `Arc` clone.
#[inline]
pub(crate) fn raised_here() -> bool {
    INSTALLED.with(Cell::get) && raised_installed()
}

#[cold]
#[inline(never)]
fn raised_installed() -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|signal| signal.is_closed())
    })
}

/// The calling thread's signal, if one is installed.
pub(crate) fn current() -> Option<Arc<CloseSignal>> {
    CURRENT.with(|current| current.borrow().clone())
}
