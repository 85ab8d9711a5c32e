//! Who sleeps on a condition, and how they are woken: [`Waiters`], a list of parked
//! threads ([`Parker`]) and async tasks (`Waker`s), with a flag that lets a notifier with
//! nobody to wake skip the list's lock.
//!
//! # Protocol (no wake-up lost)
//!
//! A sleeper that found its condition false **registers**, **then looks at the condition
//! again**, and sleeps only if it is still false. A notifier **makes the condition true,
//! then looks for sleepers** ([`Waiters::notify_one`], [`Waiters::notify_all`]).
//!
//! Registering stores `is_empty = false` (`SeqCst`) under the list's lock, then reaches an
//! [`order_point`](crate::sync::order_point) before the second look, whose loads are
//! `SeqCst`; a notifier's change of the condition is a `SeqCst` read-modify-write (a queue
//! slot claimed, a close mark set), and its look at `is_empty` is an `order_point` then a
//! `SeqCst` load. In the single order of those operations, either the registration comes
//! first (the notifier sees `is_empty == false`, takes the lock, and wakes the entry,
//! which was pushed before the flag was stored) or the change comes first (the sleeper's
//! second look sees it). crossbeam-channel's `SyncWaker` keeps the same promise the same
//! way.
//!
//! A woken entry is removed by its notifier, so two notifies wake two sleepers. A sleeper
//! that wakes (notified, timed out, or spuriously) unregisters (a no-op if it was
//! notified) and looks again: wake-ups are hints, the condition is the truth.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::deadline::Deadline;
use crate::lock::lock;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::thread::{self, Thread};
use crate::sync::{Arc, Mutex, order_point};

/// A registration in a [`Waiters`] list, to withdraw it with [`Waiters::unregister`].
///
/// # Examples
///
/// ```
/// use worker_threads_wait::{Parker, Waiters};
///
/// let waiters = Waiters::new();
/// let token = waiters.register(&Parker::current());
/// assert!(waiters.has_sleepers());
/// waiters.unregister(token); // the condition held after all: withdraw
/// assert!(!waiters.has_sleepers());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token(u64);

/// A thread that parks until woken: the thread side of a [`Waiters`] entry.
///
/// # Examples
///
/// ```
/// use worker_threads_wait::{Deadline, Parker, Waiters};
///
/// let waiters = Waiters::new();
/// let parker = Parker::current();
/// let _token = waiters.register(&parker);
/// assert!(waiters.notify_one()); // wakes it: the park returns at once
/// assert!(parker.park(Deadline::Never));
/// ```
#[derive(Debug)]
pub struct Parker {
    thread: Thread,
    woken: AtomicBool,
}

impl Parker {
    /// A parker for the calling thread, not woken yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use worker_threads_wait::{Deadline, Parker};
    ///
    /// // Not woken: the park ends at the deadline.
    /// assert!(!Parker::current().park(Deadline::after(Duration::from_millis(1))));
    /// ```
    pub fn current() -> Arc<Parker> {
        Arc::new(Parker {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        })
    }

