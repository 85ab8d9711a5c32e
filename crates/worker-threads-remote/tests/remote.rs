//! A RemotePool and RemoteWorkers in this process, against a real nats-server.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use anyhow::Result;
use common::{
    Answer, Job, NatsServer, PATIENCE, Relay, handle, join_within, resolution_within, tries_of,
    with_jetstream,
};
use futures_util::StreamExt;
use serde_bytes::ByteBuf;
use worker_threads_pool::{MaxQueue, Pool};
use worker_threads_remote::{
    Backoff, QueueConfig, RemotePool, RemoteWorker, Retry, RunError, TaskError,
};

fn worker(url: &str, queue: &str) -> Result<RemoteWorker> {
    let local = Pool::builder().max_threads(2).build(handle)?;
    Ok(RemoteWorker::builder(url, queue).serve(local)?)
}

fn pool(url: &str, queue: &str, max_queue: usize) -> Result<RemotePool<Job, Answer>> {
    Ok(RemotePool::builder(url, queue)
        .queue_config(QueueConfig {
            max_queue,
            ..Default::default()
        })
        .connect()?)
}

/// The server's queue size once it is `expected` (removals are asynchronous), or what it
/// is after `PATIENCE`: the caller asserts.
fn queue_size_once_it_is<T, R>(pool: &RemotePool<T, R>, expected: usize) -> usize
where
    T: serde::Serialize + Send + 'static,
    R: serde::de::DeserializeOwned + Send + 'static,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut size = pool.queue_size();
    while size != expected && std::time::Instant::now() < deadline {
        std::thread::yield_now();
        size = pool.queue_size();
    }
    size
}

