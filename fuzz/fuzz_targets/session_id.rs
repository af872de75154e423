//! Session ids (`contract::session_id::SessionId::parse`) and stream names
//! (`contract::stream::Stream::parse`) on any text a URL path or query can carry: they never
//! panic, and an accepted id keeps the invariants every object key relies on:
//!
//! - 1..=128 characters, not `.` or `..`;
//! - its safe name has as many characters, all of `[A-Za-z0-9._-]`, and is not `.` or `..`, so
//!   every key stays one folder under `sessions/` (no segment is empty, `.` or `..`);
//! - its log form holds no control characters (a line break in an id cannot forge a log line).
#![no_main]

use contract::session_id::{MAX_SESSION_ID_CHARS, SessionId};
use contract::stream::Stream;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Paths and queries reach the parsers URL-decoded, as UTF-8 (axum refuses other bytes).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_session_id(text);
    check_stream(text);
});

fn check_session_id(text: &str) {
    let Ok(id) = SessionId::parse(text) else {
        let chars = text.chars().count();
        assert!(
            chars == 0 || chars > MAX_SESSION_ID_CHARS || text == "." || text == "..",
            "refused an acceptable id {text:?}"
        );
        return;
    };
    assert_eq!(id.as_str(), text);
    let chars = text.chars().count();
    assert!((1..=MAX_SESSION_ID_CHARS).contains(&chars));
    assert!(text != "." && text != "..");

    let safe = id.safe();
    assert_eq!(safe.len(), chars, "one safe character per character");
    assert!(
        safe.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
        "{safe:?}"
    );
    assert!(safe != "." && safe != "..", "{safe:?}");

    for stream in Stream::ALL {
        for key in [
            id.prefix(),
            id.result_key(),
            id.chunks_prefix(stream),
            id.stream_chunk_key(stream, 1),
            id.stream_chunk_key(stream, u64::MAX),
        ] {
            let rest = key
                .strip_prefix(&format!("sessions/{safe}/"))
                .unwrap_or_else(|| panic!("{key:?} is outside its session's folder"));
            assert!(!rest.starts_with('/'), "{key:?}");
            let segments: Vec<&str> = key.trim_end_matches('/').split('/').collect();
            assert!(
                segments
                    .iter()
                    .all(|s| !s.is_empty() && *s != "." && *s != ".."),
                "{key:?}"
            );
        }
    }

    let logged = id.escaped().to_string();
    assert!(!logged.chars().any(char::is_control), "{logged:?}");
}

fn check_stream(text: &str) {
    match Stream::parse(text) {
        Ok(stream) => assert_eq!(stream.as_str(), text),
        Err(err) => {
            // The refusal echoes at most 32 characters of what a stranger sent.
            assert!(err.0.chars().count() <= 32);
            assert!(text.starts_with(&err.0));
            assert!(err.to_string().chars().count() <= 32 + 40);
        }
    }
}
