//! Live speaker resolution: every few seconds, the latest window of audio goes to the gateway's
//! `/resolve`, and the answer comes back as an [`Event::Speaker`].
//!
//! It runs on its own task and is fed copies of the frames through an unbounded channel
//! ([`ResolveFeed`]), so a slow or failing inference service never holds up the audio path or
//! the uplink; requests go out one at a time and a tick that comes while one is running is
//! simply late. A tick without new audio since the last request sends nothing.
//!
//! A 503 means the gateway has no inference service configured. That is a state, not a
//! failure: it is reported once as [`Event::ResolveUnavailable`], and the resolver keeps
//! asking only once a minute, quietly, until the gateway answers again.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use contract::protocol::{
    ErrorBody, FORMAT, IDEMPOTENCY_KEY_HEADER, ResolveAnswer, ResolveAudio, ResolveRequest,
    RosterEntry, SAMPLE_RATE,
};
use reqwest::StatusCode;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::endpoint::{API_KEY_HEADER, GatewayEndpoint};
use crate::events::{ErrorOrigin, Event, EventSink};

/// Longest window the gateway's contract allows.
pub const MAX_WINDOW: Duration = Duration::from_secs(30);
/// How long the resolver waits after a 503 before asking again.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(60);

/// Resolution settings; [`ResolveConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct ResolveConfig {
    pub endpoint: GatewayEndpoint,
    pub session_id: String,
    /// Time between requests (default 5 s).
    pub every: Duration,
    /// Audio per request: the latest this much (default 10 s, at most [`MAX_WINDOW`]).
    pub window: Duration,
    /// People expected in the meeting; sent with every request when not empty.
    pub roster: Vec<RosterEntry>,
    /// Transcript of the window, when a speech recognizer provides one.
    pub asr_text: Option<String>,
    /// Per-request timeout (the gateway's own inference timeout is 15 s).
    pub request_timeout: Duration,
}

impl ResolveConfig {
    pub fn new(endpoint: GatewayEndpoint, session_id: impl Into<String>) -> Self {
        ResolveConfig {
            endpoint,
            session_id: session_id.into(),
            every: Duration::from_secs(5),
            window: Duration::from_secs(10),
            roster: Vec::new(),
            asr_text: None,
            request_timeout: Duration::from_secs(20),
        }
    }

    /// Whole frames (seconds) in a window: at least one, at most thirty.
    fn window_frames(&self) -> usize {
        let secs = self.window.min(MAX_WINDOW).as_secs_f64().ceil() as usize;
        secs.max(1)
    }
}

/// Hands frames to the resolver without waiting. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ResolveFeed(mpsc::UnboundedSender<(u64, Vec<u8>)>);

impl ResolveFeed {
    /// Adds one frame (its seq and 32000 bytes of PCM) to the rolling window.
    pub fn push(&self, seq: u64, pcm: Vec<u8>) {
        let _ = self.0.send((seq, pcm));
    }
}

/// The running resolver task.
pub struct Resolver {
    feed: ResolveFeed,
    task: JoinHandle<()>,
}

impl Resolver {
    /// Starts the resolver on the current tokio runtime.
    pub fn start(config: ResolveConfig, events: EventSink) -> Resolver {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(config, rx, events));
        Resolver {
            feed: ResolveFeed(tx),
            task,
        }
    }

    /// A handle to feed frames with.
    pub fn feed(&self) -> ResolveFeed {
        self.feed.clone()
    }

    /// Stops the resolver; a request in progress is abandoned.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn run(
    config: ResolveConfig,
    mut frames: mpsc::UnboundedReceiver<(u64, Vec<u8>)>,
    events: EventSink,
) {
    let client = crate::endpoint::http_client();
    let url = config.endpoint.session(&config.session_id, "resolve");
    let capacity = config.window_frames();
    let mut window: VecDeque<(u64, Vec<u8>)> = VecDeque::with_capacity(capacity + 1);
    let mut fresh = false;
    let mut unavailable_until: Option<Instant> = None;
    let every = config.every.max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(frame) => {
                    window.push_back(frame);
                    while window.len() > capacity {
                        window.pop_front();
                    }
                    fresh = true;
                }
                None => return,
            },
            _ = ticker.tick() => {
                if !fresh || unavailable_until.is_some_and(|t| Instant::now() < t) {
                    continue;
                }
                fresh = false;
                match post(&client, &url, &config, &window).await {
                    Outcome::Answer(answer) => {
                        unavailable_until = None;
                        events.emit(Event::Speaker(*answer));
                    }
                    Outcome::Unavailable(detail) => {
                        if unavailable_until.is_none() {
                            events.emit(Event::ResolveUnavailable { detail });
                        }
                        unavailable_until = Some(Instant::now() + UNAVAILABLE_RETRY);
                    }
                    Outcome::Failed(message) => {
                        events.error(ErrorOrigin::Resolve, message);
                    }
                }
            }
        }
    }
}

