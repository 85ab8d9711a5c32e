//! The lifecycle of a worker: event order, exit codes for return, `exit(code)`, panic,
//! error and terminate, and what dropping a `Worker` does.

use std::sync::mpsc;

use worker_threads_channel::{BroadcastChannel, RecvError, RecvTimeoutError};
use worker_threads_core::{Worker, WorkerError, WorkerEvent, WorkerOptions, exit, is_terminating};

fn event_names<T: std::fmt::Debug>(events: impl Iterator<Item = WorkerEvent<T>>) -> Vec<String> {
    events
        .map(|event| match event {
            WorkerEvent::Error(err) => {
                format!("Error({})", err.panic_message().unwrap_or("failed"))
            }
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn events_come_online_then_messages_then_exit() {
    let mut worker: Worker<(), u32> = Worker::spawn(WorkerOptions::new(), |ctx| {
        for i in 0..3 {
            ctx.parent_port().post_message(i).unwrap();
        }
    })
    .unwrap();
    assert_eq!(
        event_names(worker.events()),
        [
            "Online",
            "Message(0)",
            "Message(1)",
            "Message(2)",
            "Exit(0)"
        ]
    );
    // The stream is over; join still reports the code.
    assert!(worker.events().next().is_none());
    assert_eq!(worker.join().unwrap(), 0);
}

#[test]
fn a_panic_gives_error_then_exit_1_and_never_reaches_main() {
    let mut worker: Worker<(), u32> = Worker::spawn(WorkerOptions::new(), |ctx| -> i32 {
        ctx.parent_port().post_message(1).unwrap();
        panic!("boom {}", 42)
    })
    .unwrap();
    assert_eq!(
        event_names(worker.events()),
        ["Online", "Message(1)", "Error(boom 42)", "Exit(1)"]
    );
    match worker.join() {
        Err(WorkerError::Panicked { message, location }) => {
            assert_eq!(message, "boom 42");
            let location = location.expect("the hook records where");
            assert!(location.contains("lifecycle.rs"), "{location}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[test]
fn exit_codes_for_return_exit_and_error() {
    let unit: Worker<()> = Worker::spawn(WorkerOptions::new(), |_| ()).unwrap();
    assert_eq!(unit.join().unwrap(), 0);

    let code: Worker<()> = Worker::spawn(WorkerOptions::new(), |_| 7).unwrap();
    assert_eq!(code.join().unwrap(), 7);

    let ok: Worker<()> =
        Worker::spawn(WorkerOptions::new(), |_| Ok::<(), std::io::Error>(())).unwrap();
    assert_eq!(ok.join().unwrap(), 0);

    fn deep_exit(code: i32) {
        exit(code)
    }
    let exited: Worker<()> = Worker::spawn(WorkerOptions::new(), |_| {
        deep_exit(3);
    })
    .unwrap();
    assert_eq!(exited.join().unwrap(), 3);

    let mut failed: Worker<()> = Worker::spawn(WorkerOptions::new(), |_| {
        Err::<(), _>(anyhow::anyhow!("no such file"))
    })
    .unwrap();
    let events: Vec<WorkerEvent<()>> = failed.events().collect();
    assert!(matches!(events[0], WorkerEvent::Online));
    match &events[1] {
        WorkerEvent::Error(err @ WorkerError::Failed(_)) => {
            assert_eq!(err.to_string(), "worker failed: no such file");
        }
        other => panic!("expected Error, got {other:?}"),
    }
    assert!(matches!(events[2], WorkerEvent::Exit(1)));
    assert_eq!(events.len(), 3);
    assert!(matches!(failed.join(), Err(WorkerError::Failed(_))));
}

#[test]
fn exit_runs_destructors_and_reports_no_error() {
    struct Flag(mpsc::Sender<&'static str>);
    impl Drop for Flag {
        fn drop(&mut self) {
            let _ = self.0.send("dropped");
        }
    }
    let (tx, rx) = mpsc::channel();
    let mut worker: Worker<()> = Worker::spawn(WorkerOptions::new(), move |_| -> i32 {
        let _flag = Flag(tx);
        exit(5)
    })
    .unwrap();
    let events = event_names(worker.events());
    assert_eq!(events, ["Online", "Exit(5)"]);
    assert_eq!(rx.recv().unwrap(), "dropped");
}

#[test]
fn terminate_wakes_a_worker_blocked_in_recv() {
    let (tx, rx) = mpsc::channel();
    let worker: Worker<u32> = Worker::spawn(WorkerOptions::new(), move |ctx| {
        let got = ctx.parent_port().recv();
        tx.send((got, ctx.is_terminating())).unwrap();
        // Returning normally still reports Node's terminate code.
    })
    .unwrap();
    worker.terminate();
    assert!(worker.is_terminating());
    assert_eq!(rx.recv().unwrap(), (Err(RecvError::Terminated), true));
    assert_eq!(worker.join().unwrap(), 1);
}

#[test]
fn terminate_stops_a_busy_worker_that_polls() {
    let worker: Worker<(), u64> = Worker::spawn(WorkerOptions::new(), |ctx| {
        ctx.parent_port().post_message(0).unwrap();
        let mut spins = 0u64;
        while !is_terminating() {
            spins += 1;
            std::hint::spin_loop();
        }
        std::hint::black_box(spins);
    })
    .unwrap();
    // The worker is in its loop once it has said so.
    assert_eq!(worker.recv(), Ok(0));
    worker.terminate();
    assert_eq!(worker.join().unwrap(), 1);
}

#[test]
fn after_terminate_posts_return_the_message_and_main_recv_ends() {
    let worker: Worker<String> = Worker::spawn(WorkerOptions::new(), |ctx| {
        ctx.parent_port().recv().map(drop)
    })
    .unwrap();
    worker.terminate();
    let err = worker.post_message("late".into()).unwrap_err();
    assert_eq!(err.into_inner(), "late");
    assert_eq!(
        worker.recv_timeout(std::time::Duration::from_secs(3600)),
        Err(RecvTimeoutError::Terminated)
    );
    // The entry returned the receive's error: it failed, with Node's terminate code.
    match worker.join() {
        Err(err @ WorkerError::Failed(_)) => {
            assert_eq!(
                err.to_string(),
                "worker failed: receiving on a terminated port"
            )
        }
        other => panic!("expected the entry's error, got {other:?}"),
    }
}

#[test]
fn dropping_the_handle_closes_the_port_and_detaches_the_thread() {
    let (tx, rx) = mpsc::channel();
    let worker: Worker<u32> = Worker::spawn(WorkerOptions::new(), move |ctx| {
        let received: Vec<u32> = ctx.parent_port().iter().collect();
        tx.send(received).unwrap();
    })
    .unwrap();
    worker.post_message(1).unwrap();
    worker.post_message(2).unwrap();
    drop(worker);
    // The worker drained what was posted, saw the close, and ended on its own.
    assert_eq!(rx.recv().unwrap(), [1, 2]);
}

#[test]
fn terminate_wakes_a_receive_on_a_port_from_worker_data() {
    // The worker waits on a sibling port, not its parent port: terminate reaches it too.
    let worker_threads_channel::MessageChannel { port1, port2 } =
        worker_threads_channel::MessageChannel::<u32>::new();
    let (tx, rx) = mpsc::channel();
    let worker: Worker<(), ()> =
        Worker::spawn(WorkerOptions::new().worker_data(port2), move |ctx| {
            ctx.parent_port().post_message(()).unwrap();
            tx.send(ctx.worker_data().recv()).unwrap();
        })
        .unwrap();
    assert_eq!(worker.recv(), Ok(()));
    worker.terminate();
    assert_eq!(rx.recv().unwrap(), Err(RecvError::Terminated));
    assert_eq!(worker.join().unwrap(), 1);
    // The worker's end was dropped when it ended: the sibling sees the close.
    assert!(port1.is_closed());
}

#[test]
fn after_terminate_a_worker_receives_nothing_more_even_with_messages_waiting() {
    // Node runs no `message` handler in a terminated worker. Messages posted after the
    // terminate, on a port from the worker's data and on a broadcast the worker joined,
    // are waiting when it looks: its blocking receives fail all the same, and the
    // messages stay queued (`try_recv`, which does not look at the signal, finds them).
    let worker_threads_channel::MessageChannel { port1, port2 } =
        worker_threads_channel::MessageChannel::<u32>::new();
    let resume = std::sync::Arc::new(std::sync::Barrier::new(2));
    let (tx, rx) = mpsc::channel();
    let worker: Worker<(), ()> = Worker::spawn(WorkerOptions::new().worker_data(port2), {
        let resume = std::sync::Arc::clone(&resume);
        move |ctx| {
            let news = BroadcastChannel::<u32>::new("terminated-receiver");
            ctx.parent_port().post_message(()).unwrap();
            resume.wait();
            let port = ctx.worker_data();
            let hour = std::time::Duration::from_secs(3600);
            tx.send([
                format!("{:?}", port.recv()),
                format!("{:?}", port.recv_timeout(hour)),
                format!("{:?}", news.recv()),
                format!("{:?}", news.recv_timeout(hour)),
                format!("{:?}", port.try_recv()),
                format!("{:?}", news.try_recv()),
            ])
            .unwrap();
        }
    })
    .unwrap();
    assert_eq!(worker.recv(), Ok(()));
    worker.terminate();
    port1.post_message(7).unwrap();
    BroadcastChannel::<u32>::new("terminated-receiver")
        .post_message(8)
        .unwrap();
    resume.wait();
    assert_eq!(
        rx.recv().unwrap(),
        [
            "Err(Terminated)",
            "Err(Terminated)",
            "Err(Terminated)",
            "Err(Terminated)",
            "Ok(7)",
            "Ok(8)"
        ]
    );
    assert_eq!(worker.join().unwrap(), 1);
}

#[test]
fn the_first_exit_wins_even_when_its_unwind_is_caught() {
    // Node: the first `process.exit` wins. Code that catches the unwind (as any library
    // that catches panics would) can neither change the code nor keep receiving.
    let (tx, rx) = mpsc::channel();
    let worker: Worker<u32> = Worker::spawn(WorkerOptions::new(), move |ctx| -> i32 {
        let caught = std::panic::catch_unwind(|| -> i32 { exit(1) });
        assert!(caught.is_err(), "exit unwinds");
        // The worker is stopping: a receive fails at once instead of waiting.
        tx.send(ctx.parent_port().recv()).unwrap();
        exit(2)
    })
    .unwrap();
    assert_eq!(rx.recv().unwrap(), Err(RecvError::Terminated));
    assert_eq!(worker.join().unwrap(), 1);
}

#[test]
fn returning_or_panicking_after_a_caught_exit_keeps_its_code() {
    let returned: Worker<()> = Worker::spawn(WorkerOptions::new(), |_| -> i32 {
        let _ = std::panic::catch_unwind(|| -> i32 { exit(4) });
        0
    })
    .unwrap();
    assert_eq!(returned.join().unwrap(), 4);
    let panicked: Worker<()> = Worker::spawn(WorkerOptions::new(), |_| -> i32 {
        let _ = std::panic::catch_unwind(|| -> i32 { exit(6) });
        panic!("after exit");
    })
    .unwrap();
    assert_eq!(panicked.join().unwrap(), 6);
}

#[test]
fn exit_off_a_worker_and_off_the_main_thread_is_an_error_not_a_process_exit() {
    // A thread a worker spawned is not the worker: `exit` there would have ended the
    // whole process.
    let worker: Worker<()> = Worker::spawn(WorkerOptions::new(), |_| {
        let from_thread = std::thread::spawn(|| worker_threads_core::try_exit(3).unwrap_err())
            .join()
            .unwrap();
        assert_eq!(from_thread, worker_threads_core::ContextError::NotInWorker);
        let panicked = std::thread::spawn(|| -> i32 { exit(3) }).join();
        let message = panicked.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(message.contains("std::process::exit"), "{message}");
        7
    })
    .unwrap();
    assert_eq!(worker.join().unwrap(), 7);
}

#[tokio::test(flavor = "current_thread")]
async fn the_event_stream_yields_what_the_iterator_yields() {
    use tokio_stream::StreamExt;
    // A worker that posts three messages and panics: Online, 3 x Message, Error, Exit(1).
    let spawn = || {
        Worker::<u32>::spawn(WorkerOptions::new(), |ctx| -> i32 {
            for n in 0..3 {
                ctx.parent_port().post_message(n).unwrap();
            }
            panic!("boom");
        })
        .unwrap()
    };
    let mut blocking = spawn();
    let expected = event_names(blocking.events());
    assert_eq!(
        expected,
        [
            "Online",
            "Message(0)",
            "Message(1)",
            "Message(2)",
            "Error(boom)",
            "Exit(1)"
        ]
    );
    let streamed: Vec<WorkerEvent<u32>> = spawn().collect().await;
    assert_eq!(event_names(streamed.into_iter()), expected);
    // The stream continues where the iterator stopped.
    let mut worker = spawn();
    let first: Vec<_> = worker.events().take(2).collect();
    assert_eq!(event_names(first.into_iter()), ["Online", "Message(0)"]);
    let rest: Vec<WorkerEvent<u32>> = (&mut worker).collect().await;
    assert_eq!(event_names(rest.into_iter()), expected[2..]);
}
