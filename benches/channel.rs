//! Round trip and one-way throughput of `u64` messages between two threads: our
//! `MessageChannel` next to bare flume and crossbeam-channel, measured in the same run.
//!
//! `cargo bench --bench channel`

use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use worker_threads::{MessageChannel, MessagePort};

/// One end of a two-way pipe of `u64`s.
trait End: Send + 'static {
    fn send(&self, v: u64);
    fn recv(&self) -> Option<u64>;
}

impl End for MessagePort<u64> {
    fn send(&self, v: u64) {
        self.post_message(v).expect("peer is alive");
    }
    fn recv(&self) -> Option<u64> {
        MessagePort::recv(self).ok()
    }
}

struct Flume(flume::Sender<u64>, flume::Receiver<u64>);
impl End for Flume {
    fn send(&self, v: u64) {
        self.0.send(v).expect("peer is alive");
    }
    fn recv(&self) -> Option<u64> {
        self.1.recv().ok()
    }
}

struct Crossbeam(
    crossbeam_channel::Sender<u64>,
    crossbeam_channel::Receiver<u64>,
);
impl End for Crossbeam {
    fn send(&self, v: u64) {
        self.0.send(v).expect("peer is alive");
    }
    fn recv(&self) -> Option<u64> {
        self.1.recv().ok()
    }
}

fn ports() -> (MessagePort<u64>, MessagePort<u64>) {
    let MessageChannel { port1, port2 } = MessageChannel::new();
    (port1, port2)
}

fn flume_pair() -> (Flume, Flume) {
    let (a_tx, a_rx) = flume::unbounded();
    let (b_tx, b_rx) = flume::unbounded();
    (Flume(a_tx, b_rx), Flume(b_tx, a_rx))
}

fn crossbeam_pair() -> (Crossbeam, Crossbeam) {
    let (a_tx, a_rx) = crossbeam_channel::unbounded();
    let (b_tx, b_rx) = crossbeam_channel::unbounded();
    (Crossbeam(a_tx, b_rx), Crossbeam(b_tx, a_rx))
}

/// Round trips through an echo thread: the time for one post and its answer.
fn round_trip<E: End>(iters: u64, (main, echo): (E, E)) -> Duration {
    let echo = thread::spawn(move || {
        while let Some(v) = echo.recv() {
            echo.send(v);
        }
    });
    let start = Instant::now();
    for i in 0..iters {
        main.send(i);
        assert_eq!(main.recv(), Some(i));
    }
    let elapsed = start.elapsed();
    drop(main);
    echo.join().expect("echo thread");
    elapsed
}

const BATCH: u64 = 100_000;

/// One-way: a producer posts `BATCH` messages, a consumer on another thread receives them.
fn one_way<E: End>(iters: u64, make: fn() -> (E, E)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (tx, rx) = make();
        let start = Instant::now();
        let consumer = thread::spawn(move || {
            let mut sum = 0u64;
            for _ in 0..BATCH {
                sum += rx.recv().expect("producer is alive");
            }
            sum
        });
        for i in 0..BATCH {
            tx.send(i);
        }
        let sum = consumer.join().expect("consumer thread");
        total += start.elapsed();
        assert_eq!(sum, BATCH * (BATCH - 1) / 2);
    }
    total
}

fn bench_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip_u64");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("message_channel", |b| {
        b.iter_custom(|iters| round_trip(iters, ports()))
    });
    group.bench_function("flume", |b| {
        b.iter_custom(|iters| round_trip(iters, flume_pair()))
    });
    group.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| round_trip(iters, crossbeam_pair()))
    });
    group.finish();
}

fn bench_one_way(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_way_u64");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("message_channel", |b| {
        b.iter_custom(|iters| one_way(iters, ports))
    });
    group.bench_function("flume", |b| {
        b.iter_custom(|iters| one_way(iters, flume_pair))
    });
    group.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| one_way(iters, crossbeam_pair))
    });
    group.finish();
}

criterion_group!(benches, bench_round_trip, bench_one_way);
criterion_main!(benches);
