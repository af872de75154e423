//! Where each logged frame lies: its `frames` row's `log_segment`, `log_offset` and
//! `log_len` (the record's segment, the offset of its header, the payload's length).
//!
//! The location lives in the row that records the frame, written in the very statement that
//! records it (`save_chunk`), so its durability is the session rows' own and storing a frame
//! costs one log write and one row. A first design kept a `log_objects` table keyed by the
//! object key: a second row per frame, on a second page per session in every group commit,
//! which doubled the pages each commit wrote to SQLite's log and the checkpoint copied back
//! (`gateway bench`, 32 sessions at saturation: the database thread's 67 µs a frame fell to
//! 33 µs, the checkpoint's 20 to 10, without it). Rows of that table written by an older
//! version are still read, listed and deleted.
//!
//! The key of a frame names its row: `sessions/<safe id>/chunks/<seq>.pcm` is the mic's,
//! `sessions/<safe id>/streams/<stream>/chunks/<seq>.pcm` another stream's. The objects hand a
//! new frame's location over in [`Unindexed`] and the session rows pick it up.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::core::ports::StorageError;
use crate::core::stream::Stream;
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
    )?;
    for column in ["log_segment", "log_offset", "log_len"] {
        if !super::session_rows::column_exists(conn, "frames", column)? {
            conn.execute_batch(&format!("ALTER TABLE frames ADD COLUMN {column} INTEGER"))?;
        }
    }
    Ok(())
}

/// The `frames` row a frame's key names: safe id, stream name, seq.
#[derive(Debug, PartialEq, Eq)]
struct FrameRow<'a> {
    safe: &'a str,
    stream: &'a str,
    seq: i64,
}

/// The row of a key in exactly the form the gateway writes (see `SessionId::stream_chunk_key`).
fn frame_row(key: &str) -> Option<FrameRow<'_>> {
    let (safe, stream, file) = split_frame_path(key)?;
    let digits = file.strip_suffix(".pcm")?;
    let seq: i64 = digits.parse().ok().filter(|seq| *seq > 0)?;
    (format!("{seq:08}") == digits).then_some(FrameRow { safe, stream, seq })
}

/// `(safe id, stream, rest)` of `sessions/<safe>/chunks/<rest>` (the mic) or
/// `sessions/<safe>/streams/<stream>/chunks/<rest>`.
fn split_frame_path(path: &str) -> Option<(&str, &str, &str)> {
    let (safe, rest) = path.strip_prefix("sessions/")?.split_once('/')?;
    if safe.is_empty() {
        return None;
    }
    if let Some(rest) = rest.strip_prefix("chunks/") {
        return Some((safe, Stream::Mic.as_str(), rest));
    }
    let (stream, rest) = rest.strip_prefix("streams/")?.split_once('/')?;
    let named = Stream::parse(stream).is_ok_and(|s| s != Stream::Mic);
    named.then_some((safe, stream, rest.strip_prefix("chunks/")?))
}

/// Which rows a folder of objects covers: a session's (`sessions/<safe>/`, every stream) or
/// one stream's frames (`…/chunks/`). `None` for any other prefix.
fn frame_rows_under(prefix: &str) -> Option<(&str, Option<&str>)> {
    if let Some((safe, stream, "")) = split_frame_path(prefix) {
        return Some((safe, Some(stream)));
    }
    let safe = prefix.strip_prefix("sessions/")?.strip_suffix('/')?;
    (!safe.is_empty() && !safe.contains('/')).then_some((safe, None))
}

/// Rebuilds a frame's key from its row.
fn frame_key(safe: &str, stream: &str, seq: i64) -> String {
    if stream == Stream::Mic.as_str() {
        format!("sessions/{safe}/chunks/{seq:08}.pcm")
    } else {
        format!("sessions/{safe}/streams/{stream}/chunks/{seq:08}.pcm")
    }
}

/// Frames in the log whose location is not committed yet, by key: written by the objects'
/// `put`, taken by the `save_chunk` that follows it for the same key, which commits the
/// location in the frame's row. Until then reads of the key find it here. An entry whose frame
/// is never recorded (its save failed) is replaced by the frame's resend.
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

pub async fn get(db: &Database, key: &str) -> Result<Option<Location>, StorageError> {
    let key = key.to_owned();
    db.read(move |conn| location(conn, &key)).await
}

/// As [`get`], from a database file opened read-only for this call (from outside the gateway).
pub fn get_from(database: &Path, key: &str) -> Result<Option<Location>, StorageError> {
    let conn = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StorageError(format!("cannot open the database: {e}")))?;
    location(&conn, key).map_err(|err| StorageError(format!("database: {err}")))
}

