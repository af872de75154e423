//! Session audio from the gateway saved as WAV files on this computer, for exports (the
//! player does not download: it streams a gateway's audio through `gateway_audio.rs`).
//!
//! A download goes through `<file>.part`, renamed once whole, so a cut download never passes
//! for the audio.

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
