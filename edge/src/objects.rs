//! The session core's object port on the edge: every object at the key the contract fixes
//! (`sessions/<safe id>/...`) in R2, one object per key, as the seed keeps them; a frame waits
//! in the Durable Object's own SQLite database between its ACK and its move to R2.
//!
//! Why a frame is not written to R2 before its ACK: an R2 write is a subrequest to another
//! service, the dearest step of a frame by far (under local workerd about 4 ms of CPU per
//! 32 KB object, five times the rest of the frame; on Cloudflare a network round trip on every
//! ACK). A row in the object's own database is written in the same implicit transaction as the
//! frame's ingest rows (no `await` between them, see `storage.rs`), so the frame and its
//! bookkeeping commit together and the runtime's output gate holds the ACK until both are
//! durable.
//!
//! Behind the ACK, [`FrameTable::move_batch`] copies waiting frames to R2 at their keys and only
//! then drops their rows (the object's alarm runs it, see `session_object.rs`). A frame is
//! therefore always in the table, in R2, or (between the copy and the drop) in both, never in
//! neither: a move cut short anywhere (the isolate evicted, a failed put) is simply done again,
//! and readers look in the table first, then in R2.

use std::collections::{HashMap, HashSet};

use session_core::ports::{ObjectStorage, StorageError};
use session_core::session_id::SessionId;
use session_core::stream::Stream;
use worker::{Bucket, SqlStorage, SqlStorageValue};

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS frames (key TEXT PRIMARY KEY, bytes BLOB NOT NULL) WITHOUT ROWID;";

/// Frames written to R2 per move: at most this many 32 KB frames in memory at once, put to R2
/// side by side.
pub const MOVE_BATCH: usize = 32;

/// A session's objects: its frames in the object's SQLite database until they are moved to
/// R2, the rest in R2, under the keys the contract fixes (`sessions/<safe id>/...`).
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
    /// table, then R2. In that order: a frame that leaves the table while R2 is listed was put
    /// to R2 before its row was dropped, so the listing sees it in one place or the other.
    pub async fn sizes(&self, prefix: &str) -> Result<HashMap<String, u64>, StorageError> {
        let waiting = self.frame_sizes(prefix)?;
        let mut sizes = self.r2_sizes(prefix).await?;
        sizes.extend(waiting);
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
    /// and whatever R2 holds there; answers how many keys went (a frame in both places, copied
    /// but its row not yet dropped, is one). The caller keeps moves out meanwhile (a move
    /// finishing after the listing would put a frame back).
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

    /// The frame table alone, for moving its rows to R2.
    pub fn table(&self) -> FrameTable {
        FrameTable {
            sql: self.sql.clone(),
            bucket: self.bucket.clone(),
        }
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

/// The frames waiting in the object's SQLite database for their move to R2. The keys in the
/// table are whole object keys, so moving needs no session id (the alarm that moves them gets
/// none).
pub struct FrameTable {
    sql: SqlStorage,
    bucket: Bucket,
}

impl FrameTable {
    pub fn new(sql: SqlStorage, bucket: Bucket) -> Result<FrameTable, StorageError> {
        sql.exec(SCHEMA, None)
            .map_err(|e| failed("Durable Object storage", e))?;
        Ok(FrameTable { sql, bucket })
    }

    /// True while some frame waits for its move.
    pub fn has_waiting(&self) -> Result<bool, StorageError> {
        let rows = self
            .sql
            .exec("SELECT 1 FROM frames LIMIT 1", None)
            .map_err(|e| failed("Durable Object storage", e))?;
        Ok(rows.raw().next().is_some())
    }

    /// Moves up to [`MOVE_BATCH`] waiting frames (lowest keys first) to R2: every one is put at
    /// its key, and only once all puts succeeded are their rows dropped (one transaction).
    /// Answers how many moved. A frame's row never changes while it waits (a frame is written
    /// again only when it is missing or short, and a waiting one is neither), so the row that
    /// is dropped holds the bytes that were put.
    pub async fn move_batch(&self) -> Result<usize, StorageError> {
        let rows = self
            .sql
            .exec(
                "SELECT key, bytes FROM frames ORDER BY key LIMIT ?",
                vec![SqlStorageValue::Integer(MOVE_BATCH as i64)],
            )
            .map_err(|e| failed("Durable Object storage", e))?;
        let mut batch = Vec::new();
        for row in rows.raw() {
            let row = row.map_err(|e| failed("Durable Object storage", e))?;
            let mut row = row.into_iter();
            if let (Some(SqlStorageValue::String(key)), Some(SqlStorageValue::Blob(bytes))) =
                (row.next(), row.next())
            {
                batch.push((key, bytes));
            }
        }
        let puts = batch.iter().map(|(key, bytes)| async move {
            self.bucket
                .put(key, bytes.clone())
                .execute()
                .await
                .map_err(|e| failed("R2 write", e))
        });
        futures_util::future::try_join_all(puts).await?;
        // No `await` from here on: the rows go in one implicit transaction.
        for (key, _) in &batch {
            self.sql
                .exec(
                    "DELETE FROM frames WHERE key = ?",
                    vec![key.as_str().into()],
                )
                .map_err(|e| failed("Durable Object storage", e))?;
        }
        Ok(batch.len())
    }
}