#[test]
fn run_join_await_map_and_the_handlers_panic() -> Result<()> {
    let server = NatsServer::start();
    let pool = pool(&server.url, "basics", 1024)?;
    let worker = worker(&server.url, "basics")?;

    assert_eq!(pool.run(Job::Square(7))?.join()?.value, 49);
    let awaited = futures_executor::block_on(async {
        let handle = pool.run_async(Job::Square(9)).await?;
        anyhow::Ok(handle.await?)
    });
    assert_eq!(awaited?.value, 81);

    // A panic is the task's result, not a redelivery; the worker goes on.
    assert!(matches!(
        pool.run(Job::Panic)?.join(),
        Err(TaskError::Panicked(message)) if message.contains("asked to panic")
    ));
    assert_eq!(pool.run(Job::Square(3))?.join()?.value, 9);

    // map: in order, in chunks (10,000 tasks in chunks of 1,024 and a last of 784).
    let squares: Vec<u64> = pool
        .map((0..10_000).map(Job::Square))
        .map(|answer| answer.map(|a| a.value))
        .collect::<Result<_, _>>()?;
    assert_eq!(squares, (0..10_000u64).map(|n| n * n).collect::<Vec<_>>());
    let mut unordered: Vec<u64> = pool
        .map_unordered((0..5_000).map(Job::Square))
        .map(|answer| answer.map(|a| a.value))
        .collect::<Result<_, _>>()?;
    unordered.sort_unstable();
    assert_eq!(unordered, (0..5_000u64).map(|n| n * n).collect::<Vec<_>>());
    // The same as streams, under an executor, nothing blocking.
    let streamed: Vec<u64> = futures_executor::block_on(
        pool.map_stream((0..3_000).map(Job::Square))
            .map(|answer| answer.map(|a| a.value))
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .collect::<Result<_, _>>()?;
    assert_eq!(streamed, (0..3_000u64).map(|n| n * n).collect::<Vec<_>>());
    let mut streamed: Vec<u64> = futures_executor::block_on(
        pool.map_unordered_stream((0..3_000).map(Job::Square))
            .map(|answer| answer.map(|a| a.value))
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .collect::<Result<_, _>>()?;
    streamed.sort_unstable();
    assert_eq!(streamed, (0..3_000u64).map(|n| n * n).collect::<Vec<_>>());
    // A chunk with a panicking item: that item's error, the others' values.
    let mixed: Vec<_> = pool
        .map([Job::Square(2), Job::Panic, Job::Square(4)])
        .map(|answer| answer.map(|a| a.value))
        .collect();
    assert_eq!(mixed[0], Ok(4));
    assert!(matches!(&mixed[1], Err(TaskError::Panicked(_))));
    assert_eq!(mixed[2], Ok(16));

    pool.wait_drain();
    assert_eq!(pool.queue_size(), 0);
    assert_eq!(pool.pending(), 0);
    // Messages served: 4 runs, 10 + 5 chunks (10,000 and 5,000 by 1,024), 3 + 3 chunks
    // (the streams' 3,000 each) and the mixed chunk. The count follows the acks, which
    // the drain has seen; the worker counts just after sending them.
    let deadline = std::time::Instant::now() + PATIENCE;
    while worker.served() < 26 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(worker.served(), 26);
    worker.stop()?;
    Ok(())
}

#[test]
fn a_full_queue_hands_the_task_back_and_cancel_removes_a_queued_task() -> Result<()> {
    let server = NatsServer::start();
    // No worker: the tasks stay queued.
    let pool = pool(&server.url, "full", 4)?;
    assert_eq!(pool.max_queue(), 4);
    let queued: Vec<_> = (0..4)
        .map(|n| pool.run(Job::Square(n)))
        .collect::<Result<_, _>>()?;
    assert_eq!(pool.queue_size(), 4);
    assert!(pool.needs_drain());
    match pool.run(Job::Square(99)) {
        Err(RunError::QueueFull(task)) => assert_eq!(task, Job::Square(99)),
        other => panic!("expected QueueFull, got {other:?}"),
    }

    // Cancel a queued task: its handle resolves Cancelled, and it leaves the stream.
    let mut queued = queued.into_iter();
    let first = queued.next().expect("four tasks");
    assert!(first.cancel());
    assert!(!first.cancel(), "a second cancel changes nothing");
    assert!(first.is_finished());
    assert_eq!(first.join(), Err(TaskError::Cancelled));
    assert_eq!(
        queue_size_once_it_is(&pool, 3),
        3,
        "the cancelled task left the queue"
    );
    let again = pool.run(Job::Square(99))?; // room again

    // A worker serves the rest; the cancelled one never runs.
    let worker = worker(&server.url, "full")?;
    let mut values: Vec<u64> = queued
        .map(|h| h.join().map(|a| a.value))
        .collect::<Result<_, _>>()?;
    values.push(again.join()?.value);
    assert_eq!(values, vec![1, 4, 9, 99 * 99]);
    pool.wait_drain();
    worker.stop()?;
    Ok(())
}

#[test]
fn run_wait_on_a_full_queue_waits_for_room_then_gives_the_exact_value() -> Result<()> {
    let server = NatsServer::start();
    // No worker yet: four tasks fill the queue.
    let pool = std::sync::Arc::new(pool(&server.url, "wait", 4)?);
    let queued: Vec<_> = (1..=4)
        .map(|n| pool.run(Job::Square(n)))
        .collect::<Result<_, _>>()?;
    assert_eq!(pool.queue_size(), 4);
    let (done_tx, done) = mpsc::channel();
    let waiter = {
        let pool = std::sync::Arc::clone(&pool);
        std::thread::spawn(move || {
            let handle = pool.run_wait(Job::Square(7));
            let _ = done_tx.send(());
            handle
        })
    };
    // Full, and nobody serves: it cannot have returned.
    assert_eq!(done.try_recv(), Err(mpsc::TryRecvError::Empty));
    let worker = worker(&server.url, "wait")?;
    let waited = waiter.join().expect("the waiting thread")?;
    assert_eq!(waited.join()?.value, 49);
    let values: Vec<u64> = queued
        .into_iter()
        .map(|h| h.join().map(|a| a.value))
        .collect::<Result<_, _>>()?;
    assert_eq!(values, [1, 4, 9, 16]);
    pool.wait_drain();
    assert_eq!(pool.queue_size(), 0);
    worker.stop()?;
    Ok(())
}

#[test]
fn cancel_with_keeps_the_reason_of_the_cancel_that_resolved_the_task() -> Result<()> {
    let server = NatsServer::start();
    // No worker: the first task stays queued until cancelled.
    let pool = pool(&server.url, "reason", 8)?;
    let queued = pool.run(Job::Square(3))?;
    assert_eq!(queued.cancel_reason(), None);
    assert!(queued.cancel_with("the user left"));
    assert!(
        !queued.cancel_with("too late"),
        "a second cancel changes nothing"
    );
    assert_eq!(queued.cancel_reason().as_deref(), Some("the user left"));
    assert_eq!(queued.join(), Err(TaskError::Cancelled));

    // A task that resolved with its value keeps no reason.
    let worker = worker(&server.url, "reason")?;
    let mut answered = pool.run(Job::Square(4))?;
    assert_eq!(futures_executor::block_on(&mut answered)?.value, 16);
    assert!(!answered.cancel_with("after the answer"));
    assert_eq!(answered.cancel_reason(), None);
    worker.stop()?;
    Ok(())
}

#[test]
fn destroy_cancels_every_task_it_submitted_and_leaves_other_submitters_tasks() -> Result<()> {
    let server = NatsServer::start();
    // No worker yet: every task stays queued.
    let pool = pool(&server.url, "destroy", 16)?;
    let other = self::pool(&server.url, "destroy", 16)?;
    let ours: Vec<_> = (0..8)
        .map(|n| pool.run(Job::Square(n)))
        .collect::<Result<_, _>>()?;
    let theirs: Vec<_> = (10..12)
        .map(|n| other.run(Job::Square(n)))
        .collect::<Result<_, _>>()?;
    assert_eq!(pool.queue_size(), 10);

    pool.destroy();
    assert!(pool.is_closed());
    assert_eq!(pool.pending(), 0, "destroy resolved every task");
    assert!(matches!(
        pool.run(Job::Square(1)),
        Err(RunError::Closed(Job::Square(1)))
    ));
    for handle in ours {
        assert!(handle.is_finished());
        assert_eq!(handle.join(), Err(TaskError::Cancelled));
    }
    // Ours left the queue; the other submitter's two are still there.
    assert_eq!(
        queue_size_once_it_is(&other, 2),
        2,
        "destroy removed exactly its own queued tasks"
    );

    let worker = worker(&server.url, "destroy")?;
    let values: Vec<u64> = theirs
        .into_iter()
        .map(|h| h.join().map(|a| a.value))
        .collect::<Result<_, _>>()?;
    assert_eq!(values, [100, 121]);
    other.wait_drain();
    worker.stop()?;
    Ok(())
}

#[test]
fn cancel_reaches_a_running_task() -> Result<()> {
    let server = NatsServer::start();
    let pool: RemotePool<u32, bool> = RemotePool::builder(&server.url, "cancel").connect()?;
    let (started_tx, started) = mpsc::channel();
    let (saw_cancel_tx, saw_cancel) = mpsc::channel();
    let local = Pool::builder().max_threads(1).build(move |_: u32| {
        let _ = started_tx.send(());
        let deadline = std::time::Instant::now() + PATIENCE;
        while !worker_threads_pool::is_cancelled() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let seen = worker_threads_pool::is_cancelled();
        let _ = saw_cancel_tx.send(seen);
        seen
    })?;
    let worker = RemoteWorker::builder(&server.url, "cancel").serve(local)?;
    let running = pool.run(1)?;
    started.recv_timeout(PATIENCE)?;
    assert!(running.cancel());
    assert_eq!(running.join(), Err(TaskError::Cancelled));
    assert!(
        saw_cancel.recv_timeout(PATIENCE)?,
        "the handler saw is_cancelled()"
    );
    pool.wait_drain();
    worker.stop()?;
    Ok(())
}

#[test]
fn the_chapters_loop_drains_and_completes() -> Result<()> {
    let server = NatsServer::start();
    let pool = pool(&server.url, "seed", 8)?;
    let worker = worker(&server.url, "seed")?;
    let mut handles = Vec::new();
    let mut drains = 0;
    for i in 0..300 {
        if pool.queue_size() == pool.max_queue() {
            pool.wait_drain();
            drains += 1;
            assert_eq!(
                pool.queue_size(),
                0,
                "drained means the remote queue emptied"
            );
        }
        handles.push(pool.run(Job::Square(i))?);
    }
    let sum: u64 = handles
        .into_iter()
        .map(|h| h.join().map(|a| a.value))
        .sum::<Result<u64, _>>()?;
    assert_eq!(sum, (0..300u64).map(|n| n * n).sum::<u64>());
    assert!(drains <= 300 / 8);
    worker.stop()?;
    Ok(())
}

#[test]
fn an_undecodable_task_is_a_typed_error_on_its_handle() -> Result<()> {
    let server = NatsServer::start();
    let worker = worker(&server.url, "bad")?;
    // A submitter whose task type the worker cannot read (a string of 300 bytes reads as
    // the enum's variant 300).
    let wrong: RemotePool<String, Answer> = RemotePool::builder(&server.url, "bad").connect()?;
    assert!(matches!(
        wrong.run("x".repeat(300))?.join(),
        Err(TaskError::BadTask(_))
    ));
    // The worker goes on serving the right type.
    let right = pool(&server.url, "bad", 1024)?;
    assert_eq!(right.run(Job::Square(5))?.join()?.value, 25);
    worker.stop()?;
    Ok(())
}

#[test]
fn a_server_that_stays_away_fails_pending_handles_after_the_reconnect_timeout() -> Result<()> {
    let mut server = NatsServer::start();
    let pool: RemotePool<Job, Answer> = RemotePool::builder(&server.url, "gone")
        .publish_timeout(Duration::from_secs(2))
        .reconnect_timeout(Duration::from_millis(300))
        .connect()?;
    // No worker: these stay pending.
    let pending: Vec<_> = (0..50)
        .map(|n| pool.run(Job::Square(n)))
        .collect::<Result<_, _>>()?;
    assert_eq!(pool.pending(), 50);
    server.stop();
    for handle in pending {
        assert_eq!(handle.join(), Err(TaskError::Disconnected));
    }
    assert_eq!(pool.pending(), 0);
    match pool.run(Job::Square(1)) {
        Err(RunError::Transport { task, .. }) => assert_eq!(task, Job::Square(1)),
        other => panic!("expected a NATS error with the task, got {other:?}"),
    }
    pool.wait_drain(); // returns: the server cannot be asked
    assert_eq!(pool.queue_size(), 0);
    Ok(())
}

/// The stream's last sequence: how many task messages it stored, ever.
fn stored_messages(url: &str, queue: &str) -> Result<u64> {
    with_jetstream(url, async |js| {
        let mut stream = js.get_stream(format!("WT_{queue}")).await?;
        Ok(stream.info().await?.state.last_sequence)
    })
}

#[test]
fn a_broker_restart_loses_nothing_and_stores_each_task_once() -> Result<()> {
    let mut server = NatsServer::start();
    // Bounds on waiting, not timing assertions: a restart on a loaded machine may be slow.
    let pool: RemotePool<Job, Answer> = RemotePool::builder(&server.url, "restart")
        .queue_config(QueueConfig {
            duplicate_window: 2 * PATIENCE,
            ..QueueConfig::default()
        })
        .publish_timeout(PATIENCE)
        .reconnect_timeout(PATIENCE)
        .connect()?;
    // 1,000 tasks queued when the server dies (no worker yet: none is answered or taken).
    let mut handles = (0..1_000)
        .map(|n| Ok((n, pool.run(Job::Slow { n, ms: 2 })?)))
        .collect::<Result<Vec<_>>>()?;
    let (killed_tx, killed) = mpsc::channel();
    let more = std::thread::scope(|scope| {
        let pool = &pool;
        let submitter = scope.spawn(move || {
            killed.recv().expect("the kill");
            // The first of these is published while the server is away: each is tried
            // again (the same message id) until the server is back and stores it.
            (1_000..1_200)
                .map(|n| pool.run(Job::Square(n)).map(|handle| (n, handle)))
                .collect::<Result<Vec<_>, _>>()
        });
        server.stop();
        killed_tx.send(()).expect("the submitter waits");
        server.restart();
        submitter.join().expect("the submitter")
    })?;
    handles.extend(more);
    // Stored once each, though some publishes were sent twice; the file store kept them.
    assert_eq!(stored_messages(&server.url, "restart")?, 1_200);
    assert_eq!(queue_size_once_it_is(&pool, 1_200), 1_200);
    // Again with a worker at work: tasks queued, running, and answered with the answer
    // on its way while the connections are down.
    let worker = worker(&server.url, "restart")?;
    let mut handles = handles.into_iter();
    for (n, handle) in handles.by_ref().take(100) {
        assert_eq!(join_within(handle)?.value, n * n, "task {n}");
    }
    server.stop();
    server.restart();
    // Every task resolves with its exact value: no Disconnected, no answer lost.
    for (n, handle) in handles {
        assert_eq!(join_within(handle)?.value, n * n, "task {n}");
    }
    assert_eq!(pool.pending(), 0);
    pool.wait_drain();
    assert_eq!(queue_size_once_it_is(&pool, 0), 0);
    worker.stop()?;
    Ok(())
}

#[test]
fn answers_given_while_the_submitter_is_away_are_not_lost() -> Result<()> {
    let server = NatsServer::start();
    let relay = Relay::start(&server.url);
    let pool: RemotePool<Job, Answer> = RemotePool::builder(&relay.url, "away")
        .reconnect_timeout(PATIENCE)
        .connect()?;
    let worker = worker(&server.url, "away")?;
    let handles = (0..100)
        .map(|n| Ok((n, pool.run(Job::Gated(n))?)))
        .collect::<Result<Vec<_>>>()?;
    // The submitter's connection goes; the tasks finish and are answered meanwhile (the
    // answers reach nobody) and acknowledged: their messages leave the queue.
    relay.cut();
    common::open_gate();
    let direct = self::pool(&server.url, "away", 1024)?;
    assert_eq!(queue_size_once_it_is(&direct, 0), 0);
    // Back: the submitter sees its tasks gone from the queue without an answer, and
    // publishes them again.
    relay.restore();
    for (n, handle) in handles {
        assert_eq!(join_within(handle)?.value, n * n, "task {n}");
    }
    assert_eq!(pool.pending(), 0);
    assert_eq!(stored_messages(&server.url, "away")?, 200);
    worker.stop()?;
    Ok(())
}

#[test]
fn a_closed_pool_refuses_and_waits_for_its_tasks() -> Result<()> {
    let server = NatsServer::start();
    let pool = pool(&server.url, "close", 64)?;
    let worker = worker(&server.url, "close")?;
    let handles: Vec<_> = (0..20)
        .map(|n| pool.run(Job::Slow { n, ms: 1 }))
        .collect::<Result<_, _>>()?;
    pool.close();
    assert_eq!(pool.pending(), 0, "close waited for every task");
    assert!(matches!(
        pool.run(Job::Square(1)),
        Err(RunError::Closed(Job::Square(1)))
    ));
    let values: Vec<u64> = handles
        .into_iter()
        .map(|h| h.join().map(|a| a.value))
        .collect::<Result<_, _>>()?;
    assert_eq!(values, (0..20u64).map(|n| n * n).collect::<Vec<_>>());
    worker.stop()?;
    Ok(())
}

#[test]
fn a_bad_queue_name_is_refused() {
    let err = RemotePool::builder("nats://127.0.0.1:1", "a.b").connect::<u32, u32>();
    assert!(
        matches!(err, Err(worker_threads_remote::ConnectError::QueueName(name)) if name == "a.b")
    );
    let _ = MaxQueue::Auto; // the local pool's bound is its own
}

#[test]
fn a_hostile_message_in_the_queue_costs_only_itself() -> Result<()> {
    let server = NatsServer::start();
    let pool = pool(&server.url, "hostile", 64)?;
    let worker = worker(&server.url, "hostile")?;
    // Another client publishes straight to the task subject: no headers, and our headers
    // with a payload that is not a task.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = worker_threads_remote::async_nats::connect(&server.url).await?;
        let js = worker_threads_remote::async_nats::jetstream::new(client.clone());
        js.publish(
            "wt.hostile.tasks",
            bytes::Bytes::from_static(b"\xff\xff\xff"),
        )
        .await?
        .await?;
        let mut headers = worker_threads_remote::async_nats::HeaderMap::new();
        headers.insert("Wt-Id", "not-a-number");
        headers.insert("Wt-Reply", "wt.hostile.results.nobody");
        headers.insert("Wt-Kind", "chunk");
        js.publish_with_headers(
            "wt.hostile.tasks",
            headers,
            bytes::Bytes::from_static(b"\xff"),
        )
        .await?
        .await?;
        anyhow::Ok(())
    })?;
    // The worker goes on, and both messages leave the queue.
    assert_eq!(pool.run(Job::Square(6))?.join()?.value, 36);
    pool.wait_drain();
    assert_eq!(pool.queue_size(), 0);
    worker.stop()?;
    Ok(())
}

