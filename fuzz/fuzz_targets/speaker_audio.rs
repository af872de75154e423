//! The audio the built-in engine accepts in `POST /speaker/resolve` (and in a session's
//! resolve): the contract's `audio` object, base64 of `pcm_s16le` or of a 16 kHz mono 16-bit
//! `wav`, decoded by `gateway::inference::decode_audio`. It never panics; what it accepts is at
//! most 30 s of samples in [-1, 1); what it refuses is a 422 (or 413 when too long) whose body is
//! `{"detail": "..."}` naming the problem in a bounded text.
//!
//! The input is structured so the fuzzer works on the audio bytes rather than on base64: the
//! first byte picks the format and which optional fields are sent, the rest is the audio (or,
//! with one flag, the `content_b64` text itself, to reach the base64 errors).
#![no_main]

use base64::Engine as _;
use gateway::inference::{InferenceError, decode_audio};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const MAX_SAMPLES: usize = 30 * 16_000;
const MAX_DETAIL_CHARS: usize = 200;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, audio)) = data.split_first() else {
        return;
    };
    let mut object = Map::new();
    let content = if flags & 0x08 != 0 {
        String::from_utf8_lossy(audio).into_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(audio)
    };
    object.insert("content_b64".into(), Value::String(content));
    let format = match flags & 0x03 {
        0 => json!("pcm_s16le"),
        1 => json!("wav"),
        // A format of the client's choosing, echoed in the refusal.
        2 => json!(String::from_utf8_lossy(audio)),
        _ => json!(7),
    };
    object.insert("format".into(), format);
    if flags & 0x10 != 0 {
        let rate = if flags & 0x40 != 0 { 16_000 } else { 48_000 };
        object.insert("sample_rate".into(), json!(rate));
    }
    if flags & 0x20 != 0 {
        let channels = if flags & 0x80 != 0 { 1 } else { 2 };
        object.insert("channels".into(), json!(channels));
    }
    if flags & 0x04 != 0 {
        object.remove("content_b64");
    }

    match decode_audio(&Value::Object(object)) {
        Ok(samples) => {
            assert!(samples.len() <= MAX_SAMPLES, "{} samples", samples.len());
            assert!(samples.iter().all(|s| (-1.0..1.0).contains(s)));
        }
        Err(InferenceError::Backend { status, body, .. }) => {
            assert!(status == 422 || status == 413, "status {status}");
            let body: Value = serde_json::from_str(&body).expect("a refusal is JSON");
            let detail = body["detail"].as_str().expect("a refusal has a detail");
            assert!(!detail.is_empty());
            assert!(detail.chars().count() <= MAX_DETAIL_CHARS, "{detail:?}");
        }
        Err(other) => panic!("decoding audio fails only as the contract's refusals: {other}"),
    }
});
