//! The HTTP routes: parse, call one operation of [`Sessions`], shape the answer.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::core::speakers::{parse_binding, parse_finalize, parse_resolve};
use crate::protocol::{
    FinalizeResponse, IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAY_HEADER, StateResponse,
};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{Body, SessionPath};
use crate::sessions::Resolved;

pub async fn health(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "app": "interview-gateway",
        "version": env!("CARGO_PKG_VERSION"),
        "storage": app.sessions.objects().kind(),
        "inference_configured": app.sessions.inference_configured(),
        "live_sessions": app.sessions.live_sessions(),
    }))
}

pub async fn state(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
) -> Result<Json<StateResponse>, ApiError> {
    Ok(Json(app.sessions.state(&id).await?))
}

pub async fn resolve(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let input = parse_resolve(&body)?;
    let key = headers
        .get(IDEMPOTENCY_KEY_HEADER)
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::BadRequest("x-idempotency-key must be visible ASCII".into()))
        })
        .transpose()?
        .filter(|k| !k.is_empty());
    let json = HeaderValue::from_static("application/json");
    Ok(match app.sessions.resolve(&id, input, key).await? {
        Resolved::Fresh(answer) => ([(header::CONTENT_TYPE, json)], answer).into_response(),
        Resolved::Replay(answer) => (
            [
                (header::CONTENT_TYPE, json),
                (
                    header::HeaderName::from_static(IDEMPOTENT_REPLAY_HEADER),
                    HeaderValue::from_static("true"),
                ),
            ],
            answer,
        )
            .into_response(),
    })
}

pub async fn finalize(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
    Body(body): Body,
) -> Result<Json<FinalizeResponse>, ApiError> {
    let metadata = parse_finalize(&body)?;
    Ok(Json(app.sessions.finalize(&id, metadata).await?))
}

pub async fn bind(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
    Body(body): Body,
) -> Result<Json<StateResponse>, ApiError> {
    let (cluster_id, name) = parse_binding(&body)?;
    Ok(Json(app.sessions.bind(&id, cluster_id, name).await?))
}