fn location(conn: &Connection, key: &str) -> rusqlite::Result<Option<Location>> {
    if let Some(row) = frame_row(key) {
        let found = older_schema_is_none(
            conn.prepare_cached(
                "SELECT log_segment, log_offset, log_len FROM frames
                 WHERE safe_id = ?1 AND stream = ?2 AND seq = ?3 AND log_segment IS NOT NULL",
            )
            .and_then(|mut query| {
                query
                    .query_row(params![row.safe, row.stream, row.seq], location_at(0))
                    .optional()
            }),
        )?;
        if let Some(at) = found.flatten() {
            return Ok(Some(at));
        }
    }
    let legacy = older_schema_is_none(
        conn.prepare_cached("SELECT segment, offset, len FROM log_objects WHERE key = ?1")
            .and_then(|mut query| query.query_row([key], location_at(0)).optional()),
    )?;
    Ok(legacy.flatten())
}

/// A database from before the log (or before locations moved into `frames`) lacks the table
/// or the columns: nothing of that kind is logged there.
fn older_schema_is_none<T>(result: rusqlite::Result<T>) -> rusqlite::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(rusqlite::Error::SqliteFailure(_, Some(ref message)))
            if message.contains("no such table") || message.contains("no such column") =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Reads a location from three columns starting at `first`.
fn location_at(first: usize) -> impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Location> {
    move |row| {
        Ok(Location {
            segment: row.get::<_, i64>(first)? as u64,
            offset: row.get::<_, i64>(first + 1)? as u64,
            len: row.get::<_, i64>(first + 2)? as u64,
        })
    }
}

/// Every logged frame under `prefix` (a session's or a stream's folder), with where it lies.
pub async fn locations(
    db: &Database,
    prefix: &str,
) -> Result<Vec<(String, Location)>, StorageError> {
    let prefix = prefix.to_owned();
    db.read(move |conn| {
        let mut found = Vec::new();
        if let Some((safe, stream)) = frame_rows_under(&prefix) {
            let mut query = conn.prepare_cached(
                "SELECT stream, seq, log_segment, log_offset, log_len FROM frames
                 WHERE safe_id = ?1 AND (?2 IS NULL OR stream = ?2) AND log_segment IS NOT NULL",
            )?;
            let rows = query.query_map(params![safe, stream], |row| {
                let (stream, seq): (String, i64) = (row.get(0)?, row.get(1)?);
                Ok((frame_key(safe, &stream, seq), location_at(2)(row)?))
            })?;
            for row in rows {
                found.push(row?);
            }
        }
        let (low, high) = key_range(&prefix);
        let mut legacy = conn.prepare_cached(
            "SELECT key, segment, offset, len FROM log_objects WHERE key >= ?1 AND key < ?2",
        )?;
        let rows = legacy.query_map([low, high], |row| Ok((row.get(0)?, location_at(1)(row)?)))?;
        for row in rows {
            let (key, at): (String, Location) = row?;
            // A frame that has a location in its row was written after this one.
            if !found.iter().any(|(newer, _)| *newer == key) {
                found.push((key, at));
            }
        }
        Ok(found)
    })
    .await
}

/// Forgets where every logged frame under `prefix` lies (its objects are being deleted) and
/// answers how many there were. The rows themselves go with the session's.
pub async fn delete_prefix(db: &Database, prefix: &str) -> Result<u64, StorageError> {
    let prefix = prefix.to_owned();
    db.call(move |conn| {
        let mut count = 0;
        if let Some((safe, stream)) = frame_rows_under(&prefix) {
            count += conn.execute(
                "UPDATE frames SET log_segment = NULL, log_offset = NULL, log_len = NULL
                 WHERE safe_id = ?1 AND (?2 IS NULL OR stream = ?2) AND log_segment IS NOT NULL",
                params![safe, stream],
            )? as u64;
        }
        let (low, high) = key_range(&prefix);
        count += conn.execute(
            "DELETE FROM log_objects WHERE key >= ?1 AND key < ?2",
            [low, high],
        )? as u64;
        Ok(count)
    })
    .await
}

/// Which of `segments` some frame still points into. Frames have no index by segment (it
/// would cost every frame another page in every commit), so this reads the whole `frames`
/// table once: it runs only when segments may be removed (after a deletion, and at start).
pub async fn segments_in_use(
    db: &Database,
    segments: Vec<u64>,
) -> Result<BTreeSet<u64>, StorageError> {
    db.read(move |conn| {
        let wanted: BTreeSet<u64> = segments.into_iter().collect();
        let mut in_use = BTreeSet::new();
        let mut scan = conn.prepare_cached(
            "SELECT DISTINCT log_segment FROM frames WHERE log_segment IS NOT NULL",
        )?;
        for segment in scan.query_map([], |row| row.get::<_, i64>(0))? {
            let segment = segment? as u64;
            if wanted.contains(&segment) {
                in_use.insert(segment);
            }
        }
        let mut used = conn.prepare_cached("SELECT 1 FROM log_objects WHERE segment = ?1")?;
        for &segment in &wanted {
            if used.exists([sql(segment)])? {
                in_use.insert(segment);
            }
        }
        Ok(in_use)
    })
    .await
}

