//! The Sessions view's actions: list, rename, play, export and delete past sessions.
//!
//! Each is a method of [`AppState`] over `history.rs` (the list), `titles.rs` (renames),
//! `playback.rs` (the player's audio) and `export.rs` (the files), kept here so `state.rs`
//! stays about the session being recorded.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use contract::session_id::SessionId;
use recorder::endpoint::CallError;
use recorder::engine;
use recorder::events::Stream;

use super::export::{self, ExportView};
use super::history::{self, SessionsView};
use super::playback;
use super::recording;
use super::state::AppState;

/// How long the gateway may take to delete a session.
const DELETE_TIMEOUT: Duration = Duration::from_secs(30);

/// Which sessions' gateway audio was fetched for the player in this run of the app (a later
/// run fetches again: the session may have grown since).
#[derive(Default)]
pub struct PlaybackCache {
    /// A tokio Mutex: held across the download, so two requests of the player for one
    /// session do not fetch it twice.
    fetched: tokio::sync::Mutex<HashSet<String>>,
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
        for row in &mut sessions {
            if row.finalized_at.is_none() {
                row.finalized_at = self.finalized_here(&row.session_id);
            }
        }
        Ok(SessionsView {
            sessions,
            gateway_error,
        })
    }

    /// Gives a session a title (blank: back to its id). Returns the title kept.
    pub fn rename_session(&self, session_id: &str, title: &str) -> anyhow::Result<Option<String>> {
        self.titles.set(session_id, title)
    }

    /// The WAV file the player reads for a session: its local copy, or the gateway's audio
    /// fetched into `playback/` once per run.
    pub async fn playback_file(&self, session_id: &str) -> anyhow::Result<PathBuf> {
        if let Some(copy) =
            recording::local_wav(&self.paths.recordings_dir(), session_id, Stream::Mic)
        {
            return Ok(copy);
        }
        let cached = self.playback_path(session_id)?;
        let mut fetched = self.playback.fetched.lock().await;
        if !fetched.contains(session_id) || !cached.is_file() {
            let endpoint = self.gateway.lock().await.endpoint()?;
            std::fs::create_dir_all(self.paths.playback_dir())?;
            playback::download_wav(&endpoint, session_id, &cached).await?;
            fetched.insert(session_id.to_owned());
        }
        Ok(cached)
    }

    /// The bytes of [`playback_file`](Self::playback_file), for the page's player.
    pub async fn session_audio(&self, session_id: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.playback_file(session_id).await?;
        tokio::fs::read(&path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))
    }

    fn playback_path(&self, session_id: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .paths
            .playback_dir()
            .join(format!("{}.wav", safe_name(session_id)?)))
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
        Ok(self.paths.exports_dir.join(safe_name(session_id)?))
    }

    /// A session's export folder, for "Open folder".
    pub fn export_folder(&self, session_id: &str) -> anyhow::Result<PathBuf> {
        self.export_dir(session_id)
    }

    /// Deletes a session from the gateway (objects, state, events) and from this computer
    /// (spools, held audio, local copies, its title). Refused while it is being recorded; when
    /// the gateway cannot delete it, nothing here is deleted either, so the list never shows
    /// half a session. Its exports stay: they are the interviewer's files now.
    pub async fn delete_session(&self, session_id: &str) -> anyhow::Result<()> {
        let recording = self.recording.lock().await;
        if recording
            .as_ref()
            .is_some_and(|r| r.is_active() && r.info.session_id == session_id)
        {
            anyhow::bail!("Session {session_id} is being recorded: stop it before deleting it.");
        }
        // A background delivery would put the session back on the gateway.
        self.deliveries.stop(session_id).await?;
        let endpoint = self.gateway.lock().await.endpoint()?;
        match endpoint.delete_session(session_id, DELETE_TIMEOUT).await {
            // Never on the gateway (or already gone): only this computer's part is left.
            Ok(_) | Err(CallError::Refused { status: 404, .. }) => {}
            Err(e) => anyhow::bail!("The gateway did not delete session {session_id}: {e}"),
        }
        let dir = engine::session_dir(&self.paths.recordings_dir(), session_id)?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot delete the recordings in {}", dir.display())));
            }
        }
        let _ = std::fs::remove_file(self.playback_path(session_id)?);
        self.playback.fetched.lock().await.remove(session_id);
        self.held.remove(session_id);
        self.forget_finalized(session_id);
        self.titles.remove(session_id)?;
        drop(recording);
        Ok(())
    }
}

/// A session id as a file name (the gateway's safe form).
fn safe_name(session_id: &str) -> anyhow::Result<String> {
    let id = SessionId::parse(session_id)
        .map_err(|e| anyhow::anyhow!("invalid session id {session_id:?}: {e}"))?;
    Ok(id.safe().to_owned())
}
