//! How a worker's run becomes an exit code and maybe an error: the entry's return value,
//! `exit(code)`, or a panic.

use std::any::Any;
use std::cell::RefCell;
use std::error::Error;
use std::sync::Arc;

use crate::error::WorkerError;

/// What a worker's entry may return. `()` exits 0, an `i32` is the exit code, `Ok(x)` is
/// what `x` gives, and `Err(e)` reports `e` as the worker's error with exit code 1.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerOptions};
///
/// // An entry may return `()` (code 0), an `i32` code, or a `Result` of either.
/// let worker = Worker::<()>::spawn(WorkerOptions::new(), |_ctx| 3)?;
/// assert_eq!(worker.join()?, 3);
/// let worker = Worker::<()>::spawn(WorkerOptions::new(), |_ctx| Ok::<i32, std::io::Error>(4))?;
/// assert_eq!(worker.join()?, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait IntoExitCode {
    /// The exit code, or the error the worker ends with.
    fn into_exit_code(self) -> Result<i32, Box<dyn Error + Send + Sync>>;
}

impl IntoExitCode for () {
    fn into_exit_code(self) -> Result<i32, Box<dyn Error + Send + Sync>> {
        Ok(0)
    }
}

impl IntoExitCode for i32 {
    fn into_exit_code(self) -> Result<i32, Box<dyn Error + Send + Sync>> {
        Ok(self)
    }
}

impl<T: IntoExitCode, E: Into<Box<dyn Error + Send + Sync>>> IntoExitCode for Result<T, E> {
    fn into_exit_code(self) -> Result<i32, Box<dyn Error + Send + Sync>> {
        self.map_err(Into::into)?.into_exit_code()
    }
}

/// How a worker ended.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub(crate) code: i32,
    pub(crate) error: Option<WorkerError>,
}

impl Outcome {
    /// A worker thread that is gone without reporting its exit. The thread always reports
    /// before it drops its end, so this means the process is tearing down.
    pub(crate) fn vanished() -> Self {
        Self {
            code: 1,
            error: Some(WorkerError::Panicked {
                message: "worker thread ended without reporting its exit".into(),
                location: None,
            }),
        }
    }

    pub(crate) fn from_return(value: impl IntoExitCode) -> Self {
        match value.into_exit_code() {
            Ok(code) => Self { code, error: None },
            Err(err) => Self {
                code: 1,
                error: Some(WorkerError::Failed(Arc::from(err))),
            },
        }
    }

    pub(crate) fn from_unwind(payload: Box<dyn Any + Send>) -> Self {
        if let Some(ExitRequest(code)) = payload.downcast_ref::<ExitRequest>() {
            return Self {
                code: *code,
                error: None,
            };
        }
        let message = worker_threads_wait::panic_message(&*payload);
        let location = LAST_PANIC_LOCATION.with(|last| last.borrow_mut().take());
        Self {
            code: 1,
            error: Some(WorkerError::Panicked { message, location }),
        }
    }
}

thread_local! {
    /// Where the last panic on this (worker) thread happened, recorded by our hook.
    static LAST_PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records where the panic now unwinding this worker thread happened (our panic hook's
/// part; a panic payload has no location).
pub(crate) fn note_panic_location(location: Option<String>) {
    LAST_PANIC_LOCATION.with(|last| *last.borrow_mut() = location);
}

/// The payload of the unwind that [`exit`] starts on a worker.
pub(crate) struct ExitRequest(pub(crate) i32);
