//! CPU per chunk message of the ingest socket's parser, against the way it parsed before.
//!
//! `cargo run --release -p session-core --example message_bench [-- MESSAGES]`
//!
//! Input: one chunk message as the recorder sends it (43 KB: a second of PCM in base64), parsed
//! MESSAGES times (default 20,000) on one thread. In the same run: `parse_message_full`, the
//! parser `parse_message` falls back to, whose serde pass scans the whole `content_b64` for its
//! end (`parse_message` finds it with `memchr`); and an older baseline, what the parser did before
//! the SIMD decoder: a second serde pass over `content_b64` to unescape it and the `base64`
//! crate's decoder. Prints microseconds per message, best of five rounds each, taken in turns
//! (the machine may be shared; the best round is the one least disturbed).

use std::borrow::Cow;
use std::time::Instant;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use session_core::message::{Incoming, parse_message, parse_message_full};

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
    assert_eq!(parse_message_full(&message), Ok(Incoming::Chunk(chunk)));
    assert_eq!(previous_parse(&message), pcm);

    let [now, full, before] = best_us_per_message(
        messages,
        &mut [
            &mut || {
                std::hint::black_box(parse_message(&message).is_ok());
            },
            &mut || {
                std::hint::black_box(parse_message_full(&message).is_ok());
            },
            &mut || {
                std::hint::black_box(previous_parse(&message));
            },
        ],
    );
    println!(
        "chunk message of {} bytes, {messages} parses per round",
        message.len()
    );
    println!("  parse_message:            {now:6.1} µs");
    println!("  parse_message_full:       {full:6.1} µs");
    println!("  saved by the shortcut:    {:6.1} µs", full - now);
    println!("  previous (baseline):      {before:6.1} µs");
    println!("  saved per frame:          {:6.1} µs", before - now);
}

/// Each parser's best round of five. The rounds take turns (one of each, five times), so that
/// a stretch of load on a shared machine does not fall on one parser alone.
fn best_us_per_message<const N: usize>(
    messages: usize,
    parsers: &mut [&mut dyn FnMut(); N],
) -> [f64; N] {
    let mut best = [f64::INFINITY; N];
    for _ in 0..5 {
        for (parse, best) in parsers.iter_mut().zip(&mut best) {
            let started = Instant::now();
            for _ in 0..messages {
                parse();
            }
            *best = best.min(started.elapsed().as_secs_f64() * 1e6 / messages as f64);
        }
    }
    best
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
