//! `WorkerEvent` and the iterator of a worker's events.

use std::fmt;

use crate::error::WorkerError;
use crate::worker::Worker;

/// One event of a worker's life, as [`Worker::events`] yields them: Node's `'online'`,
/// `'message'`, `'error'` and `'exit'`.
#[derive(Clone)]
pub enum WorkerEvent<T> {
    /// The worker's thread started and is about to run its entry.
    Online,
    /// A message the worker posted.
    Message(T),
    /// The worker panicked or its entry returned an error; `Exit(1)` follows.
    Error(WorkerError),
    /// The worker ended with this exit code; nothing follows.
    Exit(i32),
}

impl<T: fmt::Debug> fmt::Debug for WorkerEvent<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Online => f.write_str("Online"),
            Self::Message(msg) => f.debug_tuple("Message").field(msg).finish(),
            Self::Error(err) => f.debug_tuple("Error").field(err).finish(),
            Self::Exit(code) => f.debug_tuple("Exit").field(code).finish(),
        }
    }
}

/// Where a worker's event stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Start,
    Messages,
    Ending,
    Exit,
    Done,
}

/// The iterator of [`Worker::events`]. It blocks for the next event and ends after
/// `Exit`; a second call to `events` continues where the first stopped.
pub struct Events<'a, In, Out> {
    worker: &'a mut Worker<In, Out>,
}

impl<'a, In, Out> Events<'a, In, Out> {
    pub(crate) fn new(worker: &'a mut Worker<In, Out>) -> Self {
        Self { worker }
    }
}

impl<In, Out> Iterator for Events<'_, In, Out> {
    type Item = WorkerEvent<Out>;

    fn next(&mut self) -> Option<WorkerEvent<Out>> {
        loop {
            match *self.worker.stage_mut() {
                Stage::Start => {
                    self.worker.wait_online();
                    *self.worker.stage_mut() = Stage::Messages;
                    return Some(WorkerEvent::Online);
                }
                Stage::Messages => match self.worker.recv() {
                    Ok(msg) => return Some(WorkerEvent::Message(msg)),
                    Err(_) => *self.worker.stage_mut() = Stage::Ending,
                },
                Stage::Ending => {
                    *self.worker.stage_mut() = Stage::Exit;
                    if let Some(error) = &self.worker.wait_outcome().error {
                        return Some(WorkerEvent::Error(error.clone()));
                    }
                }
                Stage::Exit => {
                    *self.worker.stage_mut() = Stage::Done;
                    return Some(WorkerEvent::Exit(self.worker.wait_outcome().code));
                }
                Stage::Done => return None,
            }
        }
    }
}

impl<In, Out> fmt::Debug for Events<'_, In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}
