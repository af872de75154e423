//! The session core's object port on the edge: frames in the Durable Object's own SQLite
//! database, everything else (`result.json`) in R2.
//!
//! Why frames are not R2 objects: a frame's object had to be written before its ACK, and an R2
//! write is a subrequest to another service, the dearest step of a frame by far (under local
//! workerd about 4 ms of CPU per 32 KB object, five times the rest of the frame; on Cloudflare
//! a network round trip and a billed class A operation per second of audio). A row in the
//! object's own database is written in the same implicit transaction as the frame's ingest
//! rows (no `await` between them, see `storage.rs`), so the frame and its bookkeeping commit
//! together and the runtime's output gate holds the ACK until both are durable.
//!
//! Frames stored by an earlier version of the edge host as R2 objects at their keys are still
//! read there: a frame key missing from the table falls back to R2.

use std::collections::{HashMap, HashSet};

use session_core::ports::{ObjectStorage, StorageError};
use session_core::session_id::SessionId;
use session_core::stream::Stream;
use worker::{Bucket, SqlStorage, SqlStorageValue};

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS frames (key TEXT PRIMARY KEY, bytes BLOB NOT NULL) WITHOUT ROWID;";

/// A session's objects: its frames in the object's SQLite database, the rest in R2, under the
/// keys the contract fixes (`sessions/<safe id>/...`).
#[derive(Clone)]
pub struct SessionObjects {
    sql: SqlStorage,
    bucket: Bucket,
    /// The folders of this session's frame keys, one per stream: a key under one of them is
    /// a frame.
    frame_prefixes: [String; Stream::ALL.len()],
}

fn failed(what: &str, err: worker::Error) -> StorageError {
    StorageError(format!("{what} failed: {err}"))
}

impl SessionObjects {
    /// The objects of session `id`, creating the frames table on first use.
    pub fn new(
        id: &SessionId,
        sql: SqlStorage,
        bucket: Bucket,
    ) -> Result<SessionObjects, StorageError> {
        sql.exec(SCHEMA, None)
            .map_err(|e| failed("Durable Object storage", e))?;
        Ok(SessionObjects {
            sql,
            bucket,
            frame_prefixes: Stream::ALL.map(|stream| id.chunks_prefix(stream)),
        })
    }

    fn is_frame(&self, key: &str) -> bool {
        self.frame_prefixes.iter().any(|p| key.starts_with(p))
    }

    /// The size of every object under `prefix` (a stream's frame folder), by key: the frames
    /// table, and R2 for frames an earlier version wrote there.
    pub async fn sizes(&self, prefix: &str) -> Result<HashMap<String, u64>, StorageError> {
        let mut sizes = self.r2_sizes(prefix).await?;
        sizes.extend(self.frame_sizes(prefix)?);
        Ok(sizes)
    }

    /// The frames in the table under `prefix`, with their sizes.
    fn frame_sizes(&self, prefix: &str) -> Result<HashMap<String, u64>, StorageError> {
        // `prefix` holds only [A-Za-z0-9._/-] (a safe id): a range, not LIKE, needs no escaping.
        let end = format!("{prefix}\u{10FFFF}");
        let rows = self
            .sql
            .exec(
                "SELECT key, length(bytes) FROM frames WHERE key >= ? AND key < ?",
                vec![prefix.into(), end.into()],
            )
            .map_err(|e| failed("Durable Object storage", e))?;
        let mut sizes = HashMap::new();
        for row in rows.raw() {
            let row = row.map_err(|e| failed("Durable Object storage", e))?;
            if let [SqlStorageValue::String(key), SqlStorageValue::Integer(len)] = &row[..] {
                sizes.insert(key.clone(), *len as u64);
            }
        }
        Ok(sizes)
    }

    /// Deletes every object under `prefix` (the session's folder): its frames in the table
    /// and whatever R2 holds there; answers how many keys went (a frame in both places, written
    /// to R2 by an earlier version and again since, is one).
    pub async fn delete_all(&self, prefix: &str) -> Result<u64, StorageError> {
        let r2_keys: Vec<String> = self.r2_sizes(prefix).await?.into_keys().collect();
        let mut keys: HashSet<String> = self.frame_sizes(prefix)?.into_keys().collect();
        keys.extend(r2_keys.iter().cloned());
        for batch in r2_keys.chunks(1000) {
            self.bucket
                .delete_multiple(batch.to_vec())
                .await
                .map_err(|e| failed("R2 delete", e))?;
        }
        let end = format!("{prefix}\u{10FFFF}");
        self.sql
            .exec(
                "DELETE FROM frames WHERE key >= ? AND key < ?",
                vec![prefix.into(), end.into()],
            )
            .map_err(|e| failed("Durable Object storage", e))?;
        Ok(keys.len() as u64)
    }

    async fn r2_sizes(&self, prefix: &str) -> Result<HashMap<String, u64>, StorageError> {
        let mut sizes = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut list = self.bucket.list().prefix(prefix);
            if let Some(cursor) = cursor.take() {
                list = list.cursor(cursor);
            }
            let page = list.execute().await.map_err(|e| failed("R2 listing", e))?;
            for object in page.objects() {
                sizes.insert(object.key(), object.size());
            }
            match page.cursor() {
                Some(next) if page.truncated() => cursor = Some(next),
                _ => return Ok(sizes),
            }
        }
    }

    fn sql_frame(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let rows = self
            .sql
            .exec("SELECT bytes FROM frames WHERE key = ?", vec![key.into()])
            .map_err(|e| failed("Durable Object storage", e))?;
        for row in rows.raw() {
            let row = row.map_err(|e| failed("Durable Object storage", e))?;
            if let Some(SqlStorageValue::Blob(bytes)) = row.into_iter().next() {
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }

    async fn r2_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let Some(object) = self
            .bucket
            .get(key)
            .execute()
            .await
            .map_err(|e| failed("R2 read", e))?
        else {
            return Ok(None);
        };
        match object.body() {
            Some(body) => Ok(Some(body.bytes().await.map_err(|e| failed("R2 read", e))?)),
            None => Ok(Some(Vec::new())),
        }
    }
}

impl ObjectStorage for SessionObjects {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        if self.is_frame(key) {
            // Synchronous: it joins the implicit transaction of the rows written after it.
            self.sql
                .exec(
                    "INSERT INTO frames (key, bytes) VALUES (?, ?)
                     ON CONFLICT (key) DO UPDATE SET bytes = excluded.bytes",
                    vec![key.into(), SqlStorageValue::Blob(bytes)],
                )
                .map_err(|e| failed("Durable Object storage", e))?;
            return Ok(());
        }
        self.bucket
            .put(key, bytes)
            .execute()
            .await
            .map_err(|e| failed("R2 write", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if self.is_frame(key)
            && let Some(bytes) = self.sql_frame(key)?
        {
            return Ok(Some(bytes));
        }
        self.r2_get(key).await
    }
}
