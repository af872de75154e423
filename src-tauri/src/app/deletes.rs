//! Deletes the gateway still owes: sessions the interviewer deleted while their gateway could
//! not be reached.
//!
//! A delete removes this computer's part at once (spools, local copies, the title) and asks
//! the gateway for its part; when the gateway is down, the session goes into this queue
//! (`pending-deletes.json` in the data directory, id → the gateway it is on) and is deleted
//! there once that gateway answers again (`sessions_view.rs` retries in the background).
//!
//! Invariants, so no acknowledged frame of a session the user kept is ever lost:
//! - only ids the user deleted are queued, and each is deleted only on the gateway it was on
//!   when deleted ([`DeleteQueue::due`]);
//! - a queued id cannot be recorded into until its delete is done (`AppState::start` asks
//!   [`DeleteQueue::contains`]): new frames under that id would go to a session about to be
//!   deleted.
//!
//! The file is replaced whole on every change (written beside it, then renamed over it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// One delete the gateway still owes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDelete {
    /// The gateway the session is on: `bundled`, or the remote gateway's base URL.
    pub gateway: String,
}

pub struct DeleteQueue {
    path: PathBuf,
    // A std Mutex: held only to read or change the map and write the file, never across an
    // await.
    pending: Mutex<BTreeMap<String, PendingDelete>>,
}

impl DeleteQueue {
    /// Loads `path`; a missing file is an empty queue. An unreadable one is an error: starting
    /// empty would forget deletes the user asked for.
    pub fn load(path: PathBuf) -> anyhow::Result<DeleteQueue> {
        let pending = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .context("the list of sessions to delete on the gateway is unreadable")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context("cannot read the list of sessions to delete on the gateway"));
            }
        };
        Ok(DeleteQueue {
            path,
            pending: Mutex::new(pending),
        })
    }

    /// Remembers that `session_id` is to be deleted on `gateway`.
    pub fn add(&self, session_id: &str, gateway: &str) -> anyhow::Result<()> {
        self.change(|pending| {
            pending.insert(
                session_id.to_owned(),
                PendingDelete {
                    gateway: gateway.to_owned(),
                },
            );
        })
    }

    /// Forgets `session_id` (its gateway deleted it).
    pub fn remove(&self, session_id: &str) -> anyhow::Result<()> {
        if !self.contains(session_id) {
            return Ok(());
        }
        self.change(|pending| {
            pending.remove(session_id);
        })
    }

    pub fn contains(&self, session_id: &str) -> bool {
        self.lock().contains_key(session_id)
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every queued id, in order.
    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The ids to delete on `gateway` (those deleted while another gateway was in use wait for
    /// it).
    pub fn due(&self, gateway: &str) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, p)| p.gateway == gateway)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn change(
        &self,
        edit: impl FnOnce(&mut BTreeMap<String, PendingDelete>),
    ) -> anyhow::Result<()> {
        let mut pending = self.lock();
        let mut changed = pending.clone();
        edit(&mut changed);
        write(&self.path, &changed)?;
        *pending = changed;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PendingDelete>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn write(path: &Path, pending: &BTreeMap<String, PendingDelete>) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(pending).context("cannot encode the pending deletes")?;
    let temporary = path.with_extension("json.new");
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .context("cannot save the list of sessions to delete on the gateway")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_delete_survives_a_restart_until_its_gateway_deleted_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pending-deletes.json");
        let queue = DeleteQueue::load(path.clone()).unwrap();
        assert!(queue.is_empty());
        queue.add("s 1", "http://gw:8787/").unwrap();
        queue.add("s-2", "bundled").unwrap();

        let again = DeleteQueue::load(path.clone()).unwrap();
        assert_eq!(again.ids(), vec!["s 1".to_owned(), "s-2".to_owned()]);
        assert!(again.contains("s 1"));
        again.remove("s 1").unwrap();
        again.remove("never queued").unwrap();
        assert_eq!(
            DeleteQueue::load(path).unwrap().ids(),
            vec!["s-2".to_owned()]
        );
    }

    #[test]
    fn a_session_is_deleted_only_on_the_gateway_it_was_on() {
        let dir = tempfile::tempdir().unwrap();
        let queue = DeleteQueue::load(dir.path().join("p.json")).unwrap();
        queue.add("on-remote", "http://gw:8787/").unwrap();
        queue.add("on-bundled", "bundled").unwrap();
        assert_eq!(queue.due("bundled"), vec!["on-bundled".to_owned()]);
        assert_eq!(queue.due("http://gw:8787/"), vec!["on-remote".to_owned()]);
        assert!(queue.due("http://other:8787/").is_empty());
    }

    #[test]
    fn an_unreadable_queue_is_an_error_not_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, "not json").unwrap();
        let error = DeleteQueue::load(path).err().unwrap();
        assert!(format!("{error:#}").contains("unreadable"), "{error:#}");
    }
}
