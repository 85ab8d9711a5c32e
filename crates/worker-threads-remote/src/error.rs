//! The errors of connecting and of serving a queue. Submitting and a task's outcome share
//! the pool crate's [`RunError`](worker_threads_pool::RunError) and
//! [`TaskError`](worker_threads_pool::TaskError).

/// The error of connecting a [`RemotePool`](crate::RemotePool) or starting a
/// [`RemoteWorker`](crate::RemoteWorker).
///
/// # Examples
///
/// ```
/// use worker_threads_remote::{ConnectError, RemotePool};
///
/// match RemotePool::builder("nats://127.0.0.1:4222", "bad name!").connect::<u32, u32>() {
///     Err(ConnectError::QueueName(name)) => assert_eq!(name, "bad name!"),
///     other => panic!("expected a refused name, got {other:?}"),
/// }
/// ```
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// A queue name is letters, digits, `-` and `_` (it names a stream and subjects).
    #[error("invalid queue name {0:?}: use letters, digits, '-' and '_'")]
    QueueName(String),
    /// A server URL could not be read.
    #[error("bad server URL: {0}")]
    Url(String),
    /// The NATS server could not be reached.
    #[error("could not connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    /// JetStream refused to create or look up the queue's stream or consumer (is the
    /// server started with `-js`?).
    #[error("JetStream: {0}")]
    JetStream(String),
    /// A subscription could not be made.
    #[error("subscribing: {0}")]
    Subscribe(String),
    /// The pool's runtime thread could not start.
    #[error("could not start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The error that ends [`RemoteWorker::join`](crate::RemoteWorker::join).
///
/// # Examples
///
/// ```no_run
/// use worker_threads_pool::Pool;
/// use worker_threads_remote::{RemoteWorker, ServeError};
///
/// let local = Pool::builder().build(|n: u64| n + 1)?;
/// let worker = RemoteWorker::builder("nats://127.0.0.1:4222", "inc").serve(local)?;
/// // Serves until stopped, or until something ends it:
/// match worker.join() {
///     Ok(()) => {}
///     Err(ServeError::JetStream(why)) => eprintln!("the queue went away: {why}"),
///     Err(other) => eprintln!("serving ended: {other}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The local pool was closed: the worker cannot take tasks.
    #[error("the local pool is closed")]
    PoolClosed,
    /// The pull subscription could not be made or remade.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// The serving task panicked.
    #[error("the serving task ended abnormally: {0}")]
    Aborted(String),
}
