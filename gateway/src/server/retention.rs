//! Retention (`--retention-days`): sessions nobody has updated for that long are deleted, once
//! at startup and then every [`SWEEP_EVERY`], each through its actor like any delete (one with
//! an open socket stays).

use std::time::Duration;

use tokio::sync::watch;

use crate::sessions::Sessions;

/// How often a running gateway looks for expired sessions.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Deletes the sessions older than `max_age` now, and logs what it did.
pub async fn sweep(sessions: &Sessions, max_age: Duration) {
    match sessions.expire(max_age).await {
        Ok(0) => tracing::debug!("retention: no expired sessions"),
        Ok(deleted) => tracing::info!(deleted, "retention: expired sessions deleted"),
        Err(err) => tracing::warn!(error = %err, "retention: could not list expired sessions"),
    }
}

/// Sweeps every [`SWEEP_EVERY`] until the server stops.
pub async fn every(sessions: Sessions, max_age: Duration, mut stopping: watch::Receiver<bool>) {
    loop {
        let stopped = tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => false,
            _ = stopping.wait_for(|stop| *stop) => true,
        };
        if stopped {
            return;
        }
        sweep(&sessions, max_age).await;
    }
}
