//! Export formats of a finished (or paused) session: the readable report (Markdown and a
//! printable HTML page) and the turns as subtitles (SRT and WebVTT).
//!
//! Every format is drawn from one [`SessionReport`], built from the session's speaker state
//! (the built-in engine's timeline of turns, the clusters and the names given). The functions
//! here are pure text: where the files go and where the audio and `result.json` come from is
//! the app's business (`app/export.rs`).
//!
//! - [`timecode`]: how a millisecond offset is written in each format;
//! - [`report`]: Markdown and HTML;
//! - [`subtitles`]: SRT and WebVTT.

pub mod report;
pub mod subtitles;
pub mod timecode;

use contract::protocol::{SessionState, TIMELINE_KEY, TimelineTurn};

/// What every export format shows of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionReport {
    pub session_id: String,
    /// The title the interviewer gave it in the app, if any.
    pub title: Option<String>,
    /// RFC 3339: when its audio started.
    pub started_at: Option<String>,
    /// RFC 3339: when it was finalized; `None` for a session not finalized (yet).
    pub finalized_at: Option<String>,
    /// Length of its audio.
    pub length_ms: u64,
    /// Every speaker heard or named, in order of first turn (then those without turns).
    pub speakers: Vec<Speaker>,
    /// The timeline, in order of start.
    pub turns: Vec<Turn>,
}

/// One speaker of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Speaker {
    pub cluster_id: String,
    /// The name given (by the interviewer or the engine); `None` while unnamed.
    pub name: Option<String>,
    /// What the report calls them: the name, or `Speaker N` (N counts from 1 in report order).
    pub label: String,
    /// The stream they were heard on (`mic`, `system`).
    pub stream: String,
    /// Sum of their turns' lengths.
    pub talk_ms: u64,
}

/// One turn of the timeline, with its speaker's label.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub start_ms: u64,
    pub end_ms: u64,
    pub cluster_id: String,
    pub speaker: String,
    pub stream: String,
}

impl SessionReport {
    /// Builds the report from a session's speaker state. A timeline that cannot be read
    /// (a gateway whose engine keeps none) gives a report with speakers and no turns.
    pub fn from_state(session_id: &str, state: &SessionState, length_ms: u64) -> SessionReport {
        let mut timeline: Vec<TimelineTurn> = state
            .extra
            .get(TIMELINE_KEY)
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default();
        timeline.retain(|turn| turn.end_ms > turn.start_ms);
        timeline.sort_by_key(|turn| (turn.start_ms, turn.end_ms));

        let mut speakers: Vec<Speaker> = Vec::new();
        let mut add = |cluster_id: &str, stream: &str| {
            if !speakers.iter().any(|s| s.cluster_id == cluster_id) {
                speakers.push(Speaker {
                    cluster_id: cluster_id.to_owned(),
                    name: name_given(state, cluster_id),
                    label: String::new(),
                    stream: stream.to_owned(),
                    talk_ms: 0,
                });
            }
        };
        for turn in &timeline {
            add(&turn.cluster_id, &turn.stream);
        }
        for cluster in &state.clusters {
            // The built-in engine names the meeting audio's clusters `sys_N`.
            let stream = if cluster.cluster_id.starts_with("sys_") {
                "system"
            } else {
                "mic"
            };
            add(&cluster.cluster_id, stream);
        }
        for (n, speaker) in speakers.iter_mut().enumerate() {
            speaker.label = speaker
                .name
                .clone()
                .unwrap_or_else(|| format!("Speaker {}", n + 1));
            // Turns of one cluster never overlap (the engine cuts a stream into turns), so
            // the sum is the time they spoke.
            speaker.talk_ms = timeline
                .iter()
                .filter(|t| t.cluster_id == speaker.cluster_id)
                .map(|t| t.end_ms - t.start_ms)
                .sum();
        }
        let turns = timeline
            .into_iter()
            .map(|t| Turn {
                speaker: speakers
                    .iter()
                    .find(|s| s.cluster_id == t.cluster_id)
                    .map(|s| s.label.clone())
                    .unwrap_or_default(),
                start_ms: t.start_ms,
                end_ms: t.end_ms,
                cluster_id: t.cluster_id,
                stream: t.stream,
            })
            .collect();
        SessionReport {
            session_id: session_id.to_owned(),
            title: None,
            started_at: None,
            finalized_at: None,
            length_ms,
            speakers,
            turns,
        }
    }

    /// The heading: the title, or the session id.
    pub fn heading(&self) -> &str {
        self.title
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or(&self.session_id)
    }

    /// Everyone's talk time together.
    pub fn total_talk_ms(&self) -> u64 {
        self.speakers.iter().map(|s| s.talk_ms).sum()
    }

    /// A speaker's share of the total talk time, in whole percent (0 when nobody spoke).
    pub fn share_percent(&self, speaker: &Speaker) -> u64 {
        let total = self.total_talk_ms();
        if total == 0 {
            return 0;
        }
        (speaker.talk_ms * 100 + total / 2) / total
    }
}