#[test]
fn cancel_racing_the_answer_resolves_each_task_once() -> Result<()> {
    let server = NatsServer::start();
    let pool = pool(&server.url, "race", 4096)?;
    let worker = worker(&server.url, "race")?;
    let (mut answered, mut cancelled) = (0, 0);
    for round in 0..2_000u64 {
        let handle = pool.run(Job::Square(round))?;
        // Cancel while the answer may be on its way: exactly one of the two wins. Every
        // other round gives a reason, kept only by a cancel that won.
        let with_reason = round % 2 == 1;
        let won = if with_reason {
            handle.cancel_with("racing")
        } else {
            handle.cancel()
        };
        assert!(handle.is_finished());
        let expected_reason = (won && with_reason).then_some("racing");
        assert_eq!(
            handle.cancel_reason().as_deref(),
            expected_reason,
            "round {round}"
        );
        match handle.join() {
            Err(TaskError::Cancelled) => {
                assert!(won, "round {round}: Cancelled but cancel() said it lost");
                cancelled += 1;
            }
            Ok(answer) => {
                assert!(!won, "round {round}: a value but cancel() said it won");
                assert_eq!(answer.value, round * round);
                answered += 1;
            }
            Err(other) => panic!("round {round}: {other}"),
        }
    }
    assert_eq!(answered + cancelled, 2_000);
    assert_eq!(pool.pending(), 0, "nothing left pending");
    pool.wait_drain();
    assert_eq!(
        pool.queue_size(),
        0,
        "cancelled tasks left the queue or ran"
    );
    worker.stop()?;
    Ok(())
}

