//! What a worker's handle keeps of its process.

use std::fs::File;

/// What the handle keeps of a process worker.
#[derive(Debug)]
pub(crate) struct ProcessLink {
    pub(crate) pid: u32,
    pub(crate) stdout: Option<File>,
    pub(crate) stderr: Option<File>,
}
