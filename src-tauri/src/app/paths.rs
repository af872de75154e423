//! Where the app keeps its files.
//!
//! By default the OS's per-app directories (`app_config_dir`, `app_data_dir`, `app_log_dir`).
//! Tests and portable setups point them elsewhere with `RECORDER_CONFIG_DIR` /
//! `RECORDER_DATA_DIR` / `RECORDER_EXPORT_DIR`, so a run never touches the user's real
//! settings, recordings, logs or downloads (with `RECORDER_DATA_DIR` the logs go to its
//! `logs/`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tauri::{AppHandle, Manager as _};

/// Overrides the settings directory.
pub const CONFIG_DIR_ENV: &str = "RECORDER_CONFIG_DIR";
/// Overrides the data directory (bundled gateway data and local recordings).
pub const DATA_DIR_ENV: &str = "RECORDER_DATA_DIR";
/// Overrides where exports go.
pub const EXPORT_DIR_ENV: &str = "RECORDER_EXPORT_DIR";

/// A path as the window shows it: under the user's home as `~/…`, so a screenshot or a shared
/// screen does not show the account's name.
pub fn shown(path: &Path) -> String {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|home| !home.is_empty())
        .map(PathBuf::from);
    match home
        .as_deref()
        .and_then(|home| path.strip_prefix(home).ok())
    {
        Some(rest) => Path::new("~").join(rest).display().to_string(),
        None => path.display().to_string(),
    }
}

/// The app's directories; created on startup.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `settings.json`.
    pub config_dir: PathBuf,
    /// `gateway/` (the bundled gateway's SQLite and objects) and `recordings/` (spools and
    /// local WAV copies, one directory per session).
    pub data_dir: PathBuf,
    /// Exports, one folder per session: `Interview Recorder` in the user's downloads folder,
    /// or `exports/` in the data directory where the OS has none. Created on the first export.
    pub exports_dir: PathBuf,
    /// The log files (tauri-plugin-log) that "Open logs" shows.
    pub log_dir: PathBuf,
}

impl Paths {
    pub fn resolve(app: &AppHandle) -> anyhow::Result<Paths> {
        let config_dir = match std::env::var_os(CONFIG_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => app.path().app_config_dir().context("no config directory")?,
        };
        let (data_dir, log_dir) = match std::env::var_os(DATA_DIR_ENV) {
            Some(dir) => (PathBuf::from(&dir), PathBuf::from(dir).join("logs")),
            None => (
                app.path().app_data_dir().context("no data directory")?,
                app.path().app_log_dir().context("no log directory")?,
            ),
        };
        for dir in [&config_dir, &data_dir, &log_dir] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let exports_dir = match std::env::var_os(EXPORT_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => match app.path().download_dir() {
                Ok(downloads) => downloads.join("Interview Recorder"),
                Err(_) => data_dir.join("exports"),
            },
        };
        Ok(Paths {
            config_dir,
            data_dir,
            exports_dir,
            log_dir,
        })
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join("settings.json")
    }

    /// The window's size and place (tauri-plugin-window-state), beside the settings.
    pub fn window_state_file(&self) -> PathBuf {
        self.config_dir.join("window-state.json")
    }

    /// Data directory of the bundled gateway (its objects are under `objects/`).
    pub fn gateway_dir(&self) -> PathBuf {
        self.data_dir.join("gateway")
    }

    /// The interviewer's session titles.
    pub fn titles_file(&self) -> PathBuf {
        self.data_dir.join("titles.json")
    }

    /// Where earlier versions kept the player's copies of gateway audio (removed at launch).
    pub fn playback_dir(&self) -> PathBuf {
        self.data_dir.join("playback")
    }

    /// Root of the per-session spools and local copies.
    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }
}
