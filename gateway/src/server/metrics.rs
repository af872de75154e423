//! `GET /metrics`: what an operator graphs and alerts on, in Prometheus' text format (0.0.4).
//!
//! Every figure is a plain atomic in [`Metrics`], one per gateway (a process may run several:
//! the tests do). The hot path, one ACK per frame, costs a few relaxed atomic adds and no lock
//! or allocation ([`Metrics::answered`]); the text is built only when someone scrapes. The
//! gauges (live sessions, open sockets) are read from where they are kept at scrape time, not
//! mirrored here.
//!
//! Names (README, "Operating the gateway"):
//! - `gateway_build_info{version}`: always 1.
//! - `gateway_live_sessions`, `gateway_open_sockets`: gauges.
//! - `gateway_frames_total{status="stored"|"duplicate"|"rejected"}`: chunk messages answered
//!   with a `stored` or `duplicate` ACK, and socket messages refused with an error the client
//!   caused (nothing stored for them).
//! - `gateway_stored_bytes_total`: audio bytes of the frames acknowledged `stored`.
//! - `gateway_ack_latency_seconds`: histogram of the time from a chunk's message being read off
//!   the socket to its ACK having been written to it.
//! - `gateway_resolve_requests_total{engine}` and `gateway_resolve_failures_total{engine,reason}`.
//! - `gateway_storage_errors_total`: requests and socket messages that failed because storage
//!   (SQLite or the objects) did.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::inference::{Inference, InferenceError};
use crate::protocol::{AckStatus, FRAME_BYTES, ServerMessage};
use crate::server::AppState;
use crate::sessions::ResolveError;

/// The text format's content type, as Prometheus asks for it.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the ACK latency buckets, in seconds: from a page-cache commit (well under a
/// millisecond) to an fsync on a slow disk or a socket that stopped reading (seconds).
const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The engines a resolve can be counted against (`engine` label).
const ENGINES: [&str; 3] = ["builtin", "http", "off"];

/// Why a resolve failed (`reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveFailure {
    /// No engine can answer: inference off, not configured, or the model could not load.
    Unavailable,
    /// The inference service could not be reached or did not answer in time.
    Transport,
    /// The inference service answered with an error status (passed on as 502).
    Backend,
    /// The answer was not a resolve answer (not JSON, wrong shape, too large).
    BadAnswer,
    /// The session refused the request (a rule of the session, a cap).
    Refused,
    /// Storage failed while reading or keeping the state.
    Storage,
}

impl ResolveFailure {
    const ALL: [ResolveFailure; 6] = [
        ResolveFailure::Unavailable,
        ResolveFailure::Transport,
        ResolveFailure::Backend,
        ResolveFailure::BadAnswer,
        ResolveFailure::Refused,
        ResolveFailure::Storage,
    ];

    fn label(self) -> &'static str {
        match self {
            ResolveFailure::Unavailable => "unavailable",
            ResolveFailure::Transport => "transport",
            ResolveFailure::Backend => "backend",
            ResolveFailure::BadAnswer => "bad_answer",
            ResolveFailure::Refused => "refused",
            ResolveFailure::Storage => "storage",
        }
    }

    /// What went wrong in a failed resolve.
    pub fn of(err: &ResolveError) -> ResolveFailure {
        use crate::core::session::SessionError;
        match err {
            ResolveError::Inference(err) => match err {
                InferenceError::NotConfigured
                | InferenceError::Off
                | InferenceError::Unavailable(_) => ResolveFailure::Unavailable,
                InferenceError::Transport(_) => ResolveFailure::Transport,
                InferenceError::Backend { .. } => ResolveFailure::Backend,
                InferenceError::AnswerTooLarge => ResolveFailure::BadAnswer,
            },
            ResolveError::Session(SessionError::Answer(_)) => ResolveFailure::BadAnswer,
            ResolveError::Session(SessionError::Storage(_)) => ResolveFailure::Storage,
            ResolveError::Session(_) => ResolveFailure::Refused,
        }
    }
}

