//! `map` and `map_unordered` as `Stream`s: every result, in order for `map`, each item
//! counted once, with a bounded queue, on a current-thread runtime that never blocks.

use tokio_stream::StreamExt;
use worker_threads_pool::{MaxQueue, Pool, TaskError};

#[tokio::test(flavor = "current_thread")]
async fn a_map_streams_every_result_in_order() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(|n: u64| n * 3)
        .unwrap();
    let results: Vec<u64> = pool
        .map_stream(0..50_000)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(results, (0..50_000).map(|n| n * 3).collect::<Vec<_>>());
    assert_eq!(pool.completed(), 50_000);
    assert!(pool.queue_size() <= pool.max_queue());
}

#[tokio::test(flavor = "current_thread")]
async fn map_unordered_streams_every_result_once() {
    let pool = Pool::builder()
        .max_threads(2)
        .build(|n: u64| {
            assert!(n % 1_000 != 7, "item {n}");
            n
        })
        .unwrap();
    let mut results: Vec<Result<u64, TaskError>> =
        pool.map_unordered_stream(0..10_000).collect().await;
    assert_eq!(results.len(), 10_000);
    let panicked = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(panicked, 10);
    results.retain(Result::is_ok);
    let mut values: Vec<u64> = results.into_iter().map(Result::unwrap).collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (0..10_000).filter(|n| n % 1_000 != 7).collect::<Vec<_>>()
    );
    assert_eq!((pool.completed(), pool.panicked()), (9_990, 10));
}

#[test]
fn a_map_stream_waits_for_room_when_others_fill_the_queue() {
    // A second submitter keeps the one-entry queue full; the stream must wait for room
    // without blocking the runtime, and still yield every result in order.
    let pool = Pool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(1))
        .build(|n: u64| n + 1)
        .unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 0..2_000 {
                pool.run_wait(n).unwrap().join().unwrap();
            }
        });
        let results: Vec<u64> = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(pool.map_stream(0..2_000).map(Result::unwrap).collect());
        assert_eq!(results, (1..=2_000).collect::<Vec<_>>());
    });
    assert_eq!(pool.completed(), 4_000);
}
