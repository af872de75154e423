//! History: the list of sessions, a finalized session's `result.json`, deleting a session, and
//! deleting the sessions nobody has touched for a while (retention).
//!
//! A delete runs inside the session's actor, like every other write, and holds the session's
//! resolve lock so no resolve or attribution is half-way through it. It is refused (409) while a
//! socket is open on the session: a recorder still streaming would otherwise write its next
//! frames into a session whose earlier frames are gone. Once deleted, the id is free: a later
//! socket or request on it starts a new, empty session.

use std::time::Duration;

use bytes::Bytes;

use crate::core::clock::EpochMs;
use crate::core::session::{Session, SessionError};
use crate::core::session_id::SessionId;
use crate::sessions::{Sessions, now_ms};
use crate::storage::ListedSession;

// The shapes, the page query and the summary rules are the edge host's too.
pub use crate::core::history::{
    Cursor, DEFAULT_LIMIT, Deleted, HistoryError, MAX_LIMIT, Page, SessionFacts, SessionList,
    SessionSummary, StreamSummary,
};

/// Where a stored session sits in the list (see [`ListedSession::sort_key`]).
fn place(row: &ListedSession) -> Cursor {
    Cursor::new(row.started_at, &row.safe_id)
}

fn summary(row: &ListedSession) -> SessionSummary {
    SessionSummary::from(&SessionFacts {
        session_id: row.session_id.clone(),
        started_at: row.started_at,
        updated_at: row.updated_at,
        finalized_at: row.finalized_at,
        state: row.state.clone(),
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
    })
}

impl Sessions {
    /// One page of the session list.
    pub async fn list(&self, page: Page) -> Result<SessionList, HistoryError> {
        let after = page.after.clone().map(|c| (c.sort_key, c.safe_id));
        let rows = self
            .database
            .list_sessions(after, page.read_limit())
            .await?;
        let (rows, next_cursor) = page.split(rows, place);
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
    fn a_stored_session_lists_its_streams_and_pages_by_its_start() {
        let row = ListedSession {
            safe_id: "s".into(),
            session_id: "s".into(),
            started_at: Some(1_000),
            updated_at: Some(2_000),
            finalized_at: None,
            state: None,
            streams: vec![ListedStream {
                stream: "mic".into(),
                frames: 3,
                last_seq: 4,
            }],
        };
        assert_eq!(
            summary(&row).streams["mic"],
            StreamSummary {
                frames: 3,
                seconds: 4
            }
        );
        assert_eq!(place(&row).to_string(), "1000:s");
        assert_eq!(place(&row).sort_key, row.sort_key());
    }
}
