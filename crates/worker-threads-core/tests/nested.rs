//! Workers spawned by workers: a child's error that nothing looked at becomes its
//! parent's error (Node: an unhandled `'error'` of a nested worker ends the parent); a
//! child whose outcome was looked at does not; children still running when their parent
//! ends are terminated.

use std::sync::mpsc;

use worker_threads_channel::RecvError;
use worker_threads_core::{Worker, WorkerError, WorkerOptions};

#[test]
fn a_childs_unhandled_panic_ends_its_parent_with_that_error() {
    let (id_tx, id_rx) = mpsc::channel();
    let parent = Worker::<()>::spawn(WorkerOptions::new(), move |_| {
        let child = Worker::<()>::spawn(WorkerOptions::new(), |_| -> i32 {
            panic!("boom in the child");
        })
        .unwrap();
        // Wait for the child's end without looking at its outcome (its port closes).
        assert!(child.recv().is_err());
        id_tx.send(child.thread_id()).unwrap();
        drop(child);
    })
    .unwrap();
    let err = parent.join().unwrap_err();
    let child_id = id_rx.recv().unwrap();
    match err {
        WorkerError::UnhandledChild { thread_id, error } => {
            assert_eq!(thread_id, child_id);
            assert_eq!(error.panic_message(), Some("boom in the child"));
        }
        other => panic!("expected UnhandledChild, got {other:?}"),
    }
}

#[test]
fn a_childs_error_that_was_joined_is_handled() {
    let parent = Worker::<()>::spawn(WorkerOptions::new(), |_| -> i32 {
        let child = Worker::<()>::spawn(WorkerOptions::new(), |_| -> i32 {
            panic!("seen by the parent");
        })
        .unwrap();
        let err = child.join().unwrap_err();
        assert_eq!(err.panic_message(), Some("seen by the parent"));
        0
    })
    .unwrap();
    assert_eq!(parent.join().unwrap(), 0);
}

#[test]
fn children_still_running_are_terminated_with_their_parent() {
    let (tx, rx) = mpsc::channel();
    let parent = Worker::<()>::spawn(WorkerOptions::new(), move |_| {
        let (started_tx, started) = mpsc::channel();
        let child = Worker::<()>::spawn(WorkerOptions::new(), move |ctx| {
            started_tx.send(()).unwrap();
            // Blocks until terminated: nobody ever posts.
            tx.send(ctx.parent_port().recv()).unwrap();
        })
        .unwrap();
        started.recv().unwrap();
        std::mem::forget(child); // neither closed nor joined by the parent
    })
    .unwrap();
    assert_eq!(parent.join().unwrap(), 0);
    assert_eq!(rx.recv().unwrap(), Err(RecvError::Terminated));
}
