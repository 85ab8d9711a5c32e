//! `on_message`: a handler run for each message on a thread of its own.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::close::{CloseSignal, Ended};

/// The handle of a handler started by [`MessagePort::on_message`](crate::MessagePort::on_message)
/// or [`BroadcastChannel::on_message`](crate::BroadcastChannel::on_message): its thread
/// receives messages and runs the handler until the port is closed and drained.
///
/// Dropping the handle detaches the thread, which goes on until the port closes.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use worker_threads_channel::MessageChannel;
///
/// let MessageChannel { port1, port2 } = MessageChannel::new();
/// let (seen_tx, seen) = mpsc::channel();
/// let listener = port2.on_message(move |n: u32, _port| seen_tx.send(n * 2).unwrap())?;
/// port1.post_message(21).unwrap();
/// assert_eq!(seen.recv()?, 42);
/// drop(port1); // the handler's thread ends once the port is closed and drained
/// listener.join().expect("the handler did not panic");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a MessageListener detaches its thread; call `stop` or `join`"]
pub struct MessageListener {
    close: Arc<CloseSignal>,
    thread: JoinHandle<()>,
}

impl MessageListener {
    pub(crate) fn spawn<F>(close: Arc<CloseSignal>, name: &str, body: F) -> io::Result<Self>
    where
        F: FnOnce() + Send + 'static,
    {
        let thread = thread::Builder::new().name(name.to_owned()).spawn(body)?;
        Ok(Self { close, thread })
    }

    /// Closes the port (as `port.close()` does, so its peer sees the close too), lets the
    /// handler finish the messages posted before the close, and waits for its thread.
    ///
    /// # Errors
    ///
    /// The panic payload if the handler panicked.
    pub fn stop(self) -> thread::Result<()> {
        self.close.close(Ended::Closed);
        self.thread.join()
    }

    /// Waits until the port is closed (by either end) and drained and the handler has run
    /// for every message.
    ///
    /// # Errors
    ///
    /// The panic payload if the handler panicked.
    pub fn join(self) -> thread::Result<()> {
        self.thread.join()
    }

    /// True once the handler's thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

impl fmt::Debug for MessageListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageListener")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
