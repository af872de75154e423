//! The session tables and the session core's storage port on top of them.
//!
//! Rows are keyed by the session's safe name (the same name its objects live under); the
//! client's own id is kept beside it so two ids that share a safe name are told apart. Each
//! stream of a session has a `streams` row (counters) and `frames` rows (stored seqs). A
//! session keeps only its newest [`MAX_REPLAYS_PER_SESSION`] replays (ordered by the event
//! they were stored with): storing one more deletes the oldest in the same transaction.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::core::caps::MAX_REPLAYS_PER_SESSION;
use crate::core::clock::EpochMs;
use crate::core::ingest::{CaptureOrigin, IngestRecord};
use crate::core::ports::{SessionStorage, StorageError, StoredSession, StoredStream};
use crate::core::session_id::SessionId;
use crate::core::speakers::SpeakerRecord;
use crate::core::stream::Stream;
use crate::protocol::{SessionState, SpeakerEvent};
use crate::storage::{Database, frame_index};

/// The schema version this code writes (`PRAGMA user_version`). 2 added `replays.stored_idx`,
/// 3 the frame log's locations in `frames` (see `frame_index`).
const SCHEMA_VERSION: i64 = 3;

pub(super) fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let had_v0 = version == 0 && table_exists(conn, "chunks")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS sessions (
            safe_id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            -- Version 0 kept the mic's counters here; they moved to `streams`.
            ingest_started_at INTEGER,
            ingest_updated_at INTEGER,
            duplicate_chunks INTEGER NOT NULL DEFAULT 0,
            state TEXT,
            event_count INTEGER NOT NULL DEFAULT 0,
            state_updated_at INTEGER,
            finalized_at INTEGER
        );
        CREATE TABLE IF NOT EXISTS streams (
            safe_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            duplicate_chunks INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (safe_id, stream)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS frames (
            safe_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            -- Epoch ms of the frame's first sample; NULL for frames stored by version 0.
            captured_at INTEGER,
            PRIMARY KEY (safe_id, stream, seq)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS events (
            safe_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            event TEXT NOT NULL,
            PRIMARY KEY (safe_id, idx)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS replays (
            safe_id TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            answer TEXT NOT NULL,
            -- The session's event count when it was stored: newest replays have the highest.
            stored_idx INTEGER,
            PRIMARY KEY (safe_id, idempotency_key)
        ) WITHOUT ROWID;",
    )?;
    if !column_exists(conn, "replays", "stored_idx")? {
        // Replays of version 1 have none: they count as the oldest.
        conn.execute_batch("ALTER TABLE replays ADD COLUMN stored_idx INTEGER")?;
    }
    if had_v0 {
        // Version 0 had one stream: its frames and counters become the mic's.
        conn.execute_batch(
            "BEGIN;
             INSERT OR IGNORE INTO frames (safe_id, stream, seq) SELECT safe_id, 'mic', seq FROM chunks;
             INSERT OR IGNORE INTO streams (safe_id, stream, started_at, updated_at, duplicate_chunks)
                 SELECT safe_id, 'mic', ingest_started_at, ingest_updated_at, duplicate_chunks
                 FROM sessions WHERE ingest_started_at IS NOT NULL AND ingest_updated_at IS NOT NULL;
             DROP TABLE chunks;
             COMMIT;",
        )?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

pub(super) fn column_exists(
    conn: &Connection,
    table: &str,
    column: &str,
) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Makes sure the session has a row, so the column updates below always hit one.
fn ensure_row(conn: &Connection, id: &SessionId) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (safe_id, session_id) VALUES (?1, ?2) ON CONFLICT (safe_id) DO NOTHING",
    )?
    .execute(params![id.safe(), id.as_str()])?;
    Ok(())
}

fn write_ingest(
    conn: &Connection,
    id: &SessionId,
    stream: Stream,
    ingest: &IngestRecord,
) -> rusqlite::Result<()> {
    ensure_row(conn, id)?;
    conn.prepare_cached(
        "INSERT INTO streams (safe_id, stream, started_at, updated_at, duplicate_chunks)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (safe_id, stream) DO UPDATE SET
             started_at = excluded.started_at, updated_at = excluded.updated_at,
             duplicate_chunks = excluded.duplicate_chunks",
    )?
    .execute(params![
        id.safe(),
        stream.as_str(),
        ingest.started_at as i64,
        ingest.updated_at as i64,
        ingest.duplicate_chunks as i64
    ])?;
    Ok(())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn load(conn: &Connection, id: &SessionId) -> rusqlite::Result<StoredSession> {
    type Row = (String, Option<String>, i64, Option<i64>, Option<i64>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT session_id, state, event_count, state_updated_at, finalized_at
             FROM sessions WHERE safe_id = ?1",
        )?
        .query_row([id.safe()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((session_id, state, events, state_at, finalized)) = row else {
        return Ok(StoredSession {
            session_id: same_name_elsewhere(conn, id)?,
            ..StoredSession::default()
        });
    };
    let state: SessionState = match state {
        Some(text) => from_json(&text)?,
        None => SessionState::default(),
    };
    Ok(StoredSession {
        session_id: Some(session_id),
        streams: load_streams(conn, id)?,
        speakers: SpeakerRecord {
            state,
            event_count: events as u64,
            updated_at: state_at.map(|t| t as EpochMs),
        },
        finalized_at: finalized.map(|t| t as EpochMs),
    })
}

/// The client id of another session whose storage name is this one's on a file system that
/// ignores case or trailing dots (macOS and Windows by default: `Interview` and `interview.`
/// would be one folder of objects). A new session that would share it is refused as a
/// collision (`Session::check_id`), as ids sharing a safe name are.
fn same_name_elsewhere(conn: &Connection, id: &SessionId) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT session_id FROM sessions
         WHERE lower(rtrim(safe_id, '.')) = lower(rtrim(?1, '.')) AND safe_id != ?1
         LIMIT 1",
    )?
    .query_row([id.safe()], |r| r.get(0))
    .optional()
}

fn load_streams(
    conn: &Connection,
    id: &SessionId,
) -> rusqlite::Result<BTreeMap<Stream, StoredStream>> {
    let rows = conn
        .prepare_cached(
            "SELECT stream, started_at, updated_at, duplicate_chunks FROM streams WHERE safe_id = ?1",
        )?
        .query_map([id.safe()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut streams = BTreeMap::new();
    for (name, started_at, updated_at, duplicates) in rows {
        // Only this code writes stream names; an unknown one is a newer gateway's, skipped.
        let Ok(stream) = Stream::parse(&name) else {
            continue;
        };
        let mut seqs = Vec::new();
        let mut origin = None;
        let mut frames = conn.prepare_cached(
            "SELECT seq, captured_at FROM frames WHERE safe_id = ?1 AND stream = ?2 ORDER BY seq",
        )?;
        let mut rows = frames.query(params![id.safe(), name])?;
        while let Some(row) = rows.next()? {
            let seq = row.get::<_, i64>(0)? as u64;
            if let (None, Some(at)) = (origin, row.get::<_, Option<i64>>(1)?) {
                origin = Some(CaptureOrigin {
                    seq,
                    captured_at: at as EpochMs,
                });
            }
            seqs.push(seq);
        }
        let record = IngestRecord {
            duplicate_chunks: duplicates as u64,
            started_at: started_at as EpochMs,
            updated_at: updated_at as EpochMs,
        };
        streams.insert(
            stream,
            StoredStream {
                record,
                seqs,
                origin,
            },
        );
    }
    Ok(streams)
}

/// Stores a replay as the session's newest and drops those past [`MAX_REPLAYS_PER_SESSION`].
fn save_replay(
    conn: &Connection,
    id: &SessionId,
    key: &str,
    answer: &str,
    stored_idx: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO replays (safe_id, idempotency_key, answer, stored_idx)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id.safe(), key, answer, stored_idx])?;
    conn.prepare_cached(
        "DELETE FROM replays WHERE safe_id = ?1 AND idempotency_key NOT IN (
             SELECT idempotency_key FROM replays WHERE safe_id = ?1
             ORDER BY stored_idx DESC LIMIT ?2)",
    )?
    .execute(params![id.safe(), MAX_REPLAYS_PER_SESSION as i64])?;
    Ok(())
}

impl SessionStorage for Database {
    async fn load(&self, id: &SessionId) -> Result<StoredSession, StorageError> {
        let id = id.clone();
        self.read(move |conn| load(conn, &id)).await
    }

    async fn save_ingest(
        &self,
        id: &SessionId,
        stream: Stream,
        ingest: &IngestRecord,
    ) -> Result<(), StorageError> {
        let (id, ingest) = (id.clone(), *ingest);
        self.call(move |conn| write_ingest(conn, &id, stream, &ingest))
            .await
    }

    async fn save_chunk(
        &self,
        id: &SessionId,
        stream: Stream,
        seq: u64,
        captured_at: EpochMs,
        ingest: &IngestRecord,
    ) -> Result<(), StorageError> {
        let (id, ingest) = (id.clone(), *ingest);
        // A frame just written to the log: its location commits in the frame's row.
        let key = id.stream_chunk_key(stream, seq);
        let logged = self.unindexed().take(&key);
        let at = logged.as_ref().map(|appended| appended.location);
        let saved = self
            .call(move |conn| {
                write_ingest(conn, &id, stream, &ingest)?;
                conn.prepare_cached(
                    "INSERT INTO frames
                         (safe_id, stream, seq, captured_at, log_segment, log_offset, log_len)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT DO UPDATE SET captured_at = excluded.captured_at,
                         log_segment = excluded.log_segment, log_offset = excluded.log_offset,
                         log_len = excluded.log_len",
                )?
                .execute(params![
                    id.safe(),
                    stream.as_str(),
                    seq as i64,
                    captured_at as i64,
                    at.map(|at| frame_index::sql(at.segment)),
                    at.map(|at| frame_index::sql(at.offset)),
                    at.map(|at| frame_index::sql(at.len)),
                ])?;
                Ok(())
            })
            .await;
        // Committed (or not): either way the record no longer needs holding its segment.
        drop(logged);
        saved
    }

    async fn save_speakers(
        &self,
        id: &SessionId,
        speakers: &SpeakerRecord,
        event: Option<&SpeakerEvent>,
        replay: Option<(&str, &str)>,
    ) -> Result<(), StorageError> {
        let id = id.clone();
        let state =
            serde_json::to_string(&speakers.state).map_err(|e| StorageError(e.to_string()))?;
        let event = event
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StorageError(e.to_string()))?;
        let (count, updated_at) = (
            speakers.event_count as i64,
            speakers.updated_at.map(|t| t as i64),
        );
        let replay = replay.map(|(k, a)| (k.to_owned(), a.to_owned()));
        self.call(move |conn| {
            ensure_row(conn, &id)?;
            conn.prepare_cached(
                "UPDATE sessions SET state = ?2, event_count = ?3, state_updated_at = ?4
                 WHERE safe_id = ?1",
            )?
            .execute(params![id.safe(), state, count, updated_at])?;
            if let Some(event) = event {
                conn.prepare_cached(
                    "INSERT INTO events (safe_id, idx, event) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id.safe(), count, event])?;
            }
            if let Some((key, answer)) = replay {
                save_replay(conn, &id, &key, &answer, count)?;
            }
            Ok(())
        })
        .await
    }

    async fn replay(&self, id: &SessionId, key: &str) -> Result<Option<String>, StorageError> {
        let (id, key) = (id.clone(), key.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT answer FROM replays WHERE safe_id = ?1 AND idempotency_key = ?2",
            )?
            .query_row(params![id.safe(), key], |r| r.get(0))
            .optional()
        })
        .await
    }

    async fn events(&self, id: &SessionId) -> Result<Vec<SpeakerEvent>, StorageError> {
        let id = id.clone();
        self.read(move |conn| {
            let texts = conn
                .prepare_cached("SELECT event FROM events WHERE safe_id = ?1 ORDER BY idx")?
                .query_map([id.safe()], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            texts.iter().map(|t| from_json(t)).collect()
        })
        .await
    }

    async fn save_finalized(&self, id: &SessionId, at: EpochMs) -> Result<(), StorageError> {
        let id = id.clone();
        self.call(move |conn| {
            ensure_row(conn, &id)?;
            conn.prepare_cached("UPDATE sessions SET finalized_at = ?2 WHERE safe_id = ?1")?
                .execute(params![id.safe(), at as i64])?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_0_database_keeps_its_frames_and_counters_as_the_mic_stream() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE sessions (safe_id TEXT PRIMARY KEY, session_id TEXT NOT NULL,
                 ingest_started_at INTEGER, ingest_updated_at INTEGER,
                 duplicate_chunks INTEGER NOT NULL DEFAULT 0, state TEXT,
                 event_count INTEGER NOT NULL DEFAULT 0, state_updated_at INTEGER,
                 finalized_at INTEGER);
             CREATE TABLE chunks (safe_id TEXT NOT NULL, seq INTEGER NOT NULL,
                 PRIMARY KEY (safe_id, seq)) WITHOUT ROWID;
             INSERT INTO sessions (safe_id, session_id, ingest_started_at, ingest_updated_at,
                 duplicate_chunks) VALUES ('a_b', 'a/b', 10, 20, 3);
             INSERT INTO chunks VALUES ('a_b', 1), ('a_b', 2), ('a_b', 5);",
        )
        .unwrap();
        create_schema(&conn).unwrap();
        create_schema(&conn).unwrap(); // opening again changes nothing
        let stored = load(&conn, &SessionId::parse("a/b").unwrap()).unwrap();
        assert_eq!(stored.session_id.as_deref(), Some("a/b"));
        let mic = &stored.streams[&Stream::Mic];
        assert_eq!(mic.seqs, vec![1, 2, 5]);
        assert_eq!(
            mic.record,
            IngestRecord {
                duplicate_chunks: 3,
                started_at: 10,
                updated_at: 20
            }
        );
        assert_eq!(mic.origin, None, "version 0 kept no capture times");
        assert_eq!(stored.streams.len(), 1);
        assert!(!table_exists(&conn, "chunks").unwrap());
    }

    fn replay_keys(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT idempotency_key FROM replays ORDER BY stored_idx")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_session_keeps_only_its_newest_replays() {
        let conn = Connection::open_in_memory().unwrap();
        create_schema(&conn).unwrap();
        let id = SessionId::parse("s").unwrap();
        let extra = 3;
        for n in 1..=(MAX_REPLAYS_PER_SESSION + extra) as i64 {
            save_replay(&conn, &id, &format!("k{n}"), "{}", n).unwrap();
        }
        let other = SessionId::parse("t").unwrap();
        save_replay(&conn, &other, "k1", "{}", 1).unwrap();
        let keys = replay_keys(&conn);
        assert_eq!(
            keys.len(),
            MAX_REPLAYS_PER_SESSION + 1,
            "another session keeps its own"
        );
        assert!(
            !keys.contains(&format!("k{extra}")),
            "the oldest went first"
        );
        assert!(keys.contains(&format!("k{}", extra + 1)));
    }

    #[test]
    fn a_version_1_database_gains_the_replay_order_and_its_old_replays_go_first() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE replays (safe_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
                 answer TEXT NOT NULL, PRIMARY KEY (safe_id, idempotency_key)) WITHOUT ROWID;
             INSERT INTO replays VALUES ('s', 'old', '{}');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        create_schema(&conn).unwrap();
        let id = SessionId::parse("s").unwrap();
        for n in 1..=MAX_REPLAYS_PER_SESSION as i64 {
            save_replay(&conn, &id, &format!("k{n}"), "{}", n).unwrap();
        }
        let keys = replay_keys(&conn);
        assert_eq!(keys.len(), MAX_REPLAYS_PER_SESSION);
        assert!(!keys.contains(&"old".to_owned()));
    }
}
