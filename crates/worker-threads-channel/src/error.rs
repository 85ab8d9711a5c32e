//! The errors of posting and receiving.
//!
//! Every error of a post hands the message back: nothing posted is lost. `Debug` never
//! requires `T: Debug`, so a port of any message type can be `unwrap`ped in a test.

use std::fmt;

/// Writes `Name(..)` for an error that holds a message, without requiring `T: Debug`.
macro_rules! debug_without_message {
    ($ty:ident { $($variant:ident),+ }) => {
        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Self::$variant(_) => f.write_str(concat!(stringify!($variant), "(..)")),)+
                }
            }
        }
    };
}

/// Implements `into_inner` for an error whose every variant holds the message.
macro_rules! into_inner {
    ($ty:ident { $($variant:ident),+ }) => {
        impl<T> $ty<T> {
            /// Returns the message that could not be posted.
            pub fn into_inner(self) -> T {
                match self {
                    $(Self::$variant(msg) => msg,)+
                }
            }
        }
    };
}

/// The error of [`post_message`](crate::MessagePort::post_message): the port is closed.
///
/// It holds the message, which [`into_inner`](PostError::into_inner) gives back.
///
/// # Examples
///
/// ```
/// use worker_threads_channel::{MessageChannel, PostError};
///
/// let MessageChannel { port1, port2 } = MessageChannel::<String>::new();
/// port2.close();
/// let err = port1.post_message("lost?".to_string()).unwrap_err();
/// assert!(matches!(err, PostError::Closed(_)));
/// assert_eq!(err.into_inner(), "lost?");
/// ```
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum PostError<T> {
    /// The port, or its peer, was closed or dropped.
    #[error("posting on a closed port")]
    Closed(T),
}

/// The error of [`try_post_message`](crate::MessagePort::try_post_message).
///
/// Both variants hold the message.
///
/// # Examples
///
/// ```
/// use worker_threads_channel::{MessageChannel, TryPostError};
///
/// let MessageChannel { port1, port2 } = MessageChannel::bounded(1);
/// port1.try_post_message(1).unwrap();
/// assert_eq!(port1.try_post_message(2), Err(TryPostError::Full(2)));
/// drop(port2);
/// assert_eq!(port1.try_post_message(3).unwrap_err().into_inner(), 3);
/// ```
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum TryPostError<T> {
    /// A bounded port is full.
    #[error("posting on a full port")]
    Full(T),
    /// The port, or its peer, was closed or dropped.
    #[error("posting on a closed port")]
    Closed(T),
}

/// The error of [`post_timeout`](crate::MessagePort::post_timeout) and
/// [`post_deadline`](crate::MessagePort::post_deadline).
///
/// Both variants hold the message.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_channel::{MessageChannel, PostTimeoutError};
///
/// let MessageChannel { port1, port2 } = MessageChannel::bounded(1);
/// port1.post_message(1).unwrap();
/// // The queue is full and nobody receives: the message comes back.
/// assert_eq!(
///     port1.post_timeout(2, Duration::from_millis(1)),
///     Err(PostTimeoutError::Timeout(2))
/// );
/// drop(port2);
/// assert_eq!(port1.post_timeout(3, Duration::ZERO), Err(PostTimeoutError::Closed(3)));
/// ```
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum PostTimeoutError<T> {
    /// A bounded port stayed full until the deadline.
    #[error("timed out posting on a full port")]
    Timeout(T),
    /// The port, or its peer, was closed or dropped.
    #[error("posting on a closed port")]
    Closed(T),
}

debug_without_message!(PostError { Closed });
debug_without_message!(TryPostError { Full, Closed });
debug_without_message!(PostTimeoutError { Timeout, Closed });
into_inner!(PostError { Closed });
into_inner!(TryPostError { Full, Closed });
into_inner!(PostTimeoutError { Timeout, Closed });

impl<T> TryPostError<T> {
    /// True if the port was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// True if the port was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> PostTimeoutError<T> {
    /// True if the post timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// True if the port was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> From<PostError<T>> for TryPostError<T> {
    fn from(err: PostError<T>) -> Self {
        match err {
            PostError::Closed(msg) => Self::Closed(msg),
        }
    }
}

impl<T> From<PostError<T>> for PostTimeoutError<T> {
    fn from(err: PostError<T>) -> Self {
        match err {
            PostError::Closed(msg) => Self::Closed(msg),
        }
    }
}

/// The error of [`recv`](crate::MessagePort::recv): the port is closed and every message
/// posted before the close has been received.
///
/// # Examples
///
/// ```
/// use worker_threads_channel::{MessageChannel, RecvError};
///
/// let MessageChannel { port1, port2 } = MessageChannel::new();
/// port1.post_message("last").unwrap();
/// drop(port1);
/// // What was posted before the close is still received; then the close shows.
/// assert_eq!(port2.recv(), Ok("last"));
/// assert_eq!(port2.recv(), Err(RecvError::Closed));
/// ```
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvError {
    /// The port, or its peer, was closed or dropped, and nothing is left to receive.
    #[error("receiving on a closed port")]
    Closed,
    /// The port was closed by [`terminate`](crate::MessagePort::terminate) (a worker's
    /// termination): receives fail at once.
    #[error("receiving on a terminated port")]
    Terminated,
}

