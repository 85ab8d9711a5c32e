//! The primary process's side: the `Cluster`, its `ClusterWorker` handles, and the servers it
//! binds for its workers.
//!
//! One thread per worker reads its IPC socket (messages, `listen` requests), and when the
//! socket ends it reaps the process, reports `Disconnect` and `Exit`, and applies the
//! restart policy. One thread per round-robin address accepts and hands connections out.
//! Everything a user can call is a short lock on the shared state or a socket write.

mod cluster;
mod events;
pub(crate) mod server;
mod worker;

pub use cluster::Cluster;
pub use worker::ClusterWorker;
