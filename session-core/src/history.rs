//! The session list and the other history answers (beyond the seed), once for every host:
//! the JSON shapes, the page query (`?limit=N&after=CURSOR`) with its refusals, the order and
//! cursor, and how what a host stores about one session becomes its line of the list.
//!
//! Each host finds the sessions of a page in its own storage (the server in its SQLite
//! tables, the edge in a directory Durable Object and each session's object) and answers
//! with these types, so a client reads the same list from either.
//!
//! Order: newest start first (a session's start is the earliest start of its streams), ties
//! by safe name, both descending. A session with no stream yet (only resolves) has no start
//! and sorts as 0, after every recorded one. A start never changes once a stream exists, so
//! a cursor (the last listed start and safe name) pages stably while sessions keep recording.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::{EpochMs, rfc3339};
use crate::ports::StorageError;
use crate::session::SessionError;
use crate::session_id::MAX_SESSION_ID_CHARS;
use contract::protocol::SessionState;

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

/// Why a history request failed; its `detail` is the text (see `api_error` for the status).
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

/// Where a session sits in the list, and the `next_cursor` text of the last one of a page
/// (`<sort key>:<safe name>`; clients pass it back unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The session's start, 0 when it has none.
    pub sort_key: EpochMs,
    pub safe_id: String,
}

impl Cursor {
    /// The place of the session stored under `safe_id` that started at `started_at`.
    pub fn new(started_at: Option<EpochMs>, safe_id: &str) -> Cursor {
        Cursor {
            sort_key: started_at.unwrap_or(0),
            safe_id: safe_id.to_owned(),
        }
    }

    fn parse(text: &str) -> Result<Cursor, HistoryError> {
        let bad = || {
            HistoryError::BadQuery(
                "invalid cursor: pass the next_cursor of the previous page unchanged".into(),
            )
        };
        let (key, safe) = text.split_once(':').ok_or_else(bad)?;
        let sort_key = key.parse::<EpochMs>().map_err(|_| bad())?;
        let safe_name = !safe.is_empty()
            && safe.len() <= 4 * MAX_SESSION_ID_CHARS
            && safe
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !safe_name {
            return Err(bad());
        }
        Ok(Cursor {
            sort_key,
            safe_id: safe.to_owned(),
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.sort_key, self.safe_id)
    }
}

/// Which page of the list: the query `?limit=N&after=CURSOR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The last session of the previous page.
    pub after: Option<Cursor>,
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
        let after = after.map(Cursor::parse).transpose()?;
        Ok(Page { after, limit })
    }

    /// How many sessions a host reads for this page: one more than it holds, which tells
    /// whether another page follows.
    pub fn read_limit(&self) -> usize {
        self.limit + 1
    }

    /// The page out of `rows` (read in list order with [`Page::read_limit`]) and its
    /// `next_cursor`: the place of its last row when more followed, else `None`.
    pub fn split<T>(
        &self,
        mut rows: Vec<T>,
        place: impl Fn(&T) -> Cursor,
    ) -> (Vec<T>, Option<String>) {
        if rows.len() <= self.limit {
            return (rows, None);
        }
        rows.truncate(self.limit);
        let next = rows.last().map(|row| place(row).to_string());
        (rows, next)
    }
}

/// What a host stores about one session, as its line of the list needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFacts {
    /// The client's id.
    pub session_id: String,
    /// The earliest start of its streams; `None` for a session that never had one.
    pub started_at: Option<EpochMs>,
    /// The latest of its streams' updates, its speaker state's and its finalize.
    pub updated_at: Option<EpochMs>,
    pub finalized_at: Option<EpochMs>,
    /// The speaker state as stored (JSON text).
    pub state: Option<String>,
    /// Each opened stream by name: frames stored and the highest stored seq.
    pub streams: BTreeMap<String, StreamSummary>,
}

impl From<&SessionFacts> for SessionSummary {
    fn from(facts: &SessionFacts) -> SessionSummary {
        // A state this host cannot read still lists the session, without speakers.
        let state: SessionState = facts
            .state
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        SessionSummary {
            session_id: facts.session_id.clone(),
            started_at: facts.started_at.map(rfc3339),
            updated_at: facts.updated_at.map(rfc3339),
            finalized: facts.finalized_at.is_some(),
            finalized_at: facts.finalized_at.map(rfc3339),
            streams: facts.streams.clone(),
            speaker_count: state.clusters.len(),
            speakers: speaker_names(&state),
        }
    }
}

/// The names given to the clusters (a cluster's bound name, else its binding), in cluster
/// order, each once.
fn speaker_names(state: &SessionState) -> Vec<String> {
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
    speakers
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            page.after,
            Some(Cursor {
                sort_key: 1_764_000_000_000,
                safe_id: "a_b.c-d".into()
            })
        );
        for after in ["", "12", ":a", "x:a", "12:", "12:a/b", "12:a b"] {
            let err = Page::parse(None, Some(after)).unwrap_err();
            assert!(err.to_string().starts_with("invalid cursor"), "{after}");
        }
    }

    #[test]
    fn a_page_read_one_long_has_the_cursor_of_its_last_row() {
        let page = Page::parse(Some("2"), None).unwrap();
        assert_eq!(page.read_limit(), 3);
        let place = |n: &u64| Cursor::new(Some(*n), &format!("s{n}"));
        assert_eq!(
            page.split(vec![30, 20, 10], place),
            (vec![30, 20], Some("20:s20".to_owned()))
        );
        assert_eq!(page.split(vec![30, 20], place), (vec![30, 20], None));
        assert_eq!(Cursor::new(None, "quiet").to_string(), "0:quiet");
    }

    #[test]
    fn a_summary_names_each_speaker_once_in_cluster_order() {
        let facts = SessionFacts {
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
            streams: [(
                "mic".to_owned(),
                StreamSummary {
                    frames: 3,
                    seconds: 4,
                },
            )]
            .into(),
        };
        let summary = SessionSummary::from(&facts);
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
    }

    #[test]
    fn an_unreadable_state_lists_the_session_without_speakers() {
        let facts = SessionFacts {
            session_id: "s".into(),
            state: Some("not json".into()),
            finalized_at: Some(5),
            ..SessionFacts::default()
        };
        let summary = SessionSummary::from(&facts);
        assert_eq!((summary.speaker_count, summary.speakers.len()), (0, 0));
        assert!(summary.finalized);
        assert_eq!(summary.started_at, None);
    }
}
