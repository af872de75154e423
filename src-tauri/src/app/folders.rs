//! "Open folder", "Open logs" and "Play" (the local copy in the system's player), through
//! tauri-plugin-opener: the platform's file manager or default app, without a shell.
//!
//! The page names what to open (a folder kind, a session, the logs), never a path, so it
//! cannot make the app open anything else.

use std::path::Path;

use tauri::AppHandle;
use tauri_plugin_opener::OpenerExt as _;

/// Shows `dir` in the file manager.
pub fn open_dir(app: &AppHandle, dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{} does not exist (yet).", dir.display());
    }
    open(app, dir)
}

/// Opens `file` with the app the system uses for its type (a WAV: the audio player).
pub fn open_file(app: &AppHandle, file: &Path) -> anyhow::Result<()> {
    if !file.is_file() {
        anyhow::bail!("{} does not exist (yet).", file.display());
    }
    open(app, file)
}

fn open(app: &AppHandle, path: &Path) -> anyhow::Result<()> {
    app.opener()
        .open_path(path.display().to_string(), None::<&str>)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
}
