//! Request extractors whose failures are [`ApiError`]s, so every refusal has the JSON shape.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;

use crate::core::session_id::SessionId;
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

/// The raw request body, refused past [`MAX_BODY_BYTES`].
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(MAX_BODY_BYTES),
                _ => ApiError::BadRequest(e.body_text()),
            })
    }
}
