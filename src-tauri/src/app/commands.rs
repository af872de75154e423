//! The commands the page invokes: each one calls one method of [`AppState`] and turns its error
//! into the sentence the window shows. `build.rs` lists them and `capabilities/main.json` grants
//! them to the main window.

use recorder::events::Summary;
use serde_json::Value;
use tauri::ipc::Channel;
use tauri::{AppHandle, State};

use super::desktop;
use super::export::ExportView;
use super::folders;
use super::history::SessionsView;
use super::recording::RecordingInfo;
use super::session::SessionView;
use super::sessions_view::{self, DeleteView, PlaybackView};
use super::settings::Settings;
use super::state::{AppState, FinalizeView, Folder, InputChoice, StatusView};

/// Errors reach the page as one readable sentence (with causes after colons).
type Answer<T> = Result<T, String>;

fn words(e: anyhow::Error) -> String {
    format!("{e:#}")
}

/// Opens the event stream to the page (replacing a previous page's).
#[tauri::command]
pub fn subscribe(app: State<'_, AppState>, on_event: Channel<Value>) {
    app.events().attach(on_event);
}

#[tauri::command]
pub async fn app_status(app: State<'_, AppState>) -> Answer<StatusView> {
    Ok(app.status().await)
}

#[tauri::command]
pub async fn list_devices(app: State<'_, AppState>) -> Answer<Vec<InputChoice>> {
    app.inputs().await.map_err(words)
}

#[tauri::command]
pub async fn save_settings(
    handle: AppHandle,
    app: State<'_, AppState>,
    settings: Settings,
) -> Answer<StatusView> {
    // The global hotkey first, so one taken by another app is refused before anything is saved;
    // back to the old one if the save fails.
    let before = app.settings().hotkey;
    desktop::use_hotkey(&handle, &before, &settings.hotkey).map_err(words)?;
    let wanted = settings.hotkey.clone();
    app.save_settings(settings).await.map_err(|e| {
        let _ = desktop::use_hotkey(&handle, &wanted, &before);
        words(e)
    })
}

#[tauri::command]
pub async fn new_session_id(app: State<'_, AppState>) -> Answer<StatusView> {
    app.new_session().await.map_err(words)
}

/// The session in Setup as the gateway and this computer know it (recorded time, finalized).
#[tauri::command]
pub async fn session_view(app: State<'_, AppState>) -> Answer<SessionView> {
    app.session_view().await.map_err(words)
}

/// "Send held audio" / "Send and finalize" for a session of the held list.
#[tauri::command]
pub async fn send_held(app: State<'_, AppState>, session_id: String, finalize: bool) -> Answer<()> {
    app.send_held(&session_id, finalize).await.map_err(words)
}

/// "Test microphone" on (`true`) or off.
#[tauri::command]
pub async fn mic_test(app: State<'_, AppState>, on: bool) -> Answer<()> {
    if on {
        app.start_mic_test().await.map_err(words)
    } else {
        app.stop_mic_test().await;
        Ok(())
    }
}

#[tauri::command]
pub async fn start_recording(app: State<'_, AppState>) -> Answer<RecordingInfo> {
    app.start().await.map_err(words)
}

#[tauri::command]
pub async fn stop_recording(app: State<'_, AppState>) -> Answer<Summary> {
    app.stop().await.map_err(words)
}

#[tauri::command]
pub async fn rename_speaker(
    app: State<'_, AppState>,
    cluster_id: String,
    name: String,
) -> Answer<Value> {
    app.rename_speaker(&cluster_id, &name).await.map_err(words)
}

#[tauri::command]
pub async fn finalize_session(app: State<'_, AppState>) -> Answer<FinalizeView> {
    app.finalize().await.map_err(words)
}

#[tauri::command]
pub async fn open_folder(
    handle: AppHandle,
    app: State<'_, AppState>,
    folder: Folder,
) -> Answer<()> {
    let dir = app.folder(folder).await.map_err(words)?;
    folders::open_dir(&handle, &dir).map_err(words)
}

/// "Play": the session's local copy in the system's audio player.
#[tauri::command]
pub async fn play_recording(handle: AppHandle, app: State<'_, AppState>) -> Answer<()> {
    let file = app.local_copy().map_err(words)?;
    folders::open_file(&handle, &file).map_err(words)
}

/// "Open logs": the folder of the app's log files.
#[tauri::command]
pub async fn open_logs(handle: AppHandle, app: State<'_, AppState>) -> Answer<()> {
    folders::open_dir(&handle, &app.log_dir()).map_err(words)
}

/// The Sessions view's list: the gateway's sessions and this computer's, newest first.
#[tauri::command]
pub async fn list_sessions(app: State<'_, AppState>) -> Answer<SessionsView> {
    app.list_sessions().await.map_err(words)
}

/// Where the page's player streams a session's audio from (the app's player server).
#[tauri::command]
pub async fn session_audio(app: State<'_, AppState>, session_id: String) -> Answer<PlaybackView> {
    app.session_audio(&session_id).await.map_err(words)
}

/// Gives a session a title kept on this computer; blank removes it.
#[tauri::command]
pub async fn rename_session(
    app: State<'_, AppState>,
    session_id: String,
    title: String,
) -> Answer<Option<String>> {
    app.rename_session(&session_id, &title).map_err(words)
}

#[tauri::command]
pub async fn export_session(app: State<'_, AppState>, session_id: String) -> Answer<ExportView> {
    app.export_session(&session_id).await.map_err(words)
}

/// "Choose folder…" for exports (a native dialog); the folder exports go to now.
#[tauri::command]
pub async fn choose_export_folder(handle: AppHandle, app: State<'_, AppState>) -> Answer<String> {
    app.choose_export_folder(&handle).await.map_err(words)
}

#[tauri::command]
pub async fn open_export(
    handle: AppHandle,
    app: State<'_, AppState>,
    session_id: String,
) -> Answer<()> {
    let dir = app.export_folder(&session_id).map_err(words)?;
    folders::open_dir(&handle, &dir).map_err(words)
}

/// Deletes a session from the gateway and this computer (the page asked the user first).
/// What the gateway could not delete yet is queued and retried in the background.
#[tauri::command]
pub async fn delete_session(
    handle: AppHandle,
    app: State<'_, AppState>,
    session_id: String,
) -> Answer<DeleteView> {
    let view = app.delete_session(&session_id).await.map_err(words)?;
    sessions_view::watch_deletes(&handle);
    Ok(view)
}
