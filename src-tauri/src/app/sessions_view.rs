//! The Sessions view's actions: list, rename, play, export and delete past sessions.
//!
//! Each is a method of [`AppState`] over `history.rs` (the list), `titles.rs` (renames),
//! `audio_server.rs` and `gateway_audio.rs` (the player's audio), `export.rs` and
//! `export_folder.rs` (the files) and `deletes.rs` (deletes the gateway still owes), kept here
//! so `state.rs` stays about the session being recorded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use contract::session_id::SessionId;
use recorder::endpoint::{CallError, GatewayEndpoint};
use recorder::engine;
use recorder::events::Stream;
use serde::Serialize;
use tauri::{AppHandle, Manager as _};
use tauri_plugin_dialog::DialogExt as _;

use super::audio_server::{AudioServer, Source};
use super::deletes::DeleteQueue;
use super::export::{self, ExportView};
use super::export_folder::ExportFolder;
use super::gateway_audio::GatewayAudio;
use super::gateway_host::GatewayStatus;
use super::history::{self, SessionsView};
use super::paths::{self, Paths};
use super::recording;
use super::settings::GatewayMode;
use super::state::AppState;

/// How long the gateway may take to delete a session.
const DELETE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often deletes the gateway still owes are tried again.
const DELETE_RETRY: Duration = Duration::from_secs(5);

/// The Sessions view's own state.
pub struct SessionsLibrary {
    /// The player's server, started by the first Play.
    player: tokio::sync::OnceCell<AudioServer>,
    /// Where exports go.
    export_folder: ExportFolder,
    /// Sessions deleted here that their gateway has not deleted yet.
    deletes: DeleteQueue,
    /// Whether the background retry of `deletes` runs (one at a time).
    retrying: AtomicBool,
}

impl SessionsLibrary {
    pub fn open(paths: &Paths) -> SessionsLibrary {
        let file = paths.data_dir.join("pending-deletes.json");
        let deletes = DeleteQueue::load(file.clone()).unwrap_or_else(|e| {
            log::error!("{e:#}; it is set aside and the list starts empty");
            let _ = std::fs::rename(&file, file.with_extension("json.unreadable"));
            DeleteQueue::load(file).expect("a missing file is an empty queue")
        });
        SessionsLibrary {
            player: tokio::sync::OnceCell::new(),
            export_folder: ExportFolder::load(
                paths.config_dir.join("export-folder.json"),
                paths.exports_dir.clone(),
            ),
            deletes,
            retrying: AtomicBool::new(false),
        }
    }
}

/// What the player gets for a session.
#[derive(Debug, Clone, Serialize)]
pub struct PlaybackView {
    /// The player server's address of its audio (`audio_server.rs`).
    pub url: String,
}

/// What a delete did, said in one sentence for the page.
#[derive(Debug, Clone, Serialize)]
pub struct DeleteView {
    pub session_id: String,
    /// `deleted` (gone from the gateway too, or never on it), `queued` (the gateway could not
    /// be reached: deleted there when it is back) or `kept` (the gateway refused: still there).
    pub gateway: &'static str,
    pub message: String,
}

/// What the queue calls the gateway in use: `bundled`, or the remote one's address.
fn gateway_name(status: &GatewayStatus) -> String {
    match status.mode {
        GatewayMode::Bundled => "bundled".to_owned(),
        GatewayMode::Remote => status.url.clone().unwrap_or_default(),
    }
}

/// Whether a failed delete may succeed later by itself (the gateway was away or overloaded),
/// rather than being a refusal that retrying would only repeat.
fn worth_retrying(error: &CallError) -> bool {
    match error {
        CallError::Unreachable { .. } => true,
        CallError::Refused { status, .. } => *status >= 500,
    }
}

/// Keeps trying the deletes the gateway owes, every few seconds, until none is left; one loop
/// at a time. Called at launch and after a delete was queued.
pub fn watch_deletes(handle: &AppHandle) {
    let state = handle.state::<AppState>();
    if state.library.deletes.is_empty() || state.library.retrying.swap(true, Ordering::SeqCst) {
        return;
    }
    let handle = handle.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(DELETE_RETRY).await;
            let state = handle.state::<AppState>();
            if state.retry_deletes().await {
                continue;
            }
            state.library.retrying.store(false, Ordering::SeqCst);
            // A delete queued between the last try and now found the loop still running.
            if state.library.deletes.is_empty()
                || state.library.retrying.swap(true, Ordering::SeqCst)
            {
                break;
            }
        }
    });
}