enum Outcome {
    Answer(Box<ResolveAnswer>),
    Unavailable(String),
    Failed(String),
}

/// Builds the request body for the frames in `window` (oldest first).
pub fn request_body(config: &ResolveConfig, window: &VecDeque<(u64, Vec<u8>)>) -> ResolveRequest {
    let mut pcm = Vec::with_capacity(window.iter().map(|(_, p)| p.len()).sum());
    for (_, frame) in window {
        pcm.extend_from_slice(frame);
    }
    ResolveRequest {
        audio: ResolveAudio {
            content_b64: base64::engine::general_purpose::STANDARD.encode(&pcm),
            format: FORMAT.to_owned(),
            sample_rate: Some(SAMPLE_RATE),
            channels: Some(1),
        },
        asr_text: config.asr_text.clone(),
        roster: (!config.roster.is_empty()).then(|| config.roster.clone()),
    }
}

async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    config: &ResolveConfig,
    window: &VecDeque<(u64, Vec<u8>)>,
) -> Outcome {
    let (Some((first, _)), Some((last, _))) = (window.front(), window.back()) else {
        return Outcome::Failed("no audio to resolve".into());
    };
    // The same window sent twice (a retry, a resumed recorder) gets the stored answer instead
    // of being counted twice by the inference service.
    let idempotency_key = format!("{}:{first}-{last}", config.session_id);
    let mut request = client
        .post(url.clone())
        .timeout(config.request_timeout)
        .header(IDEMPOTENCY_KEY_HEADER, idempotency_key)
        .json(&request_body(config, window));
    if let Some(key) = config.endpoint.api_key() {
        request = request.header(API_KEY_HEADER, key);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Outcome::Failed(format!("resolve request failed: {e}")),
    };
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if status.is_success() {
        return match serde_json::from_slice::<ResolveAnswer>(&body) {
            Ok(answer) => Outcome::Answer(Box::new(answer)),
            Err(e) => Outcome::Failed(format!("resolve answer is not a speaker answer: {e}")),
        };
    }
    let detail = serde_json::from_slice::<ErrorBody>(&body)
        .map(|b| b.detail)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        Outcome::Unavailable(detail)
    } else {
        Outcome::Failed(format!(
            "resolve failed: HTTP {}: {detail}",
            status.as_u16()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_latest_frames_joined_and_capped_at_30_s() {
        let endpoint = GatewayEndpoint::parse("http://127.0.0.1:1", None).unwrap();
        let mut config = ResolveConfig::new(endpoint, "s");
        assert_eq!(config.window_frames(), 10);
        config.window = Duration::from_secs(120);
        assert_eq!(config.window_frames(), 30);
        config.window = Duration::ZERO;
        assert_eq!(config.window_frames(), 1);

        config.roster = vec![RosterEntry {
            name: "Ada".into(),
            email: None,
        }];
        let window = VecDeque::from([(4, vec![1u8; 4]), (5, vec![2u8; 4])]);
        let body = serde_json::to_value(request_body(&config, &window)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "audio": {"content_b64": "AQEBAQICAgI=", "format": "pcm_s16le", "sample_rate": 16000, "channels": 1},
                "roster": [{"name": "Ada"}]
            })
        );
    }
}
