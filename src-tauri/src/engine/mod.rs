//! The recorder: one call starts source → convert → frame (+ local copy, + level) → spool →
//! uplink, plus speaker resolution; one call stops it. No window, no Tauri.
//!
//! Layout of a session's directory (`<spool root>/<safe session id>/`):
//! `spool.json` and `frames/` (the [`Spool`]), `local.wav` (the normalized local copy of every
//! run so far) and `local.run.wav` (the running one's, merged in when it stops; see `resume.rs`).
//! Starting again with the same session and root resumes: frames left in the spool are sent
//! first, numbering continues, and the local copy is extended.

mod audio;
mod resume;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use gateway::core::session_id::SessionId;
use gateway::protocol::{FinalizeResponse, RosterEntry};
use tokio::sync::{broadcast, oneshot, watch};

use crate::endpoint::GatewayEndpoint;
use crate::events::{ErrorOrigin, Event, EventSink, Summary, UplinkCounters};
use crate::local_copy::LocalCopy;
use crate::pipeline::{PipelineConfig, StopHandle};
use crate::resolve::{ResolveConfig, Resolver};
use crate::source::{self, InputSpec, OpenOptions, Pacing};
use crate::spool::{Durability, Spool};
use crate::uplink::{Backoff, Uplink, UplinkConfig};

pub use audio::AudioReport;

/// File name of the local copy inside the session directory.
pub const LOCAL_COPY: &str = "local.wav";
/// File name of the running run's part of the local copy.
const RUN_COPY: &str = "local.run.wav";

/// Speaker-resolution settings of a recording.
#[derive(Debug, Clone)]
pub struct ResolveSettings {
    pub every: Duration,
    pub window: Duration,
    pub roster: Vec<RosterEntry>,
    pub asr_text: Option<String>,
}

impl Default for ResolveSettings {
    fn default() -> Self {
        ResolveSettings {
            every: Duration::from_secs(5),
            window: Duration::from_secs(10),
            roster: Vec::new(),
            asr_text: None,
        }
    }
}

/// Everything a recording needs.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub endpoint: GatewayEndpoint,
    pub session_id: String,
    pub input: InputSpec,
    /// Files and tones: real time or as fast as possible. Devices are always real time.
    pub pacing: Pacing,
    /// Length of a tone; for devices and files, wall-clock time after which the recording
    /// stops by itself (`None`: until the source ends or `stop`).
    pub duration: Option<Duration>,
    /// Session directories live under this root.
    pub spool_root: PathBuf,
    pub durability: Durability,
    /// `None` turns live speaker resolution off.
    pub resolve: Option<ResolveSettings>,
    pub backoff: Backoff,
}

impl RecorderConfig {
    /// A config with defaults: real time, no duration limit, fsynced spool, resolution every
    /// 5 s over 10 s, backoff 200 ms → 5 s.
    pub fn new(
        endpoint: GatewayEndpoint,
        session_id: impl Into<String>,
        input: InputSpec,
        spool_root: impl Into<PathBuf>,
    ) -> Self {
        RecorderConfig {
            endpoint,
            session_id: session_id.into(),
            input,
            pacing: Pacing::RealTime,
            duration: None,
            spool_root: spool_root.into(),
            durability: Durability::Sync,
            resolve: Some(ResolveSettings::default()),
            backoff: Backoff::default(),
        }
    }

    /// `<spool root>/<safe session id>`.
    pub fn session_dir(&self) -> anyhow::Result<PathBuf> {
        session_dir(&self.spool_root, &self.session_id)
    }
}

/// The directory of a session under a spool root, named like the gateway's object keys.
pub fn session_dir(spool_root: &Path, session_id: &str) -> anyhow::Result<PathBuf> {
    let id = SessionId::parse(session_id)
        .map_err(|e| anyhow::anyhow!("invalid session id {session_id:?}: {e}"))?;
    Ok(spool_root.join(id.safe()))
}

/// Starts recordings.
pub struct Recorder;