impl AppState {
    /// Every session, newest first: the gateway's and this computer's.
    pub async fn list_sessions(&self) -> anyhow::Result<SessionsView> {
        let endpoint = self.gateway.lock().await.endpoint();
        let (gateway, gateway_error) = match endpoint {
            Ok(endpoint) => match history::gateway_sessions(&endpoint).await {
                Ok(sessions) => (sessions, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            },
            Err(e) => (Vec::new(), Some(format!("{e:#}"))),
        };
        let local = history::local_sessions(&self.paths.recordings_dir())?;
        let mut sessions = history::merge(gateway, local, |id| self.titles.get(id));
        // Deleted here, waiting for the gateway: not shown as if they were still kept.
        sessions.retain(|row| !self.library.deletes.contains(&row.session_id));
        for row in &mut sessions {
            if row.finalized_at.is_none() {
                row.finalized_at = self.finalized_here(&row.session_id);
            }
        }
        Ok(SessionsView {
            sessions,
            gateway_error,
            deleting: self.library.deletes.ids(),
            export_dir: paths::shown(&self.library.export_folder.current()),
        })
    }

    /// Gives a session a title (blank: back to its id). Returns the title kept.
    pub fn rename_session(&self, session_id: &str, title: &str) -> anyhow::Result<Option<String>> {
        self.titles.set(session_id, title)
    }

    /// What the player plays for a session: its local copy, or else its audio on the gateway,
    /// read from there as the player reads (never downloaded first).
    pub async fn playback_source(&self, session_id: &str) -> anyhow::Result<Source> {
        if let Some(copy) =
            recording::local_wav(&self.paths.recordings_dir(), session_id, Stream::Mic)
        {
            return Ok(Source::File(copy));
        }
        let audio = GatewayAudio {
            endpoint: self.gateway.lock().await.endpoint()?,
            session_id: session_id.to_owned(),
            stream: Stream::Mic,
        };
        audio.check().await?;
        Ok(Source::Gateway(audio))
    }

    /// Where the player streams a session's audio from: the player server's address of
    /// [`playback_source`](Self::playback_source).
    pub async fn session_audio(&self, session_id: &str) -> anyhow::Result<PlaybackView> {
        let source = self.playback_source(session_id).await?;
        let player = self
            .library
            .player
            .get_or_try_init(AudioServer::start)
            .await?;
        Ok(PlaybackView {
            url: player.address_of(source),
        })
    }

    /// Exports a session's files into its own folder under the exports directory.
    pub async fn export_session(&self, session_id: &str) -> anyhow::Result<ExportView> {
        let endpoint = self.gateway.lock().await.endpoint().ok();
        export::export(
            endpoint.as_ref(),
            &self.paths.recordings_dir(),
            &self.export_dir(session_id)?,
            session_id,
            self.titles.get(session_id),
        )
        .await
    }

    fn export_dir(&self, session_id: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .library
            .export_folder
            .current()
            .join(safe_name(session_id)?))
    }

    /// "Choose folder…": the native folder dialog, opened at the current export folder; the
    /// choice is kept for later exports and runs. Returns the folder exports go to (as the
    /// window shows it), unchanged when the dialog was cancelled.
    pub async fn choose_export_folder(&self, handle: &AppHandle) -> anyhow::Result<String> {
        let current = self.library.export_folder.current();
        let (answer, chosen) = tokio::sync::oneshot::channel();
        let mut dialog = handle
            .dialog()
            .file()
            .set_title("Choose the folder for exports");
        if current.is_dir() {
            dialog = dialog.set_directory(&current);
        }
        dialog.pick_folder(move |folder| {
            let _ = answer.send(folder);
        });
        if let Some(folder) = chosen
            .await
            .context("the folder dialog closed without an answer")?
        {
            let folder = folder
                .into_path()
                .context("the chosen folder is not a folder on this computer")?;
            self.library.export_folder.choose(&folder)?;
        }
        Ok(paths::shown(&self.library.export_folder.current()))
    }

    /// A session's export folder, for "Open folder".
    pub fn export_folder(&self, session_id: &str) -> anyhow::Result<PathBuf> {
        self.export_dir(session_id)
    }

