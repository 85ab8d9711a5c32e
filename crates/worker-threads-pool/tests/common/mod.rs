//! Helpers shared by the pool's tests (included with `mod common;`).
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A gate tasks wait at until the test opens it.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// Blocks until the gate is open.
    pub fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }

    /// Closes the gate again.
    pub fn close(&self) {
        *self.0.0.lock().unwrap() = false;
    }

    /// Opens the gate for every waiter.
    pub fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// Polls `condition` until it holds; fails the test (instead of hanging) after a minute.
pub fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::yield_now();
    }
}
