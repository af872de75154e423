//! The session audio the Sessions view plays and exports, as WAV files on this computer.
//!
//! The page never talks to the gateway and never holds its key: it asks the app for a
//! session's audio (`session_audio`) and gets an address of the app's own player server
//! (`audio_server.rs`), which streams the file with HTTP Range support, so the `<audio>`
//! element seeks without the recording ever being held in memory. The file is the session's
//! local copy when this computer has one, otherwise the gateway's `audio.wav`, which this
//! module streams to a file (`playback/` in the data directory, once per run of the app; see
//! `sessions_view.rs`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use recorder::endpoint::{CallError, GatewayEndpoint};
use recorder::events::Stream;
use tokio::io::AsyncWriteExt as _;

/// How long the gateway may take to start answering a download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Streams the gateway's `audio.wav` of a session's `stream` to `dest` (through `dest.part`,
/// renamed once whole, so a cut download never passes for the audio). Returns its size.
pub async fn download_wav(
    endpoint: &GatewayEndpoint,
    session_id: &str,
    stream: Stream,
    dest: &Path,
) -> anyhow::Result<u64> {
    let answer = endpoint
        .open_audio(session_id, stream, DOWNLOAD_TIMEOUT)
        .await
        .with_context(|| format!("the gateway did not give the audio of {session_id}"))?;
    save(answer, dest).await
}

/// As [`download_wav`], for a stream the session may not have: `None` when the gateway has
/// no audio of it (404).
pub async fn download_if_any(
    endpoint: &GatewayEndpoint,
    session_id: &str,
    stream: Stream,
    dest: &Path,
) -> anyhow::Result<Option<u64>> {
    match endpoint
        .open_audio(session_id, stream, DOWNLOAD_TIMEOUT)
        .await
    {
        Ok(answer) => save(answer, dest).await.map(Some),
        Err(CallError::Refused { status: 404, .. }) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "the gateway did not give the {} of {session_id}",
            recorder::export::stream_words(stream.as_str())
        ))),
    }
}

async fn save(mut answer: reqwest::Response, dest: &Path) -> anyhow::Result<u64> {
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
