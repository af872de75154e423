//! The Sessions view's list: every session the gateway holds and every one recorded on this
//! computer, one row each, newest first.
//!
//! The gateway says what it stored (`GET /v1/sessions`, every page): start, length, speakers,
//! finalized. This computer adds what only it knows: sessions whose recordings are here (the
//! spools and local copies under `recordings/`), the audio still held, and the titles. A session
//! the gateway cannot be asked about (unreachable, or a seed gateway without the route) is still
//! listed from this computer, and the view says why the gateway's part is missing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use gateway::sessions::history::{SessionList, SessionSummary};
use recorder::endpoint::{CallError, GatewayEndpoint};
use recorder::engine::{self, LOCAL_COPY};
use recorder::spool;
use serde::Serialize;

/// How long each page of the gateway's list may take.
const PAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// Sessions asked for per page (the gateway's maximum).
const PAGE_SIZE: usize = 500;
/// Pages read at most: a list longer than this many thousand sessions shows its newest.
const MAX_PAGES: usize = 20;

/// One row of the Sessions view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionEntry {
    pub session_id: String,
    /// The interviewer's title for it, if they gave one (`titles.rs`).
    pub title: Option<String>,
    /// RFC 3339: when it started (the gateway's word; for a session only here, an estimate
    /// from its local copy).
    pub started_at: Option<String>,
    /// Length in seconds: its longest stream on the gateway, or what was recorded here.
    pub seconds: u64,
    /// Names given to its speakers, once each.
    pub speakers: Vec<String>,
    /// Speakers the engine told apart, named or not.
    pub speaker_count: usize,
    pub finalized_at: Option<String>,
    /// Whether the gateway holds it.
    pub on_gateway: bool,
    /// Whether this computer has its local copy (`local.wav`): played and exported from here.
    pub local_copy: bool,
    /// Seconds recorded here and not yet on the gateway.
    pub held: u64,
}

/// What the page gets.
#[derive(Debug, Clone, Serialize)]
pub struct SessionsView {
    pub sessions: Vec<SessionEntry>,
    /// Why the gateway's sessions are missing from the list, if they are.
    pub gateway_error: Option<String>,
    /// Sessions deleted here whose gateway has not deleted its copy yet (it was unreachable);
    /// left out of `sessions`.
    pub deleting: Vec<String>,
    /// Where exports go (as the window shows paths).
    pub export_dir: String,
}

/// A session found under the recordings directory.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSession {
    pub session_id: String,
    pub seconds: u64,
    pub recorded_at: Option<String>,
    pub local_copy: bool,
    pub held: u64,
}

/// Every page of the gateway's list.
pub async fn gateway_sessions(
    endpoint: &GatewayEndpoint,
) -> Result<Vec<SessionSummary>, CallError> {
    let mut sessions = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let body = endpoint
            .list_sessions(PAGE_SIZE, after.as_deref(), PAGE_TIMEOUT)
            .await?;
        let page: SessionList = serde_json::from_slice(&body).map_err(|e| CallError::Refused {
            status: 200,
            detail: format!("the gateway's session list is not the contract's shape: {e}"),
        })?;
        sessions.extend(page.sessions);
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    Ok(sessions)
}

/// The sessions recorded on this computer. A directory that is not a session's (no readable
/// `spool.json`) is passed over.
pub fn local_sessions(recordings: &Path) -> anyhow::Result<Vec<LocalSession>> {
    let entries = match std::fs::read_dir(recordings) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::Error::new(e).context("cannot list the recordings")),
    };
    let mut sessions = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        // The spool names the session: the directory's name is the id made safe for a file
        // name, which loses characters.
        let Ok(Some(mic)) = spool::peek(&dir) else {
            continue;
        };
        let held = engine::held_frames(recordings, &mic.session_id)?;
        let copy = dir.join(LOCAL_COPY);
        let copy_seconds = wav_seconds(&copy);
        sessions.push(LocalSession {
            seconds: held.recorded.max(copy_seconds.unwrap_or(0)),
            recorded_at: copy_seconds.and_then(|secs| started_estimate(&copy, secs)),
            local_copy: copy_seconds.is_some(),
            held: held.total(),
            session_id: mic.session_id,
        });
    }
    Ok(sessions)
}

/// Whole seconds of a WAV file, if it is one.
pub fn wav_seconds(path: &Path) -> Option<u64> {
    let reader = hound::WavReader::open(path).ok()?;
    let rate = u64::from(reader.spec().sample_rate.max(1));
    Some(u64::from(reader.duration()).div_ceil(rate))
}

/// When a local copy began: its last write less its length.
fn started_estimate(copy: &Path, seconds: u64) -> Option<String> {
    let modified = std::fs::metadata(copy).ok()?.modified().ok()?;
    let started = modified.checked_sub(Duration::from_secs(seconds))?;
    rfc3339(started)
}

