//! Speaker state transitions: resolve requests and answers, and the interviewer's corrections.
//!
//! The inference service owns the clustering; the session only keeps its latest `updated_state`,
//! an event per decision, and the names the interviewer binds by hand.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::caps::{
    MAX_ANSWER_NESTING, MAX_EMAIL_CHARS, MAX_EVENTS_PER_SESSION, MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_METADATA_BYTES, MAX_ROSTER_ENTRIES, MAX_SPEAKER_NAME_CHARS,
};
use crate::clock::{EpochMs, rfc3339};
use crate::session_id::SessionId;
use crate::stream::Stream;
use contract::protocol::{
    ATTRIBUTION_KEY, Cluster, Decision, ResolveAnswer, RosterEntry, SessionState, SpeakerEvent,
    TIMELINE_KEY, TimelineTurn,
};

/// What is persisted about a session's speakers besides its event log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpeakerRecord {
    pub state: SessionState,
    pub event_count: u64,
    pub updated_at: Option<EpochMs>,
}

/// A resolve request that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolveInput {
    /// The `audio` object, forwarded to inference as sent.
    pub audio: Value,
    pub asr_text: Value,
    /// A non-empty roster replaces the session's.
    pub roster: Option<Vec<RosterEntry>>,
}

/// What the built-in engine learned from a stretch of one stream's stored audio, to merge into
/// the state.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionUpdate {
    /// The stream the stretch came from; its clusters and cursor are the ones updated.
    pub stream: Stream,
    /// Clusters as the engine left them: `(id, centroid, sample_count, parts)`. New ids are
    /// added; known ones get the new centroid and count and keep their names. `parts` is the
    /// engine's own summary of the turns the cluster absorbed (opaque here), kept in the
    /// cluster's `extra.parts` so the next stretch can revisit the clustering; `null` leaves
    /// what is stored.
    pub clusters: Vec<EngineCluster>,
    /// Clusters the engine split in two, applied to the timeline before `merged` (the engine
    /// splits first, then merges).
    pub split: Vec<ClusterSplit>,
    /// Clusters the engine merged: `(removed id, kept id)`.
    pub merged: Vec<(String, String)>,
    /// New turns, in time order, after every turn already in the timeline.
    pub turns: Vec<TimelineTurn>,
    /// The stream's audio up to here (ms from its start) is attributed.
    pub through_ms: u64,
}

/// One cluster as the engine reports it: `(id, centroid, sample_count, parts)`; see
/// [`AttributionUpdate::clusters`].
pub type EngineCluster = (String, Vec<f64>, u64, Value);

/// A cluster the engine found to hold two voices: the turns of `kept` within the `moved` spans
/// were the other voice, now `new`. Past turns are relabelled by time because the timeline is
/// the only record of them; `kept` keeps its id and so its name.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSplit {
    pub kept: String,
    pub new: String,
    /// `(start_ms, end_ms)` on the timeline's clock, in time order.
    pub moved: Vec<(u64, u64)>,
}

impl ClusterSplit {
    /// `turn` cut where a moved span starts or ends inside it: the pieces inside a span go to
    /// `new`. A turn of another cluster or stream is returned whole.
    fn relabel(&self, turn: &TimelineTurn, stream: Stream) -> Vec<TimelineTurn> {
        if turn.cluster_id != self.kept || turn.stream != stream.as_str() {
            return vec![turn.clone()];
        }
        let piece = |start_ms: u64, end_ms: u64, cluster_id: &str| TimelineTurn {
            start_ms,
            end_ms,
            cluster_id: cluster_id.to_owned(),
            stream: turn.stream.clone(),
        };
        let mut pieces = Vec::new();
        let mut at = turn.start_ms;
        for &(start, end) in &self.moved {
            let (start, end) = (start.max(at), end.min(turn.end_ms));
            if start >= end {
                continue;
            }
            if at < start {
                pieces.push(piece(at, start, &self.kept));
            }
            pieces.push(piece(start, end, &self.new));
            at = end;
        }
        if at < turn.end_ms {
            pieces.push(piece(at, turn.end_ms, &self.kept));
        }
        pieces
    }
}

/// Where a cluster keeps the engine's summary of its turns.
pub const PARTS_KEY: &str = "parts";

