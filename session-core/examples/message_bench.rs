//! CPU per chunk message of the ingest socket's parser, against the way it parsed before.
//!
//! `cargo run --release -p session-core --example message_bench [-- MESSAGES]`
//!
//! Input: one chunk message as the recorder sends it (43 KB: a second of PCM in base64), parsed
//! MESSAGES times (default 20,000) on one thread. Baseline, in the same run: what the parser did
//! before, a second serde pass over `content_b64` to unescape it and the `base64` crate's
//! decoder. Prints microseconds per message, best of five rounds each (the machine may be
//! shared; the best round is the one least disturbed).

use std::borrow::Cow;
use std::time::Instant;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use session_core::message::{Incoming, parse_message};

fn main() {
    let messages: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("MESSAGES must be a whole number"))
        .unwrap_or(20_000);
    let pcm: Vec<u8> = (0..32_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let message = serde_json::json!({
        "type": "chunk", "meeting_id": "bench", "seq": 1, "timestamp_ms": 1_700_000_000_000u64,
        "sample_rate": 16000, "channels": 1, "format": "pcm_s16le",
        "content_b64": base64::engine::general_purpose::STANDARD.encode(&pcm),
    })
    .to_string();
    let Ok(Incoming::Chunk(chunk)) = parse_message(&message) else {
        panic!("the bench message must parse");
    };
    assert_eq!(chunk.pcm, pcm);
    assert_eq!(previous_parse(&message), pcm);

    let now = best_us_per_message(messages, || {
        std::hint::black_box(parse_message(&message).is_ok());
    });
    let before = best_us_per_message(messages, || {
        std::hint::black_box(previous_parse(&message));
    });
    println!(
        "chunk message of {} bytes, {messages} parses per round",
        message.len()
    );
    println!("  parse_message:            {now:6.1} µs");
    println!("  previous (baseline):      {before:6.1} µs");
    println!("  saved per frame:          {:6.1} µs", before - now);
}

fn best_us_per_message(messages: usize, mut parse: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..messages {
                parse();
            }
            started.elapsed().as_secs_f64() * 1e6 / messages as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// The fields that cost anything, read as the parser read them before this benchmark existed.
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a RawValue,
    #[serde(borrow)]
    content_b64: &'a RawValue,
}

fn previous_parse(message: &str) -> Vec<u8> {
    let raw: Raw = serde_json::from_str(message).expect("parses");
    let _kind: Cow<str> = serde_json::from_str(raw.kind.get()).expect("a string");
    let content: Cow<str> = serde_json::from_str(raw.content_b64.get()).expect("a string");
    base64::engine::general_purpose::STANDARD
        .decode(content.as_bytes())
        .expect("base64")
}