    /// Parks until woken or `deadline`; true if woken. A parker is for one round of
    /// waiting (register, look again, park): make a new one for the next.
    pub fn park(&self, deadline: Deadline) -> bool {
        // A load, not a swap: loom lets a swap read a flag older than the unpark that
        // woke the thread, and a parker is not reused, so nothing needs resetting.
        while !self.woken.load(Ordering::Acquire) {
            match deadline {
                Deadline::Never => thread::park(),
                Deadline::At(at) => {
                    let now = Instant::now();
                    if now >= at {
                        return self.woken.load(Ordering::Acquire);
                    }
                    park_timeout(at - now);
                }
            }
        }
        true
    }

    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

#[cfg(not(worker_threads_loom))]
fn park_timeout(timeout: std::time::Duration) {
    std::thread::park_timeout(timeout);
}

/// Loom has no timed park: models never time out.
#[cfg(worker_threads_loom)]
fn park_timeout(_timeout: std::time::Duration) {
    thread::park();
}

#[derive(Debug)]
enum Sleeper {
    Thread(Arc<Parker>),
    Task(Waker),
}

impl Sleeper {
    fn wake(self) {
        match self {
            Sleeper::Thread(parker) => parker.wake(),
            Sleeper::Task(waker) => waker.wake(),
        }
    }
}

#[derive(Debug, Default)]
struct Entries {
    list: VecDeque<(Token, Sleeper)>,
    next: u64,
}

impl Entries {
    fn push(&mut self, sleeper: Sleeper) -> Token {
        let token = Token(self.next);
        self.next += 1;
        self.list.push_back((token, sleeper));
        token
    }
}

/// The threads and tasks sleeping on one condition (a queue's "not empty", "not full",
/// a closed flag). See the module doc for the protocol.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use worker_threads_wait::{Deadline, Waiters};
///
/// let ready = Arc::new(AtomicBool::new(false));
/// let waiters = Arc::new(Waiters::new());
/// let setter = {
///     let (ready, waiters) = (Arc::clone(&ready), Arc::clone(&waiters));
///     std::thread::spawn(move || {
///         ready.store(true, Ordering::SeqCst);
///         waiters.notify_all();
///     })
/// };
/// assert!(waiters.wait_until(|| ready.load(Ordering::SeqCst), Deadline::Never));
/// setter.join().unwrap();
/// ```
#[derive(Debug)]
pub struct Waiters {
    entries: Mutex<Entries>,
    /// True when `entries` is empty: a notifier with nobody to wake reads only this.
    is_empty: AtomicBool,
}

impl Default for Waiters {
    fn default() -> Self {
        Self::new()
    }
}

impl Waiters {
    /// A list with nobody in it.
    ///
    /// # Examples
    ///
    /// ```
    /// let waiters = worker_threads_wait::Waiters::new();
    /// assert!(!waiters.has_sleepers());
    /// assert!(!waiters.notify_one(), "nobody to wake");
    /// ```
    pub fn new() -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            is_empty: AtomicBool::new(true),
        }
    }

    fn add(&self, sleeper: Sleeper) -> Token {
        let token = {
            let mut entries = lock(&self.entries);
            let token = entries.push(sleeper);
            self.is_empty.store(false, Ordering::SeqCst);
            token
        };
        // The caller looks at its condition next: ordered after the flag (module doc).
        order_point();
        token
    }

    /// Registers the thread of `parker`; the caller then looks at its condition again
    /// before it parks.
    pub fn register(&self, parker: &Arc<Parker>) -> Token {
        self.add(Sleeper::Thread(Arc::clone(parker)))
    }

    /// Registers a task, or, if `token` is still registered, replaces its waker: the poll
    /// form of [`register`](Self::register). The caller looks at its condition again
    /// before it returns `Pending`.
    pub fn register_waker(&self, waker: &Waker, token: &mut Option<Token>) {
        if let Some(registered) = *token {
            let mut entries = lock(&self.entries);
            if let Some((_, sleeper)) = entries.list.iter_mut().find(|(t, _)| *t == registered) {
                match sleeper {
                    Sleeper::Task(old) if old.will_wake(waker) => {}
                    sleeper => *sleeper = Sleeper::Task(waker.clone()),
                }
                drop(entries);
                order_point();
                return;
            }
        }
        *token = Some(self.add(Sleeper::Task(waker.clone())));
    }

    /// Withdraws a registration (nothing if a notify took it already).
    pub fn unregister(&self, token: Token) {
        let mut entries = lock(&self.entries);
        if let Some(at) = entries.list.iter().position(|(t, _)| *t == token) {
            entries.list.remove(at);
            self.is_empty
                .store(entries.list.is_empty(), Ordering::SeqCst);
        }
    }

    /// Whether nobody is registered, as a notifier sees it after its change (module doc).
    #[inline]
    fn nobody(&self) -> bool {
        order_point();
        self.is_empty.load(Ordering::SeqCst)
    }

    /// Wakes the longest-registered sleeper, if any; true if one was woken. Costs one
    /// load when nobody sleeps.
    #[inline]
    pub fn notify_one(&self) -> bool {
        if self.nobody() {
            return false;
        }
        self.notify_one_slow()
    }

    #[cold]
    fn notify_one_slow(&self) -> bool {
        let sleeper = {
            let mut entries = lock(&self.entries);
            let first = entries.list.pop_front();
            self.is_empty
                .store(entries.list.is_empty(), Ordering::SeqCst);
            first
        };
        match sleeper {
            Some((_, sleeper)) => {
                sleeper.wake();
                true
            }
            None => false,
        }
    }

    /// Whether anybody is registered (a snapshot).
    pub fn has_sleepers(&self) -> bool {
        !self.is_empty.load(Ordering::SeqCst)
    }

    /// Waits (on this thread) until `ready()`, or `deadline`: looks, spins briefly, then
    /// sleeps here between looks. True if `ready()` held.
    pub fn wait_until(&self, ready: impl Fn() -> bool, deadline: Deadline) -> bool {
        self.wait_until_hinted(&ready, &ready, deadline)
    }

    /// As [`wait_until`](Self::wait_until), spinning on `hint()` (a cheaper look that
    /// may be wrong: the caller looks again) before it registers and looks at `ready()`.
    pub fn wait_until_hinted(
        &self,
        hint: impl Fn() -> bool,
        ready: impl Fn() -> bool,
        deadline: Deadline,
    ) -> bool {
        if ready() || !crate::spin::spin_while(|| !hint()) {
            return true;
        }
        loop {
            if deadline.has_passed() {
                return ready();
            }
            let parker = Parker::current();
            let token = self.register(&parker);
            if !ready() {
                parker.park(deadline);
            }
            self.unregister(token);
            if ready() {
                return true;
            }
        }
    }

    /// A future that is ready once `ready()` holds, sleeping here between looks (the async
    /// form of [`wait_until`](Self::wait_until)). Dropping it withdraws its registration.
    pub fn until<F: Fn() -> bool>(&self, ready: F) -> Until<'_, F> {
        Until {
            waiters: self,
            ready,
            token: None,
        }
    }

    /// Wakes every sleeper.
    pub fn notify_all(&self) {
        if self.nobody() {
            return;
        }
        let sleepers = {
            let mut entries = lock(&self.entries);
            self.is_empty.store(true, Ordering::SeqCst);
            std::mem::take(&mut entries.list)
        };
        for (_, sleeper) in sleepers {
            sleeper.wake();
        }
    }
}

