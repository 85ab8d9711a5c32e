//! The examples run with small sizes and print what they promise. `cargo test` builds
//! them next to this test's binary (`target/<profile>/examples/`).

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().expect("test binary path");
    let profile_dir = deps
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn run(name: &str, args: &[&str]) -> String {
    let output = Command::new(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run example {name}: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn ping_pong_greets_and_counts_every_round() {
    let out = run("ping_pong", &["--rounds", "500"]);
    assert!(
        out.contains("We got a message from the main thread: Hello, World!"),
        "{out}"
    );
    assert!(out.contains("500 round trips in"), "{out}");
    assert!(out.contains("worker exited with code 0"), "{out}");
}

#[test]
fn ping_pong_rejects_a_bad_argument() {
    let output = Command::new(example("ping_pong"))
        .args(["--rounds", "many"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid value 'many' for '--rounds <ROUNDS>'"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[cfg(all(feature = "process", target_os = "linux"))]
#[test]
fn process_worker_plays_ping_pong_then_terminates_a_stuck_worker() {
    let out = run("process_worker", &["--rounds", "300"]);
    assert!(
        out.contains("We got a message from the main thread: Hello, World!"),
        "{out}"
    );
    assert!(out.contains("300 round trips in"), "{out}");
    assert!(out.contains("worker exited with code 0"), "{out}");
    assert!(out.contains("spinning"), "{out}");
    assert!(
        out.contains("terminated worker exited with code 1"),
        "{out}"
    );
}

#[test]
fn port_transfer_echoes_then_siblings_talk_directly() {
    let out = run("port_transfer", &["--count", "100"]);
    assert!(
        out.contains("We got a message from the main thread: Hello, World!"),
        "{out}"
    );
    assert!(
        out.contains("siblings: the summer received 1..=100 from the producer directly: 5050"),
        "{out}"
    );
}

#[test]
fn message_channel_echoes_the_greeting() {
    let out = run("message_channel", &[]);
    assert_eq!(
        out,
        "We got a message from the main thread: Hello, World!\n"
    );
}

#[test]
fn shared_counter_counts_every_increment_and_every_ring_item() {
    let out = run(
        "shared_counter",
        &["--workers", "3", "--increments", "1000"],
    );
    assert!(
        out.contains("counter: 3 workers x 1000 increments = 3000"),
        "{out}"
    );
    // 3 * (0 + 1 + ... + 999)
    assert!(
        out.contains("ring: 1000 items through 64 slots, sum 1498500"),
        "{out}"
    );
}

#[cfg(all(feature = "process", target_os = "linux"))]
#[test]
fn shared_counter_counts_across_worker_processes() {
    let out = run(
        "shared_counter",
        &["--workers", "3", "--increments", "10000", "--process"],
    );
    assert!(
        out.contains("counter: 3 worker processes x 10000 increments = 30000"),
        "{out}"
    );
}

#[test]
fn sqrt_pool_runs_the_chapters_loop_and_the_map_mode() {
    let out = run("sqrt_pool", &["--tasks", "20000"]);
    assert!(out.contains("sqrt_pool: the chapter's loop"), "{out}");
    assert!(out.contains("tasks: 20000 in"), "{out}");
    assert!(out.contains("max_queue: "), "{out}");
    // The queue never went past its bound.
    let max_queue: usize = field(&out, "max_queue: ");
    let largest: usize = field(&out, "largest queue seen: ");
    assert!(largest <= max_queue, "{out}");
    assert!(out.contains("peak RSS: "), "{out}");

    let out = run(
        "sqrt_pool",
        &["--tasks", "20000", "--mode", "map", "--threads", "2"],
    );
    assert!(out.contains("sqrt_pool: pool.map"), "{out}");
    assert!(out.contains("tasks: 20000 in"), "{out}");
    assert!(out.contains("max_queue: 4"), "{out}");
}

/// The number after `label` on its line of `out`.
fn field<T: std::str::FromStr>(out: &str, label: &str) -> T {
    out.lines()
        .find_map(|line| line.strip_prefix(label))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

/// Reads the primary's stdout lines until one contains `needle`.
#[cfg(all(target_os = "linux", feature = "tokio"))]
fn line_with(lines: &mut impl Iterator<Item = std::io::Result<String>>, needle: &str) -> String {
    for line in lines {
        let line = line.expect("reading cluster_http's output");
        if line.contains(needle) {
            return line;
        }
    }
    panic!("cluster_http ended without printing {needle:?}");
}

#[cfg(all(target_os = "linux", feature = "tokio"))]
fn http_get(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

// `cluster_http` needs the `tokio` feature (the workspace's `compare` enables it, so
// `cargo test --workspace` runs this).
#[cfg(all(target_os = "linux", feature = "tokio"))]
#[test]
fn cluster_http_serves_hello_world_and_restarts_a_killed_worker() {
    use std::io::BufRead;
    let mut primary = Command::new(example("cluster_http"))
        .args(["--workers", "2"])
        .env("PORT", "0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(primary.stdout.take().unwrap()).lines();
    line_with(&mut lines, "primary");
    let first = line_with(&mut lines, "serving http://");
    line_with(&mut lines, "serving http://");
    let addr = first.rsplit("http://").next().unwrap().to_owned();
    let response = http_get(&addr);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("\r\n\r\nHello, World!\n"), "{response}");

    // "worker 1 (pid 1234) serving ...": kill that pid; the primary restarts it.
    let pid: i32 = first
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let died = line_with(&mut lines, "died");
    assert!(
        died.contains("signal SIGKILL") && died.contains("restarting"),
        "{died}"
    );
    let replacement = line_with(&mut lines, "serving http://");
    assert!(replacement.ends_with(&addr), "{replacement} vs {addr}");
    assert!(http_get(&addr).ends_with("Hello, World!\n"));

    primary.kill().unwrap();
    primary.wait().unwrap();
}
