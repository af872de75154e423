//! The session audio the Sessions view plays and exports, as a WAV file on this computer.
//!
//! The page never talks to the gateway and never holds its key: it asks the app for a
//! session's audio (`session_audio`) and plays the bytes from a `blob:` address. The app reads
//! the session's local copy when it has one, otherwise the gateway's `audio.wav`, which it
//! fetches with the key into `playback/` in the data directory (once per run of the app; see
//! `sessions_view.rs`).
//!
//! Why bytes and not an address the player streams from: WebKitGTK's media player loads only
//! http(s), file and blob addresses (its GStreamer source has no handler for an app's own
//! scheme), and the page may not read files. A blob holds the whole recording in the page's
//! memory, 115 MB an hour, which is fine for an interview; a longer one would want a local
//! HTTP server for the player.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use recorder::endpoint::GatewayEndpoint;
use tokio::io::AsyncWriteExt as _;

/// How long the gateway may take to start answering a download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Streams the gateway's `audio.wav` of a session to `dest` (through `dest.part`, renamed
/// once whole, so a cut download never passes for the audio). Returns its size.
pub async fn download_wav(
    endpoint: &GatewayEndpoint,
    session_id: &str,
    dest: &Path,
) -> anyhow::Result<u64> {
    let mut answer = endpoint
        .open_session(session_id, "audio.wav", DOWNLOAD_TIMEOUT)
        .await
        .with_context(|| format!("the gateway did not give the audio of {session_id}"))?;
    let partial = dest.with_extension("wav.part");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let mut size = 0u64;
    while let Some(chunk) = answer
        .chunk()
        .await
        .context("the gateway's audio download broke off")?
    {
        file.write_all(&chunk).await?;
        size += chunk.len() as u64;
    }
    file.flush().await?;
    drop(file);
    tokio::fs::rename(&partial, dest).await?;
    Ok(size)
}
