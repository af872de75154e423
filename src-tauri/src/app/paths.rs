//! Where the app keeps its files.
//!
//! By default the OS's per-app directories (`app_config_dir`, `app_data_dir`). Tests and
//! portable setups point them elsewhere with `RECORDER_CONFIG_DIR` / `RECORDER_DATA_DIR` /
//! `RECORDER_EXPORT_DIR`, so a run never touches the user's real settings, recordings or
//! downloads.

use std::path::PathBuf;

use anyhow::Context as _;
use tauri::{AppHandle, Manager as _};

/// Overrides the settings directory.
pub const CONFIG_DIR_ENV: &str = "RECORDER_CONFIG_DIR";
/// Overrides the data directory (bundled gateway data and local recordings).
pub const DATA_DIR_ENV: &str = "RECORDER_DATA_DIR";
/// Overrides where exports go.
pub const EXPORT_DIR_ENV: &str = "RECORDER_EXPORT_DIR";

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
}

impl Paths {
    pub fn resolve(app: &AppHandle) -> anyhow::Result<Paths> {
        let config_dir = match std::env::var_os(CONFIG_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => app.path().app_config_dir().context("no config directory")?,
        };
        let data_dir = match std::env::var_os(DATA_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => app.path().app_data_dir().context("no data directory")?,
        };
        for dir in [&config_dir, &data_dir] {
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
        })
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join("settings.json")
    }

    /// Data directory of the bundled gateway (its objects are under `objects/`).
    pub fn gateway_dir(&self) -> PathBuf {
        self.data_dir.join("gateway")
    }

    /// The interviewer's session titles.
    pub fn titles_file(&self) -> PathBuf {
        self.data_dir.join("titles.json")
    }

    /// The player's copies of gateway audio (cleared at launch).
    pub fn playback_dir(&self) -> PathBuf {
        self.data_dir.join("playback")
    }

    /// Root of the per-session spools and local copies.
    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }
}
