//! What the queue holds: one task, or a `map` chunk of tasks run by one thread.

use std::sync::Arc;

use crate::task::{Chunk, Output, Task};

/// A job in the queue: one task, or a chunk of `map`'s items.
pub(crate) enum Job<T, R> {
    One(Arc<Task<T, R>>),
    Chunk(Arc<Chunk<T, R>>),
}

/// The handle of a chunk.
pub(crate) type ChunkHandle<R> = crate::task::TaskHandle<Vec<Output<R>>>;
