//! History: the list of sessions, a finalized session's `result.json`, deleting a session, and
//! deleting the sessions nobody has touched for a while (retention).
//!
//! A delete runs inside the session's actor, like every other write, and holds the session's
//! resolve lock so no resolve or attribution is half-way through it. It is refused (409) while a
//! socket is open on the session: a recorder still streaming would otherwise write its next
//! frames into a session whose earlier frames are gone. Once deleted, the id is free: a later
//! socket or request on it starts a new, empty session.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::core::clock::{EpochMs, rfc3339};
use crate::core::ports::StorageError;
use crate::core::session::{Session, SessionError};
use crate::core::session_id::SessionId;
use crate::protocol::SessionState;
use crate::sessions::{Sessions, now_ms};
use crate::storage::ListedSession;

/// Sessions a page holds unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// The most sessions one page may hold.
pub const MAX_LIMIT: usize = 500;

/// `GET /v1/sessions`: a page of sessions, newest start first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionSummary>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One session of the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session_id: String,
    /// RFC 3339: when its first stream started; `null` for a session without audio.
    pub started_at: Option<String>,
    /// RFC 3339: its latest frame, speaker change or finalize.
    pub updated_at: Option<String>,
    pub finalized: bool,
    /// RFC 3339, the latest finalize.
    pub finalized_at: Option<String>,
    /// Each stream that has been opened, by name (`mic`, `system`).
    pub streams: BTreeMap<String, StreamSummary>,
    /// The speaker clusters in its state.
    pub speaker_count: usize,
    /// The names given to them (by the interviewer or the engine), in cluster order, once each.
    pub speakers: Vec<String>,
}

/// The audio of one stream of a listed session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// Frames stored: seconds of audio received.
    pub frames: u64,
    /// Length of its `audio.wav` in seconds (the highest seq; missing seconds are silence).
    pub seconds: u64,
}

/// `DELETE /v1/sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deleted {
    pub session_id: String,
    pub deleted: bool,
    /// Objects removed: every frame of every stream, `result.json`, anything under its prefix.
    pub objects_deleted: u64,
}

/// Why a history request failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A `limit` or `after` that cannot be used (400).
    #[error("{0}")]
    BadQuery(String),
    #[error("session '{0}' not found")]
    NotFound(String),
    #[error("session '{0}' has not been finalized: no result.json")]
    NotFinalized(String),
    #[error(
        "session '{0}' has an open socket: stop streaming into it (close the socket) before deleting it"
    )]
    SocketOpen(String),
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl From<StorageError> for HistoryError {
    fn from(err: StorageError) -> HistoryError {
        HistoryError::Session(SessionError::Storage(err))
    }
}

/// Which page of the list: the query `?limit=N&after=CURSOR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The last session of the previous page: its sort key and safe name.
    pub after: Option<(EpochMs, String)>,
    pub limit: usize,
}

impl Page {
    pub fn parse(limit: Option<&str>, after: Option<&str>) -> Result<Page, HistoryError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    HistoryError::BadQuery(format!(
                        "limit must be a whole number from 1 to {MAX_LIMIT}"
                    ))
                })?,
        };
        let after = after.map(parse_cursor).transpose()?;
        Ok(Page { after, limit })
    }
}

/// A cursor is `<sort key>:<safe name>` of the last session listed (see
/// [`crate::storage::ListedSession::sort_key`]); clients pass it back unchanged.
fn cursor(session: &ListedSession) -> String {
    format!("{}:{}", session.sort_key(), session.safe_id)
}

fn parse_cursor(text: &str) -> Result<(EpochMs, String), HistoryError> {
    let bad = || {
        HistoryError::BadQuery(
            "invalid cursor: pass the next_cursor of the previous page unchanged".into(),
        )
    };
    let (key, safe) = text.split_once(':').ok_or_else(bad)?;
    let key = key.parse::<EpochMs>().map_err(|_| bad())?;
    let safe_name = !safe.is_empty()
        && safe.len() <= 4 * crate::core::session_id::MAX_SESSION_ID_CHARS
        && safe
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !safe_name {
        return Err(bad());
    }
    Ok((key, safe.to_owned()))
}