/// Messages in the queue's object store of bodies (its chunks and markers).
fn bodies_stored(url: &str, queue: &str) -> Result<u64> {
    with_jetstream(url, async |js| {
        let mut stream = js.get_stream(format!("OBJ_wt-{queue}-bodies")).await?;
        Ok(stream.info().await?.state.messages)
    })
}

/// The object store's message count once it is 0 (deletions run in the background), or
/// what it is after `PATIENCE`: the caller asserts.
fn bodies_once_gone(url: &str, queue: &str) -> Result<u64> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let stored = bodies_stored(url, queue)?;
        if stored == 0 || std::time::Instant::now() >= deadline {
            return Ok(stored);
        }
        std::thread::yield_now();
    }
}

/// Echoes a task of several bytes with each byte plus one; a task of one byte `n` answers
/// `n` times 100 KiB of sevens. (`ByteBuf`: bytes encoded as one slice, not item by item,
/// as a user moving megabytes would.)
fn echo_or_sevens(task: ByteBuf) -> ByteBuf {
    ByteBuf::from(match task.as_slice() {
        [n] => vec![7u8; usize::from(*n) * 100 * 1024],
        _ => task.iter().map(|b| b.wrapping_add(1)).collect(),
    })
}

fn bytes(bytes: Vec<u8>) -> ByteBuf {
    ByteBuf::from(bytes)
}

