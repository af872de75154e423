//! The optional API key: checked on every route but `/health` and `/ready` (probes, which say
//! only whether the gateway is up and can store; see `ready.rs`), compared in constant time.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::server::AppState;
use crate::server::error::ApiError;

/// Whether the upgrade request already proved the key; a socket without it must send
/// `{"type":"auth"}` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyChecked(pub bool);

/// A fresh key from the operating system's CSPRNG: 32 random bytes as 64 hex digits. The
/// bundled gateway gets one per launch, known only to the app that started it.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True if `given` is the configured key.
pub fn key_matches(expected: &str, given: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The key a request carries in `x-api-key` or `authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key);
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

pub async fn require_key(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(expected) = app.api_key.as_deref() else {
        request.extensions_mut().insert(KeyChecked(true));
        return next.run(request).await;
    };
    let path = request.uri().path();
    if path == "/health" || path == "/ready" {
        return next.run(request).await;
    }
    let checked = match presented_key(request.headers()) {
        Some(given) if key_matches(expected, given) => true,
        Some(_) => return ApiError::Unauthorized.into_response(),
        // Browsers cannot set headers on a WebSocket; such a socket authenticates in-band.
        None if path.starts_with("/v1/audio/ws/") => false,
        None => return ApiError::Unauthorized.into_response(),
    };
    request.extensions_mut().insert(KeyChecked(checked));
    next.run(request).await
}
