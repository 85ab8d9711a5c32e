//! Resident memory per idle worker: spawn 1,000 workers that wait in `recv`, read the
//! process's RSS before and after (Linux `/proc/self/status`), and divide. The same for
//! bare `std::thread`s blocked on a std channel, in the same run.
//!
//! `cargo bench --bench worker_memory`

use std::sync::mpsc;
use std::thread;

use worker_threads::{Worker, WorkerOptions};

const WORKERS: usize = 1_000;

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn workers() -> Option<f64> {
    let before = rss_kib()?;
    let workers: Vec<Worker<()>> = (0..WORKERS)
        .map(|_| {
            Worker::spawn(WorkerOptions::new(), |ctx| {
                ctx.parent_port().post_message(()).unwrap();
                // Idle until the main side hangs up.
                let _ = ctx.parent_port().recv();
            })
            .expect("spawn")
        })
        .collect();
    for worker in &workers {
        worker.recv().expect("online");
    }
    let after = rss_kib()?;
    for worker in workers {
        worker.port().close();
        worker.join().expect("join");
    }
    Some((after.saturating_sub(before)) as f64 / WORKERS as f64)
}

fn std_threads() -> Option<f64> {
    let before = rss_kib()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut stops = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..WORKERS {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let ready_tx = ready_tx.clone();
        handles.push(thread::spawn(move || {
            ready_tx.send(()).unwrap();
            let _ = stop_rx.recv();
        }));
        stops.push(stop_tx);
    }
    for _ in 0..WORKERS {
        ready_rx.recv().unwrap();
    }
    let after = rss_kib()?;
    drop(stops);
    for handle in handles {
        handle.join().unwrap();
    }
    Some((after.saturating_sub(before)) as f64 / WORKERS as f64)
}

fn main() {
    // Warm up the allocator and the thread machinery once, so that neither side pays for
    // first-use costs.
    let _ = std_threads();
    match (std_threads(), workers()) {
        (Some(threads), Some(workers)) => {
            println!("idle_memory/std_thread: {threads:.1} KiB RSS per thread ({WORKERS} idle)");
            println!("idle_memory/worker:     {workers:.1} KiB RSS per worker ({WORKERS} idle)");
        }
        _ => println!("idle_memory: /proc/self/status is not readable here (Linux only)"),
    }
}
