//! `ProcessFn`: a function served by a process of its own, called from the caller's
//! thread (this test binary started again: `process::test_support!`).
#![cfg(target_os = "linux")]

use std::sync::mpsc;

use worker_threads_core::process::{CallError, Ended, ProcessFn};

worker_threads_core::process::test_support!();

/// 0: the number's square and the serving process's id; 1: panic; 2: abort; 3: spin.
fn serve((what, n): (u8, u64)) -> (u64, u32) {
    match what {
        1 => panic!("no square for {n}"),
        2 => std::process::abort(),
        3 =>
        {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        _ => (n * n, std::process::id()),
    }
}

type Served = ProcessFn<(u8, u64), (u64, u32)>;

#[test]
fn calls_run_in_the_other_process_and_return_exact_values() {
    let mut served: Served = ProcessFn::spawn(serve).unwrap();
    let pid = served.pid();
    assert_ne!(pid, std::process::id());
    for n in 0..1_000 {
        assert_eq!(served.call(&(0, n)), Ok((n * n, pid)));
    }
    assert_eq!(
        served.close(),
        Ended {
            code: Some(0),
            signal: None
        }
    );
}

#[test]
fn a_panic_is_that_calls_error_and_the_process_serves_on() {
    let mut served: Served = ProcessFn::spawn(serve).unwrap();
    assert_eq!(
        served.call(&(1, 7)),
        Err(CallError::Panicked("no square for 7".into()))
    );
    let pid = served.pid();
    assert_eq!(served.call(&(0, 9)), Ok((81, pid)));
}

#[test]
fn a_crash_ends_the_process_for_this_call_and_every_later_one() {
    let mut served: Served = ProcessFn::spawn(serve).unwrap();
    let aborted = Ended {
        code: None,
        signal: Some(6),
    };
    assert_eq!(served.call(&(2, 0)), Err(CallError::Ended(aborted)));
    assert_eq!(served.call(&(0, 3)), Err(CallError::Ended(aborted)));
    assert_eq!(served.close(), aborted);
}

#[test]
fn a_killer_stops_a_call_that_never_returns() {
    let served: Served = ProcessFn::spawn(serve).unwrap();
    assert_eq!(kill_mid_call(served, (3, 0)), Err(CallError::Ended(KILLED)));
}

/// How a process ends under a `Killer`.
const KILLED: Ended = Ended {
    code: None,
    signal: Some(9),
};

/// Calls `served` with `request` on another thread and kills the process once that
/// thread is about to call (a request that never returns makes it a kill mid-call); the
/// call's result.
fn kill_mid_call<Req, Rep>(mut served: ProcessFn<Req, Rep>, request: Req) -> Result<Rep, CallError>
where
    Req: serde::Serialize + Send + 'static,
    Rep: serde::de::DeserializeOwned + Send + 'static,
{
    let killer = served.killer();
    let (started_tx, started) = mpsc::channel();
    let caller = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        served.call(&request)
    });
    started.recv().unwrap();
    killer.kill();
    caller.join().unwrap()
}

#[test]
fn kills_racing_calls_end_each_run_with_exact_values_then_ended() {
    // 200 trials: one thread calls in a loop, another kills at a random moment. Every
    // call before the kill returned its exact value, every one after gives Ended, and
    // nothing hangs or panics.
    for trial in 0..200_u64 {
        let mut served: Served = ProcessFn::spawn(serve).unwrap();
        let pid = served.pid();
        let killer = served.killer();
        let caller = std::thread::spawn(move || {
            let mut values = 0;
            for n in 0.. {
                match served.call(&(0, n)) {
                    Ok(value) => {
                        assert_eq!(value, (n * n, pid));
                        values += 1;
                    }
                    Err(CallError::Ended(ended)) => return (values, ended),
                    Err(other) => panic!("trial {trial}: {other}"),
                }
            }
            unreachable!()
        });
        for _ in 0..(trial % 7) * 50 {
            std::hint::spin_loop();
        }
        killer.kill();
        let (_, ended) = caller.join().unwrap();
        assert_eq!(ended.signal, Some(9), "trial {trial}");
    }
}

/// A value whose `Serialize` fails when it says so: a request or a reply that cannot
/// cross.
#[derive(Debug, PartialEq)]
struct Fragile(bool);

impl serde::Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 {
            return Err(serde::ser::Error::custom("this value refuses to serialize"));
        }
        serializer.serialize_bool(false)
    }
}

impl<'de> serde::Deserialize<'de> for Fragile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bool::deserialize(deserializer).map(Fragile)
    }
}

/// Answers with a fragile value when asked to.
fn answer_fragile(fragile: bool) -> Fragile {
    Fragile(fragile)
}

/// Echoes its request.
fn echo_fragile(request: Fragile) -> bool {
    request.0
}

#[test]
fn a_request_that_does_not_encode_is_a_typed_error_and_nothing_is_sent() {
    let mut served = ProcessFn::<Fragile, bool>::spawn(echo_fragile).unwrap();
    match served.call(&Fragile(true)) {
        // postcard keeps no custom message: the codec says what failed.
        Err(CallError::Encode(why)) => assert!(why.contains("unencodable"), "{why}"),
        other => panic!("expected an encode error, got {other:?}"),
    }
    // The process never saw it, and serves on.
    assert_eq!(served.call(&Fragile(false)), Ok(false));
    assert_eq!(
        served.close(),
        Ended {
            code: Some(0),
            signal: None
        }
    );
}

