//! Unix signals, by name: what ends or is sent to a child.

use std::fmt;

/// A Unix signal number, as Node's `worker.kill('SIGTERM')` names them.
///
/// # Examples
///
/// ```
/// use worker_threads_process::Signal;
///
/// assert_eq!(Signal::KILL.as_raw(), 9);
/// assert_eq!(format!("{:?}", Signal::TERM), "SIGTERM");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// `SIGHUP`.
    pub const HUP: Signal = Signal(1);
    /// `SIGINT`.
    pub const INT: Signal = Signal(2);
    /// `SIGQUIT`.
    pub const QUIT: Signal = Signal(3);
    /// `SIGABRT`.
    pub const ABRT: Signal = Signal(6);
    /// `SIGKILL`: cannot be caught.
    pub const KILL: Signal = Signal(9);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(10);
    /// `SIGSEGV`.
    pub const SEGV: Signal = Signal(11);
    /// `SIGUSR2`.
    pub const USR2: Signal = Signal(12);
    /// `SIGCONT`: resumes a stopped process.
    pub const CONT: Signal = Signal(18);
    /// `SIGSTOP`: stops the process (cannot be caught).
    pub const STOP: Signal = Signal(19);
    /// `SIGTERM`: Node's default for `worker.kill()`.
    pub const TERM: Signal = Signal(15);
    /// `SIGXCPU`: the CPU-time limit (`RLIMIT_CPU`) was reached.
    pub const XCPU: Signal = Signal(24);

    /// The signal with this number.
    ///
    /// # Examples
    ///
    /// ```
    /// use worker_threads_process::Signal;
    ///
    /// assert_eq!(Signal::from_raw(9), Signal::KILL);
    /// assert_eq!(Signal::from_raw(15).as_raw(), 15);
    /// ```
    pub const fn from_raw(raw: i32) -> Signal {
        Signal(raw)
    }

    /// Its number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "SIGHUP",
            2 => "SIGINT",
            3 => "SIGQUIT",
            6 => "SIGABRT",
            9 => "SIGKILL",
            10 => "SIGUSR1",
            11 => "SIGSEGV",
            12 => "SIGUSR2",
            13 => "SIGPIPE",
            15 => "SIGTERM",
            18 => "SIGCONT",
            19 => "SIGSTOP",
            24 => "SIGXCPU",
            _ => return None,
        })
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Signal({})", self.0),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
