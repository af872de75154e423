//! Frame and result objects: a local directory or an S3-compatible bucket (Cloudflare R2
//! included), through `object_store`.
//!
//! In a local directory the frames (the `.pcm` objects) go to the frame log by default
//! ([`FrameStore::Log`]) and are read back at their keys through its index; results stay
//! files. Frames stored one file each (by [`FrameStore::Files`], or before the log existed)
//! are still read, listed and deleted at their keys. A bucket keeps one object per key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectStore, PutOptions, PutPayload};

use crate::core::ports::{ObjectStorage, StorageError};
use crate::storage::frame_log::FrameLog;
use crate::storage::{Database, Durability, FrameStore, frame_index};

/// The bucket the seed gateway used, kept as the default name.
pub const DEFAULT_BUCKET: &str = "interview-feedback-results";

#[derive(Clone)]
struct LoggedFrames {
    log: FrameLog,
    index: Database,
}

/// A shared handle to the configured object store.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// Where frames go instead of `store` (a local directory with [`FrameStore::Log`]).
    log: Option<LoggedFrames>,
    /// Where objects go, in words for the startup line (`s3://bucket` or `directory <path>`).
    description: String,
}

impl Objects {
    /// `spec` is a directory path or `s3://<bucket>`; S3 settings come from the standard
    /// `AWS_*` variables (`AWS_ENDPOINT` for R2 or another S3-compatible service).
    /// A bucket acknowledges a put once it is stored, whatever `durability` says.
    pub fn from_spec(
        spec: &str,
        durability: Durability,
        frames: FrameStore,
        index: &Database,
    ) -> Result<Objects, StorageError> {
        match spec.strip_prefix("s3://") {
            Some(bucket) => Objects::s3(bucket.trim_end_matches('/')),
            None => Objects::local(Path::new(spec), durability, frames, index),
        }
    }

    /// A directory, its frames stored as `frames` says (the log's index in `index`). With
    /// [`Durability::Power`] every put is synced (file or log, and directory) before it
    /// returns.
    pub fn local(
        dir: &Path,
        durability: Durability,
        frames: FrameStore,
        index: &Database,
    ) -> Result<Objects, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError(format!("cannot create the objects directory: {e}")))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StorageError(format!("cannot use the objects directory: {e}")))?
            .with_fsync(durability == Durability::Power)
            // A deleted session leaves no empty folders behind.
            .with_automatic_cleanup(true);
        let log = match frames {
            FrameStore::Log => Some(LoggedFrames {
                log: FrameLog::open(&dir.join(LOG_DIR), durability)?,
                index: index.clone(),
            }),
            FrameStore::Files => None,
        };
        Ok(Objects {
            store: Arc::new(store),
            log,
            description: format!("directory {} (frames: {})", dir.display(), frames.as_str()),
        })
    }

    pub fn s3(bucket: &str) -> Result<Objects, StorageError> {
        let bucket = if bucket.is_empty() {
            DEFAULT_BUCKET
        } else {
            bucket
        };
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        // An http:// endpoint is a local test server; let it through without a second setting.
        if std::env::var("AWS_ENDPOINT").is_ok_and(|e| e.starts_with("http://")) {
            builder = builder.with_allow_http(true);
        }
        let store = builder
            .build()
            .map_err(|e| StorageError(format!("cannot configure S3 bucket '{bucket}': {e}")))?;
        Ok(Objects {
            store: Arc::new(store),
            log: None,
            description: format!("s3://{bucket}"),
        })
    }

    /// `local` or `s3://bucket`, for `/health` (no local paths to strangers).
    pub fn kind(&self) -> &str {
        if self.description.starts_with("s3://") {
            &self.description
        } else {
            "local"
        }
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// The object's bytes, or `None` if there is no such object (or its logged record is
    /// damaged: a resend writes it again).
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        if let Some(logged) = self.logged(key)
            && let Some(at) = match logged.index.unindexed().location(key) {
                Some(at) => Some(at),
                None => frame_index::get(&logged.index, key).await?,
            }
        {
            let (log, key) = (logged.log.clone(), key.to_owned());
            return tokio::task::spawn_blocking(move || log.read(&key, at))
                .await
                .map_err(|_| StorageError("the frame log reader stopped".into()))?
                .map(|found| found.map(Bytes::from));
        }
        let path = ObjectPath::from(key);
        match self.store.get_opts(&path, GetOptions::default()).await {
            Ok(found) => found
                .bytes()
                .await
                .map(Some)
                .map_err(|e| object_error("read", key, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(object_error("read", key, err)),
        }
    }
}

impl Objects {
    /// The size of every readable object under `prefix` (a folder, ending in `/`), by key: one
    /// listing instead of a request per object. Logged frames are read and checked, so a
    /// damaged record is left out as a missing file would be.
    pub async fn sizes(&self, prefix: &str) -> Result<HashMap<String, u64>, StorageError> {
        let path = ObjectPath::from(prefix);
        let mut listing = self.store.list(Some(&path));
        let mut sizes = HashMap::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| object_error("list", prefix, e))?;
            sizes.insert(meta.location.to_string(), meta.size);
        }
        if let Some(logged) = &self.log {
            let located = frame_index::locations(&logged.index, prefix).await?;
            let log = logged.log.clone();
            let intact = tokio::task::spawn_blocking(move || {
                let mut intact = Vec::with_capacity(located.len());
                for (key, at) in located {
                    if log.read(&key, at)?.is_some() {
                        intact.push((key, at.len));
                    }
                }
                Ok::<_, StorageError>(intact)
            })
            .await
            .map_err(|_| StorageError("the frame log reader stopped".into()))??;
            sizes.extend(intact);
        }
        Ok(sizes)
    }
}

