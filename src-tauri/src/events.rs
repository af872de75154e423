//! The typed event stream the UI and the CLI consume.
//!
//! Every part of the engine reports through an [`EventSink`]; consumers call
//! [`EventSink::subscribe`]. It is a broadcast channel: a consumer that falls behind loses the
//! oldest events (it sees `Lagged`) instead of making the audio path wait or memory grow. State
//! that must not be lost (the final summary) is also returned by the call that ends a recording.
//!
//! Events serialize as JSON objects tagged by `"type"` (`level`, `uplink`, `connection`,
//! `speaker`, `resolve_unavailable`, `error`, `finished`), ready to forward to a web view.
//!
//! A recording has a `mic` stream and may have a `system` stream (meeting audio); the events of
//! one stream (`level`, `uplink`, `connection`, and `error`s from its source, local copy, spool
//! or uplink) say which in a `"stream"` field. The fields the mic's events had before streams
//! existed are unchanged, and the [`Summary`]'s top-level counters are the mic's.

use contract::protocol::ResolveAnswer;
use serde::{Serialize, Serializer};
use tokio::sync::broadcast;

pub use crate::stream::Stream;

/// How many events a slow consumer may fall behind before it starts losing the oldest.
const CAPACITY: usize = 1024;

/// One thing the engine wants its user to know.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Input level of a stream's normalized audio, about 20 times a second.
    Level {
        #[serde(serialize_with = "stream_name")]
        stream: Stream,
        rms_dbfs: f32,
        peak_dbfs: f32,
    },
    /// A stream's uplink counters, at most a few times a second and whenever they matter.
    Uplink {
        #[serde(serialize_with = "stream_name")]
        stream: Stream,
        #[serde(flatten)]
        counters: UplinkCounters,
    },
    /// A stream's uplink connection changed state.
    Connection {
        #[serde(serialize_with = "stream_name")]
        stream: Stream,
        state: ConnectionState,
        /// Frames held in the spool, not yet ACKed.
        holding: u64,
        /// Why, for `reconnecting` and `offline`.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A speaker resolution answer from the gateway, unchanged.
    Speaker(ResolveAnswer),
    /// The gateway has no inference service; resolution is paused (reported once).
    ResolveUnavailable { detail: String },
    /// Something went wrong; the engine keeps going unless it says otherwise.
    Error {
        origin: ErrorOrigin,
        message: String,
        /// The stream it concerns; absent for errors of the whole recording (resolution).
        #[serde(
            serialize_with = "optional_stream_name",
            skip_serializing_if = "Option::is_none"
        )]
        stream: Option<Stream>,
    },
    /// The recording ended.
    Finished(Summary),
}

/// State of the uplink's WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// First connection attempt in progress.
    Connecting,
    /// `ready` received; frames flow.
    Connected,
    /// Lost or refused; the next attempt starts in `retry_in_ms`.
    Reconnecting { attempt: u32, retry_in_ms: u64 },
    /// The uplink stopped with frames still in the spool (they are sent on the next start).
    Offline,
}

/// Which part of the engine an [`Event::Error`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorOrigin {
    Source,
    LocalCopy,
    Spool,
    Uplink,
    /// The gateway answered a chunk with `{"type":"error"}`.
    Gateway,
    Resolve,
}

/// Round-trip time between sending a chunk and its ACK, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub min_ms: Option<f64>,
    pub avg_ms: Option<f64>,
    pub last_ms: Option<f64>,
    /// Over the most recent ACKs (a bounded window).
    pub p99_ms: Option<f64>,
}

/// What the uplink has done so far in this run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UplinkCounters {
    /// Frames handed to the uplink by the audio path in this run.
    pub queued: u64,
    /// Frames an earlier run left in the spool and this run picked up.
    pub recovered: u64,
    /// Chunk messages sent, re-sends included.
    pub sent: u64,
    /// Chunk messages sent again after a reconnect or an error.
    pub resent: u64,
    /// ACKs received (`stored` + `duplicate`).
    pub acked: u64,
    pub stored: u64,
    pub duplicate: u64,
    /// Frames in the spool waiting for an ACK (sent or not).
    pub pending: u64,
    /// Chunks sent on the current connection and not answered yet.
    pub in_flight: u64,
    /// `{"type":"error"}` answers from the gateway.
    pub errors: u64,
    /// Frames given up on after repeated gateway errors (kept under the spool's `rejected/`).
    pub rejected: u64,
    /// Connections that were established after the first one.
    pub reconnects: u64,
    /// PCM bytes of ACKed frames.
    pub bytes_acked: u64,
    /// The gateway's view, from its latest ACK.
    pub gateway_last_seq: u64,
    pub gateway_missing: u64,
    pub gateway_duplicates: u64,
    pub latency: Latency,
}

