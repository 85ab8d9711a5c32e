//! Worker processes (this test binary run again on `remote_worker_process`) against a real
//! nats-server: many tasks over two of them, one killed mid-run, a poison task.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use common::{Answer, Job, NatsServer, WorkerProcess, config_from, handle};
use futures_util::StreamExt;
use worker_threads_pool::{MaxQueue, Pool};
use worker_threads_remote::{RemotePool, RemoteWorker, TaskError};

/// The worker process's entry: serves `WT_REMOTE_QUEUE` with a 2-thread local pool until
/// stdin closes. Ignored, so a plain `cargo test` does not run it; the tests start it.
#[test]
#[ignore = "a worker process's entry; the tests below start it"]
fn remote_worker_process() -> Result<()> {
    let (Ok(url), Ok(queue), Ok(config)) = (
        std::env::var("WT_REMOTE_URL"),
        std::env::var("WT_REMOTE_QUEUE"),
        std::env::var("WT_REMOTE_CONFIG"),
    ) else {
        return Ok(()); // run by hand: nothing to serve
    };
    let local = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(256))
        .build(handle)?;
    let worker = RemoteWorker::builder(url, queue)
        .queue_config(config_from(&config))
        .prefetch(64)
        .serve(local)?;
    println!("serving");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    worker.stop()?;
    Ok(())
}

fn submitter(url: &str, queue: &str, config: &str) -> Result<RemotePool<Job, Answer>> {
    Ok(RemotePool::builder(url, queue)
        .queue_config(config_from(config))
        .connect()?)
}

#[test]
fn a_hundred_thousand_tasks_through_two_worker_processes() -> Result<()> {
    let server = NatsServer::start();
    let config = "200000,30000,5";
    let pool = submitter(&server.url, "many", config)?;
    let workers = [
        WorkerProcess::spawn(&server.url, "many", config),
        WorkerProcess::spawn(&server.url, "many", config),
    ];
    const TASKS: u64 = 100_000;
    // One task per message, many in flight.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let answers: Vec<(u64, Result<Answer, TaskError>)> = runtime.block_on(
        futures_util::stream::iter(0..TASKS)
            .map(|n| {
                let pool = &pool;
                async move {
                    match pool.run_async(Job::Square(n)).await {
                        Ok(handle) => (n, handle.await),
                        Err(error) => panic!("task {n} not accepted: {error}"),
                    }
                }
            })
            .buffer_unordered(512)
            .collect(),
    );
    assert_eq!(answers.len(), TASKS as usize);
    let mut seen = HashSet::new();
    let mut by_worker = [0u64; 2];
    for (n, answer) in answers {
        let answer = answer?;
        assert_eq!(answer.value, n * n, "task {n}");
        assert!(seen.insert(n), "task {n} resolved twice");
        let which = workers
            .iter()
            .position(|w| w.pid() == answer.pid)
            .expect("computed by one of the two worker processes");
        by_worker[which] += 1;
    }
    assert_eq!(seen.len(), TASKS as usize);
    assert_eq!(by_worker[0] + by_worker[1], TASKS);
    assert!(
        by_worker.iter().all(|&n| n > 0),
        "both workers served: {by_worker:?}"
    );
    assert_eq!(pool.pending(), 0);
    pool.wait_drain();
    assert_eq!(pool.queue_size(), 0);
    for worker in workers {
        assert!(worker.stop().success());
    }
    Ok(())
}

#[test]
fn a_worker_killed_mid_run_costs_nothing_its_tasks_finish_on_the_other() -> Result<()> {
    let server = NatsServer::start();
    // The default settings: the dead worker's tasks are delivered again after `ack_wait`
    // (1.5 s), and no live task is delivered twice meanwhile.
    let config = "default";
    let pool = submitter(&server.url, "kill", config)?;
    let victim = WorkerProcess::spawn(&server.url, "kill", config);
    let survivor = WorkerProcess::spawn(&server.url, "kill", config);
    let victim_pid = victim.pid();
    const TASKS: u64 = 600;
    let handles: Vec<_> = (0..TASKS)
        .map(|n| pool.run(Job::Slow { n, ms: 5 }))
        .collect::<Result<_, _>>()?;
    // Kill the victim once it has answered a task (so it holds others, mid-run).
    let mut handles = handles.into_iter().enumerate();
    let mut answers = Vec::new();
    let mut killed = Some(victim);
    for (n, handle) in handles.by_ref() {
        let answer = handle.join()?;
        let from_victim = answer.pid == victim_pid;
        answers.push((n as u64, answer));
        if from_victim {
            let mut victim = killed.take().expect("killed once");
            victim.child.kill()?; // SIGKILL
            let status = victim.child.wait()?;
            assert!(!status.success());
            break;
        }
    }
    assert!(
        killed.is_none(),
        "the victim answered a task before the end"
    );
    for (n, handle) in handles {
        answers.push((n as u64, handle.join()?));
    }
    let mut seen = HashSet::new();
    for (n, answer) in &answers {
        assert_eq!(answer.value, n * n);
        assert!(seen.insert(*n));
    }
    assert_eq!(
        seen.len(),
        TASKS as usize,
        "every task completed exactly once"
    );
    assert!(answers.iter().any(|(_, a)| a.pid == survivor.pid()));
    assert_eq!(pool.pending(), 0);
    pool.wait_drain();
    assert!(survivor.stop().success());
    Ok(())
}

#[test]
fn a_poison_task_ends_with_max_deliveries_and_leaves_the_queue() -> Result<()> {
    let server = NatsServer::start();
    // Two deliveries at most, each after a 1 s ack_wait.
    let config = "100,1000,2";
    let pool = submitter(&server.url, "poison", config)?;
    let poison = pool.run(Job::Abort)?;
    // A supervisor that keeps one worker process alive (each delivery of the poison task
    // kills the one holding it), until the task resolved.
    let done = Arc::new(AtomicBool::new(false));
    let supervisor = {
        let (url, done) = (server.url.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut deaths = 0;
            while !done.load(Ordering::SeqCst) {
                let mut worker = WorkerProcess::spawn(&url, "poison", config);
                loop {
                    if done.load(Ordering::SeqCst) {
                        return deaths;
                    }
                    match worker.child.try_wait() {
                        Ok(Some(_)) => {
                            deaths += 1;
                            break;
                        }
                        _ => std::thread::yield_now(),
                    }
                }
            }
            deaths
        })
    };
    assert_eq!(poison.join(), Err(TaskError::MaxDeliveries { attempts: 2 }));
    done.store(true, Ordering::SeqCst);
    let deaths = supervisor.join().expect("the supervisor");
    assert_eq!(deaths, 2, "each delivery killed a worker");
    // The poison task left the queue, and the queue works.
    pool.wait_drain();
    assert_eq!(pool.queue_size(), 0);
    let worker = WorkerProcess::spawn(&server.url, "poison", config);
    assert_eq!(pool.run(Job::Square(12))?.join()?.value, 144);
    assert!(worker.stop().success());
    Ok(())
}