/// The one thread or task that waits for a single event (a pool task's resolution): the
/// one-sleeper form of [`Waiters`], with the same protocol (register, then look again;
/// change, then look for the sleeper) in less room.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use worker_threads_wait::{Deadline, Joiner, Parker};
///
/// let done = Arc::new(AtomicBool::new(false));
/// let joiner = Arc::new(Joiner::new());
/// let finisher = {
///     let (done, joiner) = (Arc::clone(&done), Arc::clone(&joiner));
///     std::thread::spawn(move || {
///         done.store(true, Ordering::SeqCst);
///         joiner.notify();
///     })
/// };
/// // Register, look again, park: the one waiter's protocol.
/// while !done.load(Ordering::SeqCst) {
///     let parker = Parker::current();
///     joiner.register(&parker);
///     if !done.load(Ordering::SeqCst) {
///         parker.park(Deadline::Never);
///     }
///     joiner.unregister();
/// }
/// finisher.join().unwrap();
/// ```
#[derive(Debug)]
pub struct Joiner {
    slot: Mutex<Option<Sleeper>>,
    /// True while a sleeper is registered: a notifier with nobody to wake reads only this.
    waiting: AtomicBool,
}

impl Default for Joiner {
    fn default() -> Self {
        Self::new()
    }
}

impl Joiner {
    /// Nobody waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let joiner = worker_threads_wait::Joiner::new();
    /// joiner.notify(); // nobody registered: nothing happens
    /// ```
    pub fn new() -> Self {
        Self {
            slot: Mutex::new(None),
            waiting: AtomicBool::new(false),
        }
    }

    fn set(&self, sleeper: Option<Sleeper>) {
        {
            let mut slot = lock(&self.slot);
            self.waiting.store(sleeper.is_some(), Ordering::SeqCst);
            *slot = sleeper;
        }
        order_point();
    }

    /// Registers the thread of `parker` (replacing any other sleeper); the caller looks
    /// again before it parks.
    pub fn register(&self, parker: &Arc<Parker>) {
        self.set(Some(Sleeper::Thread(Arc::clone(parker))));
    }

