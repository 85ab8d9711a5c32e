//! What a worker knows about itself: its context argument, and the same facts through
//! Node-style free functions that work anywhere on the worker's thread, however deep.

use std::any::{Any, type_name};
use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt;
use std::panic::{self, PanicHookInfo};
use std::sync::{Arc, Once};

use worker_threads_channel::MessagePort;

use crate::error::ContextError;
use crate::outcome::ExitRequest;
use crate::shared::Shared;

/// The facts a worker thread keeps in its thread-local slot, type-erased.
pub(crate) struct Current {
    pub(crate) thread_id: u64,
    pub(crate) name: Option<Arc<str>>,
    port: Arc<dyn Any + Send + Sync>,
    port_type: &'static str,
    data: Arc<dyn Any + Send + Sync>,
    data_type: &'static str,
    pub(crate) shared: Arc<Shared>,
    /// The workers this worker's thread spawned: their unhandled errors become this
    /// worker's error, and those still running are terminated when it ends (as Node's).
    children: RefCell<Vec<(u64, Arc<Shared>)>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

impl Current {
    pub(crate) fn new<D, In, Out>(ctx: &WorkerContext<D, In, Out>) -> Self
    where
        D: Send + Sync + 'static,
        In: Send + 'static,
        Out: Send + 'static,
    {
        Self {
            thread_id: ctx.thread_id,
            name: ctx.name.clone(),
            port: Arc::clone(&ctx.port) as _,
            port_type: type_name::<MessagePort<Out, In>>(),
            data: Arc::clone(&ctx.data) as _,
            data_type: type_name::<D>(),
            shared: Arc::clone(&ctx.shared),
            children: RefCell::new(Vec::new()),
        }
    }

    /// Makes `self` the current thread's worker context until the guard drops.
    pub(crate) fn install(self) -> CurrentGuard {
        CURRENT.with(|current| *current.borrow_mut() = Some(self));
        CurrentGuard(())
    }
}

/// Clears the thread-local context when the worker's entry is over.
pub(crate) struct CurrentGuard(());

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        // Take it out first, then drop it outside the borrow: dropping the data may run
        // user code that asks for the context again.
        let current = CURRENT.with(|current| current.borrow_mut().take());
        drop(current);
    }
}

fn with_current<R>(f: impl FnOnce(Option<&Current>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow().as_ref()))
}

/// Records a worker spawned from the calling worker's thread (nothing off a worker).
/// Children that no longer matter (ended with no error, or with one that was handled)
/// are dropped first, so a worker that spawns children all its life keeps only those
/// still running or with an unhandled error.
pub(crate) fn adopt_child(thread_id: u64, shared: &Arc<Shared>) {
    with_current(|current| {
        if let Some(current) = current {
            let mut children = current.children.borrow_mut();
            children.retain(|(_, child)| child.still_matters());
            children.push((thread_id, Arc::clone(shared)));
        }
    });
}

/// How many children the calling worker keeps (for white-box tests).
#[cfg(test)]
pub(crate) fn kept_children() -> usize {
    with_current(|current| current.map_or(0, |current| current.children.borrow().len()))
}

/// The workers the calling worker's thread spawned, taken out of its context.
pub(crate) fn take_children() -> Vec<(u64, Arc<Shared>)> {
    with_current(|current| current.map_or_else(Vec::new, |current| current.children.take()))
}

/// True unless the calling thread runs a [`Worker`](crate::Worker). Node's
/// `isMainThread`. A plain `std::thread` is not a worker: it reports `true`, as Node has
/// no such threads.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerOptions, is_main_thread};
///
/// assert!(is_main_thread());
/// let worker: Worker<()> = Worker::spawn(WorkerOptions::new(), |_| assert!(!is_main_thread()))?;
/// assert_eq!(worker.join()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn is_main_thread() -> bool {
    with_current(|current| current.is_none())
}

/// The worker's id: unique in the process and increasing in spawn order, starting at 1;
/// 0 off a worker. Node's `threadId`.
pub fn thread_id() -> u64 {
    with_current(|current| current.map_or(0, |current| current.thread_id))
}

/// The worker's name, from [`WorkerOptions::name`](crate::WorkerOptions::name); `None` off
/// a worker or for an unnamed one.
pub fn worker_name() -> Option<Arc<str>> {
    with_current(|current| current.and_then(|current| current.name.clone()))
}

