//! A worker process's side: its runtime (the IPC channel to the primary and the thread
//! that reads it), the `Primary` handle for messages, and `listen`.

pub(crate) mod listener;
pub(crate) mod primary;
pub(crate) mod runtime;