/// The end of a recording. The top-level counters are the mic stream's (as before streams
/// existed); `system` holds the meeting audio's, when it was recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub session_id: String,
    /// Frames produced by the audio path in this run (the last one possibly padded).
    pub frames: u64,
    /// Samples of real audio in this run (excluding the last frame's padding).
    pub samples: u64,
    /// Seq of the last frame produced, 0 if none.
    pub last_seq: u64,
    pub uplink: UplinkCounters,
    /// Whether every frame of every stream was ACKed before the stop finished waiting.
    pub drained: bool,
    /// The normalized local WAV copy.
    pub local_copy: Option<String>,
    /// The system (meeting audio) stream, if this recording had one.
    /// (Boxed: most recordings have none, and events stay small.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<Box<StreamSummary>>,
}

/// One stream's part of a [`Summary`], with the same meaning as the mic's top-level fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamSummary {
    pub frames: u64,
    pub samples: u64,
    pub last_seq: u64,
    pub uplink: UplinkCounters,
    /// Whether every frame of this stream was ACKed.
    pub drained: bool,
    pub local_copy: Option<String>,
    /// Why this stream's audio stopped early, if it did (the recording itself went on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn stream_name<S: Serializer>(stream: &Stream, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(stream.as_str())
}

fn optional_stream_name<S: Serializer>(
    stream: &Option<Stream>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match stream {
        Some(stream) => stream_name(stream, serializer),
        None => serializer.serialize_none(),
    }
}

/// Where the engine's parts publish events; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: broadcast::Sender<Event>,
}

impl Default for EventSink {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSink {
    /// A sink with no consumer yet.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        EventSink { tx }
    }

    /// Publishes an event; with no consumer it is dropped, which is fine.
    pub fn emit(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// Shorthand for an [`Event::Error`] of the whole recording.
    pub fn error(&self, origin: ErrorOrigin, message: impl Into<String>) {
        self.emit(Event::Error {
            origin,
            message: message.into(),
            stream: None,
        });
    }

    /// Shorthand for an [`Event::Error`] of one stream.
    pub fn stream_error(&self, stream: Stream, origin: ErrorOrigin, message: impl Into<String>) {
        self.emit(Event::Error {
            origin,
            message: message.into(),
            stream: Some(stream),
        });
    }

    /// A new consumer, seeing events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_tagged_for_the_ui() {
        let json = serde_json::to_value(Event::Connection {
            state: ConnectionState::Reconnecting {
                attempt: 2,
                retry_in_ms: 400,
            },
            holding: 7,
            detail: Some("connection refused".into()),
            stream: Stream::Mic,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"connection","stream":"mic","state":{"state":"reconnecting","attempt":2,"retry_in_ms":400},"holding":7,"detail":"connection refused"})
        );
        let json = serde_json::to_value(Event::Level {
            stream: Stream::System,
            rms_dbfs: -20.0,
            peak_dbfs: -6.0,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"level","stream":"system","rms_dbfs":-20.0,"peak_dbfs":-6.0})
        );
        let json = serde_json::to_value(Event::Uplink {
            stream: Stream::System,
            counters: UplinkCounters::default(),
        })
        .unwrap();
        assert_eq!(json["type"], "uplink");
        assert_eq!(json["stream"], "system");
        assert_eq!(json["pending"], 0);
    }

    #[test]
    fn errors_name_their_stream_only_when_they_have_one() {
        let sink = EventSink::new();
        let mut rx = sink.subscribe();
        sink.error(ErrorOrigin::Resolve, "no inference");
        sink.stream_error(Stream::System, ErrorOrigin::Source, "output gone");
        let json = |e: Event| serde_json::to_value(e).unwrap();
        assert_eq!(
            json(rx.try_recv().unwrap()),
            serde_json::json!({"type":"error","origin":"resolve","message":"no inference"})
        );
        assert_eq!(
            json(rx.try_recv().unwrap()),
            serde_json::json!({"type":"error","origin":"source","message":"output gone","stream":"system"})
        );
    }

    #[test]
    fn a_summary_without_system_audio_has_no_system_field() {
        let json = serde_json::to_value(Summary::default()).unwrap();
        assert!(json.get("system").is_none());
        let json = serde_json::to_value(Summary {
            system: Some(Box::default()),
            ..Summary::default()
        })
        .unwrap();
        assert_eq!(json["system"]["frames"], 0);
    }

    #[test]
    fn a_sink_without_consumers_does_not_fail() {
        let sink = EventSink::new();
        sink.error(ErrorOrigin::Uplink, "nobody listens");
        let mut rx = sink.subscribe();
        sink.error(ErrorOrigin::Spool, "now someone does");
        assert!(matches!(
            rx.try_recv(),
            Ok(Event::Error {
                origin: ErrorOrigin::Spool,
                ..
            })
        ));
    }
}
