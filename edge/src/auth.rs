//! The optional API key (`GATEWAY_API_KEY`): checked on every route but `/health`, compared in
//! constant time, as the server gateway does.

use subtle::ConstantTimeEq;
use worker::Headers;

/// True if `given` is the configured key.
pub fn key_matches(expected: &str, given: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The key a request carries in `x-api-key` or `authorization: Bearer`.
pub fn presented_key(headers: &Headers) -> Option<String> {
    if let Ok(Some(key)) = headers.get("x-api-key") {
        return Some(key);
    }
    headers
        .get("authorization")
        .ok()
        .flatten()
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
}

/// What a request proved about the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// No key configured, or the right one sent.
    Passed,
    /// A socket that sent no key in its upgrade: it must send `{"type":"auth"}` first
    /// (browsers cannot set headers on a WebSocket).
    SocketMustAuthenticate,
    /// Wrong or missing key: 401.
    Refused,
}

/// Checks a request for `path` against the configured key.
pub fn check(expected: Option<&str>, headers: &Headers, path: &str) -> KeyCheck {
    let Some(expected) = expected else {
        return KeyCheck::Passed;
    };
    match presented_key(headers) {
        Some(given) if key_matches(expected, &given) => KeyCheck::Passed,
        Some(_) => KeyCheck::Refused,
        None if path.starts_with("/v1/audio/ws/") => KeyCheck::SocketMustAuthenticate,
        None => KeyCheck::Refused,
    }
}