/// Why a request body was refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("audio.content_b64 and audio.format are required")]
    MissingAudio,
    #[error("roster must be a list of {{\"name\", \"email\"?}} objects")]
    BadRoster,
    #[error("metadata must be a JSON object")]
    BadMetadata,
    #[error("cluster_id and name must be strings")]
    BadBinding,
    #[error("name must not be empty")]
    EmptyName,
    #[error("name must be at most {MAX_SPEAKER_NAME_CHARS} characters")]
    NameTooLong,
    #[error("name must not contain control characters (line breaks, tabs, escapes)")]
    NameHasControl,
    #[error("roster must have at most {MAX_ROSTER_ENTRIES} entries")]
    RosterTooLong,
    #[error("roster names must be at most {MAX_SPEAKER_NAME_CHARS} characters")]
    RosterNameTooLong,
    #[error("roster emails must be at most {MAX_EMAIL_CHARS} characters")]
    RosterEmailTooLong,
    #[error("metadata must be at most {MAX_METADATA_BYTES} bytes of JSON")]
    MetadataTooLarge,
    #[error("x-idempotency-key must be visible ASCII")]
    IdempotencyKeyNotAscii,
    #[error("x-idempotency-key must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters")]
    IdempotencyKeyTooLong,
}

/// Why a session takes no more speaker events (409): see [`MAX_EVENTS_PER_SESSION`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this session has reached its cap of {MAX_EVENTS_PER_SESSION} speaker events (resolves and name corrections); nothing was changed: finalize it and go on under a new session id"
)]
pub struct EventLogFull;

/// Why an inference answer was not accepted (the gateway answers 502 and keeps its state).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("inference returned non-JSON: {0}")]
    NotJson(String),
    #[error("inference answer is not a resolve answer: {0}")]
    NotAnAnswer(String),
}

/// Reads a JSON body; an empty body counts as `{}`.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(RequestError::NotAnObject),
    }
}

/// Validates `{"audio":{"content_b64","format",...},"asr_text"?,"roster"?}`.
pub fn parse_resolve(body: &[u8]) -> Result<ResolveInput, RequestError> {
    let mut body = parse_object(body)?;
    let audio = body.remove("audio").unwrap_or(Value::Null);
    let has = |field: &str| audio.get(field).is_some_and(Value::is_string);
    if !has("content_b64") || !has("format") {
        return Err(RequestError::MissingAudio);
    }
    let roster = match body.remove("roster") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let roster =
                Vec::<RosterEntry>::deserialize(value).map_err(|_| RequestError::BadRoster)?;
            check_roster(&roster)?;
            Some(roster)
        }
    };
    Ok(ResolveInput {
        audio,
        asr_text: body.remove("asr_text").unwrap_or(Value::Null),
        roster: roster.filter(|r| !r.is_empty()),
    })
}

/// The roster caps: [`MAX_ROSTER_ENTRIES`], and each name and email's length.
fn check_roster(roster: &[RosterEntry]) -> Result<(), RequestError> {
    if roster.len() > MAX_ROSTER_ENTRIES {
        return Err(RequestError::RosterTooLong);
    }
    for entry in roster {
        if entry.name.chars().count() > MAX_SPEAKER_NAME_CHARS {
            return Err(RequestError::RosterNameTooLong);
        }
        if entry
            .email
            .as_ref()
            .is_some_and(|e| e.chars().count() > MAX_EMAIL_CHARS)
        {
            return Err(RequestError::RosterEmailTooLong);
        }
    }
    Ok(())
}

/// Validates the raw `x-idempotency-key` header: visible ASCII (as HTTP allows: tab, space to
/// `~`), at most [`MAX_IDEMPOTENCY_KEY_CHARS`]. An empty key is no key.
pub fn parse_idempotency_key(raw: Option<&[u8]>) -> Result<Option<String>, RequestError> {
    let Some(raw) = raw.filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    if !raw.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        return Err(RequestError::IdempotencyKeyNotAscii);
    }
    if raw.len() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(RequestError::IdempotencyKeyTooLong);
    }
    Ok(Some(String::from_utf8_lossy(raw).into_owned()))
}

/// Validates `{"metadata"?:{...}}` of a finalize request: an object of at most
/// [`MAX_METADATA_BYTES`] as compact JSON.
pub fn parse_finalize(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    let metadata = match parse_object(body)?.remove("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(RequestError::BadMetadata),
    };
    let size = serde_json::to_vec(&metadata).map_or(usize::MAX, |json| json.len());
    if size > MAX_METADATA_BYTES {
        return Err(RequestError::MetadataTooLarge);
    }
    Ok(metadata)
}

