//! The typed event stream the UI and the CLI consume.
//!
//! Every part of the engine reports through an [`EventSink`]; consumers call
//! [`EventSink::subscribe`]. It is a broadcast channel: a consumer that falls behind loses the
//! oldest events (it sees `Lagged`) instead of making the audio path wait or memory grow. State
//! that must not be lost (the final summary) is also returned by the call that ends a recording.
//!
//! Events serialize as JSON objects tagged by `"type"` (`level`, `uplink`, `connection`,
//! `speaker`, `resolve_unavailable`, `error`, `finished`), ready to forward to a web view.

use gateway::protocol::ResolveAnswer;
use serde::Serialize;
use tokio::sync::broadcast;

/// How many events a slow consumer may fall behind before it starts losing the oldest.
const CAPACITY: usize = 1024;

/// One thing the engine wants its user to know.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Input level of the normalized stream, about 20 times a second.
    Level { rms_dbfs: f32, peak_dbfs: f32 },
    /// Uplink counters, at most a few times a second and whenever they matter.
    Uplink(UplinkCounters),
    /// The uplink's connection changed state.
    Connection {
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

/// The end of a recording.
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
    /// Whether every frame was ACKed before the stop finished waiting.
    pub drained: bool,
    /// The normalized local WAV copy.
    pub local_copy: Option<String>,
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

    /// Shorthand for [`Event::Error`].
    pub fn error(&self, origin: ErrorOrigin, message: impl Into<String>) {
        self.emit(Event::Error {
            origin,
            message: message.into(),
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
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"connection","state":{"state":"reconnecting","attempt":2,"retry_in_ms":400},"holding":7,"detail":"connection refused"})
        );
        let json = serde_json::to_value(Event::Level {
            rms_dbfs: -20.0,
            peak_dbfs: -6.0,
        })
        .unwrap();
        assert_eq!(json["type"], "level");
        let json = serde_json::to_value(Event::Uplink(UplinkCounters::default())).unwrap();
        assert_eq!(json["type"], "uplink");
        assert_eq!(json["pending"], 0);
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
