//! The app's state and every action the window can take, as plain async methods over the
//! engine, the settings and the gateway host. The Tauri commands (`commands.rs`) only call these.
//!
//! Locks: `recording` and `gateway` are tokio mutexes because starting, stopping and finalizing
//! await the network while they hold them (two clicks must not start two recordings); `settings`
//! is a std mutex, only ever held to read or replace the value. Order: `recording`, then
//! `gateway`, then `settings`. The deliveries' own lock is taken with `recording` held, never
//! the other way round.
//!
//! A session's life as the window shows it: Start records, Stop pauses (frames the gateway did
//! not take in time are delivered in the background, see `delivery.rs`), Start again resumes
//! it, Finalize ends it; the page then starts a new session on the next Start, and asks before
//! recording into a finalized one (it learns which are from [`AppState::session_view`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use recorder::engine::{self, RecorderConfig, ResolveSettings};
use recorder::events::{Stream, Summary};
use recorder::source;
use serde::Serialize;
use serde_json::{Value, json};

use super::delivery::{Deliveries, Ended, Plan};
use super::gateway_host::{GatewayHost, GatewayStatus};
use super::held::{Delivery, HeldBoard, HeldSession};
use super::mic_test::MicTest;
use super::paths::Paths;
use super::recording::{self, Recording, RecordingInfo};
use super::session::{self, SessionView};
use super::sessions_view::SessionsLibrary;
use super::settings::{self, GatewayMode, Settings};
use super::speakers;
use super::titles::Titles;
use super::ui_events::UiEvents;

/// How long Stop waits for the gateway's last ACKs before leaving frames in the spool.
const STOP_DRAIN: Duration = Duration::from_secs(15);
/// How long Finalize waits for the spool to drain before it gives up and says so.
const FINALIZE_DRAIN: Duration = Duration::from_secs(60);
/// How long a background delivery of held audio keeps trying (per stream) before it stops
/// and leaves the retry to the "Send held audio" button.
const BACKGROUND_DELIVERY: Duration = Duration::from_secs(30 * 60);
/// How much audio each live resolution sends.
const RESOLVE_WINDOW: Duration = Duration::from_secs(10);

pub struct AppState {
    pub(super) paths: Paths,
    settings: Mutex<Settings>,
    /// Why the settings file could not be used, until the next save.
    settings_warning: Mutex<Option<String>>,
    /// `RECORDER_INPUT`, if set: shown as an input choice and selected at launch.
    input_override: Option<String>,
    /// `RECORDER_SYSTEM`, if set: the meeting audio's source instead of the default output.
    system_override: Option<String>,
    pub(super) gateway: tokio::sync::Mutex<GatewayHost>,
    pub(super) recording: tokio::sync::Mutex<Option<Recording>>,
    /// The end of the most recent recording in this run of the app.
    last_summary: Mutex<Option<Summary>>,
    /// Sessions finalized in this run of the app (id → finalized_at), for when the gateway
    /// cannot say.
    finalized: Mutex<HashMap<String, String>>,
    /// Sessions with audio held on this computer, as the page lists them.
    pub(super) held: HeldBoard,
    pub(super) deliveries: Deliveries,
    events: UiEvents,
    /// The interviewer's titles for sessions (the Sessions view).
    pub(super) titles: Titles,
    /// The Sessions view's player, export folder and deletes the gateway owes.
    pub(super) library: SessionsLibrary,
    /// "Test microphone", while it runs (never while recording: Start ends it first).
    mic_test: Mutex<Option<MicTest>>,
}

/// Everything the window needs to draw itself after a (re)load.
#[derive(Serialize)]
pub struct StatusView {
    settings: Settings,
    gateway: GatewayStatus,
    recording: Option<RecordingInfo>,
    last_summary: Option<Summary>,
    input_override: Option<String>,
    system_override: Option<String>,
    /// Whether this OS can record meeting audio at all.
    system_audio_supported: bool,
    warning: Option<String>,
    config_dir: String,
    data_dir: String,
    /// Sessions with audio held on this computer (found at launch, or left by a Stop).
    held: Vec<HeldSession>,
}

