//! The ingest socket's message parser (`session_core::message::parse_message`) on any text a
//! client can send: it never panics, an error's text (echoed to the client as `detail`) stays
//! short, and a message it accepts satisfies the contract and is safe to store:
//!
//! - a chunk has `seq ≥ 1` and exactly `FRAME_BYTES` of PCM, its `content_b64` decodes to the
//!   same PCM with the `base64` crate (the parser decodes with SIMD and must be no more lenient),
//!   and sent again as the recorder sends it, parses to the same chunk;
//! - the ingest rules take it (its seq, stored first, becomes the stream's origin) and its
//!   capture time places the stream without overflowing;
//! - a `close` reason is 1..=120 characters;
//! - `parse_message`, which reads a chunk's `content_b64` with a shortcut, answers exactly what
//!   `parse_message_full` (serde reading the whole message) answers: the same chunk, or the same
//!   error with the same text.
#![no_main]

use base64::Engine as _;
use contract::protocol::{CHANNELS, ClientMessage, FORMAT, FRAME_BYTES, SAMPLE_RATE};
use libfuzzer_sys::fuzz_target;
use session_core::ingest::IngestState;
use session_core::message::{
    Incoming, MAX_CLOSE_REASON_CHARS, ValidChunk, parse_message, parse_message_full,
};

/// Longest `detail` an error may echo; the longest fixed text is ~70 characters and the longest
/// echo (an unknown type) 64 characters after its prefix.
const MAX_DETAIL_CHARS: usize = 200;

fuzz_target!(|data: &[u8]| {
    // A WebSocket text message is UTF-8 by the protocol (the socket library refuses others).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_message(text);
    assert_eq!(parsed, parse_message_full(text), "the shortcut disagrees");
    match parsed {
        Ok(Incoming::Chunk(chunk)) => {
            check_chunk(&chunk);
            let message: serde_json::Value = serde_json::from_str(text).expect("it parsed");
            let content = message["content_b64"].as_str().expect("a string");
            let decoded = base64::engine::general_purpose::STANDARD.decode(content);
            assert_eq!(decoded.as_deref(), Ok(&chunk.pcm[..]), "{content:?}");
        }
        Ok(Incoming::Close(reason)) => {
            let chars = reason.chars().count();
            assert!((1..=MAX_CLOSE_REASON_CHARS).contains(&chars), "{reason:?}");
        }
        Ok(Incoming::Hello | Incoming::Status | Incoming::Ping | Incoming::Auth(_)) => {}
        Err(err) => {
            let detail = err.to_string();
            assert!(
                detail.chars().count() <= MAX_DETAIL_CHARS,
                "an error echoes {} characters: {detail:?}",
                detail.chars().count()
            );
        }
    }
});

fn check_chunk(chunk: &ValidChunk) {
    assert!(chunk.seq >= 1);
    assert_eq!(chunk.pcm.len(), FRAME_BYTES);

    // The recorder's own encoding of the same frame reads back as the same chunk.
    let resent = ClientMessage::Chunk(contract::protocol::Chunk {
        meeting_id: chunk.meeting_id.clone(),
        seq: chunk.seq,
        timestamp_ms: chunk.captured_at,
        sample_rate: SAMPLE_RATE,
        channels: CHANNELS,
        format: FORMAT.into(),
        content_b64: base64::engine::general_purpose::STANDARD.encode(&chunk.pcm),
    });
    let text = serde_json::to_string(&resent).expect("a chunk serializes");
    // A timestamp under 1 ms (`0.5`) is accepted and kept as 0, which the recorder never sends.
    if chunk.captured_at > 0 {
        assert_eq!(parse_message(&text), Ok(Incoming::Chunk(chunk.clone())));
    }

    // What the session does with it: store it as the stream's first frame, then place the
    // stream on the capture clock (`audio.wav?stream=mix` aligns streams by it).
    let state = IngestState::new(0).with_stored(chunk.seq, chunk.captured_at, 1);
    assert_eq!(state.last_seq(), chunk.seq);
    assert_eq!(state.missing_chunks(), chunk.seq - 1);
    let origin = state.origin().expect("a stored frame is the origin");
    let _ = origin.start_ms();
}