#[test]
fn payloads_of_any_size_go_through_and_leave_nothing_in_the_store() -> Result<()> {
    let server = NatsServer::start();
    let pool: RemotePool<ByteBuf, ByteBuf> = RemotePool::builder(&server.url, "big").connect()?;
    let worker =
        RemoteWorker::builder(&server.url, "big").serve(Pool::builder().build(echo_or_sevens)?)?;

    // 64 MiB there and back (the server's max_payload is 1 MiB), every byte checked.
    let big = bytes((0..64 << 20).map(|i: u32| (i % 251) as u8).collect());
    let expected = bytes(big.iter().map(|b| b.wrapping_add(1)).collect());
    assert!(
        pool.run(big.clone())?.join()? == expected,
        "the 64 MiB echo differs"
    );
    // Answers up to max_payload go as messages: 900 KiB, alone and three at once to one
    // submitter (each then goes in a message of its own); one over it, 1.1 MiB, goes
    // through the store.
    assert_eq!(
        pool.run(bytes(vec![9]))?.join()?,
        bytes(vec![7u8; 900 * 1024])
    );
    let together: Vec<_> = (0..3)
        .map(|_| pool.run(bytes(vec![9])))
        .collect::<Result<_, _>>()?;
    for handle in together {
        assert_eq!(handle.join()?, bytes(vec![7u8; 900 * 1024]));
    }
    assert_eq!(
        pool.run(bytes(vec![11]))?.join()?,
        bytes(vec![7u8; 1100 * 1024])
    );
    assert_eq!(
        bodies_once_gone(&server.url, "big")?,
        0,
        "read bodies are deleted"
    );

    // A big task cancelled while queued takes its body with it.
    worker.stop()?;
    let queued = pool.run(big.clone())?;
    assert!(bodies_stored(&server.url, "big")? > 0);
    assert!(queued.cancel());
    assert_eq!(queued.join(), Err(TaskError::Cancelled));
    assert_eq!(
        bodies_once_gone(&server.url, "big")?,
        0,
        "a cancel deletes the body"
    );
    assert_eq!(queue_size_once_it_is(&pool, 0), 0);
    Ok(())
}

