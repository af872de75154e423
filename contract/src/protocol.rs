//! The wire contract, in one place: every message and body the gateway and its clients exchange.
//!
//! Field names are the seed gateway's, byte for byte, so existing clients keep working. The gateway
//! serializes the server-side types and the recorder deserializes them; the recorder serializes the
//! client-side types. Incoming client messages are *validated* by the gateway's session core
//! (`gateway::core::message`), which reads them leniently so that each mistake gets its own error
//! text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Sample rate every frame must have.
pub const SAMPLE_RATE: u32 = 16_000;
/// Channel count every frame must have.
pub const CHANNELS: u16 = 1;
/// The only accepted sample format: signed 16-bit little-endian PCM.
pub const FORMAT: &str = "pcm_s16le";
/// Bytes in one frame: one second of 16 kHz mono 16-bit audio.
pub const FRAME_BYTES: usize = 32_000;
/// Largest WebSocket message the gateway accepts. A chunk message is about 43 KB.
pub const MAX_WS_MESSAGE_BYTES: usize = 64 * 1024;

/// Messages the recorder sends over the ingest WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    Hello,
    Status,
    Ping,
    Close {
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// First message of a socket when the gateway requires a key and the upgrade carried none.
    Auth {
        key: String,
    },
    Chunk(Chunk),
}

/// One second of audio as it travels to the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub meeting_id: String,
    pub seq: u64,
    pub timestamp_ms: u64,
    pub sample_rate: u32,
    pub channels: u16,
    pub format: String,
    pub content_b64: String,
}

/// Messages the gateway sends over the ingest WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    Ready(Ready),
    Status(IngestStatus),
    Pong {
        ts: u64,
    },
    Closing {
        reason: String,
    },
    Ack(Ack),
    Error {
        detail: String,
        /// The frame the error is about, when the message was a readable chunk (our addition).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// `true` when the gateway, not the message, is at fault (its storage failed): sending
        /// the same frame again later is right, and the gateway closes the socket (1011) so
        /// that the client reconnects to a fresh session actor (our addition).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retry: bool,
    },
    /// Answer to a correct `auth` message (our addition; the seed had no keys).
    Authenticated,
}

/// Answer to `hello`: the format the gateway expects and where ingest stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    pub session_id: String,
    pub target_sample_rate: u32,
    pub target_channels: u16,
    pub target_format: String,
    pub ingest: StatusMessage,
}

/// [`IngestStatus`] with its `"type":"status"` tag, as it is nested in `ready` and `state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusMessage {
    #[serde(rename = "type")]
    pub kind: StatusTag,
    #[serde(flatten)]
    pub status: IngestStatus,
}

impl From<IngestStatus> for StatusMessage {
    fn from(status: IngestStatus) -> Self {
        StatusMessage {
            kind: StatusTag::Status,
            status,
        }
    }
}

/// The only value of a nested status's `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusTag {
    Status,
}

/// Counters of a session's audio ingest (the seed's STATUS object, without its tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestStatus {
    pub session_id: String,
    pub meeting_id: String,
    pub last_seq: u64,
    pub received_chunks: u64,
    pub duplicate_chunks: u64,
    pub missing_chunks: u64,
    pub bytes_stored: u64,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Whether an acknowledged frame was written now or had been stored before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckStatus {
    Stored,
    Duplicate,
}

/// Acknowledgement of a chunk: once sent, the frame and the ingest counters are durable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub seq: u64,
    pub status: AckStatus,
    /// Object key of the stored frame; absent on a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub last_seq: u64,
    pub missing_count: u64,
    pub duplicate_count: u64,
}

/// Every JSON error body of the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub detail: String,
}

/// Audio sent to `/resolve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolveAudio {
    pub content_b64: String,
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u16>,
}

/// A person expected in the meeting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RosterEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Body of `POST /v1/sessions/{id}/resolve` as the recorder sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolveRequest {
    pub audio: ResolveAudio,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asr_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<Vec<RosterEntry>>,
}

/// How the inference service reached its answer (`manual` is the interviewer's correction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Auto,
    Confirm,
    Unknown,
    Manual,
}

/// A speaker cluster the inference service keeps in the session state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub cluster_id: String,
    #[serde(default)]
    pub centroid: Vec<f64>,
    #[serde(default)]
    pub sample_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_name: Option<String>,
    /// Fields a newer inference service adds are kept, not dropped.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The per-session speaker state the inference service reads and rewrites.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    #[serde(default)]
    pub bindings: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<Vec<RosterEntry>>,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Key of [`SessionState::extra`] holding the built-in engine's timeline of [`TimelineTurn`]s.
pub const TIMELINE_KEY: &str = "timeline";
/// Key of [`SessionState::extra`] holding how far the built-in engine has attributed the
/// session's audio: `{"through_ms": N}`.
pub const ATTRIBUTION_KEY: &str = "attribution";

/// One speaker turn of a session's timeline (built-in engine): who spoke from `start_ms` to
/// `end_ms`, in milliseconds from the start of the stream (frame `seq` starts at
/// `(seq - 1) * 1000`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineTurn {
    pub start_ms: u64,
    pub end_ms: u64,
    pub cluster_id: String,
    /// The audio stream the turn was heard on (`mic` for the seed's stream).
    pub stream: String,
}