/// The name a cluster was given: the interviewer's binding first, then the name the engine
/// bound; blank names count as none.
fn name_given(state: &SessionState, cluster_id: &str) -> Option<String> {
    let bound = state
        .bindings
        .get(cluster_id)
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let cluster = state
        .clusters
        .iter()
        .find(|c| c.cluster_id == cluster_id)
        .and_then(|c| c.bound_name.clone());
    bound
        .or(cluster)
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
}

/// Words for a stream in the reports.
pub fn stream_words(stream: &str) -> &str {
    match stream {
        "mic" => "microphone",
        "system" => "meeting audio",
        other => other,
    }
}

/// A readable date of an RFC 3339 UTC time (`2026-11-27 21:04 UTC`); anything else as given.
pub fn readable_time(rfc3339: &str) -> String {
    let utc = rfc3339.ends_with('Z') || rfc3339.ends_with("+00:00");
    let shaped = rfc3339.len() >= 16 && rfc3339.as_bytes()[10] == b'T';
    if utc && shaped && rfc3339.is_char_boundary(16) {
        format!("{} {} UTC", &rfc3339[..10], &rfc3339[11..16])
    } else {
        rfc3339.to_owned()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// Two people on the mic (one named by the interviewer, one unnamed) and one on the
    /// meeting audio, named by the engine; the turns arrive out of order.
    pub fn sample() -> SessionReport {
        let state: SessionState = serde_json::from_value(json!({
            "clusters": [
                {"cluster_id": "spk_0", "centroid": [], "sample_count": 3},
                {"cluster_id": "spk_1", "centroid": [], "sample_count": 1},
                {"cluster_id": "sys_0", "centroid": [], "sample_count": 2, "bound_name": "Ada <Lovelace> & Co"},
            ],
            "bindings": {"spk_0": "Grace Hopper"},
            "config": {},
            "timeline": [
                {"start_ms": 4_500, "end_ms": 7_250, "cluster_id": "sys_0", "stream": "system"},
                {"start_ms": 0, "end_ms": 4_000, "cluster_id": "spk_0", "stream": "mic"},
                {"start_ms": 61_000, "end_ms": 62_001, "cluster_id": "spk_0", "stream": "mic"},
                {"start_ms": 9_000, "end_ms": 9_000, "cluster_id": "spk_1", "stream": "mic"},
            ],
        }))
        .unwrap();
        let mut report = SessionReport::from_state("iv-1", &state, 65_000);
        report.title = Some("Interview with Ada".into());
        report.started_at = Some("2026-11-27T09:30:05.123Z".into());
        report.finalized_at = Some("2026-11-27T09:31:10Z".into());
        report
    }

    #[test]
    fn speakers_are_labelled_by_name_or_number_and_their_talk_time_is_the_sum_of_their_turns() {
        let report = sample();
        let speakers: Vec<_> = report
            .speakers
            .iter()
            .map(|s| {
                (
                    s.cluster_id.as_str(),
                    s.label.as_str(),
                    s.stream.as_str(),
                    s.talk_ms,
                )
            })
            .collect();
        assert_eq!(
            speakers,
            vec![
                ("spk_0", "Grace Hopper", "mic", 4_000 + 1_001),
                ("sys_0", "Ada <Lovelace> & Co", "system", 2_750),
                ("spk_1", "Speaker 3", "mic", 0),
            ]
        );
        assert_eq!(report.total_talk_ms(), 7_751);
        let shares: Vec<_> = report
            .speakers
            .iter()
            .map(|s| report.share_percent(s))
            .collect();
        assert_eq!(shares, vec![65, 35, 0]);
    }

    #[test]
    fn empty_turns_are_dropped_and_the_rest_are_in_order_of_start() {
        let starts: Vec<_> = sample()
            .turns
            .iter()
            .map(|t| (t.start_ms, t.speaker.clone()))
            .collect();
        assert_eq!(
            starts,
            vec![
                (0, "Grace Hopper".to_owned()),
                (4_500, "Ada <Lovelace> & Co".to_owned()),
                (61_000, "Grace Hopper".to_owned()),
            ]
        );
    }

    #[test]
    fn a_state_without_a_timeline_lists_its_clusters_with_no_talk_time() {
        let state: SessionState = serde_json::from_value(json!({
            "clusters": [{"cluster_id": "spk_0", "centroid": [], "sample_count": 1}],
            "bindings": {"spk_0": "  "},
            "config": {},
        }))
        .unwrap();
        let report = SessionReport::from_state("s", &state, 3_000);
        assert_eq!(report.turns, vec![]);
        assert_eq!(report.speakers[0].label, "Speaker 1");
        assert_eq!(report.speakers[0].name, None);
        assert_eq!(report.share_percent(&report.speakers[0]), 0);
    }

    #[test]
    fn utc_times_read_as_date_and_minute() {
        assert_eq!(
            readable_time("2026-11-27T09:30:05.123Z"),
            "2026-11-27 09:30 UTC"
        );
        assert_eq!(
            readable_time("2026-11-27T09:30:05+00:00"),
            "2026-11-27 09:30 UTC"
        );
        assert_eq!(
            readable_time("2026-11-27T09:30:05+02:00"),
            "2026-11-27T09:30:05+02:00"
        );
        assert_eq!(readable_time("yesterday"), "yesterday");
    }
}
