//! Frame and result objects through `object_store`: a local directory or an S3-compatible
//! bucket (Cloudflare R2 included).

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
use crate::storage::Durability;

/// The bucket the seed gateway used, kept as the default name.
pub const DEFAULT_BUCKET: &str = "interview-feedback-results";

/// A shared handle to the configured object store.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// Where objects go, in words for the startup line (`s3://bucket` or `directory <path>`).
    description: String,
}

impl Objects {
    /// `spec` is a directory path or `s3://<bucket>`; S3 settings come from the standard
    /// `AWS_*` variables (`AWS_ENDPOINT` for R2 or another S3-compatible service).
    /// A bucket acknowledges a put once it is stored, whatever `durability` says.
    pub fn from_spec(spec: &str, durability: Durability) -> Result<Objects, StorageError> {
        match spec.strip_prefix("s3://") {
            Some(bucket) => Objects::s3(bucket.trim_end_matches('/')),
            None => Objects::local(Path::new(spec), durability),
        }
    }

    /// A directory; with [`Durability::Power`] every put fsyncs the file and its directory
    /// before it returns.
    pub fn local(dir: &Path, durability: Durability) -> Result<Objects, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError(format!("cannot create the objects directory: {e}")))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StorageError(format!("cannot use the objects directory: {e}")))?
            .with_fsync(durability == Durability::Power)
            // A deleted session leaves no empty folders behind.
            .with_automatic_cleanup(true);
        Ok(Objects {
            store: Arc::new(store),
            description: format!("directory {}", dir.display()),
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

    /// The object's bytes, or `None` if there is no such object.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
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
    /// The size of every object under `prefix` (a folder, ending in `/`), by key: one listing
    /// instead of a request per object.
    pub async fn sizes(&self, prefix: &str) -> Result<HashMap<String, u64>, StorageError> {
        let path = ObjectPath::from(prefix);
        let mut listing = self.store.list(Some(&path));
        let mut sizes = HashMap::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| object_error("list", prefix, e))?;
            sizes.insert(meta.location.to_string(), meta.size);
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
        let count = keys.len() as u64;
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

impl ObjectStorage for Objects {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
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
