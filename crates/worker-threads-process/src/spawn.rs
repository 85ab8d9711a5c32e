//! The parent's side of a child: start it with its end of a channel, signal it, read how
//! it ended.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use rustix::process::{Resource, Rlimit};

use crate::channel::channel_pair;
use crate::marker::Marker;
use crate::signal::Signal;

/// Caps the kernel enforces on a child, set between `fork` and `exec` with `setrlimit`
/// (so they hold from the child's first instruction, and its own children inherit them).
///
/// # Examples
///
/// ```
/// use worker_threads_process::Limits;
///
/// let limits = Limits::none().address_space(Some(512 << 20)).cpu_seconds(Some(30));
/// assert_eq!(limits.address_space, Some(512 << 20));
/// assert_eq!(Limits::none(), Limits::default());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// `RLIMIT_AS`, bytes of address space: an allocation past it fails (Rust's default
    /// handler then aborts the child with `SIGABRT`).
    pub address_space: Option<u64>,
    /// `RLIMIT_CPU`, seconds of CPU time: `SIGXCPU` at the limit, `SIGKILL` one second
    /// later.
    pub cpu_seconds: Option<u64>,
}

impl Limits {
    /// No caps.
    ///
    /// # Examples
    ///
    /// ```
    /// let limits = worker_threads_process::Limits::none();
    /// assert_eq!((limits.address_space, limits.cpu_seconds), (None, None));
    /// ```
    pub const fn none() -> Self {
        Limits {
            address_space: None,
            cpu_seconds: None,
        }
    }

    /// With an address-space cap (`None`: none).
    pub const fn address_space(mut self, bytes: Option<u64>) -> Self {
        self.address_space = bytes;
        self
    }

    /// With a CPU-time cap in seconds (`None`: none).
    pub const fn cpu_seconds(mut self, seconds: Option<u64>) -> Self {
        self.cpu_seconds = seconds;
        self
    }

    /// The caps as `setrlimit` calls (soft = hard for memory; the CPU hard limit one
    /// second above the soft one, so `SIGXCPU` comes first).
    fn rlimits(&self) -> Vec<(Resource, Rlimit)> {
        let mut limits = Vec::new();
        if let Some(bytes) = self.address_space {
            let cap = Rlimit {
                current: Some(bytes),
                maximum: Some(bytes),
            };
            limits.push((Resource::As, cap));
        }
        if let Some(seconds) = self.cpu_seconds {
            let cap = Rlimit {
                current: Some(seconds),
                maximum: Some(seconds.saturating_add(1)),
            };
            limits.push((Resource::Cpu, cap));
        }
        limits
    }
}

/// A started child: what signals it, independent of the `std::process::Child` that
/// reaps it (which the caller usually moves to a waiting thread).
///
/// # Examples
///
/// ```no_run
/// use std::process::Command;
/// use worker_threads_process::{Limits, Signal, exit_of, spawn};
///
/// let mut spawned = spawn(&mut Command::new("sleep").arg("60"), "WT_DOC_CHILD", "", &Limits::none())?;
/// spawned.process.signal(Signal::TERM)?;
/// let status = spawned.child.wait()?;
/// assert_eq!(exit_of(status), (None, Some(Signal::TERM)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Process {
    pid: u32,
    pidfd: Option<OwnedFd>,
}

impl Process {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal`, through the child's pidfd (immune to pid reuse) where the kernel
    /// has them (Linux 5.3), else with `kill`.
    ///
    /// # Errors
    ///
    /// The OS error; `ESRCH` once the child has been reaped.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        let sig = rustix::process::Signal::from_named_raw(signal.as_raw()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("no signal {signal}"))
        })?;
        match &self.pidfd {
            Some(pidfd) => rustix::process::pidfd_send_signal(pidfd, sig)?,
            None => {
                let pid = rustix::process::Pid::from_raw(self.pid as i32)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
                rustix::process::kill_process(pid, sig)?;
            }
        }
        Ok(())
    }

    /// Reaps the child by pid: for when its `std::process::Child` was lost (a thread
    /// that would have waited for it could not start).
    pub fn reap(&self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        }
    }
}

/// How a child ended: its exit code, or the signal that ended it.
pub fn exit_of(status: ExitStatus) -> (Option<i32>, Option<Signal>) {
    (status.code(), status.signal().map(Signal::from_raw))
}

/// What [`spawn`] started.
///
/// # Examples
///
/// ```no_run
/// use std::process::Command;
/// use worker_threads_process::{Channel, Limits, spawn};
///
/// // The child finds its end with `Marker::from_env("MY_CHILD")`.
/// let spawned = spawn(&mut Command::new("my-worker"), "MY_CHILD", "worker-1", &Limits::none())?;
/// let channel = Channel::new(spawned.channel, 1 << 20);
/// channel.send(1, b"start", &[])?;
/// println!("started process {}", spawned.process.pid());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Spawned {
    /// The child, for `wait` and its piped standard streams.
    pub child: std::process::Child,
    /// What signals it.
    pub process: Process,
    /// The parent's end of the channel (wrap it in a [`Channel`](crate::Channel)).
    pub channel: OwnedFd,
}

/// Starts `command` with its end of a new channel, named in the environment variable
/// `marker_var` as `fd,parent_pid,payload` (the child reads it with
/// [`Marker::from_env`]), under `limits`.
///
/// The child's end is created close-on-exec and made inheritable only in the forked
/// child, between `fork` and `exec`: a concurrent spawn on another thread never inherits
/// it (it would keep the channel open after this child died).
///
/// # Errors
///
/// The OS error of `socketpair` or of starting the program (including a limit the
/// kernel refused).
pub fn spawn(
    command: &mut Command,
    marker_var: &str,
    payload: &str,
    limits: &Limits,
) -> io::Result<Spawned> {
    let (ours, theirs) = channel_pair()?;
    let marker = Marker {
        fd: theirs.as_raw_fd(),
        parent: std::process::id(),
        payload: payload.to_owned(),
    };
    command.env(marker_var, marker.to_string());
    let inherited = marker.fd;
    let rlimits = limits.rlimits();
    // SAFETY: the closure runs in the forked child before exec. It calls fcntl(F_SETFD)
    // and setrlimit, which are async-signal-safe system calls (rustix issues them
    // directly), reads a Vec allocated before the fork, and allocates nothing and takes
    // no lock.
    unsafe {
        command.pre_exec(move || {
            // SAFETY: `inherited` is `theirs`, which the parent keeps open until `spawn`
            // returns, so the child's copy of the descriptor table has it.
            let fd = BorrowedFd::borrow_raw(inherited);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            for (resource, limit) in &rlimits {
                rustix::process::setrlimit(*resource, *limit)?;
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop(theirs);
    let pid = child.id();
    let pidfd = rustix::process::Pid::from_raw(pid as i32)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    Ok(Spawned {
        child,
        process: Process { pid, pidfd },
        channel: ours,
    })
}