fn summary(row: &ListedSession) -> SessionSummary {
    // A state this gateway cannot read still lists the session, without speakers.
    let state: SessionState = row
        .state
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let mut speakers: Vec<String> = Vec::new();
    for cluster in &state.clusters {
        let name = cluster.bound_name.clone().or_else(|| {
            state
                .bindings
                .get(&cluster.cluster_id)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        });
        if let Some(name) = name.filter(|n| !n.is_empty() && !speakers.contains(n)) {
            speakers.push(name);
        }
    }
    SessionSummary {
        session_id: row.session_id.clone(),
        started_at: row.started_at.map(rfc3339),
        updated_at: row.updated_at.map(rfc3339),
        finalized: row.finalized_at.is_some(),
        finalized_at: row.finalized_at.map(rfc3339),
        streams: row
            .streams
            .iter()
            .map(|s| {
                let summary = StreamSummary {
                    frames: s.frames,
                    seconds: s.last_seq,
                };
                (s.stream.clone(), summary)
            })
            .collect(),
        speaker_count: state.clusters.len(),
        speakers,
    }
}

impl Sessions {
    /// One page of the session list.
    pub async fn list(&self, page: Page) -> Result<SessionList, HistoryError> {
        let mut rows = self
            .database
            .list_sessions(page.after, page.limit + 1)
            .await?;
        let next_cursor = if rows.len() > page.limit {
            rows.truncate(page.limit);
            rows.last().map(cursor)
        } else {
            None
        };
        Ok(SessionList {
            sessions: rows.iter().map(summary).collect(),
            next_cursor,
        })
    }

    /// The stored `result.json`, byte for byte as the latest finalize wrote it.
    pub async fn result(&self, id: &SessionId) -> Result<Bytes, HistoryError> {
        let Some(row) = self.database.session_row(id.safe()).await? else {
            return Err(HistoryError::NotFound(id.to_string()));
        };
        if row.session_id != id.as_str() {
            return Err(SessionError::IdCollision {
                requested: id.to_string(),
                existing: row.session_id,
            }
            .into());
        }
        if row.finalized_at.is_none() {
            return Err(HistoryError::NotFinalized(id.to_string()));
        }
        self.objects
            .get(&id.result_key())
            .await?
            .ok_or_else(|| HistoryError::NotFinalized(id.to_string()))
    }

    /// Deletes the session: its objects, then its rows, inside its actor (see the module doc).
    pub async fn delete(&self, id: &SessionId) -> Result<Deleted, HistoryError> {
        self.delete_unless_updated(id, None).await
    }

    /// Deletes every session whose latest update is older than `max_age`; answers how many
    /// went. A session with an open socket, or touched since it was found, stays.
    pub async fn expire(&self, max_age: Duration) -> Result<usize, HistoryError> {
        let cutoff = now_ms().saturating_sub(max_age.as_millis() as EpochMs);
        let mut deleted = 0;
        for raw in self.database.sessions_updated_before(cutoff).await? {
            let Ok(id) = SessionId::parse(&raw) else {
                continue;
            };
            match self.delete_unless_updated(&id, Some(cutoff)).await {
                Ok(done) if done.deleted => deleted += 1,
                Ok(_) | Err(HistoryError::NotFound(_)) => {}
                Err(HistoryError::SocketOpen(_)) => {
                    tracing::info!(session = %id.escaped(), "expired session kept: a socket is open on it");
                }
                Err(err) => {
                    tracing::warn!(session = %id.escaped(), error = %err, "could not delete an expired session");
                }
            }
        }
        Ok(deleted)
    }