/// The inference service's answer to a resolve request (returned to the caller unchanged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolveAnswer {
    pub session_id: String,
    pub cluster_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_name: Option<String>,
    pub decision: Decision,
    pub evidence: Value,
    pub updated_state: SessionState,
}

/// One entry of a session's event log: a resolution or a manual correction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerEvent {
    /// RFC 3339.
    pub ts: String,
    pub cluster_id: String,
    pub speaker_name: Option<String>,
    pub decision: Decision,
    pub evidence: Value,
}

/// Answer of `GET /v1/sessions/{id}/state` (and of a binding correction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateResponse {
    pub session_id: String,
    pub state: SessionState,
    pub event_count: u64,
    pub updated_at: Option<String>,
    /// The mic stream's counters (the seed's field).
    pub ingest: Option<StatusMessage>,
    /// Every stream's counters by name (`mic`, `system`); present only once a session has a
    /// stream besides the mic, so a mic-only session answers exactly as the seed did.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub streams: BTreeMap<String, StatusMessage>,
}

/// Body of `PUT /v1/sessions/{id}/bindings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingRequest {
    pub cluster_id: String,
    pub name: String,
}

/// Answer of `POST /v1/sessions/{id}/finalize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizeResponse {
    pub session_id: String,
    pub result_key: String,
    pub event_count: u64,
    pub finalized_at: String,
}

/// The document written to `sessions/<safe id>/result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalResult {
    pub session_id: String,
    pub finalized_at: String,
    pub state: SessionState,
    pub events: Vec<SpeakerEvent>,
    pub ingest: Option<StatusMessage>,
    /// As in [`StateResponse::streams`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub streams: BTreeMap<String, StatusMessage>,
    pub metadata: Map<String, Value>,
}

/// Header a resolve replay carries.
pub const IDEMPOTENT_REPLAY_HEADER: &str = "x-idempotent-replay";
/// Header that makes a resolve request idempotent.
pub const IDEMPOTENCY_KEY_HEADER: &str = "x-idempotency-key";
/// Header of `audio.wav` saying how many missing seconds were filled with silence.
pub const MISSING_SECONDS_HEADER: &str = "x-missing-seconds";
/// Header of `audio.wav` saying how many stored seconds could not be read (served as silence).
pub const UNREADABLE_SECONDS_HEADER: &str = "x-unreadable-seconds";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_state_reads_back_to_the_last_bit() {
        // Each of these came back one unit in the last place off without serde_json's
        // `float_roundtrip`; a state is written and read back on every resolve.
        let centroid = vec![
            0.18017933438838418,
            -0.9300397635799367,
            0.38069366128071636,
            0.40379982666198044,
        ];
        let state = SessionState {
            clusters: vec![Cluster {
                cluster_id: "spk_0".into(),
                centroid: centroid.clone(),
                sample_count: 1,
                bound_name: None,
                extra: Map::new(),
            }],
            ..SessionState::default()
        };
        let text = serde_json::to_string(&state).unwrap();
        let back: SessionState = serde_json::from_str(&text).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.clusters[0].centroid), bits(&centroid));
    }

    #[test]
    fn ack_for_a_duplicate_has_no_key() {
        let ack = ServerMessage::Ack(Ack {
            seq: 3,
            status: AckStatus::Duplicate,
            key: None,
            last_seq: 3,
            missing_count: 0,
            duplicate_count: 1,
        });
        assert_eq!(
            serde_json::to_string(&ack).unwrap(),
            r#"{"type":"ack","seq":3,"status":"duplicate","last_seq":3,"missing_count":0,"duplicate_count":1}"#
        );
    }

    #[test]
    fn ready_nests_a_tagged_status() {
        let status = IngestStatus {
            session_id: "s".into(),
            meeting_id: "s".into(),
            last_seq: 0,
            received_chunks: 0,
            duplicate_chunks: 0,
            missing_chunks: 0,
            bytes_stored: 0,
            started_at: "t".into(),
            updated_at: "t".into(),
        };
        let ready = ServerMessage::Ready(Ready {
            session_id: "s".into(),
            target_sample_rate: SAMPLE_RATE,
            target_channels: CHANNELS,
            target_format: FORMAT.into(),
            ingest: status.into(),
        });
        let json: Value = serde_json::to_value(&ready).unwrap();
        assert_eq!(json["type"], "ready");
        assert_eq!(json["ingest"]["type"], "status");
        assert_eq!(json["ingest"]["missing_chunks"], 0);
        let back: ServerMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, ready);
    }

    #[test]
    fn client_chunk_serializes_with_the_seed_field_names() {
        let msg = ClientMessage::Chunk(Chunk {
            meeting_id: "m".into(),
            seq: 1,
            timestamp_ms: 5,
            sample_rate: SAMPLE_RATE,
            channels: CHANNELS,
            format: FORMAT.into(),
            content_b64: "AA==".into(),
        });
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"type":"chunk","meeting_id":"m","seq":1,"timestamp_ms":5,"sample_rate":16000,"channels":1,"format":"pcm_s16le","content_b64":"AA=="}"#
        );
    }
}