#[test]
fn a_body_whose_submitter_died_leaves_with_the_body_ttl() -> Result<()> {
    let server = NatsServer::start();
    let pool: RemotePool<Vec<u8>, Vec<u8>> = RemotePool::builder(&server.url, "orphan")
        .queue_config(QueueConfig {
            body_ttl: Duration::from_secs(1),
            ..Default::default()
        })
        .connect()?;
    let no_bucket = with_jetstream(&server.url, async |js| {
        Ok(js.get_stream("OBJ_wt-orphan-bodies").await.is_err())
    })?;
    assert!(no_bucket, "a queue that carried no body has no bucket");
    let orphan = pool.run(vec![3u8; 3 << 20])?;
    assert!(bodies_stored(&server.url, "orphan")? > 0);
    // The submitter goes without a word: nothing of it runs any more.
    std::mem::forget(orphan);
    std::mem::forget(pool);
    assert_eq!(bodies_once_gone(&server.url, "orphan")?, 0);
    Ok(())
}

#[test]
fn a_server_killed_while_tasks_are_submitted_loses_none_and_hangs_nothing() -> Result<()> {
    for round in 0..10u64 {
        let mut server = NatsServer::start();
        let queue = format!("kill{round}");
        let pool: RemotePool<Job, Answer> = RemotePool::builder(&server.url, &queue)
            .publish_timeout(Duration::from_millis(500))
            .reconnect_timeout(Duration::from_millis(500))
            .connect()?;
        let worker = worker(&server.url, &queue)?;
        let (submitted_tx, submitted) = mpsc::channel();
        let outcome = std::thread::scope(|scope| {
            let submitter = scope.spawn(|| {
                let mut handles = Vec::new();
                for n in 0.. {
                    match pool.run(Job::Square(n)) {
                        Ok(handle) => handles.push((n, handle)),
                        // Refused while the server goes: the task comes back.
                        Err(RunError::Transport { task, .. }) => {
                            assert_eq!(task, Job::Square(n));
                            break;
                        }
                        Err(other) => panic!("round {round}, task {n}: {other:?}"),
                    }
                    if n == 50 {
                        let _ = submitted_tx.send(());
                    }
                }
                handles
            });
            // Kill the server mid-stream of submissions.
            submitted
                .recv_timeout(PATIENCE)
                .expect("50 tasks submitted");
            server.stop();
            submitter.join().expect("the submitter")
        });
        // Every accepted task resolves: its exact value, or Disconnected. None hangs.
        let accepted = outcome.len();
        let mut resolved = 0;
        for (n, handle) in outcome {
            match handle.join() {
                Ok(answer) => assert_eq!(answer.value, n * n),
                Err(TaskError::Disconnected) => {}
                Err(other) => panic!("round {round}, task {n}: {other}"),
            }
            resolved += 1;
        }
        assert_eq!(resolved, accepted);
        assert!(accepted > 50);
        assert_eq!(pool.pending(), 0);
        drop(worker);
    }
    Ok(())
}

/// The queue's messages delivered and not acknowledged, as its server counts them, once
/// they are `expected` (or after `PATIENCE`).
fn pending_acks_once_they_are(url: &str, queue: &str, expected: u64) -> Result<u64> {
    with_jetstream(url, async |js| {
        let mut consumer: worker_threads_remote::async_nats::jetstream::consumer::PullConsumer = js
            .get_consumer_from_stream(format!("wt-{queue}"), format!("WT_{queue}"))
            .await?;
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let pending = consumer.info().await?.num_ack_pending as u64;
            if pending == expected || std::time::Instant::now() >= deadline {
                return Ok(pending);
            }
            tokio::task::yield_now().await;
        }
    })
}