/// True once the worker was asked to stop by [`Worker::terminate`](crate::Worker::terminate).
/// A worker that computes without receiving should poll it. Always false off a worker.
pub fn is_terminating() -> bool {
    with_current(|current| current.is_some_and(|current| current.shared.termination.observe()))
}

/// The worker's end of its parent port, for a worker whose messages are `T` both ways.
/// Node's `parentPort`.
///
/// # Panics
///
/// Off a worker, or if the worker's port carries other types; see
/// [`try_parent_port`].
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerOptions, parent_port};
///
/// fn deep_helper() {
///     parent_port::<String>().post_message("from deep inside".into()).unwrap();
/// }
///
/// let worker: Worker<String> = Worker::spawn(WorkerOptions::new(), |_| deep_helper())?;
/// assert_eq!(worker.recv()?, "from deep inside");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[track_caller]
pub fn parent_port<T: Send + 'static>() -> Arc<MessagePort<T>> {
    match try_parent_port() {
        Ok(port) => port,
        Err(err @ ContextError::NotInWorker) => panic!(
            "parent_port::<{}>(): {err}: only code running inside a Worker has a parent \
             port; check is_main_thread() first, or call try_parent_port",
            type_name::<T>()
        ),
        Err(err) => panic!(
            "parent_port::<{}>(): {err}; ask for the message type the Worker was spawned \
             with, use the port the entry receives (ctx.parent_port()), or call \
             try_parent_port to handle this",
            type_name::<T>()
        ),
    }
}

/// The worker's end of its parent port, or why there is none.
///
/// # Errors
///
/// [`ContextError::NotInWorker`] off a worker; [`ContextError::WrongType`] if the port
/// does not carry `T` both ways.
pub fn try_parent_port<T: Send + 'static>() -> Result<Arc<MessagePort<T>>, ContextError> {
    with_current(|current| {
        let current = current.ok_or(ContextError::NotInWorker)?;
        Arc::clone(&current.port)
            .downcast::<MessagePort<T>>()
            .map_err(|_| ContextError::WrongType {
                what: "parent port",
                requested: type_name::<MessagePort<T>>(),
                actual: current.port_type,
            })
    })
}

/// The worker's data, from [`WorkerOptions::worker_data`](crate::WorkerOptions::worker_data).
/// Node's `workerData`.
///
/// # Panics
///
/// Off a worker, or if the data is not a `D`; see [`try_worker_data`].
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerOptions, worker_data};
///
/// struct Config { num: u32 }
/// let options = WorkerOptions::new().worker_data(Config { num: 42 });
/// let worker: Worker<()> = Worker::spawn(options, |_| assert_eq!(worker_data::<Config>().num, 42))?;
/// assert_eq!(worker.join()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[track_caller]
pub fn worker_data<D: Send + Sync + 'static>() -> Arc<D> {
    match try_worker_data() {
        Ok(data) => data,
        Err(err @ ContextError::NotInWorker) => panic!(
            "worker_data::<{}>(): {err}: only code running inside a Worker has worker \
             data; check is_main_thread() first, or call try_worker_data",
            type_name::<D>()
        ),
        Err(err) => panic!(
            "worker_data::<{}>(): {err}; ask for the type given to \
             WorkerOptions::worker_data, use the data the entry receives \
             (ctx.worker_data()), or call try_worker_data to handle this",
            type_name::<D>()
        ),
    }
}

/// The worker's data, or why there is none.
///
/// # Errors
///
/// [`ContextError::NotInWorker`] off a worker; [`ContextError::WrongType`] if the data is
/// not a `D`.
pub fn try_worker_data<D: Send + Sync + 'static>() -> Result<Arc<D>, ContextError> {
    with_current(|current| {
        let current = current.ok_or(ContextError::NotInWorker)?;
        Arc::clone(&current.data)
            .downcast::<D>()
            .map_err(|_| ContextError::WrongType {
                what: "worker data",
                requested: type_name::<D>(),
                actual: current.data_type,
            })
    })
}