impl Recorder {
    /// Opens the spool and the source and starts every task. Must run inside a tokio runtime.
    pub fn start(config: RecorderConfig) -> anyhow::Result<RecorderHandle> {
        let dir = config.session_dir()?;
        let spool = Spool::open(&dir, &config.session_id, config.durability)
            .context("cannot open the spool")?;
        let first_seq = spool.next_seq();
        let events = EventSink::new();
        // Earlier runs' audio into `local.wav`, cut or padded to the frames already numbered.
        resume::consolidate(
            &dir.join(LOCAL_COPY),
            &dir.join(RUN_COPY),
            Some(resume::frames_total(first_seq)),
        )
        .context("cannot prepare the local copy")?;
        let is_tone = matches!(config.input, InputSpec::Tone { .. });
        let capture = source::open(
            &config.input,
            OpenOptions {
                pacing: config.pacing,
                tone_duration: config.duration.filter(|_| is_tone),
            },
        )
        .with_context(|| format!("cannot open input {}", config.input))?;

        let mut uplink_config = UplinkConfig::new(config.endpoint.clone(), &config.session_id);
        uplink_config.backoff = config.backoff;
        let uplink = Uplink::start(uplink_config, spool, events.clone());
        let resolver = config.resolve.as_ref().map(|r| {
            let mut rc = ResolveConfig::new(config.endpoint.clone(), &config.session_id);
            rc.every = r.every;
            rc.window = r.window;
            rc.roster = r.roster.clone();
            rc.asr_text = r.asr_text.clone();
            Resolver::start(rc, events.clone())
        });
        let run_copy =
            LocalCopy::create(dir.join(RUN_COPY)).context("cannot create the local copy")?;
        let outputs = audio::Outputs {
            local_copy: run_copy,
            frames: uplink.frames(),
            resolve: resolver.as_ref().map(Resolver::feed),
            events: events.clone(),
        };
        let pipeline_config = PipelineConfig {
            // Written from the frames by the audio thread instead (see `audio.rs`).
            local_copy: None,
            // A resumed stream's sample 0 lies `first_seq - 1` seconds before this run's first.
            start_ms: (first_seq > 1)
                .then(|| now_ms().saturating_sub((first_seq - 1).saturating_mul(1000))),
            first_seq,
            ..PipelineConfig::default()
        };
        let stop = StopHandle::new();
        if let Some(limit) = config.duration.filter(|_| !is_tone) {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                stop.stop();
            });
        }
        let (done_tx, done_rx) = oneshot::channel();
        let thread_stop = stop.clone();
        std::thread::Builder::new()
            .name("recorder-audio".into())
            .spawn(move || {
                let report = audio::run(capture, pipeline_config, thread_stop, outputs);
                let _ = done_tx.send(report);
            })
            .context("cannot start the audio thread")?;
        Ok(RecorderHandle {
            session_id: config.session_id,
            session_dir: dir,
            first_seq,
            events,
            stop,
            audio: AudioState::Running(done_rx),
            uplink,
            resolver,
        })
    }
}

enum AudioState {
    Running(oneshot::Receiver<AudioReport>),
    Done(AudioReport),
}

/// A running recording.
pub struct RecorderHandle {
    session_id: String,
    session_dir: PathBuf,
    first_seq: u64,
    events: EventSink,
    stop: StopHandle,
    audio: AudioState,
    uplink: Uplink,
    resolver: Option<Resolver>,
}

impl RecorderHandle {
    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The latest uplink counters.
    pub fn counters(&self) -> watch::Receiver<UplinkCounters> {
        self.uplink.counters()
    }

    /// The session's directory (spool and local copy).
    pub fn session_dir(&self) -> &Path {
        &self.session_dir
    }

    /// The local copy's path.
    pub fn local_copy(&self) -> PathBuf {
        self.session_dir.join(LOCAL_COPY)
    }

    /// Seq of this run's first frame (greater than 1 when resuming).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Waits until the audio stops by itself (a file or timed tone ended, the duration was
    /// reached, or the source failed). Cancel-safe.
    pub async fn audio_finished(&mut self) {
        if let AudioState::Running(rx) = &mut self.audio {
            let report = rx.await.unwrap_or_else(|_| AudioReport {
                error: Some("the audio thread ended unexpectedly".into()),
                ..AudioReport::default()
            });
            self.audio = AudioState::Done(report);
        }
    }

    /// Stops the audio (flushing the last partial frame, padded with silence), then waits up to
    /// `drain_timeout` for the gateway to ACK everything. Frames not ACKed by then stay in the
    /// spool for the next start.
    pub async fn stop(mut self, drain_timeout: Duration) -> Summary {
        self.stop.stop();
        self.audio_finished().await;
        let AudioState::Done(report) =
            std::mem::replace(&mut self.audio, AudioState::Done(AudioReport::default()))
        else {
            unreachable!("audio_finished leaves Done")
        };
        let local_copy = self.local_copy();
        let merged = tokio::task::spawn_blocking({
            let run = self.session_dir.join(RUN_COPY);
            let local = local_copy.clone();
            move || resume::consolidate(&local, &run, None)
        })
        .await;
        if let Ok(Err(e)) | Err(e) = merged.map_err(anyhow::Error::from) {
            self.events.error(ErrorOrigin::LocalCopy, format!("{e:#}"));
        }
        let outcome = self.uplink.finish(drain_timeout).await;
        if let Some(resolver) = self.resolver.take() {
            resolver.stop().await;
        }
        let summary = Summary {
            session_id: self.session_id.clone(),
            frames: report.frames,
            samples: report.samples,
            last_seq: report.last_seq,
            uplink: outcome.counters,
            drained: outcome.drained,
            local_copy: Some(local_copy.display().to_string()),
        };
        self.events.emit(Event::Finished(summary.clone()));
        summary
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `POST /v1/sessions/{id}/finalize`: writes the session's `result.json` on the gateway.
pub async fn finalize(
    endpoint: &GatewayEndpoint,
    session_id: &str,
) -> anyhow::Result<FinalizeResponse> {
    SessionId::parse(session_id)
        .map_err(|e| anyhow::anyhow!("invalid session id {session_id:?}: {e}"))?;
    let body = endpoint
        .call_session(
            reqwest::Method::POST,
            session_id,
            "finalize",
            &serde_json::json!({}),
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| anyhow::anyhow!("finalize failed: {e}"))?;
    serde_json::from_slice(&body).context("finalize answer is not JSON of the expected shape")
}
