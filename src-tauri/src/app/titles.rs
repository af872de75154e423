//! The titles the interviewer gives sessions in the Sessions view.
//!
//! A title is the app's own note, kept on this computer (`titles.json` in the data directory,
//! id → title) and never sent to the gateway: the gateway knows sessions by id only, and a
//! rename must work with a remote gateway the interviewer cannot write to, or none at all.
//! The file is replaced whole on every change (written beside it, then renamed over it), so
//! a crash leaves the old titles or the new ones, never half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;

/// The longest title kept, in characters; a longer one is refused, not cut.
pub const MAX_TITLE_CHARS: usize = 200;

pub struct Titles {
    path: PathBuf,
    // A std Mutex: held only to read or change the map and write the file, never across an
    // await.
    titles: Mutex<BTreeMap<String, String>>,
}

impl Titles {
    /// Loads `path`; a missing file is no titles, an unreadable one too (said in the warning).
    pub fn load(path: PathBuf) -> (Titles, Option<String>) {
        let (titles, warning) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(titles) => (titles, None),
                Err(e) => (
                    BTreeMap::new(),
                    Some(format!(
                        "The session titles in {} are unreadable ({e}); they start empty.",
                        path.display()
                    )),
                ),
            },
            Err(_) => (BTreeMap::new(), None),
        };
        let titles = Titles {
            path,
            titles: Mutex::new(titles),
        };
        (titles, warning)
    }

    pub fn get(&self, session_id: &str) -> Option<String> {
        self.lock().get(session_id).cloned()
    }

    /// Gives `session_id` a title; a blank one removes it (the list shows the id again).
    pub fn set(&self, session_id: &str, title: &str) -> anyhow::Result<Option<String>> {
        let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
        if title.chars().count() > MAX_TITLE_CHARS {
            anyhow::bail!("A title may have at most {MAX_TITLE_CHARS} characters.");
        }
        let mut titles = self.lock();
        let mut changed = titles.clone();
        if title.is_empty() {
            changed.remove(session_id);
        } else {
            changed.insert(session_id.to_owned(), title.clone());
        }
        write(&self.path, &changed)?;
        *titles = changed;
        Ok((!title.is_empty()).then_some(title))
    }

    /// Forgets a deleted session's title.
    pub fn remove(&self, session_id: &str) -> anyhow::Result<()> {
        let mut titles = self.lock();
        if titles.contains_key(session_id) {
            let mut changed = titles.clone();
            changed.remove(session_id);
            write(&self.path, &changed)?;
            *titles = changed;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.titles.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn write(path: &Path, titles: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(titles).context("cannot encode the titles")?;
    let temporary = path.with_extension("json.new");
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot save the session titles to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_kept_across_loads_and_a_blank_one_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("titles.json");
        let (titles, warning) = Titles::load(path.clone());
        assert_eq!(warning, None);
        assert_eq!(
            titles.set("s-1", "  Interview \n with  Ada ").unwrap(),
            Some("Interview with Ada".to_owned())
        );
        titles.set("s-2", "Second").unwrap();
        let (again, _) = Titles::load(path.clone());
        assert_eq!(again.get("s-1").as_deref(), Some("Interview with Ada"));
        assert_eq!(again.set("s-1", "   ").unwrap(), None);
        again.remove("s-2").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
    }

    #[test]
    fn a_title_too_long_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (titles, _) = Titles::load(dir.path().join("titles.json"));
        titles.set("s", "Kept").unwrap();
        let long = "x".repeat(MAX_TITLE_CHARS + 1);
        assert!(titles.set("s", &long).is_err());
        assert_eq!(titles.get("s").as_deref(), Some("Kept"));
        assert!(titles.set("s", &"y".repeat(MAX_TITLE_CHARS)).is_ok());
    }

    #[test]
    fn an_unreadable_file_starts_empty_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("titles.json");
        std::fs::write(&path, "not json").unwrap();
        let (titles, warning) = Titles::load(path);
        assert_eq!(titles.get("s"), None);
        assert!(warning.unwrap().contains("unreadable"));
    }
}
