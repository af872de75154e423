//! Build script: with the `window` feature, tauri-build reads `tauri.conf.json` and
//! `capabilities/`, checks the app's command permissions and embeds the Windows icon. Without it
//! (`--no-default-features`) nothing happens, so the engine builds with no GUI stack.

fn main() {
    if std::env::var_os("CARGO_FEATURE_WINDOW").is_some() {
        #[cfg(feature = "window")]
        window::build();
    }
}

#[cfg(feature = "window")]
mod window {
    /// Every command the page may invoke; `capabilities/main.json` grants each by name
    /// (`allow-<command>`), so a command missing from both is unreachable from the page.
    const COMMANDS: &[&str] = &[
        "subscribe",
        "app_status",
        "list_devices",
        "save_settings",
        "new_session_id",
        "session_view",
        "send_held",
        "mic_test",
        "start_recording",
        "stop_recording",
        "rename_speaker",
        "finalize_session",
        "open_folder",
        "play_recording",
        "open_logs",
        "list_sessions",
        "session_audio",
        "rename_session",
        "export_session",
        "choose_export_folder",
        "open_export",
        "delete_session",
    ];

    pub fn build() {
        let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
        tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
            .expect("tauri-build failed");
    }
}
