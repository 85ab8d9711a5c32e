//! The Node-style free functions, from a helper deep in a worker: `is_main_thread`,
//! `thread_id`, `parent_port`, `worker_data`, their `try_` twins and their errors.

use std::sync::Arc;

use worker_threads_core::{
    ContextError, Worker, WorkerOptions, is_main_thread, parent_port, thread_id, try_parent_port,
    try_worker_data, worker_data, worker_name,
};

#[derive(Debug, PartialEq)]
struct Config {
    num: u32,
}

/// A helper three calls deep, knowing nothing of the context argument.
fn deep() -> (bool, u64, Option<Arc<str>>, u32) {
    fn deeper() -> (bool, u64, Option<Arc<str>>, u32) {
        fn deepest() -> (bool, u64, Option<Arc<str>>, u32) {
            let config = worker_data::<Config>();
            parent_port::<String>()
                .post_message("hello from deep".into())
                .unwrap();
            (is_main_thread(), thread_id(), worker_name(), config.num)
        }
        deepest()
    }
    deeper()
}

#[test]
fn the_free_functions_work_deep_inside_a_worker() {
    assert!(is_main_thread());
    assert_eq!(thread_id(), 0);
    assert_eq!(worker_name(), None);
    let options = WorkerOptions::new()
        .name("deep-one")
        .worker_data(Config { num: 42 });
    let worker: Worker<String> = Worker::spawn(options, |ctx| {
        let facts = deep();
        assert_eq!(ctx.thread_id(), facts.1);
        assert_eq!(ctx.worker_data(), &Config { num: 42 });
        facts
            .2
            .as_deref()
            .map(str::to_owned)
            .ok_or("no name")
            .map(|name| {
                ctx.parent_port()
                    .post_message(format!("{}:{}:{}:{}", facts.0, facts.1, name, facts.3))
                    .unwrap();
            })
    })
    .unwrap();
    assert_eq!(worker.recv().unwrap(), "hello from deep");
    let facts = worker.recv().unwrap();
    assert_eq!(facts, format!("false:{}:deep-one:42", worker.thread_id()));
    assert_eq!(worker.name(), Some("deep-one"));
    assert_eq!(worker.join().unwrap(), 0);
}

#[test]
fn wrong_types_give_the_typed_error() {
    let (tx, rx) = std::sync::mpsc::channel();
    let options = WorkerOptions::new().worker_data(Config { num: 1 });
    let worker: Worker<u8> = Worker::spawn(options, move |_| {
        tx.send((
            try_worker_data::<String>().unwrap_err(),
            try_parent_port::<String>().unwrap_err(),
        ))
        .unwrap();
    })
    .unwrap();
    let (data_err, port_err) = rx.recv().unwrap();
    match data_err {
        ContextError::WrongType {
            what,
            requested,
            actual,
        } => {
            assert_eq!(what, "worker data");
            assert_eq!(requested, "alloc::string::String");
            assert!(actual.ends_with("Config"), "{actual}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        port_err.to_string(),
        "the worker's parent port is `MessagePort<u8>`, not `MessagePort<alloc::string::String>`"
    );
    worker.join().unwrap();
}

#[test]
fn a_wrong_type_panic_points_at_the_caller_and_says_what_to_call() {
    // The panic's location is this file (the caller), not the library's context.rs.
    let worker: Worker<u8> = Worker::spawn(WorkerOptions::new(), |_| {
        parent_port::<u64>();
    })
    .unwrap();
    let err = worker.join().unwrap_err();
    let location = match &err {
        worker_threads_core::WorkerError::Panicked { location, .. } => location.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        location
            .as_deref()
            .is_some_and(|l| l.starts_with("crates/worker-threads-core/tests/context.rs")),
        "{location:?}"
    );
    let message = err.panic_message().unwrap();
    assert!(message.starts_with("parent_port::<u64>(): the worker's parent port is `MessagePort<u8>`, not `MessagePort<u64>`"), "{message}");
    assert!(
        message.contains("ctx.parent_port()") && message.contains("try_parent_port"),
        "{message}"
    );
}

#[test]
fn off_a_worker_the_try_functions_say_so() {
    assert_eq!(
        try_worker_data::<Config>().unwrap_err(),
        ContextError::NotInWorker
    );
    assert_eq!(
        try_parent_port::<u8>().unwrap_err(),
        ContextError::NotInWorker
    );
    // A plain thread is not a worker either.
    std::thread::spawn(|| {
        assert!(is_main_thread());
        assert_eq!(
            try_parent_port::<u8>().unwrap_err(),
            ContextError::NotInWorker
        );
    })
    .join()
    .unwrap();
}

#[test]
#[should_panic(
    expected = "worker_data::<context::Config>(): not running on a worker thread: only code running inside a Worker has worker data"
)]
fn worker_data_panics_off_a_worker() {
    let _ = worker_data::<Config>();
}

#[test]
fn thread_ids_are_unique_and_increasing() {
    let workers: Vec<Worker<()>> = (0..10)
        .map(|_| Worker::spawn(WorkerOptions::new(), |_| thread_id() as i32).unwrap())
        .collect();
    let ids: Vec<u64> = workers.iter().map(Worker::thread_id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for worker in workers {
        let id = worker.thread_id();
        assert_eq!(worker.join().unwrap() as u64, id);
    }
}