/// Ends the calling worker with exit `code`, from anywhere in its code: the entry unwinds
/// (running destructors), and the worker reports `Exit(code)` with no error. Node's
/// `process.exit(code)` inside a worker. On the process's main thread it exits the
/// process, as Node does.
///
/// The first `exit` wins, as in Node: the code is recorded before the unwind starts, so
/// code that catches the unwind (`catch_unwind`, or a library that catches panics) cannot
/// change it by returning, panicking or calling `exit` again. The worker is also marked
/// terminating, so that such code's next blocking receive fails with `Terminated`.
///
/// It needs `panic = "unwind"` (Rust's default). An entry closure whose only way out is
/// `exit` needs its return type spelled (`|_| -> i32 { exit(3) }`): Rust 2024 would infer
/// `!`, which is not an exit code.
///
/// # Panics
///
/// On a thread that is neither a worker nor the process's main thread: a thread that a
/// worker spawned, or a pool task. Ending the whole process from there is never what a
/// Node program would do (its `process.exit` in a worker ends that worker); return from
/// that thread instead, or call `std::process::exit` if the process must end.
/// [`try_exit`] returns [`ContextError::NotInWorker`] instead.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerOptions, exit};
///
/// let worker: Worker<()> = Worker::spawn(WorkerOptions::new(), |_| -> i32 { exit(3) })?;
/// assert_eq!(worker.join()?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[track_caller]
pub fn exit(code: i32) -> ! {
    match try_exit(code) {
        Ok(never) => match never {},
        Err(err) => panic!(
            "exit({code}): {err}, nor the main thread; return from this thread instead, \
             or call std::process::exit to end the whole process"
        ),
    }
}

/// [`exit`], with an error instead of a panic on a thread that is neither a worker nor the
/// process's main thread.
///
/// # Errors
///
/// [`ContextError::NotInWorker`] on such a thread; nothing else returns.
///
/// # Examples
///
/// ```
/// use worker_threads_core::{ContextError, try_exit};
///
/// // A plain thread is not a worker: exiting it would end the whole process.
/// let refused = std::thread::spawn(|| try_exit(2).unwrap_err()).join().unwrap();
/// assert_eq!(refused, ContextError::NotInWorker);
/// ```
pub fn try_exit(code: i32) -> Result<Infallible, ContextError> {
    let shared = with_current(|current| current.map(|current| Arc::clone(&current.shared)));
    let Some(shared) = shared else {
        if std::thread::current().name() == Some("main") {
            std::process::exit(code);
        }
        return Err(ContextError::NotInWorker);
    };
    // The first exit wins; a later one only unwinds again.
    let _ = shared.exit_code.set(code);
    shared.termination.terminate();
    std::panic::resume_unwind(Box::new(ExitRequest(code)))
}

/// What a worker's entry receives: its parent port, its data, its id and its name.
///
/// The same facts are available anywhere on the worker's thread through
/// [`parent_port`], [`worker_data`], [`thread_id`] and [`worker_name`].
///
/// # Examples
///
/// ```
/// use worker_threads_core::{Worker, WorkerContext, WorkerOptions};
///
/// fn entry(ctx: WorkerContext<u32, (), String>) {
///     let greeting = format!("worker {} got {}", ctx.name().unwrap_or("?"), ctx.worker_data());
///     ctx.parent_port().post_message(greeting).unwrap();
/// }
///
/// let options = WorkerOptions::new().name("w1").worker_data(7u32);
/// let worker = Worker::<(), String>::spawn(options, entry)?;
/// assert_eq!(worker.recv()?, "worker w1 got 7");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WorkerContext<D, In, Out = In> {
    port: Arc<MessagePort<Out, In>>,
    data: Arc<D>,
    thread_id: u64,
    name: Option<Arc<str>>,
    shared: Arc<Shared>,
}

impl<D, In, Out> WorkerContext<D, In, Out> {
    pub(crate) fn new(
        port: MessagePort<Out, In>,
        data: D,
        thread_id: u64,
        name: Option<Arc<str>>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            port: Arc::new(port),
            data: Arc::new(data),
            thread_id,
            name,
            shared,
        }
    }

    /// The worker's end of the parent port: posts `Out` to the main side, receives `In`.
    pub fn parent_port(&self) -> &Arc<MessagePort<Out, In>> {
        &self.port
    }

    /// The worker's data.
    pub fn worker_data(&self) -> &D {
        &self.data
    }

    /// The worker's id (see [`thread_id`]).
    pub fn thread_id(&self) -> u64 {
        self.thread_id
    }

    /// The worker's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// True once [`Worker::terminate`](crate::Worker::terminate) was called.
    pub fn is_terminating(&self) -> bool {
        self.shared.termination.observe()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl<D, In, Out> fmt::Debug for WorkerContext<D, In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerContext")
            .field("thread_id", &self.thread_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Installs, once per process, a panic hook that records the location of panics on worker
/// threads (a panic payload has no location), then calls the hook that was there before.
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if !is_main_thread() {
                crate::outcome::note_panic_location(info.location().map(ToString::to_string));
            }
            previous(info);
        }));
    });
}
