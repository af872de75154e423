//! Audio put on a gateway the way the recorder puts it there: [`store_frames`] speaks the
//! ingest socket's protocol (`hello`, then one `chunk` per second) and returns once every
//! frame is ACKed `stored`, for tests that need a session only a gateway has.

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Bytes of one frame: one second of 16 kHz mono s16le.
pub const FRAME_BYTES: usize = 32_000;

/// Sends `frames` (seq 1, 2, …; each [`FRAME_BYTES`] long) to the session `session` of the
/// gateway at `base` (`http://host:port`) and waits until the gateway has stored them all.
pub async fn store_frames(base: &str, session: &str, frames: &[Vec<u8>]) -> anyhow::Result<()> {
    let url = format!(
        "{}/v1/audio/ws/{session}",
        base.replacen("http://", "ws://", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    socket
        .send(Message::text(json!({"type": "hello"}).to_string()))
        .await?;
    let ready = next_message(&mut socket).await?;
    anyhow::ensure!(ready["type"] == "ready", "hello answered {ready}");
    let start_ms = 1_700_000_000_000u64;
    let mut stored = 0;
    // Sent in windows of a few frames, so the socket never holds many unanswered.
    for (window, chunk) in frames.chunks(16).enumerate() {
        for (i, pcm) in chunk.iter().enumerate() {
            anyhow::ensure!(pcm.len() == FRAME_BYTES, "a frame of {} bytes", pcm.len());
            let seq = (window * 16 + i + 1) as u64;
            let message = json!({
                "type": "chunk",
                "meeting_id": session,
                "seq": seq,
                "timestamp_ms": start_ms + (seq - 1) * 1000,
                "sample_rate": 16_000,
                "channels": 1,
                "format": "pcm_s16le",
                "content_b64": base64::engine::general_purpose::STANDARD.encode(pcm),
            });
            socket.send(Message::text(message.to_string())).await?;
        }
        for _ in chunk {
            let ack = next_message(&mut socket).await?;
            anyhow::ensure!(
                ack["type"] == "ack" && ack["status"] == "stored",
                "a frame of {session} not stored: {ack}"
            );
            stored += 1;
        }
    }
    anyhow::ensure!(
        stored == frames.len(),
        "{stored} of {} stored",
        frames.len()
    );
    let _ = socket
        .send(Message::text(json!({"type": "close"}).to_string()))
        .await;
    Ok(())
}

async fn next_message<S>(socket: &mut S) -> anyhow::Result<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(30), socket.next())
            .await
            .map_err(|_| anyhow::anyhow!("the gateway said nothing for 30 s"))?
            .ok_or_else(|| anyhow::anyhow!("the gateway closed the socket"))??;
        if let Message::Text(text) = message {
            return Ok(serde_json::from_str(text.as_str())?);
        }
    }
}
