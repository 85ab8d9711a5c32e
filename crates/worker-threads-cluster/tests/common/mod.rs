//! Helpers shared by the cluster tests: waiting for events, a line server, a client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use worker_threads_cluster::{Cluster, Event, Listener};

/// How long a test waits for an event before failing (a bound against hangs, not a
/// timing assertion: every wait ends on the event itself).
const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `done` (yielding between looks) until it holds; panics, saying `what`, if it does
/// not within `PATIENCE`. For a state that settles by itself a moment after an event we
/// cannot wait on (a descriptor the primary closes after the client got its answer).
pub(crate) fn settles(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not settle within the patience bound"
        );
        std::thread::yield_now();
    }
}

/// Reads events until `f` picks one; panics if none comes within `PATIENCE`.
pub(crate) fn until<T, R>(cluster: &Cluster<T>, mut f: impl FnMut(Event<T>) -> Option<R>) -> R
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = cluster
            .recv_timeout(left)
            .expect("no awaited cluster event within the patience bound");
        if let Some(r) = f(event) {
            return r;
        }
    }
}

/// Waits for `n` `Listening` events, discarding any other event; the address they serve.
pub(crate) fn listening<T>(cluster: &Cluster<T>, n: usize) -> SocketAddr
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let mut addr = None;
    for _ in 0..n {
        addr = Some(until(cluster, |e| match e {
            Event::Listening { address, .. } => Some(address),
            _ => None,
        }));
    }
    addr.expect("n > 0")
}

/// The worker's side of most tests: answer each connection with `"<worker id>\n"` after
/// reading one line, until disconnected.
pub(crate) fn serve_ids(listener: &Listener) {
    let id = worker_threads_cluster::worker_id().expect("a worker");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        let _ = BufReader::new(&stream).read_line(&mut line);
        let _ = writeln!(stream, "{id}");
    }
}

/// One request to a `serve_ids` worker: which worker answered.
pub(crate) fn ask(addr: SocketAddr) -> std::io::Result<usize> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(b"who\n")?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    line.trim()
        .parse()
        .map_err(|_| std::io::Error::other(format!("bad answer {line:?}")))
}
