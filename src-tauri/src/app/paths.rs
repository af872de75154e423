//! Where the app keeps its files.
//!
//! By default the OS's per-app directories (`app_config_dir`, `app_data_dir`). Tests and
//! portable setups point them elsewhere with `RECORDER_CONFIG_DIR` / `RECORDER_DATA_DIR`, so a
//! run never touches the user's real settings or recordings.

use std::path::PathBuf;

use anyhow::Context as _;
use tauri::{AppHandle, Manager as _};

/// Overrides the settings directory.
pub const CONFIG_DIR_ENV: &str = "RECORDER_CONFIG_DIR";
/// Overrides the data directory (bundled gateway data and local recordings).
pub const DATA_DIR_ENV: &str = "RECORDER_DATA_DIR";

/// The app's directories; created on startup.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `settings.json`.
    pub config_dir: PathBuf,
    /// `gateway/` (the bundled gateway's SQLite and objects) and `recordings/` (spools and
    /// local WAV copies, one directory per session).
    pub data_dir: PathBuf,
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
        Ok(Paths {
            config_dir,
            data_dir,
        })
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join("settings.json")
    }

    /// Data directory of the bundled gateway (its objects are under `objects/`).
    pub fn gateway_dir(&self) -> PathBuf {
        self.data_dir.join("gateway")
    }

    /// Root of the per-session spools and local copies.
    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }
}
