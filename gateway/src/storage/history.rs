//! The session tables read across sessions (the list, retention) and a session's rows deleted.
//!
//! The reads take no actor: every actor commits before it answers, so what the tables hold is
//! current. [`Database::delete_session`] is the one write here, and only a session's actor
//! calls it (see `Sessions::delete`), so it never races that session's own writes.
//!
//! A session's *start* is the earliest start of its streams; sessions are listed newest start
//! first, ties by safe name. A start never changes once a stream exists, so a cursor (the last
//! listed start and safe name) pages stably while sessions keep recording. A session with no
//! stream yet (only resolves) has no start and sorts after every recorded one.

use rusqlite::{Connection, OptionalExtension, params};

use crate::core::clock::EpochMs;
use crate::core::ports::StorageError;
use crate::storage::Database;

/// One row of the session list, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedSession {
    pub safe_id: String,
    /// The client's id.
    pub session_id: String,
    /// The earliest start of its streams; `None` for a session that never had one.
    pub started_at: Option<EpochMs>,
    /// The latest of its streams' updates, its speaker state's and its finalize.
    pub updated_at: Option<EpochMs>,
    pub finalized_at: Option<EpochMs>,
    /// The speaker state as stored (JSON text).
    pub state: Option<String>,
    pub streams: Vec<ListedStream>,
}

impl ListedSession {
    /// The key the list is ordered by (descending): the start, 0 when there is none.
    pub fn sort_key(&self) -> EpochMs {
        self.started_at.unwrap_or(0)
    }
}

/// One stream of a listed session.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedStream {
    /// `mic` or `system`.
    pub stream: String,
    /// Frames stored (seconds of audio received).
    pub frames: u64,
    /// The highest stored seq: the stream's length in seconds, gaps included.
    pub last_seq: u64,
}

/// What the `sessions` row says about who owns a safe name and whether it was finalized.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub session_id: String,
    pub finalized_at: Option<EpochMs>,
}

/// The session's latest update, from all the tables that stamp one (0 where none does).
const UPDATED_AT: &str = "MAX(COALESCE(st.updated_at, 0), COALESCE(s.state_updated_at, 0), \
                          COALESCE(s.finalized_at, 0))";

/// Every session with its streams' first start and last update.
const SESSIONS_WITH_STREAMS: &str = "sessions s LEFT JOIN (
        SELECT safe_id, MIN(started_at) AS started_at, MAX(updated_at) AS updated_at
        FROM streams GROUP BY safe_id
    ) st ON st.safe_id = s.safe_id";

impl Database {
    /// Up to `limit` sessions, newest start first, after the one at `after` (its sort key and
    /// safe name) when given.
    pub async fn list_sessions(
        &self,
        after: Option<(EpochMs, String)>,
        limit: usize,
    ) -> Result<Vec<ListedSession>, StorageError> {
        self.read(move |conn| list(conn, after.as_ref(), limit))
            .await
    }

    /// The client ids of sessions whose latest update is before `cutoff`.
    pub async fn sessions_updated_before(
        &self,
        cutoff: EpochMs,
    ) -> Result<Vec<String>, StorageError> {
        self.read(move |conn| {
            conn.prepare(&format!(
                "SELECT s.session_id FROM {SESSIONS_WITH_STREAMS} WHERE {UPDATED_AT} < ?1"
            ))?
            .query_map([cutoff as i64], |r| r.get(0))?
            .collect()
        })
        .await
    }

    /// The latest update of the session stored under `safe_id` (`None`: no such session).
    pub async fn session_updated_at(&self, safe_id: &str) -> Result<Option<EpochMs>, StorageError> {
        let safe_id = safe_id.to_owned();
        self.read(move |conn| {
            conn.prepare(&format!(
                "SELECT {UPDATED_AT} FROM {SESSIONS_WITH_STREAMS} WHERE s.safe_id = ?1"
            ))?
            .query_row([safe_id], |r| r.get::<_, i64>(0))
            .optional()
            .map(|at| at.map(|t| t as EpochMs))
        })
        .await
    }

    /// The `sessions` row stored under `safe_id`, if any.
    pub async fn session_row(&self, safe_id: &str) -> Result<Option<SessionRow>, StorageError> {
        let safe_id = safe_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT session_id, finalized_at FROM sessions WHERE safe_id = ?1")?
                .query_row([safe_id], |r| {
                    Ok(SessionRow {
                        session_id: r.get(0)?,
                        finalized_at: r.get::<_, Option<i64>>(1)?.map(|t| t as EpochMs),
                    })
                })
                .optional()
        })
        .await
    }

    /// Deletes every row of the session stored under `safe_id` (its state, streams, frames,
    /// events and replays) in one transaction; answers whether it had a `sessions` row. Only
    /// the session's actor may call this.
    pub async fn delete_session(&self, safe_id: &str) -> Result<bool, StorageError> {
        let safe_id = safe_id.to_owned();
        self.call(move |conn| {
            for table in ["frames", "streams", "events", "replays"] {
                conn.prepare_cached(&format!("DELETE FROM {table} WHERE safe_id = ?1"))?
                    .execute([&safe_id])?;
            }
            let rows = conn
                .prepare_cached("DELETE FROM sessions WHERE safe_id = ?1")?
                .execute([&safe_id])?;
            Ok(rows > 0)
        })
        .await
    }
}