/// Spins `threads` threads until the returned flag is lowered: a saturated machine.
fn saturate(threads: usize) -> (Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
    let busy = Arc::new(AtomicBool::new(true));
    let spinners = (0..threads)
        .map(|_| {
            let busy = Arc::clone(&busy);
            std::thread::spawn(move || {
                while busy.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    (busy, spinners)
}

#[test]
fn held_tasks_are_kept_in_progress_on_a_saturated_machine() -> Result<()> {
    let server = NatsServer::start();
    // ack_wait 500 ms; each task takes three times that, and most wait in the local queue
    // first. A late progress acknowledgement would deliver one again (served > tasks) or
    // end it with MaxDeliveries.
    let config = QueueConfig {
        ack_wait: Duration::from_millis(500),
        ..QueueConfig::default()
    };
    let pool: RemotePool<Job, Answer> = RemotePool::builder(&server.url, "busy")
        .queue_config(config.clone())
        .connect()?;
    let runs = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Arc::clone(&runs);
    let local = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(2))
        .build(move |job| {
            counted.fetch_add(1, Ordering::SeqCst);
            handle(job)
        })?;
    let worker = RemoteWorker::builder(&server.url, "busy")
        .queue_config(config)
        .prefetch(16)
        .serve(local)?;
    let (busy, spinners) = saturate(4);
    const TASKS: u64 = 8;
    let handles: Vec<_> = (0..TASKS)
        .map(|n| pool.run(Job::Slow { n, ms: 1_500 }))
        .collect::<Result<_, _>>()?;
    let values: Vec<u64> = handles
        .into_iter()
        .map(|h| h.join().map(|a| a.value))
        .collect::<Result<_, _>>()?;
    busy.store(false, Ordering::Relaxed);
    for spinner in spinners {
        spinner.join().expect("a spinner");
    }
    assert_eq!(values, (0..TASKS).map(|n| n * n).collect::<Vec<_>>());
    pool.wait_drain();
    // Stopped, the worker has finished everything it was given: each task ran once.
    worker.stop()?;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        TASKS,
        "a task was delivered again"
    );
    Ok(())
}

#[test]
fn a_stopped_worker_hands_back_at_once_what_it_had_not_started() -> Result<()> {
    let server = NatsServer::start();
    // ack_wait 10 minutes: only a hand-back lets another worker have a held task.
    let config = QueueConfig {
        ack_wait: Duration::from_secs(600),
        ..QueueConfig::default()
    };
    let pool: RemotePool<u64, u64> = RemotePool::builder(&server.url, "handback")
        .queue_config(config.clone())
        .connect()?;
    // The first worker: one thread whose tasks wait at a gate, one queued task.
    let (gate_tx, gate) = mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    let first = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(1))
        .build(move |n: u64| {
            let _ = gate.lock().unwrap().recv();
            n * n
        })?;
    let first = RemoteWorker::builder(&server.url, "handback")
        .queue_config(config.clone())
        .prefetch(16)
        .serve(first)?;
    let handles: Vec<_> = (1..=6u64).map(|n| pool.run(n)).collect::<Result<_, _>>()?;
    // All six delivered to it (one running, one queued, four waiting for room) before it
    // stops: the server counts them as pending acknowledgement.
    assert_eq!(pending_acks_once_they_are(&server.url, "handback", 6)?, 6);
    let stopping = std::thread::spawn(move || first.stop());
    let second = RemoteWorker::builder(&server.url, "handback")
        .queue_config(config)
        .serve(Pool::builder().build(|n: u64| n * n)?)?;
    // The first worker's thread is held at the gate: whatever the second serves was
    // handed back by the stop.
    let deadline = std::time::Instant::now() + PATIENCE;
    while second.served() == 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(second.served() > 0, "the stopped worker handed tasks back");
    drop(gate_tx); // let the first worker finish what it started
    let values: Vec<u64> = handles
        .into_iter()
        .map(|h| h.join())
        .collect::<Result<_, _>>()?;
    assert_eq!(values, [1, 4, 9, 16, 25, 36]);
    stopping.join().expect("the stopping thread")?;
    pool.wait_drain();
    second.stop()?;
    Ok(())
}

fn panicked_on(attempt: u32) -> Box<TaskError> {
    Box::new(TaskError::Panicked(format!("try {attempt} failed")))
}

#[test]
fn a_failed_task_is_tried_again_after_its_back_off() -> Result<()> {
    let server = NatsServer::start();
    let retry = Retry::attempts(3).backoff(Backoff::Fixed(Duration::from_millis(50)));
    let pool: RemotePool<Job, Answer> = RemotePool::builder(&server.url, "retries")
        .retry(retry)
        .connect()?;
    let _worker = worker(&server.url, "retries")?;
    // Fails twice, then gives its value on the third delivery.
    let flaky = Job::Flaky {
        key: 101,
        succeed_on: 3,
    };
    assert_eq!(pool.run(flaky)?.join()?.value, 101);
    let tries = tries_of(101);
    assert_eq!(tries.len(), 3);
    for pair in tries.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(50), "{tries:?}");
    }
    // Never succeeds: its last failure, and the count.
    let never = Job::Flaky {
        key: 102,
        succeed_on: 0,
    };
    assert_eq!(
        pool.run(never)?.join(),
        Err(TaskError::Retried {
            attempts: 3,
            last: panicked_on(3)
        })
    );
    assert_eq!(tries_of(102).len(), 3);
    // A per-task policy of one try: the failure itself.
    let once = Job::Flaky {
        key: 103,
        succeed_on: 0,
    };
    assert_eq!(
        pool.run_with_retry(once, Retry::attempts(1))?.join(),
        Err(*panicked_on(1))
    );
    // map: each item is tried on its own, results in order.
    let items: Vec<Job> = (0..40)
        .map(|i| Job::Flaky {
            key: 1_000 + i,
            succeed_on: if i % 2 == 0 { 2 } else { 1 },
        })
        .collect();
    let values: Vec<u64> = pool
        .map(items)
        .map(|result| result.map(|answer| answer.value))
        .collect::<Result<_, _>>()?;
    assert_eq!(values, (1_000..1_040).collect::<Vec<_>>());
    for i in 0..40 {
        assert_eq!(tries_of(1_000 + i).len(), if i % 2 == 0 { 2 } else { 1 });
    }
    assert_eq!(queue_size_once_it_is(&pool, 0), 0);
    Ok(())
}

#[test]
fn max_deliver_caps_the_tries_and_a_cancel_ends_a_back_off() -> Result<()> {
    let server = NatsServer::start();
    let pool: RemotePool<Job, Answer> = RemotePool::builder(&server.url, "retry-cap")
        .queue_config(QueueConfig {
            max_deliver: 2,
            ..Default::default()
        })
        .connect()?;
    let _worker = worker(&server.url, "retry-cap")?;
    let capped = Job::Flaky {
        key: 201,
        succeed_on: 0,
    };
    assert_eq!(
        pool.run_with_retry(capped, Retry::attempts(5))?.join(),
        Err(TaskError::Retried {
            attempts: 2,
            last: panicked_on(2)
        })
    );
    assert_eq!(tries_of(201).len(), 2);
    // A task waiting an hour for its second try stays in the queue; a cancel removes it.
    let waiting = Job::Flaky {
        key: 202,
        succeed_on: 0,
    };
    let hour = Retry::attempts(2).backoff(Backoff::Fixed(Duration::from_secs(3600)));
    let handle = pool.run_with_retry(waiting, hour)?;
    let deadline = std::time::Instant::now() + PATIENCE;
    while tries_of(202).is_empty() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(tries_of(202).len(), 1);
    assert_eq!(
        pool.queue_size(),
        1,
        "waiting for its back-off, in the queue"
    );
    assert!(handle.cancel());
    assert_eq!(handle.join(), Err(TaskError::Cancelled));
    assert_eq!(queue_size_once_it_is(&pool, 0), 0);
    assert_eq!(tries_of(202).len(), 1, "no second try");
    Ok(())
}

