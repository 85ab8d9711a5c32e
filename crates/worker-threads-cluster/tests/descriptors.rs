//! The primary leaks no descriptor: after 10,000 round-robin connections its open file
//! count is back where it started. (Alone in its binary: other tests' sockets would
//! move the count.)

mod common;

use common::{ask, listening, serve_ids};
use worker_threads_cluster::Cluster;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn ten_thousand_connections_leave_the_primarys_descriptors_as_they_were() {
    if worker_threads_cluster::is_worker() {
        serve_ids(&worker_threads_cluster::listen("127.0.0.1:0").unwrap());
        return;
    }
    let cluster = Cluster::<()>::builder()
        .test_harness("ten_thousand_connections_leave_the_primarys_descriptors_as_they_were")
        .build();
    cluster.fork().unwrap();
    cluster.fork().unwrap();
    let addr = listening(&cluster, 2);
    ask(addr).unwrap(); // the first connection warms anything lazily opened
    let before = open_fds();
    let mut served = [0usize; 2];
    for _ in 0..10_000 {
        served[ask(addr).unwrap() - 1] += 1;
    }
    assert_eq!(served, [5_000, 5_000]);
    // The primary closes its copy of a connection after handing it over, which may come
    // after the client had its answer: the count settles back to where it was (a leak
    // would leave thousands open, and never settle).
    common::settles("the primary's descriptor count", || open_fds() <= before);
}
