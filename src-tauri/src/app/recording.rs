//! One recording in progress: the engine's handle, owned by a task, plus the forwarding of its
//! events to the page.
//!
//! The task ends the recording either when asked ([`Recording::stop`]) or when the audio ends by
//! itself (a WAV input reached its end, the device vanished): in both cases it calls the engine's
//! `stop`, which drains the spool for a while and emits `finished`. Owning the handle in a task
//! keeps the commands short: they never hold the engine while waiting on the network.
//!
//! Meeting audio is best effort: when its source cannot be opened (no PulseAudio, no
//! permission), the recording starts with the mic alone and [`MeetingAudio::Unavailable`] says
//! why, so the window can tell the interviewer the remote side is not being recorded.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use recorder::engine::{Recorder, RecorderConfig};
use recorder::events::{Stream, Summary};
use serde::Serialize;
use tauri::async_runtime::JoinHandle;
use tokio::sync::oneshot;

use super::ui_events::UiEvents;

/// How long a recording that ended by itself waits for the gateway's last ACKs.
const SELF_END_DRAIN: Duration = Duration::from_secs(30);

/// What the window shows about the running recording.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingInfo {
    pub session_id: String,
    /// Wall clock of the start, for the elapsed timer.
    pub started_at_ms: u64,
    /// Spool and local copy of the session.
    pub session_dir: String,
    pub local_wav: String,
    /// Whether live speaker resolution runs (off when the bundled gateway has no inference).
    pub resolving: bool,
    /// Seq of this run's first frame; above 1 when the session is resumed.
    pub first_seq: u64,
    /// Whether the meeting audio (the `system` stream) is being recorded, and if not why.
    pub meeting_audio: MeetingAudio,
}

/// The meeting audio's part of a recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MeetingAudio {
    /// Recorded as the session's `system` stream from `source` (an input spec).
    Recording { source: String, local_wav: String },
    /// Turned off in the settings.
    Off,
    /// Asked for, but its source could not be opened; the mic records on its own.
    Unavailable { reason: String },
}

pub struct Recording {
    pub info: RecordingInfo,
    /// Asks the task to stop, with how long to wait for the spool to drain.
    stop: Option<oneshot::Sender<Duration>>,
    task: JoinHandle<Summary>,
}

impl Recording {
    /// Starts the engine. Must be called inside the async runtime.
    ///
    /// If the engine cannot start with the meeting audio but can without it, the meeting audio
    /// was the problem: the recording goes on with the mic and says so.
    pub async fn start(config: RecorderConfig, events: UiEvents) -> anyhow::Result<Recording> {
        let resolving = config.resolve.is_some();
        let session_id = config.session_id.clone();
        let system_source = config.system.as_ref().map(ToString::to_string);
        let (mut handle, unavailable) = match Recorder::start_checked(config.clone()).await {
            Ok(handle) => (handle, None),
            Err(with_system) if config.system.is_some() => {
                let mic_only = RecorderConfig {
                    system: None,
                    ..config
                };
                (
                    Recorder::start_checked(mic_only).await?,
                    Some(format!("{with_system:#}")),
                )
            }
            Err(e) => return Err(e),
        };
        tauri::async_runtime::spawn(events.forward(handle.subscribe()));
        let meeting_audio = match (unavailable, system_source) {
            (Some(reason), _) => MeetingAudio::Unavailable { reason },
            (None, Some(source)) => MeetingAudio::Recording {
                source,
                local_wav: handle
                    .stream_local_copy(Stream::System)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            },
            (None, None) => MeetingAudio::Off,
        };
        let info = RecordingInfo {
            session_id,
            started_at_ms: now_ms(),
            session_dir: handle.session_dir().display().to_string(),
            local_wav: handle.local_copy().display().to_string(),
            resolving,
            first_seq: handle.first_seq(),
            meeting_audio,
        };
        let (stop, stop_requested) = oneshot::channel::<Duration>();
        let task = tauri::async_runtime::spawn(async move {
            let drain = tokio::select! {
                () = handle.audio_finished() => SELF_END_DRAIN,
                drain = stop_requested => drain.unwrap_or(SELF_END_DRAIN),
            };
            handle.stop(drain).await
        });
        Ok(Recording {
            info,
            stop: Some(stop),
            task,
        })
    }

    /// Whether audio is still being captured (false once it ended by itself).
    pub fn is_active(&self) -> bool {
        !self.task.inner().is_finished()
    }

    /// Stops the audio and waits up to `drain` for every frame to be ACKed.
    pub async fn stop(mut self, drain: Duration) -> anyhow::Result<Summary> {
        if let Some(stop) = self.stop.take() {
            // Already gone if the audio ended by itself; the task is then stopping anyway.
            let _ = stop.send(drain);
        }
        self.task.await.context("the recording task failed")
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The local copy of a session's `stream` under a recordings root, if it exists.
pub fn local_wav(
    recordings: &std::path::Path,
    session_id: &str,
    stream: Stream,
) -> Option<PathBuf> {
    let session = recorder::engine::session_dir(recordings, session_id).ok()?;
    let path = recorder::stream::stream_dir(&session, stream).join(recorder::engine::LOCAL_COPY);
    path.exists().then_some(path)
}
