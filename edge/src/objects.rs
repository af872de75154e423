//! The session core's object port over an R2 bucket.

use std::collections::HashMap;

use session_core::ports::{ObjectStorage, StorageError};
use worker::Bucket;

/// Frames and results in R2, under the keys the contract fixes (`sessions/<safe id>/...`).
#[derive(Clone)]
pub struct R2Objects {
    pub bucket: Bucket,
}

fn failed(what: &str, err: worker::Error) -> StorageError {
    StorageError(format!("R2 {what} failed: {err}"))
}

impl ObjectStorage for R2Objects {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.bucket
            .put(key, bytes)
            .execute()
            .await
            .map_err(|e| failed("write", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let Some(object) = self
            .bucket
            .get(key)
            .execute()
            .await
            .map_err(|e| failed("read", e))?
        else {
            return Ok(None);
        };
        match object.body() {
            Some(body) => Ok(Some(body.bytes().await.map_err(|e| failed("read", e))?)),
            None => Ok(Some(Vec::new())),
        }
    }
}

impl R2Objects {
    /// The size of every object under `prefix`, by key (one listing, page by page).
    pub async fn sizes(&self, prefix: &str) -> Result<HashMap<String, u64>, StorageError> {
        let mut sizes = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut list = self.bucket.list().prefix(prefix);
            if let Some(cursor) = cursor.take() {
                list = list.cursor(cursor);
            }
            let page = list.execute().await.map_err(|e| failed("listing", e))?;
            for object in page.objects() {
                sizes.insert(object.key(), object.size());
            }
            match page.cursor() {
                Some(next) if page.truncated() => cursor = Some(next),
                _ => return Ok(sizes),
            }
        }
    }
}
