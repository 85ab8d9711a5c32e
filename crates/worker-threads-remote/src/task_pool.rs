//! [`TaskPool`] for [`RemotePool`] and [`PoolHandle`] for [`RemoteHandle`]: code generic
//! over pools runs on this one as it does on a local pool.

use std::future::Future;
use std::sync::Arc;

use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker_threads_pool::{PoolHandle, RunError, TaskError, TaskPool};

use crate::handle::RemoteHandle;
use crate::pool::RemotePool;

impl<T, R> TaskPool<T, R> for RemotePool<T, R>
where
    T: Serialize + Send + 'static,
    R: DeserializeOwned + Send + 'static,
{
    type Handle = RemoteHandle<R>;

    fn run(&self, task: T) -> Result<RemoteHandle<R>, RunError<T>> {
        RemotePool::run(self, task)
    }

    fn run_wait(&self, task: T) -> Result<RemoteHandle<R>, RunError<T>> {
        RemotePool::run_wait(self, task)
    }

    fn run_async(&self, task: T) -> impl Future<Output = Result<RemoteHandle<R>, RunError<T>>> {
        RemotePool::run_async(self, task)
    }

    fn map<I>(&self, tasks: I) -> impl Iterator<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
    {
        RemotePool::map(self, tasks)
    }

    fn map_unordered<I>(&self, tasks: I) -> impl Iterator<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
    {
        RemotePool::map_unordered(self, tasks)
    }

    fn map_stream<I>(&self, tasks: I) -> impl Stream<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Unpin,
    {
        RemotePool::map_stream(self, tasks)
    }

    fn map_unordered_stream<I>(&self, tasks: I) -> impl Stream<Item = Result<R, TaskError>>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Unpin,
    {
        RemotePool::map_unordered_stream(self, tasks)
    }

    fn queue_size(&self) -> usize {
        RemotePool::queue_size(self)
    }

    fn max_queue(&self) -> usize {
        RemotePool::max_queue(self)
    }

    fn needs_drain(&self) -> bool {
        RemotePool::needs_drain(self)
    }

    fn wait_drain(&self) {
        RemotePool::wait_drain(self);
    }

    fn drained(&self) -> impl Future<Output = ()> {
        RemotePool::drained(self)
    }

    fn close(&self) {
        RemotePool::close(self);
    }

    fn destroy(&self) {
        RemotePool::destroy(self);
    }

    fn is_closed(&self) -> bool {
        RemotePool::is_closed(self)
    }
}

impl<R: Send + 'static> PoolHandle<R> for RemoteHandle<R> {
    fn join(self) -> Result<R, TaskError> {
        RemoteHandle::join(self)
    }

    fn is_finished(&self) -> bool {
        RemoteHandle::is_finished(self)
    }

    fn cancel(&self) -> bool {
        RemoteHandle::cancel(self)
    }

    fn cancel_with(&self, reason: impl Into<Arc<str>>) -> bool {
        RemoteHandle::cancel_with(self, reason)
    }

    fn cancel_reason(&self) -> Option<Arc<str>> {
        RemoteHandle::cancel_reason(self)
    }

    fn id(&self) -> u64 {
        RemoteHandle::id(self)
    }
}