/// The `engine` label of a resolve on this gateway: which engine was asked (or would have been).
fn engine_index(inference: &Inference) -> usize {
    match inference {
        Inference::Builtin(_) | Inference::Unavailable(_) => 0,
        Inference::Http(_) | Inference::NotConfigured => 1,
        Inference::Off => 2,
    }
}

/// A histogram with fixed buckets: one counter per bucket (not cumulative, so an observation
/// is one add), the cumulative counts are summed when rendered.
#[derive(Default)]
struct Histogram {
    /// Observations per bucket; the last one is above every bound (`+Inf`).
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    /// Sum of the observations, in nanoseconds (584 years of latency before it wraps).
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64, nanos: u64) {
        let bucket = LATENCY_BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BOUNDS.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        // The count is the sum of the buckets, so it always equals the `+Inf` bucket.
        cumulative += self.buckets[LATENCY_BOUNDS.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// The counters of one gateway. Shared by every handler and socket through [`AppState`].
#[derive(Default)]
pub struct Metrics {
    frames_stored: AtomicU64,
    frames_duplicate: AtomicU64,
    frames_rejected: AtomicU64,
    stored_bytes: AtomicU64,
    ack_latency: Histogram,
    /// Resolve requests per engine ([`ENGINES`]).
    resolves: [AtomicU64; ENGINES.len()],
    /// Failed resolves per engine and [`ResolveFailure`].
    resolve_failures: [[AtomicU64; ResolveFailure::ALL.len()]; ENGINES.len()],
    storage_errors: AtomicU64,
}

impl Metrics {
    /// Counts the answer a socket has just sent for a message read at `received`: an ACK (its
    /// status, its bytes, its latency), a refusal, or a storage failure. Other answers
    /// (`ready`, `status`, `pong`, ...) count nothing.
    pub fn answered(&self, answer: &ServerMessage, received: Instant) {
        match answer {
            ServerMessage::Ack(ack) => {
                let latency = received.elapsed();
                self.ack_latency
                    .observe(latency.as_secs_f64(), latency.as_nanos() as u64);
                match ack.status {
                    AckStatus::Stored => {
                        self.frames_stored.fetch_add(1, Relaxed);
                        self.stored_bytes.fetch_add(FRAME_BYTES as u64, Relaxed);
                    }
                    AckStatus::Duplicate => {
                        self.frames_duplicate.fetch_add(1, Relaxed);
                    }
                }
            }
            // The gateway's fault, not the message's: the client sends it again.
            ServerMessage::Error { retry: true, .. } => {
                self.storage_errors.fetch_add(1, Relaxed);
            }
            ServerMessage::Error { .. } => {
                self.frames_rejected.fetch_add(1, Relaxed);
            }
            _ => {}
        }
    }

    /// Counts one `/resolve` request on `inference` and, when it failed, why.
    pub fn resolved<T>(&self, inference: &Inference, outcome: &Result<T, ResolveError>) {
        let engine = engine_index(inference);
        self.resolves[engine].fetch_add(1, Relaxed);
        if let Err(err) = outcome {
            let failure = ResolveFailure::of(err);
            let reason = ResolveFailure::ALL
                .iter()
                .position(|f| *f == failure)
                .expect("every failure is listed");
            // A storage failure is also counted in `gateway_storage_errors_total`, by its
            // response (see `StorageFailed`).
            self.resolve_failures[engine][reason].fetch_add(1, Relaxed);
        }
    }

    /// One request that failed because storage did.
    pub fn storage_error(&self) {
        self.storage_errors.fetch_add(1, Relaxed);
    }

    /// The exposition text; `live_sessions` and `open_sockets` are read by the caller.
    pub fn render(&self, live_sessions: usize, open_sockets: usize) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP gateway_build_info The running gateway's version.\n# TYPE gateway_build_info gauge\ngateway_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        gauge(
            &mut out,
            "gateway_live_sessions",
            "Sessions with a running actor (in memory).",
            live_sessions as u64,
        );
        gauge(
            &mut out,
            "gateway_open_sockets",
            "Open ingest WebSocket connections.",
            open_sockets as u64,
        );
        let _ = writeln!(
            out,
            "# HELP gateway_frames_total Chunk messages by answer: ACKed stored or duplicate, or rejected with an error.\n# TYPE gateway_frames_total counter"
        );
        for (status, counter) in [
            ("stored", &self.frames_stored),
            ("duplicate", &self.frames_duplicate),
            ("rejected", &self.frames_rejected),
        ] {
            let _ = writeln!(
                out,
                "gateway_frames_total{{status=\"{status}\"}} {}",
                counter.load(Relaxed)
            );
        }
        counter(
            &mut out,
            "gateway_stored_bytes_total",
            "Audio bytes of the frames ACKed stored.",
            self.stored_bytes.load(Relaxed),
        );
        self.ack_latency.render(
            &mut out,
            "gateway_ack_latency_seconds",
            "Time from a chunk message read off the socket to its ACK written back.",
        );
        let _ = writeln!(
            out,
            "# HELP gateway_resolve_requests_total Speaker resolve requests, by engine.\n# TYPE gateway_resolve_requests_total counter"
        );
        for (engine, name) in ENGINES.iter().enumerate() {
            let _ = writeln!(
                out,
                "gateway_resolve_requests_total{{engine=\"{name}\"}} {}",
                self.resolves[engine].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP gateway_resolve_failures_total Speaker resolve requests that failed, by engine and reason.\n# TYPE gateway_resolve_failures_total counter"
        );
        for (engine, name) in ENGINES.iter().enumerate() {
            for (i, failure) in ResolveFailure::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "gateway_resolve_failures_total{{engine=\"{name}\",reason=\"{}\"}} {}",
                    failure.label(),
                    self.resolve_failures[engine][i].load(Relaxed)
                );
            }
        }
        counter(
            &mut out,
            "gateway_storage_errors_total",
            "Requests and socket messages that failed because SQLite or the object store did.",
            self.storage_errors.load(Relaxed),
        );
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

/// `GET /metrics`. It sits behind the API key like every route but `/health` and `/ready`:
/// the figures say how busy the gateway is and which sessions fail, which is the operator's
/// business, and Prometheus sends a key without help (`authorization: credentials_file` in a
/// scrape config sends `Authorization: Bearer <key>`), so no separate setting is needed.
pub async fn metrics(State(app): State<AppState>) -> Response {
    let text = app
        .metrics
        .render(app.sessions.live_sessions(), app.sockets.open());
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        text,
    )
        .into_response()
}

/// Marks a response as a storage failure (set by [`super::error::ApiError`]'s response for
/// one), so that [`count_storage_errors`] counts it once, whichever route answered.
#[derive(Debug, Clone, Copy)]
pub struct StorageFailed;

/// Counts the HTTP answers marked [`StorageFailed`].
pub async fn count_storage_errors(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if response.extensions().get::<StorageFailed>().is_some() {
        app.metrics.storage_error();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_lands_in_the_first_bucket_that_holds_it_and_buckets_render_cumulative() {
        let histogram = Histogram::default();
        histogram.observe(0.0005, 500_000);
        histogram.observe(0.003, 3_000_000);
        histogram.observe(60.0, 60_000_000_000);
        let mut out = String::new();
        histogram.render(&mut out, "h", "help");
        assert!(out.contains("h_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"0.0025\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("h_count 3\n"), "{out}");
        assert!(out.contains("h_sum 60.0035\n"), "{out}");
    }

    #[test]
    fn every_sample_line_is_name_labels_and_a_number() {
        let text = Metrics::default().render(2, 1);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').expect("name and value");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        assert!(text.contains("\ngateway_live_sessions 2\n"), "{text}");
        assert!(text.contains("\ngateway_open_sockets 1\n"), "{text}");
    }
}
