//! `atomics::wait`/`notify` ping-pong between two threads, next to the same ping-pong on a
//! bare futex (no spin) and on a pure spin, from the same run.
//!
//! `cargo bench --bench atomics`

#[cfg(target_os = "linux")]
use std::sync::atomic::AtomicU32;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use worker_threads::SharedArrayBuffer;
use worker_threads::atomics;

/// How one side waits for the turn counter to leave `seen`, and wakes the other.
trait Turn: Send + Sync + 'static {
    fn wait(cell: &AtomicI32, seen: i32);
    fn wake(cell: &AtomicI32);
}

struct Ours;
impl Turn for Ours {
    fn wait(cell: &AtomicI32, seen: i32) {
        atomics::wait(cell, seen, None);
    }
    fn wake(cell: &AtomicI32) {
        atomics::notify(cell, 1);
    }
}

/// The futex with nothing around it (Linux only).
#[cfg(target_os = "linux")]
mod bare {
    use super::{AtomicI32, AtomicU32, Turn};

    pub(super) struct BareFutex;
    impl Turn for BareFutex {
        fn wait(cell: &AtomicI32, seen: i32) {
            let _ = rustix::thread::futex::wait(
                as_u32(cell),
                rustix::thread::futex::Flags::PRIVATE,
                seen as u32,
                None,
            );
        }
        fn wake(cell: &AtomicI32) {
            let _ =
                rustix::thread::futex::wake(as_u32(cell), rustix::thread::futex::Flags::PRIVATE, 1);
        }
    }

    fn as_u32(cell: &AtomicI32) -> &AtomicU32 {
        // Both sides of the bench only view cell 0 as `AtomicU32` through this cast, and
        // `AtomicI32`/`AtomicU32` share size, alignment and bit validity.
        let sab_cell: *const AtomicI32 = cell;
        // SAFETY: see above; the reference keeps `cell`'s lifetime.
        unsafe { &*sab_cell.cast::<AtomicU32>() }
    }
}

struct Spin;
impl Turn for Spin {
    fn wait(_: &AtomicI32, _: i32) {
        std::hint::spin_loop();
    }
    fn wake(_: &AtomicI32) {}
}

/// Plays `rounds` turns: waits until the counter is `2 * round + parity`, then moves it on.
fn play<T: Turn>(turn: &AtomicI32, rounds: i32, parity: i32) {
    for round in 0..rounds {
        let mine = 2 * round + parity;
        wait_for::<T>(turn, mine);
        turn.store(mine + 1, Ordering::SeqCst);
        T::wake(turn);
    }
}

fn wait_for<T: Turn>(turn: &AtomicI32, value: i32) {
    loop {
        let now = turn.load(Ordering::SeqCst);
        if now == value {
            return;
        }
        T::wait(turn, now);
    }
}

/// `rounds` round trips: main moves the counter to odd and waits for even, the peer the
/// other way round.
fn ping_pong<T: Turn>(rounds: u64) -> Duration {
    let sab = SharedArrayBuffer::new(4);
    let other = sab.clone();
    let rounds = i32::try_from(rounds).unwrap_or(i32::MAX / 2);
    let peer = thread::spawn(move || play::<T>(&other.as_i32()[0], rounds, 1));
    let turn = &sab.as_i32()[0];
    let start = Instant::now();
    play::<T>(turn, rounds, 0);
    wait_for::<T>(turn, 2 * rounds);
    let elapsed = start.elapsed();
    peer.join().expect("peer thread");
    elapsed
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("wait_notify_round_trip");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("atomics_wait_notify", |b| b.iter_custom(ping_pong::<Ours>));
    #[cfg(target_os = "linux")]
    group.bench_function("bare_futex", |b| {
        b.iter_custom(ping_pong::<bare::BareFutex>)
    });
    group.bench_function("pure_spin", |b| b.iter_custom(ping_pong::<Spin>));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
