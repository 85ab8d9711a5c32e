//! `Pool::map` and `Pool::map_unordered`: run an iterator's items with bounded in-flight
//! tasks.

use std::collections::VecDeque;
use std::fmt;

use crate::error::{RunError, TaskError};
use crate::pool::Pool;
use crate::task::TaskHandle;

/// Keeps up to `limit` tasks of `tasks` in flight on `pool`.
struct InFlight<'p, T, R, I> {
    pool: &'p Pool<T, R>,
    tasks: I,
    pending: VecDeque<Result<TaskHandle<R>, TaskError>>,
    limit: usize,
}

impl<'p, T, R, I> InFlight<'p, T, R, I> {
    fn new(pool: &'p Pool<T, R>, tasks: I, limit: usize) -> Self {
        Self {
            pool,
            tasks,
            pending: VecDeque::new(),
            limit: limit.max(1),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static, I: Iterator<Item = T>> InFlight<'_, T, R, I> {
    fn fill(&mut self) {
        while self.pending.len() < self.limit {
            let Some(task) = self.tasks.next() else { break };
            self.pending.push_back(match self.pool.run_wait(task) {
                Ok(handle) => Ok(handle),
                Err(RunError::Closed(_) | RunError::QueueFull(_)) => Err(TaskError::Cancelled),
            });
        }
    }
}

/// The iterator of [`Pool::map`]: results in submission order.
pub struct Map<'p, T, R, I> {
    flight: InFlight<'p, T, R, I>,
}

impl<'p, T, R, I> Map<'p, T, R, I> {
    pub(crate) fn new(pool: &'p Pool<T, R>, tasks: I, limit: usize) -> Self {
        Self {
            flight: InFlight::new(pool, tasks, limit),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static, I: Iterator<Item = T>> Iterator for Map<'_, T, R, I> {
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.flight.fill();
        let next = self.flight.pending.pop_front()?;
        Some(next.and_then(TaskHandle::join))
    }
}

/// The iterator of [`Pool::map_unordered`]: results roughly as they finish.
pub struct MapUnordered<'p, T, R, I> {
    flight: InFlight<'p, T, R, I>,
}

impl<'p, T, R, I> MapUnordered<'p, T, R, I> {
    pub(crate) fn new(pool: &'p Pool<T, R>, tasks: I, limit: usize) -> Self {
        Self {
            flight: InFlight::new(pool, tasks, limit),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static, I: Iterator<Item = T>> Iterator
    for MapUnordered<'_, T, R, I>
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.flight.fill();
        let pending = &mut self.flight.pending;
        // The first finished one, else the oldest (waiting for it).
        let at = pending
            .iter()
            .position(|entry| entry.as_ref().map_or(true, TaskHandle::is_finished))
            .unwrap_or(0);
        let next = pending.remove(at)?;
        Some(next.and_then(TaskHandle::join))
    }
}

impl<T, R, I> fmt::Debug for Map<'_, T, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("in_flight", &self.flight.pending.len())
            .finish_non_exhaustive()
    }
}

impl<T, R, I> fmt::Debug for MapUnordered<'_, T, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapUnordered")
            .field("in_flight", &self.flight.pending.len())
            .finish_non_exhaustive()
    }
}
