//! What a port does itself when its peer is in another process: the hooks a process layer
//! (`worker_threads_core::process`) installs on the ports of a process worker, so that a
//! message crosses on the threads that post and receive it instead of on bridge threads.
//!
//! Without hooks a message to another process is posted into a local queue, taken by a
//! bridge thread that writes it to the socket, read there by another bridge thread and
//! posted into the receiving port: four threads, each a wake-up. With them a post writes
//! the message to the socket on the posting thread ([`Sink`]), and a receive that finds
//! its queue empty reads the socket itself while it spins ([`Pump`]) before it parks: the
//! bridge threads stay, for what the fast path cannot take (a peer that is not reading,
//! a message with ports in it, a receiver that parked, end of file).

/// How a [`Sink`] disposed of a message.
///
/// # Examples
///
/// ```
/// use worker_threads_channel::remote::{Posted, Sink};
///
/// /// A sink whose peer never reads: every message goes to the port's own queue.
/// struct Backlog;
///
/// impl Sink<u8> for Backlog {
///     fn post(&self, msg: u8, queue: &mut dyn FnMut(u8) -> Result<(), u8>) -> Result<Posted, u8> {
///         queue(msg).map(|()| Posted::Queued)
///     }
/// }
///
/// let mut queued = Vec::new();
/// let posted = Backlog.post(7, &mut |m| {
///     queued.push(m);
///     Ok(())
/// });
/// assert_eq!((posted, queued), (Ok(Posted::Queued), vec![7]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// Written to the other process on the posting thread.
    Sent,
    /// Put in the port's queue, for the bridge thread to send.
    Queued,
}

/// The sending side of a port whose peer is in another process.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// use worker_threads_channel::remote::{Posted, Sink};
///
/// /// A sink that "sends" by recording: what a process worker's port does with a socket.
/// struct Recorder(Mutex<Vec<u8>>);
///
/// impl Sink<u8> for Recorder {
///     fn post(&self, msg: u8, _queue: &mut dyn FnMut(u8) -> Result<(), u8>) -> Result<Posted, u8> {
///         self.0.lock().unwrap().push(msg);
///         Ok(Posted::Sent)
///     }
/// }
///
/// let sink = Recorder(Mutex::new(Vec::new()));
/// assert_eq!(sink.post(1, &mut |m| Err(m)), Ok(Posted::Sent));
/// assert_eq!(*sink.0.lock().unwrap(), [1]);
/// ```
pub trait Sink<T>: Send + Sync {
    /// Sends `msg` to the other process now, or queues it with `queue` (the port's own
    /// queue, read by the bridge thread) when it cannot go at once: the peer is not
    /// reading, an earlier message is still queued (what one thread posts stays in
    /// order), or it does not encode on its own (a port inside it). Called once the port
    /// was seen open.
    ///
    /// The close race is the sink's to keep: a message it sent returned `Ok` to its
    /// poster, so it must reach the other process before the port's end does. The bridge
    /// thread that sends the end must therefore first wait out a send in progress and
    /// make every later post go to the queue (which is closed by then, so those posts are
    /// refused and handed back).
    ///
    /// # Errors
    ///
    /// The message, when `queue` refused it (the port is closed).
    fn post(&self, msg: T, queue: &mut dyn FnMut(T) -> Result<(), T>) -> Result<Posted, T>;
}

/// The receiving side of a port whose peer is in another process. A receive that found
/// its queue empty calls [`start`](Self::start), then [`pump`](Self::pump) until it has
/// a message or a while has passed, then [`stop`](Self::stop) (before it parks).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use worker_threads_channel::remote::Pump;
///
/// /// A pump with nothing to read: counts how often a receive asked.
/// #[derive(Default)]
/// struct Idle(AtomicUsize);
///
/// impl Pump for Idle {
///     fn start(&self) {}
///     fn pump(&self) -> bool {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         false
///     }
///     fn stop(&self) {}
/// }
///
/// let pump = Idle::default();
/// pump.start();
/// assert!(!pump.pump());
/// pump.stop();
/// assert_eq!(pump.0.load(Ordering::Relaxed), 1);
/// ```
pub trait Pump: Send + Sync {
    /// A receive is about to read: whoever else watches the socket may stop waking for
    /// what arrives (this thread takes it).
    fn start(&self);

    /// Reads what has arrived from the other process without waiting for it to begin,
    /// and delivers it (messages into the port's queue): true if anything was read.
    /// Returns at once when another thread is reading.
    fn pump(&self) -> bool;

    /// The receive that called [`start`](Self::start) stopped reading.
    fn stop(&self);
}