#[test]
fn a_reply_that_does_not_encode_is_that_calls_typed_error_and_the_process_serves_on() {
    let mut served = ProcessFn::<bool, Fragile>::spawn(answer_fragile).unwrap();
    match served.call(&true) {
        Err(CallError::Reply(why)) => assert!(why.contains("unencodable"), "{why}"),
        other => panic!("expected a reply error, got {other:?}"),
    }
    assert_eq!(served.call(&false), Ok(Fragile(false)));
}

/// Parks for good: a call that never returns, without burning a core.
fn stuck(_request: ()) {
    loop {
        std::thread::park();
    }
}

#[test]
fn a_call_timeout_kills_a_call_that_never_returns_and_every_later_call_says_ended() {
    let mut served = ProcessFn::<(), ()>::spawn(stuck).unwrap();
    let timeout = std::time::Duration::from_millis(50);
    let start = std::time::Instant::now();
    assert_eq!(
        served.call_timeout(&(), timeout),
        Err(CallError::TimedOut(KILLED))
    );
    // It waited the whole timeout before it killed.
    assert!(
        start.elapsed() >= timeout,
        "gave up after {:?}",
        start.elapsed()
    );
    assert_eq!(served.call(&()), Err(CallError::Ended(KILLED)));
    assert_eq!(served.close(), KILLED);
}

#[test]
fn a_call_within_its_timeout_returns_its_exact_value_and_the_process_serves_on() {
    let mut served: Served = ProcessFn::spawn(serve).unwrap();
    let pid = served.pid();
    let hour = std::time::Duration::from_secs(3600);
    for n in 0..1_000 {
        assert_eq!(served.call_timeout(&(0, n), hour), Ok((n * n, pid)));
    }
    let deadline = std::time::Instant::now() + hour;
    assert_eq!(served.call_deadline(&(0, 5), deadline), Ok((25, pid)));
    assert_eq!(
        served.call_timeout(&(1, 7), hour),
        Err(CallError::Panicked("no square for 7".into()))
    );
    assert_eq!(served.call(&(0, 9)), Ok((81, pid)));
}

/// Works for about `micros` microseconds (a clock loop), then answers `micros`.
fn busy(micros: u64) -> u64 {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
    micros
}

#[test]
fn replies_racing_the_deadline_give_the_exact_value_or_a_kill_never_both_or_neither() {
    // 300 calls whose work lasts about as long as their timeout: each either returns its
    // exact value (and the process serves the next call) or times out with the process
    // killed (and the next call says so); nothing hangs, nothing else comes back.
    let mut served = ProcessFn::<u64, u64>::spawn(busy).unwrap();
    let (mut values, mut kills) = (0, 0);
    for trial in 0..300_u64 {
        let work = 200 + (trial % 5) * 100;
        match served.call_timeout(&work, std::time::Duration::from_micros(400)) {
            Ok(value) => {
                assert_eq!(value, work, "trial {trial}");
                assert_eq!(served.call(&1), Ok(1), "trial {trial}: serves on");
                values += 1;
            }
            Err(CallError::TimedOut(ended)) => {
                assert_eq!(ended.signal, Some(9), "trial {trial}");
                assert_eq!(served.call(&1), Err(CallError::Ended(ended)));
                kills += 1;
                served = ProcessFn::spawn(busy).unwrap();
            }
            Err(other) => panic!("trial {trial}: {other}"),
        }
    }
    assert_eq!(values + kills, 300);
}

/// 0: `n`; 1: 4 GiB (refused under a 1 GiB address-space cap); 2: abort; 3: spin.
fn capped((what, n): (u8, u64)) -> u64 {
    match what {
        1 => vec![1u8; 4 << 30].len() as u64,
        2 => std::process::abort(),
        3 =>
        {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        _ => n,
    }
}

#[test]
fn a_call_over_the_memory_cap_gives_the_limit_and_an_abort_under_it_stays_ended() {
    use worker_threads_core::Limit;
    use worker_threads_core::process::ResourceLimits;
    let limits = ResourceLimits::new().max_memory(1 << 30);
    let mut served = ProcessFn::spawn_limited(capped, &limits).unwrap();
    assert_eq!(served.call(&(0, 7)), Ok(7));
    let aborted = Ended {
        code: None,
        signal: Some(6),
    };
    assert_eq!(
        served.call(&(1, 0)),
        Err(CallError::LimitExceeded {
            limit: Limit::Memory,
            ended: aborted
        })
    );
    assert_eq!(served.call(&(0, 7)), Err(CallError::Ended(aborted)));
    let mut served = ProcessFn::spawn_limited(capped, &limits).unwrap();
    assert_eq!(served.call(&(2, 0)), Err(CallError::Ended(aborted)));
}

#[test]
fn a_call_over_the_cpu_cap_gives_the_limit_and_a_killer_under_it_stays_ended() {
    use worker_threads_core::Limit;
    use worker_threads_core::process::ResourceLimits;
    let limits = ResourceLimits::new().max_cpu_time(std::time::Duration::from_secs(1));
    let mut served = ProcessFn::spawn_limited(capped, &limits).unwrap();
    match served.call(&(3, 0)) {
        Err(CallError::LimitExceeded { limit, .. }) => assert_eq!(limit, Limit::CpuTime),
        other => panic!("expected the CPU limit, got {other:?}"),
    }
    // A kill of ours is a SIGKILL too: under the cap it is still not the cap's.
    let served = ProcessFn::spawn_limited(capped, &limits).unwrap();
    assert_eq!(kill_mid_call(served, (3, 0)), Err(CallError::Ended(KILLED)));
}