    /// Deletes the session unless it was updated at or after `cutoff` (then `deleted` is false).
    async fn delete_unless_updated(
        &self,
        id: &SessionId,
        cutoff: Option<EpochMs>,
    ) -> Result<Deleted, HistoryError> {
        // Deleting is never refused by a client's cap on live sessions.
        let handle = self.registry.session(id, None)?;
        // No resolve or attribution of this session is between its read and its write.
        let _one_at_a_time = handle.resolve_lock.lock().await;
        let (registry, database, objects) = (
            self.registry.clone(),
            self.database.clone(),
            self.objects.clone(),
        );
        let target = id.clone();
        handle
            .run(move |session| {
                Box::pin(async move {
                    let kept = Deleted {
                        session_id: target.to_string(),
                        deleted: false,
                        objects_deleted: 0,
                    };
                    if registry.open_sockets(&target) > 0 {
                        return Ok(Err(HistoryError::SocketOpen(target.to_string())));
                    }
                    if let Some(cutoff) = cutoff {
                        let updated = database.session_updated_at(target.safe()).await?;
                        if updated.is_none_or(|at| at >= cutoff) {
                            return Ok(Ok(kept));
                        }
                    }
                    // Objects first: if that fails the rows still list the session, so a
                    // retry finds it; rows without objects would hide objects nobody can reach.
                    let objects_deleted = objects.delete_prefix(&target.prefix()).await?;
                    let had_rows = database.delete_session(target.safe()).await?;
                    // The actor goes on with what is stored now: nothing.
                    *session = Session::open(target.clone(), database, objects).await?;
                    if !had_rows && objects_deleted == 0 {
                        return Ok(Err(HistoryError::NotFound(target.to_string())));
                    }
                    tracing::info!(session = %target.escaped(), objects_deleted, "session deleted");
                    Ok(Ok(Deleted {
                        deleted: true,
                        objects_deleted,
                        ..kept
                    }))
                })
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ListedStream;

    #[test]
    fn a_page_defaults_to_50_and_refuses_a_bad_limit_or_cursor() {
        assert_eq!(Page::parse(None, None).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(Page::parse(Some("500"), None).unwrap().limit, 500);
        for limit in ["0", "501", "-1", "ten", ""] {
            let err = Page::parse(Some(limit), None).unwrap_err();
            assert_eq!(
                err.to_string(),
                "limit must be a whole number from 1 to 500"
            );
        }
        let page = Page::parse(None, Some("1764000000000:a_b.c-d")).unwrap();
        assert_eq!(page.after, Some((1_764_000_000_000, "a_b.c-d".into())));
        for after in ["", "12", ":a", "x:a", "12:", "12:a/b", "12:a b"] {
            let err = Page::parse(None, Some(after)).unwrap_err();
            assert!(err.to_string().starts_with("invalid cursor"), "{after}");
        }
    }

    #[test]
    fn a_summary_names_each_speaker_once_in_cluster_order() {
        let row = ListedSession {
            safe_id: "s".into(),
            session_id: "s".into(),
            started_at: Some(1_000),
            updated_at: Some(2_000),
            finalized_at: None,
            state: Some(
                r#"{"clusters":[{"cluster_id":"spk_1","bound_name":"Ada"},{"cluster_id":"spk_2"},
                    {"cluster_id":"spk_3"},{"cluster_id":"spk_4","bound_name":"Ada"}],
                    "bindings":{"spk_3":"Grace"},"config":{}}"#
                    .into(),
            ),
            streams: vec![ListedStream {
                stream: "mic".into(),
                frames: 3,
                last_seq: 4,
            }],
        };
        let summary = summary(&row);
        assert_eq!(summary.speaker_count, 4);
        assert_eq!(summary.speakers, ["Ada", "Grace"]);
        assert_eq!(
            summary.streams["mic"],
            StreamSummary {
                frames: 3,
                seconds: 4
            }
        );
        assert!(!summary.finalized);
        assert_eq!(
            summary.started_at.as_deref(),
            Some("1970-01-01T00:00:01.000Z")
        );
        assert_eq!(cursor(&row), "1000:s");
    }
}