/// Validates `{"cluster_id","name"}`; returns them with the name trimmed.
pub fn parse_binding(body: &[u8]) -> Result<(String, String), RequestError> {
    let body = parse_object(body)?;
    let (Some(Value::String(cluster_id)), Some(Value::String(name))) =
        (body.get("cluster_id"), body.get("name"))
    else {
        return Err(RequestError::BadBinding);
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(RequestError::EmptyName);
    }
    if name.chars().count() > MAX_SPEAKER_NAME_CHARS {
        return Err(RequestError::NameTooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(RequestError::NameHasControl);
    }
    Ok((cluster_id.clone(), name.to_owned()))
}

impl SpeakerRecord {
    /// Whether the event log has room for one more event (see [`MAX_EVENTS_PER_SESSION`]).
    pub fn check_event_room(&self) -> Result<(), EventLogFull> {
        if self.event_count >= MAX_EVENTS_PER_SESSION {
            return Err(EventLogFull);
        }
        Ok(())
    }

    /// The state inference should see: the session's, with a newly sent roster in place.
    pub fn state_for(&self, input: &ResolveInput) -> SessionState {
        let mut state = self.state.clone();
        if let Some(roster) = &input.roster {
            state.roster = Some(roster.clone());
        }
        state
    }

    /// The body POSTed to the inference service.
    pub fn inference_body(&self, id: &SessionId, input: &ResolveInput) -> Value {
        json!({
            "session_id": id.as_str(),
            "audio": input.audio,
            "asr_text": input.asr_text,
            "state": self.state_for(input),
        })
    }

    /// The record after a successful resolve, and the event to append. Nothing changes if the
    /// answer is not a resolve answer.
    pub fn with_answer(
        &self,
        input: &ResolveInput,
        answer: &[u8],
        now: EpochMs,
    ) -> Result<(SpeakerRecord, SpeakerEvent), AnswerError> {
        let value: Value =
            serde_json::from_slice(answer).map_err(|e| AnswerError::NotJson(e.to_string()))?;
        if nesting(&value) > MAX_ANSWER_NESTING {
            return Err(AnswerError::NotAnAnswer(format!(
                "it nests deeper than {MAX_ANSWER_NESTING} levels"
            )));
        }
        let answer = ResolveAnswer::deserialize(value)
            .map_err(|e| AnswerError::NotAnAnswer(e.to_string()))?;
        if answer.decision == Decision::Manual {
            return Err(AnswerError::NotAnAnswer(
                "decision must be auto, confirm or unknown".into(),
            ));
        }
        let mut state = answer.updated_state;
        if state.roster.is_none() {
            state.roster = self.state_for(input).roster;
        }
        let event = SpeakerEvent {
            ts: rfc3339(now),
            cluster_id: answer.cluster_id,
            speaker_name: answer.speaker_name,
            decision: answer.decision,
            evidence: answer.evidence,
        };
        Ok((self.next(state, now), event))
    }

    /// The record after the interviewer names a cluster, and the `manual` event; `None` if the
    /// cluster is unknown.
    pub fn with_binding(
        &self,
        cluster_id: &str,
        name: &str,
        now: EpochMs,
    ) -> Option<(SpeakerRecord, SpeakerEvent)> {
        let mut state = self.state.clone();
        let cluster = state
            .clusters
            .iter_mut()
            .find(|c| c.cluster_id == cluster_id)?;
        cluster.bound_name = Some(name.to_owned());
        state
            .bindings
            .insert(cluster_id.to_owned(), Value::String(name.to_owned()));
        let event = SpeakerEvent {
            ts: rfc3339(now),
            cluster_id: cluster_id.to_owned(),
            speaker_name: Some(name.to_owned()),
            decision: Decision::Manual,
            evidence: json!({}),
        };
        Some((self.next(state, now), event))
    }

    /// How far the built-in engine has attributed `stream` (ms from its start). The mic's
    /// cursor is `attribution.through_ms`, another stream's `attribution.streams.<name>.through_ms`.
    pub fn attributed_through_ms(&self, stream: Stream) -> u64 {
        let attribution = self.state.extra.get(ATTRIBUTION_KEY);
        let cursor = match stream {
            Stream::Mic => attribution,
            other => attribution
                .and_then(|a| a.get("streams"))
                .and_then(|s| s.get(other.as_str())),
        };
        cursor
            .and_then(|c| c.get("through_ms"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// The session's timeline (empty unless the built-in engine has attributed audio).
    pub fn timeline(&self) -> Vec<TimelineTurn> {
        timeline_of(&self.state)
    }

    /// The record after merging an attribution. Names are the interviewer's and the resolve
    /// rules' business: a known cluster keeps its `bound_name`, a merged-away cluster's name
    /// moves to the cluster it joined unless that one has its own. No event is logged: the
    /// timeline is the record of attributions.
    pub fn with_attribution(&self, update: &AttributionUpdate, now: EpochMs) -> SpeakerRecord {
        let mut state = self.state.clone();
        merge_engine_clusters(
            &mut state,
            &update.clusters,
            &update.split,
            &update.merged,
            update.stream,
        );
        let mut timeline = timeline_of(&state);
        for turn in &update.turns {
            // A turn continues its stream's last one when the same voice goes on.
            let last = timeline.iter_mut().rev().find(|t| t.stream == turn.stream);
            match last {
                Some(last)
                    if last.cluster_id == turn.cluster_id && last.end_ms >= turn.start_ms =>
                {
                    last.end_ms = last.end_ms.max(turn.end_ms);
                }
                _ => timeline.push(turn.clone()),
            }
        }
        // The streams' turns interleave in time.
        timeline.sort_by_key(|t| t.start_ms);
        state.extra.insert(
            TIMELINE_KEY.to_owned(),
            serde_json::to_value(&timeline).expect("turns serialize"),
        );
        let through_ms = update
            .through_ms
            .max(self.attributed_through_ms(update.stream));
        let attribution = state
            .extra
            .entry(ATTRIBUTION_KEY.to_owned())
            .or_insert_with(|| json!({}));
        if !attribution.is_object() {
            *attribution = json!({});
        }
        match update.stream {
            Stream::Mic => attribution["through_ms"] = json!(through_ms),
            other => {
                if !attribution["streams"].is_object() {
                    attribution["streams"] = json!({});
                }
                attribution["streams"][other.as_str()] = json!({ "through_ms": through_ms });
            }
        }
        SpeakerRecord {
            state,
            event_count: self.event_count,
            updated_at: Some(now),
        }
    }

    fn next(&self, state: SessionState, now: EpochMs) -> SpeakerRecord {
        SpeakerRecord {
            state,
            event_count: self.event_count + 1,
            updated_at: Some(now),
        }
    }
}

/// Levels of arrays and objects in `value` (0 for a scalar). Recursion is bounded: the value
/// was read by serde_json, which refuses more than 127 levels.
fn nesting(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

fn timeline_of(state: &SessionState) -> Vec<TimelineTurn> {
    state
        .extra
        .get(TIMELINE_KEY)
        .cloned()
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default()
}

/// The stream a cluster's voice was heard on (`extra.stream`); clusters from before streams,
/// or from an inference service, are the mic's.
pub fn cluster_stream(cluster: &Cluster) -> Stream {
    cluster
        .extra
        .get("stream")
        .and_then(Value::as_str)
        .and_then(|name| Stream::parse(name).ok())
        .unwrap_or(Stream::Mic)
}

/// Brings the built-in engine's clusters of `stream` into `state`: `clusters` as `(id,
/// centroid, sample_count, parts)` (new ids added, tagged with the stream and its default role;
/// known ones updated, names kept; non-null `parts` stored under [`PARTS_KEY`]), `split` (the
/// timeline's turns in the moved spans go to the new cluster; names stay where they are: the
/// new cluster has none, so a name the interviewer gave stays with the voice heard most) and
/// `merged` as `(removed, kept)` pairs: the removed cluster goes (its parts are already in the
/// kept one's), its name moves to the kept one unless that one has its own, and its turns in
/// the timeline are relabelled.
pub fn merge_engine_clusters(
    state: &mut SessionState,
    clusters: &[EngineCluster],
    split: &[ClusterSplit],
    merged: &[(String, String)],
    stream: Stream,
) {
    let mut timeline = timeline_of(state);
    for split in split {
        timeline = timeline
            .iter()
            .flat_map(|turn| split.relabel(turn, stream))
            .collect();
    }
    for (removed, kept) in merged {
        let Some(index) = state.clusters.iter().position(|c| &c.cluster_id == removed) else {
            continue;
        };
        let gone = state.clusters.remove(index);
        let binding = state.bindings.remove(removed);
        if let Some(keeper) = state.clusters.iter_mut().find(|c| &c.cluster_id == kept) {
            if keeper.bound_name.is_none() {
                keeper.bound_name = gone.bound_name;
                if let Some(binding) = binding {
                    state.bindings.insert(kept.clone(), binding);
                }
            }
        }
        timeline
            .iter_mut()
            .filter(|t| &t.cluster_id == removed)
            .for_each(|t| t.cluster_id = kept.clone());
    }
    for (id, centroid, count, parts) in clusters {
        let cluster = match state.clusters.iter_mut().position(|c| &c.cluster_id == id) {
            Some(index) => {
                let cluster = &mut state.clusters[index];
                cluster.centroid = centroid.clone();
                cluster.sample_count = *count;
                cluster
            }
            None => {
                state.clusters.push(Cluster {
                    cluster_id: id.clone(),
                    centroid: centroid.clone(),
                    sample_count: *count,
                    bound_name: None,
                    extra: Map::from_iter([
                        ("stream".to_owned(), json!(stream.as_str())),
                        ("role".to_owned(), json!(stream.role())),
                    ]),
                });
                state.clusters.last_mut().expect("just pushed")
            }
        };
        if !parts.is_null() {
            cluster.extra.insert(PARTS_KEY.to_owned(), parts.clone());
        }
    }
    if (!merged.is_empty() || !split.is_empty()) && state.extra.contains_key(TIMELINE_KEY) {
        state.extra.insert(
            TIMELINE_KEY.to_owned(),
            serde_json::to_value(&timeline).expect("turns serialize"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(cluster: &str) -> Vec<u8> {
        json!({
            "session_id": "s", "cluster_id": cluster, "speaker_name": "Ada", "decision": "auto",
            "evidence": {"sv_score": 0.91, "threshold_low": 0.5, "threshold_high": 0.8, "segment_count": 3},
            "updated_state": {"clusters": [{"cluster_id": cluster, "centroid": [0.25, -0.5], "sample_count": 3}],
                              "bindings": {}, "config": {}}
        })
        .to_string()
        .into_bytes()
    }

    fn input(roster: Option<Vec<RosterEntry>>) -> ResolveInput {
        ResolveInput {
            audio: json!({"content_b64": "AA==", "format": "pcm_s16le"}),
            asr_text: Value::Null,
            roster,
        }
    }

    #[test]
    fn resolve_requires_content_and_format() {
        for body in [
            r#"{}"#,
            r#"{"audio":{"format":"pcm_s16le"}}"#,
            r#"{"audio":{"content_b64":"AA=="}}"#,
            r#"{"audio":{"content_b64":5,"format":"pcm_s16le"}}"#,
        ] {
            assert_eq!(
                parse_resolve(body.as_bytes()),
                Err(RequestError::MissingAudio),
                "{body}"
            );
        }
        assert_eq!(parse_resolve(b"[1]"), Err(RequestError::NotAnObject));
        let ok = parse_resolve(br#"{"audio":{"content_b64":"AA==","format":"wav"},"roster":[]}"#);
        assert_eq!(ok.unwrap().roster, None, "an empty roster replaces nothing");
    }

    #[test]
    fn a_sent_roster_replaces_the_sessions_in_the_inference_body() {
        let record = SpeakerRecord::default();
        let roster = vec![RosterEntry {
            name: "Ada".into(),
            email: None,
        }];
        let id = SessionId::parse("s").unwrap();
        let body = record.inference_body(&id, &input(Some(roster)));
        assert_eq!(body["session_id"], "s");
        assert_eq!(body["state"]["roster"][0]["name"], "Ada");
        assert_eq!(body["asr_text"], Value::Null);
    }

    #[test]
    fn an_answer_becomes_the_new_state_and_one_event() {
        let record = SpeakerRecord::default();
        let (next, event) = record.with_answer(&input(None), &answer("c1"), 5).unwrap();
        assert_eq!(next.event_count, 1);
        assert_eq!(next.updated_at, Some(5));
        assert_eq!(next.state.clusters[0].centroid, vec![0.25, -0.5]);
        assert_eq!(event.cluster_id, "c1");
        assert_eq!(event.decision, Decision::Auto);
        assert_eq!(event.evidence["segment_count"], 3);
    }

    #[test]
    fn answers_that_are_not_resolve_answers_are_refused() {
        let record = SpeakerRecord::default();
        assert!(matches!(
            record.with_answer(&input(None), b"<html>", 1),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(
            record.with_answer(&input(None), br#"{"ok":true}"#, 1),
            Err(AnswerError::NotAnAnswer(_))
        ));
    }

    #[test]
    fn an_answer_nested_past_the_cap_is_refused_so_result_json_reads_back() {
        let with_evidence = |levels: usize| {
            let evidence = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
            format!(
                r#"{{"session_id":"s","cluster_id":"c","decision":"unknown","evidence":{evidence},"updated_state":{{}}}}"#
            )
        };
        let record = SpeakerRecord::default();
        // The answer object is one level around its evidence.
        let (_, event) = record
            .with_answer(
                &input(None),
                with_evidence(MAX_ANSWER_NESTING - 1).as_bytes(),
                1,
            )
            .unwrap();
        // Kept, it reads back from where result.json puts it.
        let result = json!({"events": [event]}).to_string();
        assert!(serde_json::from_str::<Value>(&result).is_ok());
        // Accepted before, and then result.json could not be read back.
        assert_eq!(
            record.with_answer(&input(None), with_evidence(125).as_bytes(), 1),
            Err(AnswerError::NotAnAnswer(
                "it nests deeper than 64 levels".into()
            ))
        );
    }

    #[test]
    fn a_binding_names_a_known_cluster_and_logs_a_manual_event() {
        let (record, _) = SpeakerRecord::default()
            .with_answer(&input(None), &answer("c1"), 1)
            .unwrap();
        assert!(record.with_binding("nope", "Bob", 2).is_none());
        let (next, event) = record.with_binding("c1", "Bob", 2).unwrap();
        assert_eq!(next.state.bindings["c1"], "Bob");
        assert_eq!(next.state.clusters[0].bound_name.as_deref(), Some("Bob"));
        assert_eq!(event.decision, Decision::Manual);
        assert_eq!(next.event_count, 2);
    }

    fn turn(start_ms: u64, end_ms: u64, cluster: &str) -> TimelineTurn {
        TimelineTurn {
            start_ms,
            end_ms,
            cluster_id: cluster.into(),
            stream: "mic".into(),
        }
    }

    #[test]
    fn an_attribution_adds_clusters_and_turns_and_moves_the_cursor() {
        let update = AttributionUpdate {
            stream: Stream::Mic,
            clusters: vec![("spk_1".into(), vec![1.0, 0.0], 3, Value::Null)],
            merged: vec![],
            split: vec![],
            turns: vec![turn(0, 2000, "spk_1"), turn(2500, 4000, "spk_1")],
            through_ms: 5000,
        };
        let record = SpeakerRecord::default().with_attribution(&update, 9);
        assert_eq!(record.event_count, 0, "attribution logs no event");
        assert_eq!(record.updated_at, Some(9));
        assert_eq!(record.state.clusters[0].sample_count, 3);
        assert_eq!(record.timeline().len(), 2);
        assert_eq!(record.attributed_through_ms(Stream::Mic), 5000);
        assert_eq!(record.state.clusters[0].extra["role"], "interviewer");
        // A turn that continues the last one extends it.
        let more = AttributionUpdate {
            turns: vec![turn(4000, 6000, "spk_1")],
            through_ms: 7000,
            ..update
        };
        let record = record.with_attribution(&more, 10);
        assert_eq!(record.timeline()[1], turn(2500, 6000, "spk_1"));
    }

    #[test]
    fn a_manual_name_survives_attribution_and_a_merge_keeps_it() {
        let update = AttributionUpdate {
            stream: Stream::Mic,
            clusters: vec![
                ("spk_1".into(), vec![1.0, 0.0], 3, Value::Null),
                ("spk_2".into(), vec![0.0, 1.0], 2, Value::Null),
            ],
            turns: vec![turn(0, 1000, "spk_1"), turn(1000, 2000, "spk_2")],
            through_ms: 2000,
            merged: vec![],
            split: vec![],
        };
        let record = SpeakerRecord::default().with_attribution(&update, 1);
        let (record, _) = record.with_binding("spk_2", "Grace", 2).unwrap();
        let again = AttributionUpdate {
            stream: Stream::Mic,
            clusters: vec![("spk_2".into(), vec![0.1, 0.9], 5, Value::Null)],
            turns: vec![],
            through_ms: 3000,
            merged: vec![],
            split: vec![],
        };
        let record = record.with_attribution(&again, 3);
        assert_eq!(
            record.state.clusters[1].bound_name.as_deref(),
            Some("Grace")
        );
        assert_eq!(record.state.clusters[1].sample_count, 5);
        // spk_2 turns out to be spk_1's voice: its name and turns move over.
        let merge = AttributionUpdate {
            stream: Stream::Mic,
            clusters: vec![("spk_1".into(), vec![0.7, 0.7], 8, Value::Null)],
            merged: vec![("spk_2".into(), "spk_1".into())],
            split: vec![],
            turns: vec![],
            through_ms: 3000,
        };
        let record = record.with_attribution(&merge, 4);
        assert_eq!(record.state.clusters.len(), 1);
        assert_eq!(record.state.bindings["spk_1"], "Grace");
        assert!(record.timeline().iter().all(|t| t.cluster_id == "spk_1"));
    }

    #[test]
    fn a_split_moves_past_turns_in_its_spans_to_the_new_cluster_and_the_name_stays() {
        let heard = AttributionUpdate {
            stream: Stream::Mic,
            clusters: vec![("spk_1".into(), vec![1.0, 0.0], 9, Value::Null)],
            split: vec![],
            merged: vec![],
            turns: vec![turn(0, 2000, "spk_1"), turn(3000, 9000, "spk_1")],
            through_ms: 9000,
        };
        let record = SpeakerRecord::default().with_attribution(&heard, 1);
        let (record, _) = record.with_binding("spk_1", "Ada", 2).unwrap();
        // The engine finds that 0-2 s and 5-7 s were another voice.
        let split = AttributionUpdate {
            stream: Stream::Mic,
            clusters: vec![
                ("spk_1".into(), vec![1.0, 0.0], 5, Value::Null),
                ("spk_2".into(), vec![0.0, 1.0], 4, Value::Null),
            ],
            split: vec![ClusterSplit {
                kept: "spk_1".into(),
                new: "spk_2".into(),
                moved: vec![(0, 2000), (5000, 7000)],
            }],
            merged: vec![],
            turns: vec![turn(9000, 10_000, "spk_2")],
            through_ms: 10_000,
        };
        let record = record.with_attribution(&split, 3);
        assert_eq!(
            record.timeline(),
            vec![
                turn(0, 2000, "spk_2"),
                turn(3000, 5000, "spk_1"),
                turn(5000, 7000, "spk_2"),
                turn(7000, 9000, "spk_1"),
                turn(9000, 10_000, "spk_2"),
            ],
            "a turn across a moved span is cut at its ends"
        );
        assert_eq!(record.state.clusters[0].bound_name.as_deref(), Some("Ada"));
        assert_eq!(record.state.bindings["spk_1"], "Ada");
        assert_eq!(record.state.clusters[1].bound_name, None);
        assert!(!record.state.bindings.contains_key("spk_2"));
    }

    #[test]
    fn a_split_leaves_other_clusters_and_other_streams_alone() {
        let split = ClusterSplit {
            kept: "spk_1".into(),
            new: "spk_2".into(),
            moved: vec![(0, 5000)],
        };
        let mut remote = turn(0, 3000, "spk_1");
        remote.stream = "system".into();
        assert_eq!(split.relabel(&remote, Stream::Mic), vec![remote.clone()]);
        let other = turn(0, 3000, "spk_3");
        assert_eq!(split.relabel(&other, Stream::Mic), vec![other]);
        assert_eq!(
            split.relabel(&turn(4000, 6000, "spk_1"), Stream::Mic),
            vec![turn(4000, 5000, "spk_2"), turn(5000, 6000, "spk_1")]
        );
    }

    #[test]
    fn the_engines_parts_are_kept_with_the_cluster_and_null_leaves_them() {
        let update = AttributionUpdate {
            stream: Stream::Mic,
            clusters: vec![("spk_1".into(), vec![1.0, 0.0], 3, json!([{"n": 3}]))],
            merged: vec![],
            split: vec![],
            turns: vec![],
            through_ms: 5000,
        };
        let record = SpeakerRecord::default().with_attribution(&update, 1);
        assert_eq!(record.state.clusters[0].extra[PARTS_KEY], json!([{"n": 3}]));
        let unchanged = AttributionUpdate {
            clusters: vec![("spk_1".into(), vec![0.0, 1.0], 4, Value::Null)],
            ..update
        };
        let record = record.with_attribution(&unchanged, 2);
        assert_eq!(record.state.clusters[0].sample_count, 4);
        assert_eq!(record.state.clusters[0].extra[PARTS_KEY], json!([{"n": 3}]));
    }

    #[test]
    fn each_stream_keeps_its_own_clusters_cursor_and_turns_in_one_timeline() {
        let mic = AttributionUpdate {
            stream: Stream::Mic,
            clusters: vec![("spk_1".into(), vec![1.0, 0.0], 3, Value::Null)],
            merged: vec![],
            split: vec![],
            turns: vec![turn(0, 2000, "spk_1"), turn(5000, 6000, "spk_1")],
            through_ms: 6000,
        };
        let mut remote = turn(2000, 5000, "sys_1");
        remote.stream = "system".into();
        let system = AttributionUpdate {
            stream: Stream::System,
            clusters: vec![("sys_1".into(), vec![0.0, 1.0], 2, Value::Null)],
            merged: vec![],
            split: vec![],
            turns: vec![remote.clone()],
            through_ms: 5500,
        };
        let record = SpeakerRecord::default()
            .with_attribution(&mic, 1)
            .with_attribution(&system, 2);
        assert_eq!(record.attributed_through_ms(Stream::Mic), 6000);
        assert_eq!(record.attributed_through_ms(Stream::System), 5500);
        let remote_cluster = &record.state.clusters[1];
        assert_eq!(cluster_stream(remote_cluster), Stream::System);
        assert_eq!(remote_cluster.extra["role"], "remote");
        assert_eq!(cluster_stream(&record.state.clusters[0]), Stream::Mic);
        assert_eq!(
            record.timeline(),
            vec![turn(0, 2000, "spk_1"), remote, turn(5000, 6000, "spk_1")],
            "in time order across streams"
        );
    }

    #[test]
    fn binding_bodies_are_checked() {
        assert_eq!(
            parse_binding(br#"{"cluster_id":"c1","name":"  "}"#),
            Err(RequestError::EmptyName)
        );
        assert_eq!(
            parse_binding(br#"{"cluster_id":"c1"}"#),
            Err(RequestError::BadBinding)
        );
        assert_eq!(
            parse_binding(br#"{"cluster_id":"c1","name":" Bob "}"#),
            Ok(("c1".into(), "Bob".into()))
        );
    }

    #[test]
    fn item9_binding_names_over_the_cap_or_with_control_characters_are_refused() {
        let bind = |name: &str| {
            parse_binding(
                json!({"cluster_id": "c1", "name": name})
                    .to_string()
                    .as_bytes(),
            )
        };
        let longest = "é".repeat(MAX_SPEAKER_NAME_CHARS);
        assert_eq!(bind(&longest), Ok(("c1".into(), longest.clone())));
        assert_eq!(bind(&format!("{longest}x")), Err(RequestError::NameTooLong));
        for name in [
            "Ada\nLovelace",
            "Ada\u{1b}[31m",
            "A\u{0}da",
            "Ada\tL",
            "A\u{85}da",
            "Ada\u{7f}!",
        ] {
            assert_eq!(bind(name), Err(RequestError::NameHasControl), "{name:?}");
        }
        assert_eq!(
            bind(" Ada\n"),
            Ok(("c1".into(), "Ada".into())),
            "trimmed first"
        );
    }

    #[test]
    fn item9_rosters_over_the_caps_are_refused() {
        let resolve = |roster: Value| {
            parse_resolve(
                json!({"audio": {"content_b64": "AA==", "format": "wav"}, "roster": roster})
                    .to_string()
                    .as_bytes(),
            )
        };
        let people = |n: usize| Value::Array(vec![json!({"name": "Ada"}); n]);
        assert_eq!(
            resolve(people(MAX_ROSTER_ENTRIES))
                .unwrap()
                .roster
                .unwrap()
                .len(),
            MAX_ROSTER_ENTRIES
        );
        assert_eq!(
            resolve(people(MAX_ROSTER_ENTRIES + 1)),
            Err(RequestError::RosterTooLong)
        );
        let long_name = "n".repeat(MAX_SPEAKER_NAME_CHARS + 1);
        assert_eq!(
            resolve(json!([{"name": long_name}])),
            Err(RequestError::RosterNameTooLong)
        );
        let email = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
        assert_eq!(
            resolve(json!([{"name": "Ada", "email": email}])),
            Err(RequestError::RosterEmailTooLong)
        );
    }

    #[test]
    fn item9_idempotency_keys_are_visible_ascii_within_the_cap() {
        assert_eq!(parse_idempotency_key(None), Ok(None));
        assert_eq!(parse_idempotency_key(Some(b"")), Ok(None));
        assert_eq!(
            parse_idempotency_key(Some(b"s:1-30")),
            Ok(Some("s:1-30".into()))
        );
        // The recorder's key for the longest session id still fits.
        let key = format!(
            "{}:18446744073709551615-18446744073709551615",
            "x".repeat(128)
        );
        assert!(
            parse_idempotency_key(Some(key.as_bytes()))
                .unwrap()
                .is_some()
        );
        let long = "k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1);
        assert_eq!(
            parse_idempotency_key(Some(long.as_bytes())),
            Err(RequestError::IdempotencyKeyTooLong)
        );
        assert_eq!(
            parse_idempotency_key(Some("clé".as_bytes())),
            Err(RequestError::IdempotencyKeyNotAscii)
        );
    }

    #[test]
    fn item9_metadata_over_the_cap_is_refused() {
        let body = |text: &str| json!({"metadata": {"notes": text}}).to_string();
        // `{"notes":"…"}` is 12 bytes around the text.
        let fits = "n".repeat(MAX_METADATA_BYTES - 12);
        assert!(parse_finalize(body(&fits).as_bytes()).is_ok());
        assert_eq!(
            parse_finalize(body(&format!("{fits}n")).as_bytes()),
            Err(RequestError::MetadataTooLarge)
        );
    }

    #[test]
    fn item9_a_full_event_log_takes_no_more_events() {
        let mut record = SpeakerRecord {
            event_count: MAX_EVENTS_PER_SESSION - 1,
            ..SpeakerRecord::default()
        };
        assert_eq!(record.check_event_room(), Ok(()));
        record.event_count += 1;
        assert_eq!(record.check_event_room(), Err(EventLogFull));
        assert_eq!(
            EventLogFull.to_string(),
            "this session has reached its cap of 20000 speaker events (resolves and name corrections); nothing was changed: finalize it and go on under a new session id"
        );
    }

    #[test]
    fn finalize_bodies_are_checked() {
        assert_eq!(parse_finalize(b""), Ok(Map::new()));
        assert_eq!(parse_finalize(b"{nope"), Err(RequestError::NotAnObject));
        assert_eq!(
            parse_finalize(br#"{"metadata":3}"#),
            Err(RequestError::BadMetadata)
        );
        assert_eq!(parse_finalize(br#"{"metadata":{"a":1}}"#).unwrap()["a"], 1);
    }
}
