//! Descriptors after many process workers, in a test binary of its own: the count is the
//! whole process's, so no other test may open or close descriptors meanwhile.
#![cfg(target_os = "linux")]

use worker_threads_core::{Process, Worker, WorkerContext, WorkerOptions};

worker_threads_core::process_test_support!();

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn quick(_ctx: WorkerContext<(), u8>) -> i32 {
    7
}

#[test]
fn a_thousand_process_workers_leave_no_descriptor_behind() {
    // Warm up (lazily opened descriptors of the runtime), then count.
    Worker::<u8>::spawn(WorkerOptions::new().isolation(Process), quick)
        .unwrap()
        .join()
        .unwrap();
    let before = open_descriptors();
    for _ in 0..1_000 {
        let worker = Worker::<u8>::spawn(WorkerOptions::new().isolation(Process), quick).unwrap();
        assert_eq!(worker.join().unwrap(), 7);
    }
    assert_eq!(open_descriptors(), before);
}
