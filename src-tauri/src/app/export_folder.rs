//! Where exports go: the folder the interviewer last chose ("Choose folder…", a native folder
//! dialog of tauri-plugin-dialog), kept in `export-folder.json` beside the settings; until
//! one is chosen, the default (`Paths::exports_dir`: `Interview Recorder` in the downloads
//! folder, or `RECORDER_EXPORT_DIR`, which is how the WebDriver tests export without a
//! native dialog). Each export is a folder of its own in it, named after the session.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    folder: PathBuf,
}

pub struct ExportFolder {
    file: PathBuf,
    default: PathBuf,
    /// The chosen folder; `None`: the default. A std Mutex, never held across an await.
    chosen: Mutex<Option<PathBuf>>,
}

impl ExportFolder {
    /// Loads the choice from `file`; a missing, unreadable or relative one is the default.
    pub fn load(file: PathBuf, default: PathBuf) -> ExportFolder {
        let chosen = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok())
            .map(|stored| stored.folder)
            .filter(|folder| folder.is_absolute());
        ExportFolder {
            file,
            default,
            chosen: Mutex::new(chosen),
        }
    }

    /// The folder exports go to now.
    pub fn current(&self) -> PathBuf {
        self.lock().clone().unwrap_or_else(|| self.default.clone())
    }

    /// Remembers `folder` for this and later runs.
    pub fn choose(&self, folder: &Path) -> anyhow::Result<()> {
        if !folder.is_absolute() {
            anyhow::bail!("The export folder must be an absolute path.");
        }
        if !folder.is_dir() {
            anyhow::bail!("The chosen export folder does not exist.");
        }
        let bytes = serde_json::to_vec_pretty(&Stored {
            folder: folder.to_owned(),
        })?;
        let temporary = self.file.with_extension("json.new");
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &self.file))
            .context("cannot remember the export folder")?;
        *self.lock() = Some(folder.to_owned());
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<PathBuf>> {
        self.chosen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_folder_is_remembered_and_the_default_holds_until_one_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export-folder.json");
        let default = dir.path().join("default");
        let chosen = dir.path().join("chosen");
        std::fs::create_dir(&chosen).unwrap();

        let folder = ExportFolder::load(file.clone(), default.clone());
        assert_eq!(folder.current(), default);
        folder.choose(&chosen).unwrap();
        assert_eq!(folder.current(), chosen);
        assert_eq!(ExportFolder::load(file, default).current(), chosen);
    }

    #[test]
    fn a_missing_or_relative_folder_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("default");
        let folder = ExportFolder::load(dir.path().join("f.json"), default.clone());
        assert!(folder.choose(Path::new("relative/dir")).is_err());
        assert!(folder.choose(&dir.path().join("missing")).is_err());
        assert_eq!(folder.current(), default);

        std::fs::write(dir.path().join("f.json"), r#"{"folder":"relative"}"#).unwrap();
        let folder = ExportFolder::load(dir.path().join("f.json"), default.clone());
        assert_eq!(folder.current(), default);
    }
}
