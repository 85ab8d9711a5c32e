//! Building a pool: piscina's defaults where ours differed without a reason, and the
//! build errors that remain.

use worker_threads_pool::Pool;

#[test]
fn a_minimum_alone_raises_the_default_maximum() {
    // piscina: `minThreads: 16` on a 2-core machine gives 16 threads, not an error.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let min = cores + 14;
    let pool = Pool::builder().min_threads(min).build(|n: u32| n).unwrap();
    assert_eq!(pool.thread_bounds(), (min, min));
    assert_eq!(pool.run(5).unwrap().join(), Ok(5));
}

#[test]
fn a_minimum_above_an_explicit_maximum_is_an_error() {
    let err = Pool::builder()
        .min_threads(3)
        .max_threads(2)
        .build(|n: u32| n)
        .unwrap_err();
    assert!(
        err.to_string().contains('3') && err.to_string().contains('2'),
        "{err}"
    );
}
