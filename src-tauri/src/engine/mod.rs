//! The recorder: one call starts source → convert → frame (+ local copy, + level) → spool →
//! uplink, plus speaker resolution; one call stops it. No window, no Tauri.
//!
//! A recording has one or two streams: the `mic` and, when [`RecorderConfig::system`] is set,
//! the `system` (meeting) audio. Each stream runs the same machinery on its own: source, audio
//! thread (convert, frame, local copy, level), [`Spool`] with its own seq space from 1, and
//! [`Uplink`] on its own socket (`?stream=system`). Live speaker resolution uses the mic.
//! Both streams stamp frames with the capture time (epoch ms, the system clock) of their first
//! sample, which is what the gateway aligns the two by.
//!
//! Layout of a session's directory (`<spool root>/<safe session id>/`), the mic's as it always
//! was: `spool.json` and `frames/` (the [`Spool`]), `local.wav` (the normalized local copy of
//! every run so far) and `local.run.wav` (the running one's, merged in when it stops; see
//! `resume.rs`). The system stream has the same files under `streams/system/` (see
//! [`stream_dir`]), so its local copy is `streams/system/local.wav`.
//! Starting again with the same session and root resumes each stream: frames left in its spool
//! are sent first, numbering continues, and its local copy is extended.

mod audio;
mod held;
mod resume;
mod stored;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use contract::protocol::{FinalizeResponse, RosterEntry};
use contract::session_id::SessionId;
use tokio::sync::{broadcast, oneshot, watch};

use crate::endpoint::GatewayEndpoint;
use crate::events::{ErrorOrigin, Event, EventSink, StreamSummary, Summary, UplinkCounters};
use crate::local_copy::LocalCopy;
use crate::pipeline::{PipelineConfig, StopHandle};
use crate::resolve::{ResolveConfig, ResolveFeed, Resolver};
use crate::source::{self, InputSpec, OpenOptions, Pacing};
use crate::spool::{Durability, Spool};
use crate::stream::{Stream, stream_dir};
use crate::uplink::{Backoff, Uplink, UplinkConfig};

pub use audio::AudioReport;
pub use held::{
    Delivered, HeldFrames, deliver_held, deliver_held_until, held_frames, held_sessions,
};
pub use stored::{StoredSeqs, stored_seqs};

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
    /// The system (meeting) audio, recorded as the session's `system` stream; `None` records
    /// the mic alone. `default` and device names mean an output's audio (see
    /// [`source::system`]).
    pub system: Option<InputSpec>,
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
    /// A config with defaults: mic only, real time, no duration limit, fsynced spool,
    /// resolution every 5 s over 10 s, backoff 200 ms → 5 s.
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
            system: None,
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
    /// Opens the spools and the sources and starts every task. Must run inside a tokio runtime.
    ///
    /// Every source is opened before anything starts, so a system-audio source that cannot be
    /// opened fails the start cleanly (the error says which stream).
    pub fn start(config: RecorderConfig) -> anyhow::Result<RecorderHandle> {
        Recorder::start_after(config, StoredSeqs::default())
    }

    /// Asks the gateway how far the session's streams already go (see [`stored_seqs`]), then
    /// starts with each stream numbered after them. A gateway that cannot be asked does not
    /// stop the recording: the frames wait in the spool as in any outage.
    pub async fn start_checked(config: RecorderConfig) -> anyhow::Result<RecorderHandle> {
        // Unreachable or refusing: start anyway; the uplink reports the gateway's state.
        let stored = stored_seqs(&config.endpoint, &config.session_id)
            .await
            .unwrap_or_default();
        Recorder::start_after(config, stored)
    }

    /// Starts with each stream's frames numbered after `stored` (the gateway's `last_seq`s).
    pub fn start_after(
        config: RecorderConfig,
        stored: StoredSeqs,
    ) -> anyhow::Result<RecorderHandle> {
        let dir = config.session_dir()?;
        let events = EventSink::new();
        let mic = Prepared::open(&config, Stream::Mic, &config.input, &dir, stored.mic)?;
        let system = match &config.system {
            Some(spec) => Some(Prepared::open(
                &config,
                Stream::System,
                spec,
                &dir,
                stored.system,
            )?),
            None => None,
        };
        let resolver = config.resolve.as_ref().map(|r| {
            let mut rc = ResolveConfig::new(config.endpoint.clone(), &config.session_id);
            rc.every = r.every;
            rc.window = r.window;
            rc.roster = r.roster.clone();
            rc.asr_text = r.asr_text.clone();
            Resolver::start(rc, events.clone())
        });
        let stop = StopHandle::new();
        if let Some(limit) = config.duration.filter(|_| !is_tone(&config.input)) {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                stop.stop();
            });
        }
        let mic = mic.start(
            &config,
            &events,
            &stop,
            resolver.as_ref().map(Resolver::feed),
        )?;
        let system = match system {
            Some(system) => Some(system.start(&config, &events, &stop, None)?),
            None => None,
        };
        Ok(RecorderHandle {
            session_id: config.session_id,
            session_dir: dir,
            events,
            stop,
            mic,
            system,
            resolver,
        })
    }
}