/// Cancel against the tries of a task that fails once, 1,000 times: the cancel can land
/// before a try, during one, while the failed try is handed back, or after the answer.
/// Each task resolves once, as the cancel's result says; no handle is left pending.
#[test]
fn cancel_racing_the_retries_resolves_each_task_once() -> Result<()> {
    let server = NatsServer::start();
    let pool: RemotePool<Job, Answer> = RemotePool::builder(&server.url, "retry-race")
        .retry(Retry::attempts(2))
        .connect()?;
    let worker = worker(&server.url, "retry-race")?;
    let (mut answered, mut cancelled) = (0, 0);
    for round in 0..1_000u64 {
        let key = 10_000 + round;
        let handle = pool.run(Job::Flaky { key, succeed_on: 2 })?;
        // Spread the cancel over the task's life: at once, or after some of its tries.
        let tries_first = (round % 4) as usize;
        let deadline = std::time::Instant::now() + PATIENCE;
        while tries_of(key).len() < tries_first.min(2) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let won = handle.cancel();
        let result = resolution_within(handle)?;
        match result {
            Err(TaskError::Cancelled) => {
                assert!(won, "round {round}: Cancelled but cancel() said it lost");
                cancelled += 1;
            }
            Ok(answer) => {
                assert!(!won, "round {round}: a value but cancel() said it won");
                assert_eq!(answer.value, key);
                assert_eq!(tries_of(key).len(), 2, "round {round}");
                answered += 1;
            }
            Err(other) => panic!("round {round}: {other}"),
        }
        assert!(tries_of(key).len() <= 2, "round {round}: a third try");
    }
    assert_eq!(answered + cancelled, 1_000);
    assert!(
        cancelled > 0 && answered > 0,
        "{answered} answered, {cancelled} cancelled"
    );
    assert_eq!(pool.pending(), 0, "nothing left pending");
    assert_eq!(queue_size_once_it_is(&pool, 0), 0);
    worker.stop()?;
    Ok(())
}

/// The server says once that a task reached `max_deliver`; a submitter away at that moment
/// reads it when it is back (the queue keeps the advisories), and the handle resolves.
#[test]
fn a_task_that_reaches_max_deliver_while_its_submitter_is_away_still_resolves() -> Result<()> {
    use worker_threads_remote::async_nats::jetstream::consumer::PullConsumer;
    let server = NatsServer::start();
    let relay = Relay::start(&server.url);
    let pool: RemotePool<Job, Answer> = RemotePool::builder(&relay.url, "dead-away")
        .queue_config(QueueConfig {
            ack_wait: Duration::from_millis(500),
            max_deliver: 2,
            ..Default::default()
        })
        .reconnect_timeout(PATIENCE)
        .connect()?;
    let handle = pool.run(Job::Square(4))?;
    relay.cut();
    // Two deliveries nobody acknowledges (their workers died) while the submitter is away;
    // the server's advisory goes out then, to nobody listening.
    let anyhow_of = |error: &dyn std::fmt::Display| anyhow::anyhow!("{error}");
    with_jetstream(&server.url, async |js| {
        let stream = js.get_stream("WT_dead-away").await?;
        let consumer: PullConsumer = stream
            .get_consumer("wt-dead-away")
            .await
            .map_err(|e| anyhow_of(&e))?;
        for delivery in 1..=2 {
            let mut batch = consumer
                .batch()
                .max_messages(1)
                .expires(Duration::from_secs(5))
                .messages()
                .await
                .map_err(|e| anyhow_of(&e))?;
            let message = batch
                .next()
                .await
                .ok_or_else(|| anyhow::anyhow!("no delivery {delivery}"))?
                .map_err(|e| anyhow_of(&e))?;
            assert_eq!(
                message.info().map_err(|e| anyhow_of(&e))?.delivered,
                delivery
            );
        }
        // A worker asking for more: the server finds the task out of deliveries.
        let mut more = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| anyhow_of(&e))?;
        assert!(more.next().await.is_none(), "no third delivery");
        let mut dead = js.get_stream("WT_dead-away_DEAD").await?;
        let deadline = std::time::Instant::now() + PATIENCE;
        while dead.info().await?.state.messages == 0 {
            anyhow::ensure!(std::time::Instant::now() < deadline, "no advisory kept");
            tokio::task::yield_now().await;
        }
        Ok(())
    })?;
    relay.restore();
    assert_eq!(
        resolution_within(handle)?,
        Err(TaskError::MaxDeliveries { attempts: 2 })
    );
    assert_eq!(pool.pending(), 0);
    assert_eq!(
        queue_size_once_it_is(&pool, 0),
        0,
        "the task left the queue"
    );
    Ok(())
}
