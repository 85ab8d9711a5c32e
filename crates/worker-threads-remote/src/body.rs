//! Bodies larger than a message: a task or a reply over the server's `max_payload` goes
//! into the queue's JetStream object store (a bucket beside the queue's stream), and its
//! message carries the object's name instead (`Wt-Body` on a task, `Reply::Body` for a
//! reply). The submitter deletes a task's body when the task resolves, and a reply's once
//! it read it; a body nobody takes (its submitter died) leaves with the bucket's
//! `max_age`, [`QueueConfig::body_ttl`].

use async_nats::jetstream::{self, object_store};
use base64::Engine;
use tokio::io::AsyncReadExt;

use crate::queue::QueueConfig;
use crate::wire::Names;

/// Room kept in a message for its headers (and a batch's framing): a payload up to
/// `max_payload` minus this goes as it is.
const HEADROOM: usize = 4096;

/// The queue's object store, and the size above which a body goes there. The bucket is
/// made (or found) by the first body that needs it: a queue that never carries one has
/// none.
pub(crate) struct Bodies {
    js: jetstream::Context,
    /// The bucket, as it is made if missing.
    config: object_store::Config,
    max_payload: usize,
    opened: tokio::sync::OnceCell<Opened>,
}

/// The bucket, once found or made.
struct Opened {
    store: object_store::ObjectStore,
    /// The bucket's stream, where a deleted object's marker is purged.
    stream: jetstream::stream::Stream,
}

impl Bodies {
    /// The bodies of the queue `names` name, for a server whose `max_payload` is given.
    pub(crate) fn new(
        js: &jetstream::Context,
        names: &Names,
        config: &QueueConfig,
        max_payload: usize,
    ) -> Self {
        let config = object_store::Config {
            bucket: names.bodies.clone(),
            description: Some("bodies over max_payload of a worker-threads queue".into()),
            max_age: config.body_ttl,
            storage: if config.memory {
                jetstream::stream::StorageType::Memory
            } else {
                jetstream::stream::StorageType::File
            },
            num_replicas: config.replicas.max(1),
            ..Default::default()
        };
        Self {
            js: js.clone(),
            config,
            max_payload,
            opened: tokio::sync::OnceCell::new(),
        }
    }

    /// The bucket, found or made on first use.
    async fn opened(&self) -> Result<&Opened, String> {
        self.opened
            .get_or_try_init(|| async {
                let bucket = &self.config.bucket;
                let store = match self.js.get_object_store(bucket).await {
                    Ok(store) => store,
                    Err(_) => self
                        .js
                        .create_object_store(self.config.clone())
                        .await
                        .map_err(|e| format!("object store {bucket}: {e}"))?,
                };
                let stream = self
                    .js
                    .get_stream(format!("OBJ_{bucket}"))
                    .await
                    .map_err(|e| format!("object store {bucket}: {e}"))?;
                Ok(Opened { store, stream })
            })
            .await
    }

    /// Whether `len` bytes go in a message as they are.
    pub(crate) fn fits(&self, len: usize) -> bool {
        len.saturating_add(HEADROOM) <= self.max_payload
    }

    /// Stores `bytes` as `name`.
    pub(crate) async fn put(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let meta = object_store::ObjectMetadata {
            name: name.to_string(),
            chunk_size: Some((self.max_payload / 2).max(HEADROOM)),
            ..Default::default()
        };
        let mut reader = bytes;
        self.opened()
            .await?
            .store
            .put(meta, &mut reader)
            .await
            .map(drop)
            .map_err(|e| format!("storing a body of {} bytes: {e}", bytes.len()))
    }

    /// Reads the body `name`.
    pub(crate) async fn get(&self, name: &str) -> Result<Vec<u8>, String> {
        let mut object = self
            .opened()
            .await?
            .store
            .get(name)
            .await
            .map_err(|e| format!("the body {name}: {e}"))?;
        let mut bytes = Vec::with_capacity(object.info().size);
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| format!("reading the body {name}: {e}"))?;
        Ok(bytes)
    }

    /// Deletes the body `name`, leaving nothing in the bucket: its chunks, and the marker
    /// the object store leaves for a deleted object. Nothing to do if it is gone.
    pub(crate) async fn delete(&self, name: &str) {
        let opened = match self.opened().await {
            Ok(opened) => opened,
            Err(error) => {
                tracing::debug!(%error, name, "a body was not deleted");
                return;
            }
        };
        if let Err(error) = opened.store.delete(name).await {
            tracing::debug!(%error, name, "a body was not deleted (gone already?)");
            return;
        }
        // The store's own name of the object's metadata subject (`$O.<bucket>.M.<name in
        // URL-safe base64>`), where the deletion left its marker.
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(name);
        let marker = format!("$O.{}.M.{encoded}", self.config.bucket);
        if let Err(error) = opened.stream.purge().filter(marker).await {
            tracing::debug!(%error, name, "a deleted body's marker stays");
        }
    }
}
