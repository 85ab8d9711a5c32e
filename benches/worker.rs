//! Worker costs: spawn to first message (next to a bare `std::thread`), and the round
//! trip over a worker's parent port (next to a bare `MessageChannel` between two threads).
//!
//! `cargo bench --bench worker`

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use worker_threads::{MessageChannel, Worker, WorkerOptions};

fn spawn_to_first_message(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_to_first_message");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("worker", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let worker: Worker<(), u8> = Worker::spawn(WorkerOptions::new(), |ctx| {
                    ctx.parent_port().post_message(1).unwrap();
                })
                .unwrap();
                assert_eq!(worker.recv(), Ok(1));
                total += start.elapsed();
                worker.join().unwrap();
            }
            total
        })
    });
    group.bench_function("std_thread", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let (tx, rx) = mpsc::channel();
                let handle = thread::spawn(move || tx.send(1u8).unwrap());
                assert_eq!(rx.recv(), Ok(1));
                total += start.elapsed();
                handle.join().unwrap();
            }
            total
        })
    });
    group.finish();
}

fn parent_port_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("worker_round_trip_u64");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("parent_port", |b| {
        b.iter_custom(|iters| {
            let worker: Worker<u64> = Worker::spawn(WorkerOptions::new(), |ctx| {
                let port = ctx.parent_port();
                for n in port.iter() {
                    if port.post_message(n).is_err() {
                        break;
                    }
                }
            })
            .unwrap();
            let start = Instant::now();
            for i in 0..iters {
                worker.post_message(i).unwrap();
                assert_eq!(worker.recv(), Ok(i));
            }
            let elapsed = start.elapsed();
            worker.port().close();
            worker.join().unwrap();
            elapsed
        })
    });
    group.bench_function("bare_message_channel", |b| {
        b.iter_custom(|iters| {
            let MessageChannel { port1, port2 } = MessageChannel::<u64>::new();
            let echo = thread::spawn(move || {
                for n in port2.iter() {
                    if port2.post_message(n).is_err() {
                        break;
                    }
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                port1.post_message(i).unwrap();
                assert_eq!(port1.recv(), Ok(i));
            }
            let elapsed = start.elapsed();
            drop(port1);
            echo.join().unwrap();
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, spawn_to_first_message, parent_port_round_trip);
criterion_main!(benches);
