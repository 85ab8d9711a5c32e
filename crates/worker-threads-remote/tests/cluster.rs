//! A three-node JetStream cluster the tests start (routes on loopback, a queue with three
//! replicas), and its servers killed with SIGKILL while tasks flow: one node, the stream's
//! leader, the submitter's node, and all three in turn. Nothing is lost in each: every
//! task that `run` accepted resolves with its exact value.

mod common;

use std::sync::mpsc;

use anyhow::Result;
use common::{Answer, Job, NatsCluster, PATIENCE, handle, join_within};
use worker_threads_pool::{MaxQueue, Pool};
use worker_threads_remote::{QueueConfig, RemotePool, RemoteWorker};

/// Tasks per test; the fault comes once `FAULT_AFTER` of them were submitted.
const TASKS: u64 = 1_000;
const FAULT_AFTER: u64 = 200;

fn config() -> QueueConfig {
    QueueConfig {
        replicas: 3,
        // A bound on waiting through an election, not a timing assertion: on two cores
        // one takes seconds.
        duplicate_window: 2 * PATIENCE,
        ..QueueConfig::default()
    }
}

/// Runs `TASKS` tasks from a submitter connected to `submitter_url` through a worker
/// connected to `worker_url`, calls `fault` on the cluster once `FAULT_AFTER` were
/// submitted (submissions go on meanwhile), and checks every value.
fn tasks_flow_across(
    cluster: &mut NatsCluster,
    queue: &str,
    urls: (&str, &str),
    fault: impl FnOnce(&mut NatsCluster),
) -> Result<()> {
    let (submitter_url, worker_url) = urls;
    let pool: RemotePool<Job, Answer> = RemotePool::builder(submitter_url, queue)
        .queue_config(config())
        .publish_timeout(PATIENCE)
        .reconnect_timeout(PATIENCE)
        .connect()?;
    let local = Pool::builder()
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(256))
        .build(handle)?;
    let worker = RemoteWorker::builder(worker_url, queue)
        .queue_config(config())
        .serve(local)?;
    let (submitted_tx, submitted) = mpsc::channel();
    let handles = std::thread::scope(|scope| {
        let pool = &pool;
        let submitter = scope.spawn(move || {
            let mut handles = Vec::new();
            for n in 0..TASKS {
                handles.push((n, pool.run(Job::Slow { n, ms: 1 })?));
                if n == FAULT_AFTER {
                    let _ = submitted_tx.send(());
                }
            }
            anyhow::Ok(handles)
        });
        submitted
            .recv_timeout(PATIENCE)
            .expect("the first tasks submitted");
        fault(cluster);
        submitter.join().expect("the submitter")
    })?;
    assert_eq!(handles.len() as u64, TASKS);
    for (n, handle) in handles {
        assert_eq!(join_within(handle)?.value, n * n, "task {n}");
    }
    assert_eq!(pool.pending(), 0);
    worker.stop()?;
    Ok(())
}

#[test]
fn a_node_killed_mid_run_and_restarted_loses_nothing() -> Result<()> {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    tasks_flow_across(&mut cluster, "node", (&urls, &urls), |cluster| {
        // A follower of the queue's stream: its leader stays.
        let leader = cluster.stream_leader("node");
        let follower = (leader + 1) % 3;
        cluster.kill(follower);
        cluster.restart(follower);
    })
}

#[test]
fn the_streams_leader_killed_loses_nothing() -> Result<()> {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    tasks_flow_across(&mut cluster, "leader", (&urls, &urls), |cluster| {
        let leader = cluster.stream_leader("leader");
        cluster.kill(leader);
        cluster.restart(leader);
    })
}

#[test]
fn the_submitters_node_killed_loses_nothing() -> Result<()> {
    let mut cluster = NatsCluster::start(3);
    // The submitter is given node 0 alone (it learns the others from it); the worker
    // node 2.
    let (submitter, worker) = (cluster.url(0), cluster.url(2));
    tasks_flow_across(&mut cluster, "mine", (&submitter, &worker), |cluster| {
        cluster.kill(0);
        cluster.restart(0);
    })
}

#[test]
fn a_rolling_restart_of_every_node_loses_nothing() -> Result<()> {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    tasks_flow_across(&mut cluster, "rolling", (&urls, &urls), |cluster| {
        for node in 0..3 {
            // The next node goes only once the stream is whole again (its copies caught
            // up), as an operator's rolling restart does.
            cluster.stream_leader("rolling");
            cluster.kill(node);
            cluster.restart(node);
        }
        cluster.stream_leader("rolling");
    })
}