pub fn rfc3339(at: SystemTime) -> Option<String> {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// One row per session id, the gateway's facts first and this computer's added, newest
/// first (a session without a date last, then by id).
pub fn merge(
    gateway: Vec<SessionSummary>,
    local: Vec<LocalSession>,
    title: impl Fn(&str) -> Option<String>,
) -> Vec<SessionEntry> {
    let mut rows: BTreeMap<String, SessionEntry> = BTreeMap::new();
    for summary in gateway {
        let seconds = summary
            .streams
            .values()
            .map(|s| s.seconds)
            .max()
            .unwrap_or(0);
        rows.insert(
            summary.session_id.clone(),
            SessionEntry {
                title: title(&summary.session_id),
                session_id: summary.session_id,
                started_at: summary.started_at,
                seconds,
                speakers: summary.speakers,
                speaker_count: summary.speaker_count,
                finalized_at: summary.finalized_at,
                on_gateway: true,
                local_copy: false,
                held: 0,
            },
        );
    }
    for here in local {
        let row = rows
            .entry(here.session_id.clone())
            .or_insert_with(|| SessionEntry {
                title: title(&here.session_id),
                session_id: here.session_id.clone(),
                started_at: here.recorded_at.clone(),
                seconds: 0,
                speakers: Vec::new(),
                speaker_count: 0,
                finalized_at: None,
                on_gateway: false,
                local_copy: false,
                held: 0,
            });
        // Held seconds are not on the gateway yet: the session is as long as the longer.
        row.seconds = row.seconds.max(here.seconds);
        row.local_copy = here.local_copy;
        row.held = here.held;
    }
    let mut rows: Vec<SessionEntry> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        b.started_at
            .is_some()
            .cmp(&a.started_at.is_some())
            .then_with(|| b.started_at.cmp(&a.started_at))
            .then_with(|| a.session_id.cmp(&b.session_id))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::sessions::history::StreamSummary;

    fn on_gateway(id: &str, started: &str, mic: u64, finalized: bool) -> SessionSummary {
        SessionSummary {
            session_id: id.into(),
            started_at: Some(started.into()),
            updated_at: Some(started.into()),
            finalized,
            finalized_at: finalized.then(|| "2026-11-27T10:00:00Z".to_owned()),
            streams: BTreeMap::from([(
                "mic".to_owned(),
                StreamSummary {
                    frames: mic,
                    seconds: mic,
                },
            )]),
            speaker_count: 2,
            speakers: vec!["Ada".into()],
        }
    }

    fn here(id: &str, seconds: u64, held: u64) -> LocalSession {
        LocalSession {
            session_id: id.into(),
            seconds,
            recorded_at: Some("2026-11-27T11:00:00Z".into()),
            local_copy: true,
            held,
        }
    }

    #[test]
    fn a_session_on_both_sides_is_one_row_with_the_gateway_facts_and_the_local_extras() {
        let rows = merge(
            vec![on_gateway("a", "2026-11-27T09:00:00Z", 30, true)],
            vec![here("a", 34, 4)],
            |id| (id == "a").then(|| "Interview".to_owned()),
        );
        assert_eq!(
            rows,
            vec![SessionEntry {
                session_id: "a".into(),
                title: Some("Interview".into()),
                started_at: Some("2026-11-27T09:00:00Z".into()),
                seconds: 34,
                speakers: vec!["Ada".into()],
                speaker_count: 2,
                finalized_at: Some("2026-11-27T10:00:00Z".into()),
                on_gateway: true,
                local_copy: true,
                held: 4,
            }]
        );
    }

    #[test]
    fn the_list_is_newest_first_with_local_only_sessions_among_them() {
        let rows = merge(
            vec![
                on_gateway("old", "2026-11-26T09:00:00Z", 5, true),
                on_gateway("new", "2026-11-27T12:00:00Z", 5, false),
            ],
            vec![
                here("only-here", 7, 7),
                LocalSession {
                    recorded_at: None,
                    ..here("undated", 1, 0)
                },
            ],
            |_| None,
        );
        let order: Vec<_> = rows
            .iter()
            .map(|r| (r.session_id.as_str(), r.on_gateway))
            .collect();
        assert_eq!(
            order,
            vec![
                ("new", true),
                ("only-here", false),
                ("old", true),
                ("undated", false)
            ]
        );
    }

    #[test]
    fn recordings_on_this_computer_are_found_by_their_spools() {
        use recorder::spool::{Durability, Spool, SpooledFrame};
        let root = tempfile::tempdir().unwrap();
        let dir = engine::session_dir(root.path(), "a b").unwrap();
        let mut spool = Spool::open(&dir, "a b", Durability::Flush).unwrap();
        for seq in 1..=3 {
            spool
                .add(&SpooledFrame {
                    seq,
                    timestamp_ms: seq * 1000,
                    pcm: vec![0; contract::protocol::FRAME_BYTES],
                })
                .unwrap();
        }
        drop(spool);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut wav = hound::WavWriter::create(dir.join(LOCAL_COPY), spec).unwrap();
        for _ in 0..(16_000 * 2 + 100) {
            wav.write_sample(0i16).unwrap();
        }
        wav.finalize().unwrap();
        std::fs::create_dir_all(root.path().join("not-a-session")).unwrap();

        let found = local_sessions(root.path()).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let session = &found[0];
        assert_eq!(
            (
                session.session_id.as_str(),
                session.seconds,
                session.held,
                session.local_copy
            ),
            ("a b", 3, 3, true)
        );
        assert!(session.recorded_at.is_some());
        assert_eq!(wav_seconds(&dir.join(LOCAL_COPY)), Some(3));
    }
}
