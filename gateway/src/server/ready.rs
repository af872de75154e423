//! `GET /ready`: whether this gateway can take frames now, found by using its storage.
//!
//! `/health` says the process answers (liveness, the seed's contract) and touches nothing. A
//! readiness probe is what a load balancer, an orchestrator or the container's `HEALTHCHECK`
//! asks before sending work, so it does what an ACK needs, each part within [`PROBE_DEADLINE`]:
//!
//! - **database**: the database file at its path is still the one the gateway has open (a
//!   deleted or replaced file means every commit goes where no restart will find it), a job
//!   through the committing thread (it takes SQLite's write lock, as a frame's commit does),
//!   and a read through the reading connection;
//! - **objects**: a small probe object is written and read back (a local directory that
//!   became unwritable, a full disk, a bucket with wrong credentials all fail here).
//!
//! 200 `{"status":"ready","checks":{...}}` or 503 with `detail` naming each failed part. The
//! answers never carry local paths or the store's own words (they go to the log), so the
//! route stays open without the API key, as `/health` does: probes rarely carry secrets.
//! Being open, it must not be a way to make the gateway work hard: probes run one at a time,
//! and requests that arrive while one runs share its outcome.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core::ports::ObjectStorage;
use crate::server::AppState;
use crate::storage::{Database, Objects};

/// How long each part may take before it counts as failed (a wedged disk, a bucket that does
/// not answer).
pub const PROBE_DEADLINE: Duration = Duration::from_secs(3);

/// The object the probe writes and reads back; outside `sessions/`, so no listing sees it.
pub const PROBE_KEY: &str = "_gateway/ready-probe";

/// What the probe touches: the gateway's own storage handles.
pub struct Readiness {
    database: Database,
    /// Where the database file is, and which file it was when the gateway opened it.
    database_file: DatabaseFile,
    objects: Objects,
    /// The last probe's outcome and when it finished; held while a probe runs, so probes
    /// never overlap (nor race on the probe object).
    last: tokio::sync::Mutex<Option<(Instant, Checks)>>,
}

impl Readiness {
    pub fn new(database: Database, database_path: PathBuf, objects: Objects) -> Readiness {
        Readiness {
            database,
            database_file: DatabaseFile::opened(database_path),
            objects,
            last: tokio::sync::Mutex::default(),
        }
    }

    /// The outcome of a probe that finished after this call began: one run now, or the one
    /// that was running when it began (its callers share it).
    pub async fn check(&self) -> Checks {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((finished, checks)) = &*last
            && *finished >= asked
        {
            return checks.clone();
        }
        let checks = self.probe().await;
        *last = Some((Instant::now(), checks.clone()));
        checks
    }

    /// Checks each part; `Err` is a short reason, for the answer.
    async fn probe(&self) -> Checks {
        let (database, objects) =
            tokio::join!(within(self.check_database()), within(self.check_objects()));
        Checks { database, objects }
    }

    async fn check_database(&self) -> Result<(), &'static str> {
        self.database_file.unchanged()?;
        let committed = self
            .database
            .call(|conn| conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())))
            .await;
        if let Err(err) = committed {
            tracing::error!(error = %err, "readiness: the database cannot commit");
            return Err("the database cannot commit");
        }
        let read = self
            .database
            .read(|conn| conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())))
            .await;
        if let Err(err) = read {
            tracing::error!(error = %err, "readiness: the database cannot be read");
            return Err("the database cannot be read");
        }
        Ok(())
    }

    async fn check_objects(&self) -> Result<(), &'static str> {
        let probe = format!("ready {}", crate::sessions::now_ms()).into_bytes();
        if let Err(err) = self.objects.put(PROBE_KEY, probe).await {
            tracing::error!(error = %err, "readiness: the object store cannot be written");
            return Err("the object store cannot be written");
        }
        // What was just written, or a later probe's (another gateway on the same bucket).
        match Objects::get(&self.objects, PROBE_KEY).await {
            Ok(Some(read)) if read.starts_with(b"ready ") => Ok(()),
            Ok(_) => {
                tracing::error!("readiness: the probe object read back different");
                Err("the object store does not read back what was written")
            }
            Err(err) => {
                tracing::error!(error = %err, "readiness: the object store cannot be read");
                Err("the object store cannot be read")
            }
        }
    }
}

/// The outcome of one probe, part by part.
#[derive(Debug, Clone)]
pub struct Checks {
    pub database: Result<(), &'static str>,
    pub objects: Result<(), &'static str>,
}

impl IntoResponse for Checks {
    fn into_response(self) -> Response {
        let parts = [("database", self.database), ("objects", self.objects)];
        let checks: serde_json::Map<_, _> = parts
            .iter()
            .map(|(name, outcome)| {
                let said = match outcome {
                    Ok(()) => "ok".to_owned(),
                    Err(reason) => format!("failed: {reason}"),
                };
                (name.to_string(), json!(said))
            })
            .collect();
        let failed: Vec<String> = parts
            .iter()
            .filter_map(|(name, outcome)| outcome.err().map(|reason| format!("{name}: {reason}")))
            .collect();
        if failed.is_empty() {
            (
                StatusCode::OK,
                Json(json!({"status": "ready", "checks": checks})),
            )
                .into_response()
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "not ready",
                    "detail": format!("not ready: {}", failed.join("; ")),
                    "checks": checks,
                })),
            )
                .into_response()
        }
    }
}

pub async fn ready(State(app): State<AppState>) -> Checks {
    app.readiness.check().await
}

/// `check`, failed when it takes longer than [`PROBE_DEADLINE`].
async fn within(check: impl Future<Output = Result<(), &'static str>>) -> Result<(), &'static str> {
    tokio::time::timeout(PROBE_DEADLINE, check)
        .await
        .unwrap_or(Err("no answer within the probe deadline"))
}

/// The database file as the gateway opened it.
struct DatabaseFile {
    path: PathBuf,
    /// Device and inode at startup (unix); elsewhere only the path's existence is checked.
    identity: Option<(u64, u64)>,
}

impl DatabaseFile {
    fn opened(path: PathBuf) -> DatabaseFile {
        let identity = identity(&path);
        DatabaseFile { path, identity }
    }

    fn unchanged(&self) -> Result<(), &'static str> {
        if !self.path.exists() {
            tracing::error!(path = %self.path.display(), "readiness: the database file is gone");
            return Err("the database file is gone");
        }
        if self.identity.is_some() && identity(&self.path) != self.identity {
            tracing::error!(path = %self.path.display(), "readiness: the database file was replaced");
            return Err("the database file was replaced since the gateway opened it");
        }
        Ok(())
    }
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_path: &Path) -> Option<(u64, u64)> {
    None
}
