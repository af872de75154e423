//! Where each logged object lies: the `log_objects` table, key → (segment, offset, length).
//!
//! It lives in the gateway's database, so its rows commit with the same durability as the
//! session rows, and a key's row is written only after its record is in the log. A frame's row
//! is written in the very transaction that records the frame (`save_chunk`), so storing a frame
//! costs one log write and one commit, not two commits: the objects hand the frame's location
//! over in [`Unindexed`] and the session rows pick it up.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::core::ports::StorageError;
use crate::storage::Database;
use crate::storage::frame_log::{Appended, Location};

pub(super) fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS log_objects (
            key TEXT PRIMARY KEY,
            segment INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            len INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS log_objects_by_segment ON log_objects (segment);",
    )
}

/// Frames in the log whose index row is not committed yet, by key: written by the objects'
/// `put`, taken by the `save_chunk` that follows it for the same key, which commits the row
/// with the frame's own. Until then reads of the key find it here. An entry whose frame is
/// never recorded (its save failed) is replaced by the frame's resend.
#[derive(Default)]
pub struct Unindexed(Mutex<HashMap<String, Appended>>);

impl Unindexed {
    pub fn insert(&self, key: &str, appended: Appended) {
        self.0
            .lock()
            .expect("unindexed frames")
            .insert(key.to_owned(), appended);
    }

    pub fn location(&self, key: &str) -> Option<Location> {
        let pending = self.0.lock().expect("unindexed frames");
        pending.get(key).map(|appended| appended.location)
    }

    /// Takes `key`'s entry; it holds its segment until dropped, after the commit.
    pub fn take(&self, key: &str) -> Option<Appended> {
        self.0.lock().expect("unindexed frames").remove(key)
    }

    /// Forgets every entry under `prefix` (a deleted session).
    pub fn forget_prefix(&self, prefix: &str) {
        let mut pending = self.0.lock().expect("unindexed frames");
        pending.retain(|key, _| !key.starts_with(prefix));
    }
}

/// Records (or moves) `key` to `at`, inside the caller's transaction.
pub fn upsert(conn: &Connection, key: &str, at: Location) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO log_objects (key, segment, offset, len) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET
            segment = excluded.segment, offset = excluded.offset, len = excluded.len",
    )?
    .execute(params![key, sql(at.segment), sql(at.offset), sql(at.len)])
    .map(drop)
}

pub async fn get(db: &Database, key: &str) -> Result<Option<Location>, StorageError> {
    let key = key.to_owned();
    db.read(move |conn| location(conn, &key)).await
}

/// As [`get`], from a database file opened read-only for this call (from outside the gateway).
pub fn get_from(database: &Path, key: &str) -> Result<Option<Location>, StorageError> {
    let conn = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StorageError(format!("cannot open the database: {e}")))?;
    // A database from before the log has no such table: nothing is logged.
    location(&conn, key).or_else(|err| match err {
        rusqlite::Error::SqliteFailure(_, Some(ref message))
            if message.contains("no such table") =>
        {
            Ok(None)
        }
        err => Err(StorageError(format!("database: {err}"))),
    })
}

fn location(conn: &Connection, key: &str) -> rusqlite::Result<Option<Location>> {
    conn.prepare_cached("SELECT segment, offset, len FROM log_objects WHERE key = ?1")?
        .query_row([key], |row| {
            Ok(Location {
                segment: row.get::<_, i64>(0)? as u64,
                offset: row.get::<_, i64>(1)? as u64,
                len: row.get::<_, i64>(2)? as u64,
            })
        })
        .optional()
}

/// Every logged key under `prefix`, with where it lies.
pub async fn locations(
    db: &Database,
    prefix: &str,
) -> Result<Vec<(String, Location)>, StorageError> {
    let (low, high) = key_range(prefix);
    db.read(move |conn| {
        conn.prepare_cached(
            "SELECT key, segment, offset, len FROM log_objects WHERE key >= ?1 AND key < ?2",
        )?
        .query_map([low, high], |row| {
            let at = Location {
                segment: row.get::<_, i64>(1)? as u64,
                offset: row.get::<_, i64>(2)? as u64,
                len: row.get::<_, i64>(3)? as u64,
            };
            Ok((row.get(0)?, at))
        })?
        .collect()
    })
    .await
}

/// Forgets every key under `prefix` and answers how many there were.
pub async fn delete_prefix(db: &Database, prefix: &str) -> Result<u64, StorageError> {
    let (low, high) = key_range(prefix);
    db.call(move |conn| {
        conn.execute(
            "DELETE FROM log_objects WHERE key >= ?1 AND key < ?2",
            [low, high],
        )
        .map(|n| n as u64)
    })
    .await
}

/// Which of `segments` some key still points into.
pub async fn segments_in_use(
    db: &Database,
    segments: Vec<u64>,
) -> Result<BTreeSet<u64>, StorageError> {
    db.read(move |conn| {
        let mut used = conn.prepare_cached("SELECT 1 FROM log_objects WHERE segment = ?1")?;
        let mut in_use = BTreeSet::new();
        for segment in segments {
            if used.exists([sql(segment)])? {
                in_use.insert(segment);
            }
        }
        Ok(in_use)
    })
    .await
}

/// Segment numbers, offsets and lengths are far below `i64::MAX`.
fn sql(value: u64) -> i64 {
    value as i64
}

/// Keys are ASCII (safe names, digits, `/`, `.`), so every key under `prefix` sorts between
/// `prefix` and `prefix` followed by a byte above ASCII.
fn key_range(prefix: &str) -> (String, String) {
    (prefix.to_owned(), format!("{prefix}\u{80}"))
}
