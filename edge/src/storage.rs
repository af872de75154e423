//! The session core's storage port over the Durable Object's own SQLite database.
//!
//! One Durable Object holds one session, so no table is keyed by session: `session` has one
//! row, `streams` one per stream, `chunks` one per stored frame, `events` the speaker log and
//! `replays` the idempotent resolve answers; `listing` what the session directory was last told
//! (`directory.rs`).
//!
//! Atomicity and durability come from the runtime: SQL calls are synchronous, and every write
//! made without an `await` between them commits as one transaction; the runtime holds back
//! every message and response the object sends until those writes are durable (its output
//! gate). So each method here writes with no `await` inside, and an ACK sent after it can only
//! leave once the frame's row is on disk.
//!
//! A frame costs two statements here (its stream's counters, its seq) besides its bytes
//! (`objects.rs`): each statement is a crossing from wasm into the runtime and a step of
//! SQLite, and frames are the hot path.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

use contract::protocol::{SessionState, SpeakerEvent};
use session_core::caps::MAX_REPLAYS_PER_SESSION;
use session_core::clock::EpochMs;
use session_core::history::{SessionFacts, StreamSummary};
use session_core::ingest::{CaptureOrigin, IngestRecord};
use session_core::ports::{SessionStorage, StorageError, StoredSession, StoredStream};
use session_core::session_id::SessionId;
use session_core::speakers::SpeakerRecord;
use session_core::stream::Stream;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS session (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    session_id TEXT NOT NULL,
    state TEXT,
    event_count INTEGER NOT NULL DEFAULT 0,
    speakers_updated_at INTEGER,
    finalized_at INTEGER
);
CREATE TABLE IF NOT EXISTS streams (
    stream TEXT PRIMARY KEY,
    duplicate_chunks INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    origin_seq INTEGER,
    origin_at INTEGER
);
CREATE TABLE IF NOT EXISTS chunks (
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS replays (key TEXT PRIMARY KEY, answer TEXT NOT NULL, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS listing (one INTEGER PRIMARY KEY CHECK (one = 1), sort_key INTEGER NOT NULL);
";

/// The Durable Object's SQLite storage, as the session core sees it.
#[derive(Clone)]
pub struct SqlSessionStorage {
    sql: SqlStorage,
    /// The `session` row is known to exist (seen by `load` or inserted since), so writes need
    /// not insert it again. A storage failure drops the whole session and this with it, so a
    /// write that did not commit cannot leave it set.
    session_row: Rc<Cell<bool>>,
    /// The place in the list the session directory was last told (`listing`, read by `load`);
    /// `None`: not told yet.
    listed: Rc<Cell<Option<EpochMs>>>,
}

#[derive(Deserialize)]
struct SessionRow {
    session_id: String,
    state: Option<String>,
    event_count: u64,
    speakers_updated_at: Option<u64>,
    finalized_at: Option<u64>,
}

#[derive(Deserialize)]
struct StreamRow {
    stream: String,
    duplicate_chunks: u64,
    started_at: u64,
    updated_at: u64,
    origin_seq: Option<u64>,
    origin_at: Option<u64>,
}

#[derive(Deserialize)]
struct ChunkRow {
    stream: String,
    seq: u64,
}

#[derive(Deserialize)]
struct TextRow {
    text: String,
}

#[derive(Deserialize)]
struct ListingRow {
    sort_key: u64,
}

#[derive(Deserialize)]
struct StreamTimesRow {
    stream: String,
    started_at: u64,
    updated_at: u64,
}

#[derive(Deserialize)]
struct FrameCountRow {
    stream: String,
    frames: u64,
    last_seq: u64,
}

fn failed(err: impl std::fmt::Display) -> StorageError {
    StorageError(format!("Durable Object storage: {err}"))
}

/// An integer column value (every one here is far inside JavaScript's safe range: seqs are
/// at most 2^32, times are epoch ms).
fn int(n: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(n as i64)
}

fn opt_int(n: Option<u64>) -> SqlStorageValue {
    n.map_or(SqlStorageValue::Null, int)
}

impl SqlSessionStorage {
    /// Opens the storage, creating the tables on first use.
    pub fn new(sql: SqlStorage) -> Result<SqlSessionStorage, StorageError> {
        sql.exec(SCHEMA, None).map_err(failed)?;
        Ok(SqlSessionStorage {
            sql,
            session_row: Rc::new(Cell::new(false)),
            listed: Rc::new(Cell::new(None)),
        })
    }

    /// Whether the session has been written (its row exists): it belongs on the list.
    pub fn is_stored(&self) -> bool {
        self.session_row.get()
    }

    /// The place in the list the directory was last told, if it was.
    pub fn listed(&self) -> Option<EpochMs> {
        self.listed.get()
    }

    /// Remembers that the directory now lists the session at `sort_key`.
    pub fn note_listed(&self, sort_key: EpochMs) -> Result<(), StorageError> {
        self.exec(
            "INSERT INTO listing (one, sort_key) VALUES (1, ?)
             ON CONFLICT (one) DO UPDATE SET sort_key = excluded.sort_key",
            vec![int(sort_key)],
        )?;
        self.listed.set(Some(sort_key));
        Ok(())
    }

    /// What the session list says about the session, read from its rows (not from a loaded
    /// session, which need not be in memory); `None` for a session never written. The same
    /// facts the server reads from its tables: its start is the earliest of its streams', its
    /// update the latest of its streams', its speakers' and its finalize.
    pub fn facts(&self) -> Result<Option<SessionFacts>, StorageError> {
        let session: Vec<SessionRow> = self.rows(
            "SELECT session_id, state, event_count, speakers_updated_at, finalized_at FROM session",
            vec![],
        )?;
        let Some(row) = session.into_iter().next() else {
            return Ok(None);
        };
        let times: Vec<StreamTimesRow> =
            self.rows("SELECT stream, started_at, updated_at FROM streams", vec![])?;
        let counts: BTreeMap<String, FrameCountRow> = self
            .rows::<FrameCountRow>(
                "SELECT stream, count(*) AS frames, max(seq) AS last_seq FROM chunks GROUP BY stream",
                vec![],
            )?
            .into_iter()
            .map(|c| (c.stream.clone(), c))
            .collect();
        let updated_at = times
            .iter()
            .map(|t| t.updated_at)
            .chain(row.speakers_updated_at)
            .chain(row.finalized_at)
            .max()
            .filter(|at| *at > 0);
        Ok(Some(SessionFacts {
            session_id: row.session_id,
            started_at: times.iter().map(|t| t.started_at).min(),
            updated_at,
            finalized_at: row.finalized_at,
            state: row.state,
            streams: times
                .iter()
                .map(|t| {
                    let count = counts.get(&t.stream);
                    let summary = StreamSummary {
                        frames: count.map_or(0, |c| c.frames),
                        seconds: count.map_or(0, |c| c.last_seq),
                    };
                    (t.stream.clone(), summary)
                })
                .collect(),
        }))
    }

    /// The id that created the session and when it was finalized; `None` for a session never
    /// written.
    pub fn finalized(&self) -> Result<Option<(String, Option<EpochMs>)>, StorageError> {
        let rows: Vec<SessionRow> = self.rows(
            "SELECT session_id, state, event_count, speakers_updated_at, finalized_at FROM session",
            vec![],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .map(|r| (r.session_id, r.finalized_at)))
    }

    /// Deletes every row of the session (one transaction: no `await` between the statements);
    /// answers whether it had any.
    pub fn delete_all(&self) -> Result<bool, StorageError> {
        let had_rows = self.finalized()?.is_some();
        for table in [
            "session", "streams", "chunks", "events", "replays", "listing",
        ] {
            self.exec(&format!("DELETE FROM {table}"), vec![])?;
        }
        self.session_row.set(false);
        self.listed.set(None);
        Ok(had_rows)
    }

    fn exec(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<(), StorageError> {
        self.sql.exec(query, bindings).map_err(failed)?;
        Ok(())
    }

    fn rows<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        bindings: Vec<SqlStorageValue>,
    ) -> Result<Vec<T>, StorageError> {
        self.sql
            .exec(query, bindings)
            .and_then(|cursor| cursor.to_array())
            .map_err(failed)
    }

    /// The session's row exists (with the id that created it) before anything refers to it.
    fn ensure_session(&self, id: &SessionId) -> Result<(), StorageError> {
        if self.session_row.get() {
            return Ok(());
        }
        self.exec(
            "INSERT INTO session (one, session_id) VALUES (1, ?) ON CONFLICT (one) DO NOTHING",
            vec![id.as_str().into()],
        )?;
        self.session_row.set(true);
        Ok(())
    }

    /// Writes a stream's counters; with `stored`, frame `(seq, captured_at)` also becomes the
    /// stream's origin when it is the lowest stored seq (one statement, not two: this runs
    /// for every frame).
    fn write_stream(
        &self,
        stream: Stream,
        ingest: &IngestRecord,
        stored: Option<(u64, EpochMs)>,
    ) -> Result<(), StorageError> {
        let (seq, at) = (stored.map(|s| s.0), stored.map(|s| s.1));
        self.exec(
            "INSERT INTO streams (stream, duplicate_chunks, started_at, updated_at, origin_seq, origin_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (stream) DO UPDATE SET duplicate_chunks = excluded.duplicate_chunks,
                 started_at = excluded.started_at, updated_at = excluded.updated_at,
                 origin_at = CASE WHEN excluded.origin_seq IS NOT NULL
                     AND (origin_seq IS NULL OR origin_seq > excluded.origin_seq)
                     THEN excluded.origin_at ELSE origin_at END,
                 origin_seq = CASE WHEN excluded.origin_seq IS NOT NULL
                     AND (origin_seq IS NULL OR origin_seq > excluded.origin_seq)
                     THEN excluded.origin_seq ELSE origin_seq END",
            vec![
                stream.as_str().into(),
                int(ingest.duplicate_chunks),
                int(ingest.started_at),
                int(ingest.updated_at),
                opt_int(seq),
                opt_int(at),
            ],
        )
    }
}

impl SessionStorage for SqlSessionStorage {
    async fn load(&self, _id: &SessionId) -> Result<StoredSession, StorageError> {
        let mut stored = StoredSession::default();
        let session: Vec<SessionRow> = self.rows(
            "SELECT session_id, state, event_count, speakers_updated_at, finalized_at FROM session",
            vec![],
        )?;
        if let Some(row) = session.into_iter().next() {
            self.session_row.set(true);
            stored.session_id = Some(row.session_id);
            stored.finalized_at = row.finalized_at;
            stored.speakers = SpeakerRecord {
                state: match row.state {
                    Some(text) => serde_json::from_str::<SessionState>(&text).map_err(failed)?,
                    None => SessionState::default(),
                },
                event_count: row.event_count,
                updated_at: row.speakers_updated_at,
            };
        }
        let listing: Vec<ListingRow> = self.rows("SELECT sort_key FROM listing", vec![])?;
        self.listed
            .set(listing.into_iter().next().map(|row| row.sort_key));
        let streams: Vec<StreamRow> = self.rows("SELECT * FROM streams", vec![])?;
        let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for row in self.rows::<ChunkRow>(
            "SELECT stream, seq FROM chunks ORDER BY stream, seq",
            vec![],
        )? {
            seqs.entry(row.stream).or_default().push(row.seq);
        }
        for row in streams {
            let Ok(stream) = Stream::parse(&row.stream) else {
                continue;
            };
            let origin = match (row.origin_seq, row.origin_at) {
                (Some(seq), Some(captured_at)) => Some(CaptureOrigin { seq, captured_at }),
                _ => None,
            };
            stored.streams.insert(
                stream,
                StoredStream {
                    record: IngestRecord {
                        duplicate_chunks: row.duplicate_chunks,
                        started_at: row.started_at,
                        updated_at: row.updated_at,
                    },
                    seqs: seqs.remove(&row.stream).unwrap_or_default(),
                    origin,
                },
            );
        }
        Ok(stored)
    }

    async fn save_ingest(
        &self,
        id: &SessionId,
        stream: Stream,
        ingest: &IngestRecord,
    ) -> Result<(), StorageError> {
        self.ensure_session(id)?;
        self.write_stream(stream, ingest, None)
    }

    async fn save_chunk(
        &self,
        id: &SessionId,
        stream: Stream,
        seq: u64,
        captured_at: EpochMs,
        ingest: &IngestRecord,
    ) -> Result<(), StorageError> {
        self.ensure_session(id)?;
        // The lowest stored seq with its capture time places the stream on the session clock.
        self.write_stream(stream, ingest, Some((seq, captured_at)))?;
        self.exec(
            "INSERT INTO chunks (stream, seq) VALUES (?, ?) ON CONFLICT DO NOTHING",
            vec![stream.as_str().into(), int(seq)],
        )
    }

    async fn save_speakers(
        &self,
        id: &SessionId,
        speakers: &SpeakerRecord,
        event: Option<&SpeakerEvent>,
        replay: Option<(&str, &str)>,
    ) -> Result<(), StorageError> {
        let state = serde_json::to_string(&speakers.state).map_err(failed)?;
        let event = event
            .map(serde_json::to_string)
            .transpose()
            .map_err(failed)?;
        self.ensure_session(id)?;
        self.exec(
            "UPDATE session SET state = ?, event_count = ?, speakers_updated_at = ?",
            vec![
                state.into(),
                int(speakers.event_count),
                opt_int(speakers.updated_at),
            ],
        )?;
        if let Some(event) = event {
            self.exec("INSERT INTO events (event) VALUES (?)", vec![event.into()])?;
        }
        if let Some((key, answer)) = replay {
            self.exec(
                "INSERT INTO replays (key, answer, n)
                 VALUES (?, ?, (SELECT COALESCE(MAX(n), 0) + 1 FROM replays))
                 ON CONFLICT (key) DO UPDATE SET answer = excluded.answer, n = excluded.n",
                vec![key.into(), answer.into()],
            )?;
            self.exec(
                "DELETE FROM replays WHERE n NOT IN (SELECT n FROM replays ORDER BY n DESC LIMIT ?)",
                vec![int(MAX_REPLAYS_PER_SESSION as u64)],
            )?;
        }
        Ok(())
    }

    async fn replay(&self, _id: &SessionId, key: &str) -> Result<Option<String>, StorageError> {
        let rows: Vec<TextRow> = self.rows(
            "SELECT answer AS text FROM replays WHERE key = ?",
            vec![key.into()],
        )?;
        Ok(rows.into_iter().next().map(|r| r.text))
    }

    async fn events(&self, _id: &SessionId) -> Result<Vec<SpeakerEvent>, StorageError> {
        self.rows::<TextRow>("SELECT event AS text FROM events ORDER BY n", vec![])?
            .into_iter()
            .map(|row| serde_json::from_str(&row.text).map_err(failed))
            .collect()
    }

    async fn save_finalized(&self, id: &SessionId, at: EpochMs) -> Result<(), StorageError> {
        self.ensure_session(id)?;
        self.exec("UPDATE session SET finalized_at = ?", vec![int(at)])
    }
}