/// An input choice for the picker.
#[derive(Serialize)]
pub struct InputChoice {
    /// The input spec to store in the settings.
    spec: String,
    label: String,
    detail: String,
}

/// Finalize's outcome, with where the files are.
#[derive(Serialize)]
pub struct FinalizeView {
    session_id: String,
    result_key: String,
    event_count: u64,
    finalized_at: String,
    /// `result.json` on this computer (bundled gateway only).
    result_path: Option<String>,
    /// Where the result is on a remote gateway.
    result_location: String,
    local_wav: Option<String>,
    /// The meeting audio's local copy, if the session has one.
    system_wav: Option<String>,
    summary: Option<Summary>,
}

/// A run-only override from the environment (trimmed; empty means unset).
fn env_override(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// What Finalize says when audio is still on its way.
const NOT_YET: &str = "They are safe on this computer and are being sent in the background; \
                       finalize once they are delivered.";

/// Seconds of audio, of every stream, still waiting in the spools.
fn undelivered(summary: &Summary) -> u64 {
    summary.uplink.pending + summary.system.as_ref().map_or(0, |s| s.uplink.pending)
}

/// The folders "open folder" may show.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Folder {
    /// The session's spool and local WAV.
    Recording,
    /// The bundled gateway's folder with `result.json`.
    Result,
}

impl AppState {
    /// Loads the settings and starts the gateway they ask for.
    pub async fn open(paths: Paths) -> AppState {
        let (mut settings, warning) = Settings::load(&paths.settings_file());
        let input_override = env_override(settings::INPUT_ENV);
        let system_override = env_override(settings::SYSTEM_ENV);
        if let Some(input) = &input_override {
            settings.input = input.clone();
        }
        let mut gateway = GatewayHost::new(paths.gateway_dir());
        gateway.apply(&settings).await;
        let events = UiEvents::default();
        let held = HeldBoard::new(events.clone());
        // Sessions an earlier run left with audio the gateway never got: offered, not sent
        // unasked (the gateway they were meant for may be gone).
        let mut warning = warning;
        match engine::held_sessions(&paths.recordings_dir()) {
            Ok(found) => {
                for frames in found {
                    held.put(HeldSession::new(&frames, Delivery::Waiting));
                }
            }
            Err(e) => {
                warning.get_or_insert(format!(
                    "Could not look for audio held from earlier sessions: {e:#}"
                ));
            }
        }
        let (titles, titles_warning) = Titles::load(paths.titles_file());
        if let Some(problem) = titles_warning {
            warning.get_or_insert(problem);
        }
        // Copies of gateway audio that earlier versions downloaded for the player (it now
        // streams it from the gateway).
        let _ = std::fs::remove_dir_all(paths.playback_dir());
        let library = SessionsLibrary::open(&paths);
        AppState {
            paths,
            settings: Mutex::new(settings),
            settings_warning: Mutex::new(warning),
            input_override,
            system_override,
            gateway: tokio::sync::Mutex::new(gateway),
            recording: tokio::sync::Mutex::new(None),
            last_summary: Mutex::new(None),
            finalized: Mutex::new(HashMap::new()),
            deliveries: Deliveries::new(held.clone()),
            held,
            events,
            titles,
            library,
            mic_test: Mutex::new(None),
        }
    }

    pub fn events(&self) -> &UiEvents {
        &self.events
    }

    /// The settings in use (the last saved).
    pub fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub async fn status(&self) -> StatusView {
        let recording = self.recording.lock().await;
        let recording = recording
            .as_ref()
            .filter(|r| r.is_active())
            .map(|r| r.info.clone());
        let gateway = self.gateway.lock().await.status();
        StatusView {
            settings: self.settings(),
            gateway,
            recording,
            last_summary: self
                .last_summary
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            input_override: self.input_override.clone(),
            system_override: self.system_override.clone(),
            system_audio_supported: settings::SYSTEM_AUDIO_SUPPORTED,
            warning: self
                .settings_warning
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            config_dir: super::paths::shown(&self.paths.config_dir),
            data_dir: super::paths::shown(&self.paths.data_dir),
            held: self.held.list(),
        }
    }

