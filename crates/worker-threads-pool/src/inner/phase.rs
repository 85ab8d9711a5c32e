//! A pool's phase (open, closing, destroyed) and the kinds of shutting down.

/// The pool takes tasks.
pub(crate) const OPEN: u8 = 0;
/// `close` (or `close_force`) began: no task is accepted, the accepted ones run.
pub(crate) const CLOSING: u8 = 1;
/// `destroy` began: no task is accepted, the accepted ones are cancelled.
pub(crate) const DESTROYED: u8 = 2;

/// How a pool shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// Finish every accepted task (piscina's `close()`).
    Close,
    /// Cancel the queued tasks, let the running ones finish (`close({ force: true })`).
    Force,
    /// Cancel the queued and the running tasks (`destroy()`).
    Destroy,
}