    /// Registers (or refreshes) a task's waker; the caller looks again before `Pending`.
    pub fn register_waker(&self, waker: &Waker) {
        {
            let slot = lock(&self.slot);
            if matches!(&*slot, Some(Sleeper::Task(old)) if old.will_wake(waker)) {
                drop(slot);
                order_point();
                return;
            }
        }
        self.set(Some(Sleeper::Task(waker.clone())));
    }

    /// Withdraws the registration.
    pub fn unregister(&self) {
        if self.waiting.load(Ordering::SeqCst) {
            self.set(None);
        }
    }

    /// Wakes the sleeper, if one is registered. Costs one load when nobody waits.
    #[inline]
    pub fn notify(&self) {
        order_point();
        if !self.waiting.load(Ordering::SeqCst) {
            return;
        }
        let sleeper = {
            let mut slot = lock(&self.slot);
            self.waiting.store(false, Ordering::SeqCst);
            slot.take()
        };
        if let Some(sleeper) = sleeper {
            sleeper.wake();
        }
    }
}

/// The future of [`Waiters::until`].
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::pin::pin;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::task::{Context, Poll, Waker};
/// use worker_threads_wait::Waiters;
///
/// let (ready, waiters) = (AtomicBool::new(false), Waiters::new());
/// let mut until = pin!(waiters.until(|| ready.load(Ordering::SeqCst)));
/// let mut cx = Context::from_waker(Waker::noop());
/// assert_eq!(until.as_mut().poll(&mut cx), Poll::Pending);
/// ready.store(true, Ordering::SeqCst);
/// waiters.notify_all();
/// assert_eq!(until.as_mut().poll(&mut cx), Poll::Ready(()));
/// ```
#[must_use = "a future does nothing unless polled"]
pub struct Until<'a, F> {
    waiters: &'a Waiters,
    ready: F,
    token: Option<Token>,
}

// Nothing in it is pinned: `F` is only called, never moved or borrowed across polls.
impl<F> Unpin for Until<'_, F> {}

impl<F: Fn() -> bool> Future for Until<'_, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if !(this.ready)() {
            this.waiters.register_waker(cx.waker(), &mut this.token);
            if !(this.ready)() {
                return Poll::Pending;
            }
        }
        if let Some(token) = this.token.take() {
            this.waiters.unregister(token);
        }
        Poll::Ready(())
    }
}

impl<F> Drop for Until<'_, F> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.waiters.unregister(token);
        }
    }
}

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::task::Wake;
    use std::time::Duration;

    use super::{Parker, Waiters};
    use crate::deadline::Deadline;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn each_notify_wakes_one_more_sleeper_in_order_of_registration() {
        let waiters = Waiters::new();
        let counts: Vec<Arc<Count>> = (0..3)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let mut tokens = vec![None; 3];
        for (count, token) in counts.iter().zip(&mut tokens) {
            waiters.register_waker(&Arc::clone(count).into(), token);
        }
        assert!(waiters.notify_one());
        assert!(waiters.notify_one());
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [1, 1, 0]);
        // The third is still registered; withdrawn, nobody is left to wake.
        waiters.unregister(tokens[2].unwrap());
        assert!(!waiters.notify_one());
        assert_eq!(counts[2].0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_registered_waker_is_replaced_not_added() {
        let waiters = Waiters::new();
        let (first, second) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let mut token = None;
        waiters.register_waker(&Arc::clone(&first).into(), &mut token);
        waiters.register_waker(&Arc::clone(&second).into(), &mut token);
        waiters.notify_all();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_parked_thread_wakes_on_notify_and_a_deadline_ends_a_park() {
        let waiters = Arc::new(Waiters::new());
        let (registered_tx, registered) = mpsc::channel();
        let sleeper = std::thread::spawn({
            let waiters = Arc::clone(&waiters);
            move || {
                let parker = Parker::current();
                let _token = waiters.register(&parker);
                registered_tx.send(()).unwrap();
                parker.park(Deadline::Never)
            }
        });
        registered.recv().unwrap();
        assert!(waiters.notify_one());
        assert!(sleeper.join().unwrap());

        let parker = Parker::current();
        let start = std::time::Instant::now();
        assert!(!parker.park(Deadline::after(Duration::from_millis(10))));
        assert!(start.elapsed() >= Duration::from_millis(10));
    }
}