fn list(
    conn: &Connection,
    after: Option<&(EpochMs, String)>,
    limit: usize,
) -> rusqlite::Result<Vec<ListedSession>> {
    let (after_key, after_id) = match after {
        Some((key, id)) => (Some(*key as i64), id.as_str()),
        None => (None, ""),
    };
    let mut sessions = conn
        .prepare(&format!(
            "SELECT s.safe_id, s.session_id, st.started_at, {UPDATED_AT}, s.finalized_at, s.state
             FROM {SESSIONS_WITH_STREAMS}
             WHERE ?1 IS NULL OR COALESCE(st.started_at, 0) < ?1
                 OR (COALESCE(st.started_at, 0) = ?1 AND s.safe_id < ?2)
             ORDER BY COALESCE(st.started_at, 0) DESC, s.safe_id DESC
             LIMIT ?3"
        ))?
        .query_map(params![after_key, after_id, limit as i64], |r| {
            Ok(ListedSession {
                safe_id: r.get(0)?,
                session_id: r.get(1)?,
                started_at: r.get::<_, Option<i64>>(2)?.map(|t| t as EpochMs),
                updated_at: Some(r.get::<_, i64>(3)? as EpochMs).filter(|t| *t > 0),
                finalized_at: r.get::<_, Option<i64>>(4)?.map(|t| t as EpochMs),
                state: r.get(5)?,
                streams: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut streams = conn.prepare_cached(
        "SELECT stream,
                (SELECT count(*) FROM frames f WHERE f.safe_id = st.safe_id AND f.stream = st.stream),
                (SELECT max(seq) FROM frames f WHERE f.safe_id = st.safe_id AND f.stream = st.stream)
         FROM streams st WHERE safe_id = ?1 ORDER BY stream",
    )?;
    for session in &mut sessions {
        session.streams = streams
            .query_map([&session.safe_id], |r| {
                Ok(ListedStream {
                    stream: r.get(0)?,
                    frames: r.get::<_, i64>(1)? as u64,
                    last_seq: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::storage::session_rows::create_schema(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (safe_id, session_id, state_updated_at) VALUES
                 ('a', 'a', NULL), ('b', 'b', 50), ('c', 'c', NULL), ('d', 'd', 7);
             INSERT INTO streams (safe_id, stream, started_at, updated_at) VALUES
                 ('a', 'mic', 10, 20), ('b', 'mic', 30, 40), ('b', 'system', 25, 45),
                 ('c', 'mic', 25, 31);
             INSERT INTO frames (safe_id, stream, seq) VALUES
                 ('b', 'mic', 1), ('b', 'mic', 3), ('b', 'system', 2);",
        )
        .unwrap();
        conn
    }

    fn ids(sessions: &[ListedSession]) -> Vec<&str> {
        sessions.iter().map(|s| s.safe_id.as_str()).collect()
    }

    #[test]
    fn sessions_are_listed_newest_start_first_and_page_after_a_cursor() {
        let conn = database();
        let all = list(&conn, None, 10).unwrap();
        // c and b both start at 25 (b with its system stream): the tie goes by name.
        assert_eq!(ids(&all), ["c", "b", "a", "d"]);
        let first = list(&conn, None, 2).unwrap();
        assert_eq!(ids(&first), ["c", "b"]);
        let last = &first[1];
        let rest = list(&conn, Some(&(last.sort_key(), last.safe_id.clone())), 2).unwrap();
        assert_eq!(ids(&rest), ["a", "d"]);
        let none = list(&conn, Some(&(0, "d".into())), 2).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_listed_session_counts_each_streams_frames_and_takes_its_latest_update() {
        let conn = database();
        let all = list(&conn, None, 10).unwrap();
        let b = &all[1];
        assert_eq!((b.started_at, b.updated_at), (Some(25), Some(50)));
        assert_eq!(
            b.streams,
            [
                ListedStream {
                    stream: "mic".into(),
                    frames: 2,
                    last_seq: 3
                },
                ListedStream {
                    stream: "system".into(),
                    frames: 1,
                    last_seq: 2
                },
            ]
        );
        let d = &all[3];
        assert_eq!((d.started_at, d.updated_at), (None, Some(7)));
        assert!(d.streams.is_empty());
    }

    #[test]
    fn a_session_is_expired_by_its_latest_update_of_any_kind() {
        let conn = database();
        let expired: Vec<String> = conn
            .prepare(&format!(
                "SELECT s.session_id FROM {SESSIONS_WITH_STREAMS} WHERE {UPDATED_AT} < ?1 ORDER BY 1"
            ))
            .unwrap()
            .query_map([41], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(expired, ["a", "c", "d"], "b's state was updated at 50");
    }
}
