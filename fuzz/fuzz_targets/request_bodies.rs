//! The HTTP request bodies the gateway accepts, through the functions its routes call
//! (`session_core::speakers::parse_*`, as `gateway/src/server/routes.rs` does): every input is
//! read as each body, since they share one JSON reader. None panics, and what each accepts is
//! within the caps of `session_core::caps`:
//!
//! - `POST /resolve`: `audio.content_b64` and `audio.format` are strings; a roster is 1..=100
//!   entries with bounded names and emails; the body sent on to inference serializes;
//! - `PUT /bindings`: the name is trimmed, 1..=200 characters, without control characters;
//! - `POST /finalize`: the metadata is at most `MAX_METADATA_BYTES` of JSON and reads back from
//!   `result.json` as written, floats to the last bit (see `gateway_fuzz::same_json`), since a
//!   finalized session rewrites it from what it reads;
//! - the `x-idempotency-key` header (the same bytes): visible ASCII, at most 256 characters.
#![no_main]

use contract::protocol::FinalResult;
use contract::session_id::SessionId;
use gateway_fuzz::same_json;
use libfuzzer_sys::fuzz_target;
use session_core::caps::{
    MAX_EMAIL_CHARS, MAX_IDEMPOTENCY_KEY_CHARS, MAX_METADATA_BYTES, MAX_ROSTER_ENTRIES,
    MAX_SPEAKER_NAME_CHARS,
};
use session_core::speakers::{
    SpeakerRecord, parse_binding, parse_finalize, parse_idempotency_key, parse_resolve,
};

fuzz_target!(|body: &[u8]| {
    check_resolve(body);
    check_binding(body);
    check_finalize(body);
    check_idempotency_key(body);
});

fn check_resolve(body: &[u8]) {
    let Ok(input) = parse_resolve(body) else {
        return;
    };
    assert!(input.audio["content_b64"].is_string());
    assert!(input.audio["format"].is_string());
    if let Some(roster) = &input.roster {
        assert!((1..=MAX_ROSTER_ENTRIES).contains(&roster.len()));
        for entry in roster {
            assert!(entry.name.chars().count() <= MAX_SPEAKER_NAME_CHARS);
            assert!(
                entry
                    .email
                    .as_ref()
                    .is_none_or(|e| e.chars().count() <= MAX_EMAIL_CHARS)
            );
        }
    }
    let id = SessionId::parse("s").expect("a plain id");
    let sent = SpeakerRecord::default().inference_body(&id, &input);
    serde_json::to_vec(&sent).expect("the inference body serializes");
}

fn check_binding(body: &[u8]) {
    let Ok((_cluster_id, name)) = parse_binding(body) else {
        return;
    };
    assert_eq!(name.trim(), name);
    let chars = name.chars().count();
    assert!((1..=MAX_SPEAKER_NAME_CHARS).contains(&chars), "{chars}");
    assert!(!name.chars().any(char::is_control), "{name:?}");
}

fn check_finalize(body: &[u8]) {
    let Ok(metadata) = parse_finalize(body) else {
        return;
    };
    let json = serde_json::to_vec(&metadata).expect("metadata serializes");
    assert!(json.len() <= MAX_METADATA_BYTES);

    // `result.json` is written pretty, read back and rewritten by any later change.
    let result = FinalResult {
        session_id: "s".into(),
        finalized_at: "2024-01-01T00:00:00.000Z".into(),
        state: Default::default(),
        events: Vec::new(),
        ingest: None,
        streams: Default::default(),
        metadata,
    };
    let written = serde_json::to_vec_pretty(&result).expect("a result serializes");
    let read: FinalResult =
        serde_json::from_slice(&written).expect("result.json reads back as written");
    assert!(
        same_json(&read.metadata, &result.metadata),
        "{:?} read back as {:?}",
        result.metadata,
        read.metadata
    );
}

fn check_idempotency_key(raw: &[u8]) {
    let Ok(Some(key)) = parse_idempotency_key(Some(raw)) else {
        return;
    };
    assert!(!key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_CHARS);
    assert!(key.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)));
    assert_eq!(key.as_bytes(), raw);
}
