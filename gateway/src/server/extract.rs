//! Request extractors whose failures are [`ApiError`]s, so every refusal has the JSON shape.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use bytes::Bytes;

use crate::core::session_id::SessionId;
use crate::core::stream::Stream;
use crate::server::error::ApiError;

/// Largest HTTP body accepted: a 30-second resolve window is ~1.3 MB of base64.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The `{session_id}` of the route, URL-decoded and checked.
pub struct SessionPath(pub SessionId);

impl<S: Send + Sync> FromRequestParts<S> for SessionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid session_id: {}", e.body_text())))?;
        Ok(SessionPath(SessionId::parse(&raw)?))
    }
}

/// The `stream` query parameter (`?stream=system`), if given.
pub struct StreamName(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for StreamName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(mut params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
        Ok(StreamName(params.remove("stream")))
    }
}

impl StreamName {
    /// The socket's stream: the mic unless another is named.
    pub fn stream(&self) -> Result<Stream, ApiError> {
        self.0.as_deref().map_or(Ok(Stream::Mic), |name| {
            Stream::parse(name).map_err(|e| ApiError::BadRequest(e.to_string()))
        })
    }
}

/// How long a client may take to send a body (slowloris); headers have their own limit.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The raw body of a JSON request: refused past [`MAX_BODY_BYTES`] (413), when it does not
/// arrive within [`BODY_READ_TIMEOUT`] (408), and, when not empty, unless its type is
/// `application/json` (415; see [`super::browser`] for why). An empty body needs no type: it is
/// how the seed's clients finalize, and pages cannot send one unnoticed (their `Origin` is
/// refused).
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(is_json);
        let read = tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(request, state));
        let bytes = read
            .await
            .map_err(|_| ApiError::BodyTimeout(BODY_READ_TIMEOUT.as_secs()))?
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(MAX_BODY_BYTES),
                _ => ApiError::BadRequest(e.body_text()),
            })?;
        if !bytes.is_empty() && !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        Ok(Body(bytes))
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`), in any case.
fn is_json(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    })
}