/// The error of [`try_recv`](crate::MessagePort::try_recv).
///
/// # Examples
///
/// ```
/// use worker_threads_channel::{MessageChannel, TryRecvError};
///
/// let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
/// assert_eq!(port2.try_recv(), Err(TryRecvError::Empty));
/// drop(port1);
/// assert!(port2.try_recv().unwrap_err().is_closed());
/// ```
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// No message is waiting, but one may come.
    #[error("receiving on an empty port")]
    Empty,
    /// The port is closed and nothing is left to receive.
    #[error("receiving on a closed port")]
    Closed,
    /// The port was terminated.
    #[error("receiving on a terminated port")]
    Terminated,
}

/// The error of [`recv_timeout`](crate::MessagePort::recv_timeout) and
/// [`recv_deadline`](crate::MessagePort::recv_deadline).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use worker_threads_channel::{MessageChannel, RecvTimeoutError};
///
/// let MessageChannel { port1, port2 } = MessageChannel::<u8>::new();
/// assert_eq!(port2.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// drop(port1);
/// assert_eq!(port2.recv_timeout(Duration::ZERO), Err(RecvTimeoutError::Closed));
/// ```
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// No message came before the deadline.
    #[error("timed out waiting on a port")]
    Timeout,
    /// The port is closed and nothing is left to receive.
    #[error("receiving on a closed port")]
    Closed,
    /// The port was terminated.
    #[error("receiving on a terminated port")]
    Terminated,
}

impl TryRecvError {
    /// True if no message was waiting.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }

    /// True if the port is closed and drained.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    /// True if the port was terminated.
    pub fn is_terminated(&self) -> bool {
        matches!(self, Self::Terminated)
    }

    /// The error of a blocking receive that met the same end, for `Closed` and
    /// `Terminated`; `Empty` has none, and gives `Closed`.
    pub(crate) fn into_recv_error(self) -> RecvError {
        match self {
            Self::Terminated => RecvError::Terminated,
            Self::Empty | Self::Closed => RecvError::Closed,
        }
    }

    /// As [`into_recv_error`](Self::into_recv_error), for a receive with a deadline.
    pub(crate) fn into_timeout_error(self) -> RecvTimeoutError {
        self.into_recv_error().into()
    }
}

impl RecvError {
    /// True if the port is closed and drained.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    /// True if the port was terminated.
    pub fn is_terminated(&self) -> bool {
        matches!(self, Self::Terminated)
    }
}

impl RecvTimeoutError {
    /// True if the receive timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    /// True if the port is closed and drained.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    /// True if the port was terminated.
    pub fn is_terminated(&self) -> bool {
        matches!(self, Self::Terminated)
    }

    /// The error of a blocking receive that met the same end; `Timeout` gives `Closed`.
    pub(crate) fn into_recv_error(self) -> RecvError {
        match self {
            Self::Terminated => RecvError::Terminated,
            Self::Timeout | Self::Closed => RecvError::Closed,
        }
    }
}

impl From<RecvError> for TryRecvError {
    fn from(err: RecvError) -> Self {
        match err {
            RecvError::Closed => Self::Closed,
            RecvError::Terminated => Self::Terminated,
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(err: RecvError) -> Self {
        match err {
            RecvError::Closed => Self::Closed,
            RecvError::Terminated => Self::Terminated,
        }
    }
}

/// The error of [`BroadcastChannel::try_new`](crate::BroadcastChannel::try_new): the name
/// is already used by instances of another message type.
///
/// A broadcast group is one name and one type; an instance of another type could never
/// hear the group, so joining is refused instead of silently splitting it.
///
/// # Examples
///
/// ```
/// use worker_threads_channel::BroadcastChannel;
///
/// let _numbers = BroadcastChannel::<u32>::new("doc-broadcast-type-error");
/// let refused = BroadcastChannel::<String>::try_new("doc-broadcast-type-error").unwrap_err();
/// assert_eq!(refused.name(), "doc-broadcast-type-error");
/// assert_eq!(refused.carries(), "u32");
/// ```
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone)]
#[error("broadcast channel `{name}` carries `{carries}`, not `{requested}`")]
pub struct BroadcastTypeError {
    name: String,
    carries: &'static str,
    requested: &'static str,
}

impl BroadcastTypeError {
    pub(crate) fn new(name: &str, carries: &'static str, requested: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            carries,
            requested,
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message type the group carries.
    pub fn carries(&self) -> &'static str {
        self.carries
    }

    /// The message type that was asked for.
    pub fn requested(&self) -> &'static str {
        self.requested
    }
}