fn is_tone(spec: &InputSpec) -> bool {
    matches!(spec, InputSpec::Tone { .. })
}

/// A stream whose spool and source are open, not yet running.
struct Prepared {
    stream: Stream,
    dir: PathBuf,
    spool: Spool,
    first_seq: u64,
    capture: source::Capture,
    /// See [`StreamRun::ends_by_itself`].
    ends_by_itself: bool,
}

impl Prepared {
    fn open(
        config: &RecorderConfig,
        stream: Stream,
        spec: &InputSpec,
        session_dir: &Path,
        stored_last_seq: u64,
    ) -> anyhow::Result<Prepared> {
        let dir = stream_dir(session_dir, stream);
        let mut spool = Spool::open(&dir, &config.session_id, config.durability)
            .with_context(|| format!("cannot open the {stream} stream's spool"))?;
        // Frames up to `stored_last_seq` came from elsewhere (see `stored.rs`): number after
        // them. The first seq is on the handle, and the CLI says where it resumes.
        spool
            .continue_after(stored_last_seq)
            .with_context(|| format!("cannot renumber the {stream} stream's spool"))?;
        let first_seq = spool.next_seq();
        // Earlier runs' audio into `local.wav`, cut or padded to the frames already numbered.
        resume::consolidate(
            &dir.join(LOCAL_COPY),
            &dir.join(RUN_COPY),
            Some(resume::frames_total(first_seq)),
        )
        .with_context(|| format!("cannot prepare the {stream} stream's local copy"))?;
        let options = OpenOptions {
            pacing: config.pacing,
            tone_duration: config.duration.filter(|_| is_tone(spec)),
        };
        let ends_by_itself = matches!(spec, InputSpec::Wav(_)) || options.tone_duration.is_some();
        let capture = match stream {
            Stream::Mic => source::open(spec, options),
            Stream::System => source::open_system(spec, options),
        }
        .with_context(|| match stream {
            Stream::Mic => format!("cannot open input {spec}"),
            Stream::System => format!("cannot open system audio {spec}"),
        })?;
        Ok(Prepared {
            stream,
            dir,
            spool,
            first_seq,
            capture,
            ends_by_itself,
        })
    }

    /// Starts the stream's uplink and its audio thread.
    fn start(
        self,
        config: &RecorderConfig,
        events: &EventSink,
        stop: &StopHandle,
        resolve: Option<ResolveFeed>,
    ) -> anyhow::Result<StreamRun> {
        let Prepared {
            stream,
            dir,
            spool,
            first_seq,
            capture,
            ends_by_itself,
        } = self;
        let mut uplink_config = UplinkConfig::new(config.endpoint.clone(), &config.session_id);
        uplink_config.stream = stream;
        uplink_config.backoff = config.backoff;
        let uplink = Uplink::start(uplink_config, spool, events.clone());
        let run_copy = LocalCopy::create(dir.join(RUN_COPY))
            .with_context(|| format!("cannot create the {stream} stream's local copy"))?;
        let outputs = audio::Outputs {
            stream,
            local_copy: run_copy,
            frames: uplink.frames(),
            resolve,
            events: events.clone(),
        };
        let system_device = stream == Stream::System
            && matches!(
                config.system,
                Some(InputSpec::DefaultDevice | InputSpec::Device(_))
            );
        let pipeline_config = PipelineConfig {
            // Written from the frames by the audio thread instead (see `audio.rs`).
            local_copy: None,
            // Frame `first_seq` is stamped with the capture time of this run's first sample.
            start_ms: None,
            first_seq,
            // System audio may pause (WASAPI loopback sends nothing while nothing plays):
            // silence in its place keeps it aligned with the mic, and is no failure.
            fill_gaps: system_device,
            stall_timeout: if system_device && cfg!(windows) {
                None
            } else {
                PipelineConfig::default().stall_timeout
            },
        };
        let (done_tx, done_rx) = oneshot::channel();
        let thread_stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("recorder-audio-{stream}"))
            .spawn(move || {
                let report = audio::run(capture, pipeline_config, thread_stop, outputs);
                let _ = done_tx.send(report);
            })
            .context("cannot start the audio thread")?;
        Ok(StreamRun {
            stream,
            dir,
            first_seq,
            audio: AudioState::Running(done_rx),
            uplink,
            ends_by_itself,
        })
    }
}

enum AudioState {
    Running(oneshot::Receiver<AudioReport>),
    Done(AudioReport),
}

impl AudioState {
    /// Waits for the audio thread's report. Cancel-safe.
    async fn finished(&mut self) {
        if let AudioState::Running(rx) = self {
            let report = rx.await.unwrap_or_else(|_| AudioReport {
                error: Some("the audio thread ended unexpectedly".into()),
                ..AudioReport::default()
            });
            *self = AudioState::Done(report);
        }
    }
}

