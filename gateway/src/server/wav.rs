//! `GET /v1/sessions/{id}/audio.wav`: the stored frames joined in seq order, streamed.
//!
//! The WAV is never built in memory: a header, then each second fetched from the object store
//! as the client reads (a few ahead), with silence where a frame is missing.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};

use crate::core::ports::StorageError;
use crate::protocol::{CHANNELS, FRAME_BYTES, MISSING_SECONDS_HEADER, SAMPLE_RATE};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::SessionPath;

/// Frames fetched ahead of the one being sent.
const READ_AHEAD: usize = 8;
static SILENCE: [u8; FRAME_BYTES] = [0; FRAME_BYTES];

pub async fn audio(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
) -> Result<Response, ApiError> {
    let seqs = app
        .sessions
        .stored_seqs(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audio stored for session '{id}'")))?;
    let seconds = seqs.max();
    let missing = seconds - seqs.len();
    let data_bytes = seconds
        .checked_mul(FRAME_BYTES as u64)
        .and_then(|n| u32::try_from(n + 36).ok().map(|_| n as u32))
        .ok_or_else(|| ApiError::BadRequest("the session is too long for one WAV file".into()))?;
    let objects = app.sessions.objects().clone();
    let frames = stream::iter(1..=seconds)
        .map(move |seq| {
            let stored = seqs.contains(seq);
            let key = id.chunk_key(seq);
            let objects = objects.clone();
            async move {
                if !stored {
                    return Ok(Bytes::from_static(&SILENCE));
                }
                match objects.get(&key).await? {
                    Some(bytes) if bytes.len() == FRAME_BYTES => Ok(bytes),
                    _ => Err(StorageError(format!(
                        "frame object {key} is missing or damaged"
                    ))),
                }
            }
        })
        .buffered(READ_AHEAD);
    let header = stream::once(async move { Ok(Bytes::from(wav_header(data_bytes).to_vec())) });
    let body = Body::from_stream(header.chain(frames));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("audio/wav")),
            (
                header::CONTENT_LENGTH,
                HeaderValue::from(44 + u64::from(data_bytes)),
            ),
            (
                HeaderName::from_static(MISSING_SECONDS_HEADER),
                HeaderValue::from(missing),
            ),
        ],
        body,
    )
        .into_response())
}

/// The 44-byte header of a 16 kHz mono 16-bit PCM WAV with `data_bytes` of samples.
pub fn wav_header(data_bytes: u32) -> [u8; 44] {
    let bits: u16 = 16;
    let block_align = CHANNELS * bits / 8;
    let byte_rate = SAMPLE_RATE * u32::from(block_align);
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_bytes).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&bits.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_describes_16k_mono_16_bit() {
        let h = wav_header(64_000);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), 64_036);
        assert_eq!(u32::from_le_bytes(h[24..28].try_into().unwrap()), 16_000);
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 32_000);
        assert_eq!(u32::from_le_bytes(h[40..44].try_into().unwrap()), 64_000);
    }
}