    /// The session in Setup: recorded time, finalized or not, speakers, held audio.
    pub async fn session_view(&self) -> anyhow::Result<SessionView> {
        let session_id = self.settings().session_id;
        let endpoint = self.gateway.lock().await.endpoint().ok();
        let mut view =
            session::look_up(endpoint.as_ref(), &self.paths.recordings_dir(), &session_id).await?;
        if view.finalized_at.is_none() {
            view.finalized_at = self.finalized_here(&session_id);
        }
        Ok(view)
    }

    /// When this run of the app finalized the session, if it did.
    pub(super) fn finalized_here(&self, session_id: &str) -> Option<String> {
        if let Some(Delivery::Finalized { finalized_at, .. }) =
            self.held.get(session_id).map(|s| s.delivery)
        {
            return Some(finalized_at);
        }
        self.finalized
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(session_id)
            .cloned()
    }

    /// Forgets that this run finalized a session (it was deleted).
    pub(super) fn forget_finalized(&self, session_id: &str) {
        self.finalized
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session_id);
    }

    /// "Send held audio" (and "Send and finalize") for a session of the held list: starts
    /// its delivery in the background; the held list shows how it goes.
    pub async fn send_held(&self, session_id: &str, then_finalize: bool) -> anyhow::Result<()> {
        let recording = self.recording.lock().await;
        if recording
            .as_ref()
            .is_some_and(|r| r.is_active() && r.info.session_id == session_id)
        {
            anyhow::bail!(
                "Session {session_id} is being recorded: its held audio is sent with the recording."
            );
        }
        let frames = engine::held_frames(&self.paths.recordings_dir(), session_id)?;
        self.held.put(HeldSession::new(
            &frames,
            Delivery::Sending { problem: None },
        ));
        let endpoint = self.gateway.lock().await.endpoint()?;
        self.deliveries
            .start(self.plan(endpoint, session_id, BACKGROUND_DELIVERY, then_finalize))
            .await?;
        Ok(())
    }

    fn plan(
        &self,
        endpoint: recorder::endpoint::GatewayEndpoint,
        session_id: &str,
        timeout: Duration,
        then_finalize: bool,
    ) -> Plan {
        Plan {
            endpoint,
            spool_root: self.paths.recordings_dir(),
            session_id: session_id.to_owned(),
            timeout,
            then_finalize,
        }
    }

    /// After a Stop that left frames in the spools: sends them in the background.
    async fn deliver_in_background(&self, session_id: &str) {
        let frames = match engine::held_frames(&self.paths.recordings_dir(), session_id) {
            Ok(frames) if frames.total() > 0 => frames,
            Ok(_) => return,
            Err(e) => {
                self.events.send(json!({"type": "error", "origin": "app",
                    "message": format!("Cannot read the audio held for session {session_id}: {e:#}")}));
                return;
            }
        };
        let sending = self
            .gateway
            .lock()
            .await
            .endpoint()
            .map(|endpoint| self.plan(endpoint, session_id, BACKGROUND_DELIVERY, false));
        let delivery = match &sending {
            Ok(_) => Delivery::Sending { problem: None },
            Err(e) => Delivery::Failed {
                reason: format!("{e:#}"),
            },
        };
        self.held.put(HeldSession::new(&frames, delivery));
        if let Ok(plan) = sending
            && let Err(e) = self.deliveries.start(plan).await
        {
            let reason = format!("{e:#}");
            self.held
                .update(session_id, |s| s.delivery = Delivery::Failed { reason });
        }
    }

    /// Input devices, plus a test tone and the `RECORDER_INPUT` override.
    pub async fn inputs(&self) -> anyhow::Result<Vec<InputChoice>> {
        // cpal enumerates synchronously and can take a moment: keep it off the async workers.
        let devices = tauri::async_runtime::spawn_blocking(source::list_devices).await??;
        let mut choices = vec![InputChoice {
            spec: "default".into(),
            label: "System default input".into(),
            detail: String::new(),
        }];
        for device in devices {
            let detail = device
                .default_config
                .as_ref()
                .map(|c| {
                    format!(
                        "{} ch · {} Hz · {}",
                        c.channels, c.max_rate, c.sample_format
                    )
                })
                .unwrap_or_default();
            let label = if device.is_default {
                format!("{} (default)", device.name)
            } else {
                device.name.clone()
            };
            choices.push(InputChoice {
                spec: device.name,
                label,
                detail,
            });
        }
        choices.push(InputChoice {
            spec: "tone:440".into(),
            label: "Test tone, 440 Hz".into(),
            detail: "generated; no microphone needed".into(),
        });
        if let Some(spec) = &self.input_override
            && !choices.iter().any(|c| &c.spec == spec)
        {
            choices.push(InputChoice {
                spec: spec.clone(),
                label: spec.clone(),
                detail: format!("set by {}", settings::INPUT_ENV),
            });
        }
        Ok(choices)
    }

    /// Validates, saves and applies new settings (restarting the bundled gateway if its
    /// inference changed). Refused while recording.
    pub async fn save_settings(&self, new: Settings) -> anyhow::Result<StatusView> {
        let recording = self.recording.lock().await;
        if recording.as_ref().is_some_and(Recording::is_active) {
            anyhow::bail!("Stop the recording before changing settings.");
        }
        let new = new.normalized()?;
        new.save(&self.paths.settings_file())?;
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = new.clone();
        *self
            .settings_warning
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        let status = self.gateway.lock().await.apply(&new).await;
        self.events
            .send(json!({"type": "gateway", "status": status}));
        drop(recording);
        Ok(self.status().await)
    }

    /// Picks a fresh session id and saves it.
    pub async fn new_session(&self) -> anyhow::Result<StatusView> {
        let mut settings = self.settings();
        settings.session_id = settings::new_session_id();
        self.save_settings(settings).await
    }

    /// "Test microphone": the input's level on the meter, nothing recorded. Refused while
    /// recording (the meter shows the recording's level then).
    pub async fn start_mic_test(&self) -> anyhow::Result<()> {
        let recording = self.recording.lock().await;
        if recording.as_ref().is_some_and(Recording::is_active) {
            anyhow::bail!("The meter already shows the recording's level.");
        }
        self.stop_mic_test().await;
        let spec = self.settings().input_spec()?;
        let test = tauri::async_runtime::spawn_blocking({
            let events = self.events.clone();
            move || MicTest::start(&spec, events)
        })
        .await??;
        *self.mic_test.lock().unwrap_or_else(|e| e.into_inner()) = Some(test);
        drop(recording);
        Ok(())
    }

    /// Ends the microphone test, if one runs, once its input is closed.
    pub async fn stop_mic_test(&self) {
        let test = self
            .mic_test
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(test) = test {
            let _ = tauri::async_runtime::spawn_blocking(move || test.stop()).await;
        }
    }

    pub async fn start(&self) -> anyhow::Result<RecordingInfo> {
        let mut recording = self.recording.lock().await;
        if recording.as_ref().is_some_and(Recording::is_active) {
            anyhow::bail!("Already recording.");
        }
        // The test and the recording would open the same input.
        self.stop_mic_test().await;
        // A recording that ended by itself: collect it first (it has drained or timed out).
        if let Some(done) = recording.take() {
            let summary = done.stop(Duration::ZERO).await?;
            self.remember(summary);
        }
        let settings = self.settings().normalized()?;
        self.refuse_if_deleting(&settings.session_id)?;
        // The recording sends what the session holds first: a delivery of it lets go now.
        self.deliveries.stop(&settings.session_id).await?;
        let (endpoint, resolve) = {
            let gateway = self.gateway.lock().await;
            let status = gateway.status();
            // Without inference the bundled gateway can only answer 503: do not ask it.
            let resolve = !(status.mode == GatewayMode::Bundled
                && status.inference_configured == Some(false));
            (gateway.endpoint()?, resolve)
        };
        let mut config = RecorderConfig::new(
            endpoint,
            settings.session_id.clone(),
            settings.input_spec()?,
            self.paths.recordings_dir(),
        );
        config.system = settings.system_spec(self.system_override.as_deref())?;
        config.resolve = resolve.then(|| ResolveSettings {
            every: Duration::from_secs_f64(settings.resolve_every_secs),
            window: RESOLVE_WINDOW,
            roster: settings.roster.clone(),
            asr_text: None,
        });
        let started = match Recording::start(config, self.events.clone()).await {
            Ok(started) => started,
            Err(e) => {
                // Not recorded: what it holds is still on the held list (and not sending).
                if let Some(mut held) = self.held.get(&settings.session_id) {
                    held.delivery = Delivery::Waiting;
                    self.held.put(held);
                }
                return Err(e);
            }
        };
        self.held.remove(&settings.session_id);
        let info = started.info.clone();
        *recording = Some(started);
        self.events
            .send(json!({"type": "recording", "state": "recording", "info": info}));
        Ok(info)
    }

    /// Stops (pauses) the recording; frames the gateway has not ACKed within a few seconds stay
    /// in the spool and are delivered in the background (or go first on the next Start).
    pub async fn stop(&self) -> anyhow::Result<Summary> {
        let mut recording = self.recording.lock().await;
        let running = recording
            .take()
            .ok_or_else(|| anyhow::anyhow!("Not recording."))?;
        self.events
            .send(json!({"type": "recording", "state": "stopping"}));
        let summary = running.stop(STOP_DRAIN).await;
        self.events
            .send(json!({"type": "recording", "state": "idle"}));
        let summary = summary?;
        self.remember(summary.clone());
        if !summary.drained {
            self.deliver_in_background(&summary.session_id).await;
        }
        Ok(summary)
    }

    fn remember(&self, summary: Summary) {
        *self.last_summary.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary);
    }

    pub async fn rename_speaker(&self, cluster_id: &str, name: &str) -> anyhow::Result<Value> {
        let session_id = self.settings().session_id;
        let endpoint = self.gateway.lock().await.endpoint()?;
        speakers::bind(&endpoint, &session_id, cluster_id, name).await
    }

    /// Stops if needed, waits for the spool to drain, and asks the gateway for `result.json`.
    pub async fn finalize(&self) -> anyhow::Result<FinalizeView> {
        let mut recording = self.recording.lock().await;
        let session_id = self.settings().session_id;
        let mut just_stopped = None;
        if let Some(running) = recording.take() {
            self.events
                .send(json!({"type": "recording", "state": "stopping"}));
            let summary = running.stop(FINALIZE_DRAIN).await;
            self.events
                .send(json!({"type": "recording", "state": "idle"}));
            let summary = summary?;
            self.remember(summary.clone());
            just_stopped = Some(summary);
        }
        let last = self
            .last_summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|s| s.session_id == session_id);
        // `drained` covers every stream: the mic's and the meeting audio's. The stop already
        // waited as long as Finalize does: what is left goes on in the background.
        if let Some(summary) = just_stopped.filter(|s| !s.drained) {
            self.deliver_in_background(&session_id).await;
            anyhow::bail!(
                "{} recorded seconds have not reached the gateway yet. {NOT_YET}",
                undelivered(&summary)
            );
        }
        // Audio of this session still held here (an earlier Stop, an earlier run of the app)
        // is delivered first; a background delivery of it is taken over.
        let held = engine::held_frames(&self.paths.recordings_dir(), &session_id)?;
        if held.total() > 0 {
            self.held
                .put(HeldSession::new(&held, Delivery::Sending { problem: None }));
            let endpoint = self.gateway.lock().await.endpoint()?;
            let plan = self.plan(endpoint, &session_id, FINALIZE_DRAIN, false);
            match self.deliveries.run(plan).await? {
                Ended::Delivered => {}
                Ended::Failed(reason) => {
                    anyhow::bail!("The held audio could not be sent: {reason}")
                }
                Ended::Held(left) => {
                    self.deliver_in_background(&session_id).await;
                    anyhow::bail!(
                        "{left} recorded seconds have not reached the gateway yet. {NOT_YET}"
                    );
                }
                Ended::Cancelled => anyhow::bail!(
                    "Sending the held audio was interrupted; finalize once it is delivered."
                ),
            }
        }
        self.events
            .send(json!({"type": "recording", "state": "finalizing"}));
        let gateway = self.gateway.lock().await;
        let endpoint = gateway.endpoint()?;
        let answer = engine::finalize(&endpoint, &session_id).await;
        self.events
            .send(json!({"type": "recording", "state": "idle"}));
        let answer = answer?;
        self.finalized
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session_id.clone(), answer.finalized_at.clone());
        self.held.update(&session_id, |s| {
            s.delivery = Delivery::Finalized {
                result_key: answer.result_key.clone(),
                finalized_at: answer.finalized_at.clone(),
            }
        });
        let result_path = gateway
            .local_object_path(&answer.result_key)
            .map(|p| p.display().to_string());
        Ok(FinalizeView {
            result_location: format!("{} → {}", endpoint.base(), answer.result_key),
            session_id: answer.session_id,
            result_key: answer.result_key,
            event_count: answer.event_count,
            finalized_at: answer.finalized_at,
            result_path,
            local_wav: recording::local_wav(&self.paths.recordings_dir(), &session_id, Stream::Mic)
                .map(|p| p.display().to_string()),
            system_wav: recording::local_wav(
                &self.paths.recordings_dir(),
                &session_id,
                Stream::System,
            )
            .map(|p| p.display().to_string()),
            summary: last,
        })
    }

    /// The folder "Open folder" shows for the session in Setup.
    pub async fn folder(&self, folder: Folder) -> anyhow::Result<PathBuf> {
        let session_id = self.settings().session_id;
        Ok(match folder {
            Folder::Recording => engine::session_dir(&self.paths.recordings_dir(), &session_id)?,
            Folder::Result => {
                let safe = contract::session_id::SessionId::parse(&session_id)
                    .map_err(|e| anyhow::anyhow!("invalid session id: {e}"))?;
                let key = format!("sessions/{}", safe.safe());
                self.gateway
                    .lock()
                    .await
                    .local_object_path(&key)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "The result is on the remote gateway, not on this computer."
                        )
                    })?
            }
        })
    }

    /// The session in Setup's local copy of the microphone, for "Play".
    pub fn local_copy(&self) -> anyhow::Result<PathBuf> {
        let session_id = self.settings().session_id;
        recording::local_wav(&self.paths.recordings_dir(), &session_id, Stream::Mic)
            .ok_or_else(|| anyhow::anyhow!("Session {session_id} has no local copy yet."))
    }

    /// Whether a recording runs now, without waiting: a start or stop in progress (the lock
    /// is held) counts as recording, so quitting then still asks first.
    pub fn recording_now(&self) -> bool {
        self.recording
            .try_lock()
            .map_or(true, |r| r.as_ref().is_some_and(Recording::is_active))
    }

    /// Where the log files are ("Open logs").
    pub fn log_dir(&self) -> PathBuf {
        self.paths.log_dir.clone()
    }

    /// On exit: stop recording and deliveries (unsent frames stay in the spool) and stop the
    /// bundled gateway.
    pub async fn shutdown(&self) {
        self.stop_mic_test().await;
        self.deliveries.stop_all().await;
        if let Some(running) = self.recording.lock().await.take() {
            let _ = running.stop(Duration::from_secs(3)).await;
        }
        self.gateway.lock().await.stop_bundled().await;
    }
}