impl Objects {
    /// Deletes every object under `prefix` (a folder, ending in `/`) and answers how many
    /// there were: one listing, then the store's bulk delete (S3 batches it). An object that
    /// is already gone counts as deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let path = ObjectPath::from(prefix);
        // Listed in full first: a directory walk should not see its files vanish under it.
        let keys: Vec<ObjectPath> = self
            .store
            .list(Some(&path))
            .map(|meta| meta.map(|m| m.location))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| object_error("list", prefix, e))?;
        let mut count = keys.len() as u64;
        if let Some(logged) = &self.log {
            logged.index.unindexed().forget_prefix(prefix);
            count += frame_index::delete_prefix(&logged.index, prefix).await?;
            self.reclaim().await?;
        }
        let mut deleted = self
            .store
            .delete_stream(futures_util::stream::iter(keys.into_iter().map(Ok)).boxed());
        while let Some(outcome) = deleted.next().await {
            match outcome {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(object_error("delete", prefix, err)),
            }
        }
        Ok(count)
    }
}

impl Objects {
    /// Removes the log's segments that no key points into any more (after deletions, and at
    /// start for records a crash left unindexed).
    pub async fn reclaim(&self) -> Result<(), StorageError> {
        let Some(logged) = &self.log else {
            return Ok(());
        };
        let candidates = logged.log.reclaimable();
        if candidates.is_empty() {
            return Ok(());
        }
        let in_use = frame_index::segments_in_use(&logged.index, candidates.clone()).await?;
        for segment in candidates.into_iter().filter(|s| !in_use.contains(s)) {
            logged.log.remove(segment)?;
        }
        Ok(())
    }

    /// The log, if `key` is a frame and frames are logged.
    fn logged(&self, key: &str) -> Option<&LoggedFrames> {
        self.log.as_ref().filter(|_| is_frame_key(key))
    }
}

/// Reads one object of a gateway's local data directory from outside the gateway (tools,
/// tests), whichever way it was stored; safe while the gateway runs (SQLite readers see the
/// last commit). `None` when there is no such object.
pub fn read_local(data_dir: &Path, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let objects = data_dir.join("objects");
    if is_frame_key(key)
        && let Some(at) = frame_index::get_from(&data_dir.join(super::database::FILE_NAME), key)?
    {
        return super::frame_log::read_from(&objects.join(LOG_DIR), key, at);
    }
    match std::fs::read(objects.join(key)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(StorageError(format!("cannot read {key}: {err}"))),
    }
}

/// The folder of the frame log inside a local objects directory (beside `sessions/`).
const LOG_DIR: &str = "frame-log";

/// Frames are the contract's `<seq8>.pcm` objects; everything else (results) stays a file.
fn is_frame_key(key: &str) -> bool {
    key.ends_with(".pcm")
}

impl ObjectStorage for Objects {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        if let Some(logged) = self.logged(key) {
            let appended = logged.log.append(key, bytes).await?;
            // The record is written; the frame's `save_chunk`, which the session core makes
            // next, commits its index row with the frame's own row (see `Unindexed`).
            logged.index.unindexed().insert(key, appended);
            return Ok(());
        }
        let path = ObjectPath::from(key);
        self.store
            .put_opts(&path, PutPayload::from(bytes), PutOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| object_error("write", key, e))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(Objects::get(self, key).await?.map(Vec::from))
    }
}

/// The client hears which object failed; the operator's log gets the store's own words (which
/// may name local paths or endpoints, so they stay out of answers).
fn object_error(op: &str, key: &str, err: object_store::Error) -> StorageError {
    tracing::error!(key, error = %err, "object store could not {op} an object");
    StorageError(format!("object store could not {op} {key}"))
}
