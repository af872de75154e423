//! Speaker state transitions: resolve requests and answers, and the interviewer's corrections.
//!
//! The inference service owns the clustering; the session only keeps its latest `updated_state`,
//! an event per decision, and the names the interviewer binds by hand.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::core::clock::{EpochMs, rfc3339};
use crate::core::session_id::SessionId;
use crate::protocol::{Decision, ResolveAnswer, RosterEntry, SessionState, SpeakerEvent};

/// Longest speaker name accepted from the interviewer.
pub const MAX_NAME_CHARS: usize = 200;

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
    #[error("name must be at most {MAX_NAME_CHARS} characters")]
    NameTooLong,
}

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
            Some(Vec::<RosterEntry>::deserialize(value).map_err(|_| RequestError::BadRoster)?)
        }
    };
    Ok(ResolveInput {
        audio,
        asr_text: body.remove("asr_text").unwrap_or(Value::Null),
        roster: roster.filter(|r| !r.is_empty()),
    })
}

/// Validates `{"metadata"?:{...}}` of a finalize request.
pub fn parse_finalize(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    match parse_object(body)?.remove("metadata") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(RequestError::BadMetadata),
    }
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
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(RequestError::NameTooLong);
    }
    Ok((cluster_id.clone(), name.to_owned()))
}

impl SpeakerRecord {
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

    fn next(&self, state: SessionState, now: EpochMs) -> SpeakerRecord {
        SpeakerRecord {
            state,
            event_count: self.event_count + 1,
            updated_at: Some(now),
        }
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
