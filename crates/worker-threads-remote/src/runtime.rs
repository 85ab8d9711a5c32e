//! The runtime a pool or a worker keeps for its connection: tokio's current-thread
//! scheduler, driven by a thread of its own. (A multi-thread runtime with one worker costs
//! more per task: its work-stealing queues and wake-ups for nothing to steal.)

use std::future::Future;

use tokio::runtime::{EnterGuard, Handle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A current-thread runtime on a thread named `name`, stopped when dropped (without
/// blocking: the thread ends by itself, so a pool may be dropped in async code).
pub(crate) struct Driver {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl Driver {
    pub(crate) fn start(name: &str) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                // Until the owner drops the sender; spawned tasks run meanwhile.
                let _ = runtime.block_on(stopped);
                runtime.shutdown_background();
            })?;
        Ok(Self {
            handle,
            stop: Some(stop),
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// The runtime's context on this thread (its timers and IO), for futures polled here.
    pub(crate) fn enter(&self) -> EnterGuard<'_> {
        self.handle.enter()
    }

    /// Runs `future` on the calling thread with the runtime's context entered. Not from
    /// inside the runtime's own tasks.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _context = self.enter();
        worker_threads_wait::block_on(future)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
