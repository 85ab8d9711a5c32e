//! What a process worker and its parent say to each other over their channel (framed by
//! `worker_threads_process::Channel`, bodies in postcard).

use std::io;
use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};

/// The environment variable that marks a process worker (its payload is the worker id).
pub(crate) const MARKER: &str = "WORKER_THREADS_PROCESS_WORKER";
/// A frame whose body is a `ToChild` or a `FromChild`.
pub(crate) const TAG_CONTROL: u8 = 0;
/// A frame whose body is a user message.
pub(crate) const TAG_MESSAGE: u8 = 1;
/// A frame for a port that crossed in the data or a message (`worker_threads_process::ports`).
pub(crate) const TAG_PORT: u8 = 2;
/// The largest frame either side accepts.
pub(crate) const MAX_FRAME: usize = 64 << 20;
/// The data area of each of the channel's two rings (`worker_threads_process::rings`):
/// frames up to half of it cross as one record, larger ones in parts.
pub(crate) const RING_CAPACITY: usize = worker_threads_process::rings::DEFAULT_CAPACITY;
/// The arguments a process worker is started with: in a test binary they run only the
/// test that `process::test_support!` defines (which calls `init`); a program's `main`
/// calls `init` before it looks at its arguments.
pub(crate) const CHILD_ARGS: [&str; 4] = [
    "__worker_threads_process_child",
    "--nocapture",
    "--test-threads=1",
    "-q",
];

/// Parent to child.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToChild {
    /// The first frame: what to run. Piped stdout/stderr come as descriptors with it.
    Start(Start),
    /// The parent's end of the port was closed (the handle dropped or closed it).
    Close,
    /// `Worker::terminate`.
    Terminate,
}

/// What to run, and how.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Start {
    /// The entry's trampoline, as an offset from `init` in this same executable.
    pub(crate) entry: u64,
    /// The executable the parent meant (the child checks it is running the same file).
    pub(crate) exe: ExeId,
    pub(crate) thread_id: u64,
    pub(crate) name: Option<String>,
    /// `worker_data`, encoded.
    pub(crate) data: Vec<u8>,
    pub(crate) stack_size: Option<u64>,
    pub(crate) port_capacity: Option<u64>,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    /// Whether the channel's rings came too: their descriptors are the frame's last
    /// (`worker_threads_process::rings::FDS` of them), and every later frame goes through
    /// them.
    pub(crate) rings: bool,
}

/// Child to parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromChild {
    /// The entry is about to run.
    Online,
    /// The entry ended; every message it posted was sent before this.
    Exit(ExitReport),
}

/// How the entry ended.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ExitReport {
    pub(crate) code: i32,
    pub(crate) error: Option<ErrorReport>,
}

/// A worker error, as it crosses the process boundary.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ErrorReport {
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// Any other error, by its message.
    Failed(String),
}

/// Which file an executable is: device, inode, size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExeId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl ExeId {
    /// The running executable's.
    pub(crate) fn current() -> io::Result<ExeId> {
        let meta = std::fs::metadata(std::env::current_exe()?)?;
        Ok(ExeId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        })
    }
}

/// How long each side watches the socket for the other's answer before it sleeps in
/// `recv` (the caller for the reply, the child for the next request). Measured with
/// `compare case rt_process_fn` on the 2-core VM: 7.3-8.5 us per call with both watching,
/// 11-14 us with only the child, 16-21 us with neither (a sleeping reader pays the
/// scheduler's wake-up on top of the other side's work). Watching in more threads is
/// worse, not better: a process worker's four bridge threads watching took its round
/// trip from 32-48 us to 80-90 us, and a process pool thread watching its queue as well
/// took one task from 20-28 us to 41-61 us (three spinners, two cores).
pub(crate) const ANSWER_WATCH: std::time::Duration = std::time::Duration::from_micros(50);

/// What the child sends back for one call.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer<Rep> {
    Value(Rep),
    Panicked(String),
    /// The reply did not encode; the message of the codec.
    Unencodable(String),
}