    /// Deletes a session from this computer (spools, held audio, local copies, its title) and
    /// from the gateway (objects, state, events). Refused while it is being recorded. This
    /// computer's part goes first and does not wait for the gateway: when the gateway cannot
    /// be reached, its part is queued (`deletes.rs`) and done when it answers again; when it
    /// refuses, the answer says the session is still there. Its exports stay: they are the
    /// interviewer's files now.
    pub async fn delete_session(&self, session_id: &str) -> anyhow::Result<DeleteView> {
        // An id that is no session's is refused before anything is touched.
        safe_name(session_id)?;
        let recording = self.recording.lock().await;
        if recording
            .as_ref()
            .is_some_and(|r| r.is_active() && r.info.session_id == session_id)
        {
            anyhow::bail!("Session {session_id} is being recorded: stop it before deleting it.");
        }
        // A background delivery would put the session back on the gateway.
        self.deliveries.stop(session_id).await?;
        self.delete_here(session_id).await?;
        let (endpoint, gateway) = {
            let host = self.gateway.lock().await;
            (host.endpoint(), gateway_name(&host.status()))
        };
        drop(recording);
        let outcome = match endpoint {
            Ok(endpoint) => delete_on(&endpoint, session_id).await,
            Err(e) => Err((true, format!("{e:#}"))),
        };
        let (state, message) = match outcome {
            Ok(()) => (
                "deleted",
                format!("Deleted {session_id} from this computer and the gateway."),
            ),
            Err((true, why)) => {
                self.library.deletes.add(session_id, &gateway)?;
                (
                    "queued",
                    format!(
                        "Deleted {session_id} from this computer. The gateway could not be \
                         reached ({why}): it deletes its copy when it is back."
                    ),
                )
            }
            Err((false, why)) => (
                "kept",
                format!(
                    "Deleted {session_id} from this computer, but the gateway refused to delete \
                     its copy ({why}): it is still on the gateway."
                ),
            ),
        };
        log::info!("delete {session_id}: {state}");
        Ok(DeleteView {
            session_id: session_id.to_owned(),
            gateway: state,
            message,
        })
    }

    /// This computer's part of a delete.
    async fn delete_here(&self, session_id: &str) -> anyhow::Result<()> {
        let dir = engine::session_dir(&self.paths.recordings_dir(), session_id)?;
        if let Some(player) = self.library.player.get() {
            player.forget_session(&dir, session_id);
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot delete the recordings of {session_id} on this computer"
                )));
            }
        }
        self.held.remove(session_id);
        self.forget_finalized(session_id);
        self.titles.remove(session_id)?;
        Ok(())
    }

    /// Tries the deletes the gateway in use owes. Returns whether any is left (for this
    /// gateway or another).
    pub async fn retry_deletes(&self) -> bool {
        if self.library.deletes.is_empty() {
            return false;
        }
        let (endpoint, gateway) = {
            let host = self.gateway.lock().await;
            (host.endpoint(), gateway_name(&host.status()))
        };
        if let Ok(endpoint) = endpoint {
            for session_id in self.library.deletes.due(&gateway) {
                match delete_on(&endpoint, &session_id).await {
                    Ok(()) => {
                        log::info!("delete {session_id}: done on the gateway, which is back");
                        if let Err(e) = self.library.deletes.remove(&session_id) {
                            log::warn!("{e:#}");
                        }
                    }
                    // Unreachable still: the others would fail the same way.
                    Err((true, _)) => break,
                    // A refusal: kept (the id stays unrecordable), tried again later.
                    Err((false, why)) => log::warn!("delete {session_id} on the gateway: {why}"),
                }
            }
        }
        !self.library.deletes.is_empty()
    }

    /// Refuses to record into a session deleted here whose gateway has not deleted it yet:
    /// its new frames would go to a session about to be deleted.
    pub fn refuse_if_deleting(&self, session_id: &str) -> anyhow::Result<()> {
        if self.library.deletes.contains(session_id) {
            anyhow::bail!(
                "Session {session_id} was deleted and its gateway has not deleted its copy yet: \
                 record under a new session id."
            );
        }
        Ok(())
    }
}

/// Deletes a session on the gateway: `Ok` when gone (or never there); otherwise whether it is
/// worth trying again, and why not.
async fn delete_on(endpoint: &GatewayEndpoint, session_id: &str) -> Result<(), (bool, String)> {
    match endpoint.delete_session(session_id, DELETE_TIMEOUT).await {
        Ok(_) | Err(CallError::Refused { status: 404, .. }) => Ok(()),
        Err(e) => Err((worth_retrying(&e), e.to_string())),
    }
}

/// A session id as a file name (the gateway's safe form).
fn safe_name(session_id: &str) -> anyhow::Result<String> {
    let id = SessionId::parse(session_id)
        .map_err(|e| anyhow::anyhow!("invalid session id {session_id:?}: {e}"))?;
    Ok(id.safe().to_owned())
}
