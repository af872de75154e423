//! The session tables and the session core's storage port on top of them.
//!
//! Rows are keyed by the session's safe name (the same name its objects live under); the
//! client's own id is kept beside it so two ids that share a safe name are told apart.

use rusqlite::{Connection, OptionalExtension, params};

use crate::core::clock::EpochMs;
use crate::core::ingest::IngestRecord;
use crate::core::ports::{SessionStorage, StorageError, StoredSession};
use crate::core::session_id::SessionId;
use crate::core::speakers::SpeakerRecord;
use crate::protocol::{SessionState, SpeakerEvent};
use crate::storage::Database;

pub(super) fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS sessions (
            safe_id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            ingest_started_at INTEGER,
            ingest_updated_at INTEGER,
            duplicate_chunks INTEGER NOT NULL DEFAULT 0,
            state TEXT,
            event_count INTEGER NOT NULL DEFAULT 0,
            state_updated_at INTEGER,
            finalized_at INTEGER
        );
        CREATE TABLE IF NOT EXISTS chunks (
            safe_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (safe_id, seq)
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
            PRIMARY KEY (safe_id, idempotency_key)
        ) WITHOUT ROWID;",
    )
}

/// Makes sure the session has a row, so the column updates below always hit one.
fn ensure_row(conn: &Connection, id: &SessionId) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (safe_id, session_id) VALUES (?1, ?2) ON CONFLICT (safe_id) DO NOTHING",
    )?
    .execute(params![id.safe(), id.as_str()])?;
    Ok(())
}

fn write_ingest(conn: &Connection, id: &SessionId, ingest: &IngestRecord) -> rusqlite::Result<()> {
    ensure_row(conn, id)?;
    conn.prepare_cached(
        "UPDATE sessions SET ingest_started_at = ?2, ingest_updated_at = ?3, duplicate_chunks = ?4
         WHERE safe_id = ?1",
    )?
    .execute(params![
        id.safe(),
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
    type Row = (
        String,
        Option<i64>,
        Option<i64>,
        i64,
        Option<String>,
        i64,
        Option<i64>,
        Option<i64>,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT session_id, ingest_started_at, ingest_updated_at, duplicate_chunks, state,
                    event_count, state_updated_at, finalized_at
             FROM sessions WHERE safe_id = ?1",
        )?
        .query_row([id.safe()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .optional()?;
    let Some((session_id, started, updated, duplicates, state, events, state_at, finalized)) = row
    else {
        return Ok(StoredSession::default());
    };
    let ingest = match (started, updated) {
        (Some(started_at), Some(updated_at)) => {
            let seqs = conn
                .prepare_cached("SELECT seq FROM chunks WHERE safe_id = ?1 ORDER BY seq")?
                .query_map([id.safe()], |r| r.get::<_, i64>(0).map(|s| s as u64))?
                .collect::<rusqlite::Result<Vec<u64>>>()?;
            let record = IngestRecord {
                duplicate_chunks: duplicates as u64,
                started_at: started_at as EpochMs,
                updated_at: updated_at as EpochMs,
            };
            Some((record, seqs))
        }
        _ => None,
    };
    let state: SessionState = match state {
        Some(text) => from_json(&text)?,
        None => SessionState::default(),
    };
    Ok(StoredSession {
        session_id: Some(session_id),
        ingest,
        speakers: SpeakerRecord {
            state,
            event_count: events as u64,
            updated_at: state_at.map(|t| t as EpochMs),
        },
        finalized_at: finalized.map(|t| t as EpochMs),
    })
}

impl SessionStorage for Database {
    async fn load(&self, id: &SessionId) -> Result<StoredSession, StorageError> {
        let id = id.clone();
        self.call(move |conn| load(conn, &id)).await
    }

    async fn save_ingest(&self, id: &SessionId, ingest: &IngestRecord) -> Result<(), StorageError> {
        let (id, ingest) = (id.clone(), *ingest);
        self.call(move |conn| write_ingest(conn, &id, &ingest))
            .await
    }

    async fn save_chunk(
        &self,
        id: &SessionId,
        seq: u64,
        ingest: &IngestRecord,
    ) -> Result<(), StorageError> {
        let (id, ingest) = (id.clone(), *ingest);
        self.call(move |conn| {
            write_ingest(conn, &id, &ingest)?;
            conn.prepare_cached(
                "INSERT INTO chunks (safe_id, seq) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![id.safe(), seq as i64])?;
            Ok(())
        })
        .await
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
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO replays (safe_id, idempotency_key, answer) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id.safe(), key, answer])?;
            }
            Ok(())
        })
        .await
    }

    async fn replay(&self, id: &SessionId, key: &str) -> Result<Option<String>, StorageError> {
        let (id, key) = (id.clone(), key.to_owned());
        self.call(move |conn| {
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
        self.call(move |conn| {
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