/// Segment numbers, offsets and lengths are far below `i64::MAX`.
pub(super) fn sql(value: u64) -> i64 {
    value as i64
}

/// Keys are ASCII (safe names, digits, `/`, `.`), so every key under `prefix` sorts between
/// `prefix` and `prefix` followed by a byte above ASCII.
fn key_range(prefix: &str) -> (String, String) {
    (prefix.to_owned(), format!("{prefix}\u{80}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_key_names_its_row_and_the_row_gives_the_key_back() {
        let mic = "sessions/s-1/chunks/00000042.pcm";
        let row = frame_row(mic).unwrap();
        assert_eq!(
            row,
            FrameRow {
                safe: "s-1",
                stream: "mic",
                seq: 42
            }
        );
        assert_eq!(frame_key(row.safe, row.stream, row.seq), mic);
        let system = "sessions/s-1/streams/system/chunks/123456789.pcm";
        let row = frame_row(system).unwrap();
        assert_eq!((row.stream, row.seq), ("system", 123_456_789));
        assert_eq!(frame_key(row.safe, row.stream, row.seq), system);
    }

    #[test]
    fn keys_the_gateway_never_writes_name_no_row() {
        for key in [
            "sessions/s/chunks/42.pcm",
            "sessions/s/chunks/00000000.pcm",
            "sessions/s/chunks/0000004x.pcm",
            "sessions/s/chunks/00000042.wav",
            "sessions/s/streams/mic/chunks/00000042.pcm",
            "sessions/s/streams/nope/chunks/00000042.pcm",
            "sessions//chunks/00000042.pcm",
            "sessions/s/result.json",
            "other/s/chunks/00000042.pcm",
        ] {
            assert_eq!(frame_row(key), None, "{key}");
        }
    }

    /// A frame whose location is in its row and one an older version indexed in
    /// `log_objects` are both found, listed, counted as holding their segments and forgotten.
    #[tokio::test]
    async fn locations_in_frame_rows_and_in_the_older_table_are_both_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), crate::storage::Durability::Process).unwrap();
        db.call(|conn| {
            conn.execute_batch(
                "INSERT INTO frames (safe_id, stream, seq, captured_at, log_segment, log_offset, log_len)
                     VALUES ('s', 'mic', 2, 0, 7, 100, 32000),
                            ('s', 'system', 1, 0, NULL, NULL, NULL),
                            ('t', 'mic', 1, 0, 9, 0, 32000);
                 INSERT INTO log_objects (key, segment, offset, len)
                     VALUES ('sessions/s/chunks/00000001.pcm', 5, 40, 32000);",
            )
        })
        .await
        .unwrap();
        let at = |segment, offset| Location {
            segment,
            offset,
            len: 32_000,
        };
        let new = "sessions/s/chunks/00000002.pcm";
        let old = "sessions/s/chunks/00000001.pcm";
        assert_eq!(get(&db, new).await.unwrap(), Some(at(7, 100)));
        assert_eq!(get(&db, old).await.unwrap(), Some(at(5, 40)));
        assert_eq!(
            get(&db, "sessions/s/streams/system/chunks/00000001.pcm")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            get_from(&dir.path().join(crate::storage::database::FILE_NAME), new).unwrap(),
            Some(at(7, 100))
        );
        let mut listed = locations(&db, "sessions/s/chunks/").await.unwrap();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            listed,
            vec![(old.to_owned(), at(5, 40)), (new.to_owned(), at(7, 100))]
        );
        let in_use = segments_in_use(&db, vec![5, 6, 7, 9]).await.unwrap();
        assert_eq!(in_use, BTreeSet::from([5, 7, 9]));

        assert_eq!(delete_prefix(&db, "sessions/s/").await.unwrap(), 2);
        assert_eq!(get(&db, new).await.unwrap(), None);
        assert_eq!(get(&db, old).await.unwrap(), None);
        let in_use = segments_in_use(&db, vec![5, 6, 7, 9]).await.unwrap();
        assert_eq!(
            in_use,
            BTreeSet::from([9]),
            "another session's frame still holds its segment"
        );
    }

    #[test]
    fn a_folder_covers_a_session_or_one_stream() {
        assert_eq!(frame_rows_under("sessions/s/"), Some(("s", None)));
        assert_eq!(
            frame_rows_under("sessions/s/chunks/"),
            Some(("s", Some("mic")))
        );
        assert_eq!(
            frame_rows_under("sessions/s/streams/system/chunks/"),
            Some(("s", Some("system")))
        );
        assert_eq!(frame_rows_under("sessions/"), None);
        assert_eq!(frame_rows_under("sessions/s/streams/"), None);
    }
}