/// One running stream of a recording: its own audio thread, spool and uplink.
struct StreamRun {
    stream: Stream,
    /// The stream's directory (spool and local copy), see [`stream_dir`].
    dir: PathBuf,
    first_seq: u64,
    audio: AudioState,
    uplink: Uplink,
    /// A file or a timed tone: its audio ends on its own, and is waited for whole.
    ends_by_itself: bool,
}

impl StreamRun {
    fn local_copy(&self) -> PathBuf {
        self.dir.join(LOCAL_COPY)
    }

    /// Waits for the audio (already told to stop), completes the local copy, then waits up to
    /// `drain_timeout` for the uplink.
    async fn finish(mut self, events: &EventSink, drain_timeout: Duration) -> StreamSummary {
        self.audio.finished().await;
        let AudioState::Done(report) = self.audio else {
            unreachable!("finished leaves Done")
        };
        let local_copy = self.dir.join(LOCAL_COPY);
        let merged = tokio::task::spawn_blocking({
            let run = self.dir.join(RUN_COPY);
            let local = local_copy.clone();
            move || resume::consolidate(&local, &run, None)
        })
        .await;
        if let Ok(Err(e)) | Err(e) = merged.map_err(anyhow::Error::from) {
            events.stream_error(self.stream, ErrorOrigin::LocalCopy, format!("{e:#}"));
        }
        let outcome = self.uplink.finish(drain_timeout).await;
        StreamSummary {
            frames: report.frames,
            samples: report.samples,
            last_seq: report.last_seq,
            uplink: outcome.counters,
            drained: outcome.drained,
            local_copy: Some(local_copy.display().to_string()),
            error: report.error,
        }
    }
}

/// A running recording.
pub struct RecorderHandle {
    session_id: String,
    session_dir: PathBuf,
    events: EventSink,
    /// Stops every stream's audio.
    stop: StopHandle,
    mic: StreamRun,
    system: Option<StreamRun>,
    resolver: Option<Resolver>,
}

impl RecorderHandle {
    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The latest uplink counters of the mic stream.
    pub fn counters(&self) -> watch::Receiver<UplinkCounters> {
        self.mic.uplink.counters()
    }

    /// The latest uplink counters of `stream`, if the recording has it.
    pub fn stream_counters(&self, stream: Stream) -> Option<watch::Receiver<UplinkCounters>> {
        self.run(stream).map(|run| run.uplink.counters())
    }

    /// The session's directory (the mic's spool and local copy, and `streams/`).
    pub fn session_dir(&self) -> &Path {
        &self.session_dir
    }

    /// The mic's local copy.
    pub fn local_copy(&self) -> PathBuf {
        self.mic.local_copy()
    }

    /// The local copy of `stream`, if the recording has it.
    pub fn stream_local_copy(&self, stream: Stream) -> Option<PathBuf> {
        self.run(stream).map(StreamRun::local_copy)
    }

    /// Seq of this run's first mic frame (greater than 1 when resuming).
    pub fn first_seq(&self) -> u64 {
        self.mic.first_seq
    }

    /// Seq of this run's first frame of `stream`, if the recording has it.
    pub fn stream_first_seq(&self, stream: Stream) -> Option<u64> {
        self.run(stream).map(|run| run.first_seq)
    }

    fn run(&self, stream: Stream) -> Option<&StreamRun> {
        match stream {
            Stream::Mic => Some(&self.mic),
            Stream::System => self.system.as_ref(),
        }
    }

    /// Waits until the mic's audio stops by itself (a file or timed tone ended, the duration
    /// was reached, or the source failed). A live system stream follows the mic: it ends with
    /// [`stop`](Self::stop), and its own failure is reported as an event without ending the
    /// recording. A system stream that ends on its own (a file) is waited for too, so stopping
    /// never cuts it short. Cancel-safe.
    pub async fn audio_finished(&mut self) {
        self.mic.audio.finished().await;
        if let Some(system) = self.system.as_mut().filter(|s| s.ends_by_itself) {
            system.audio.finished().await;
        }
    }

    /// Stops the audio of every stream (flushing each last partial frame, padded with
    /// silence), then waits up to `drain_timeout` for the gateway to ACK everything. Frames not
    /// ACKed by then stay in the spools for the next start.
    pub async fn stop(mut self, drain_timeout: Duration) -> Summary {
        self.stop.stop();
        let events = self.events.clone();
        let mic = self.mic.finish(&events, drain_timeout);
        let system = async {
            match self.system.take() {
                Some(run) => Some(run.finish(&events, drain_timeout).await),
                None => None,
            }
        };
        let (mic, system) = tokio::join!(mic, system);
        if let Some(resolver) = self.resolver.take() {
            resolver.stop().await;
        }
        let summary = Summary {
            session_id: self.session_id.clone(),
            frames: mic.frames,
            samples: mic.samples,
            last_seq: mic.last_seq,
            drained: mic.drained && system.as_ref().is_none_or(|s| s.drained),
            uplink: mic.uplink,
            local_copy: mic.local_copy,
            system: system.map(Box::new),
        };
        self.events.emit(Event::Finished(summary.clone()));
        summary
    }
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
