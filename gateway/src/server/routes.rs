//! The HTTP routes: parse, call one operation of [`Sessions`], shape the answer.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::core::speakers::{parse_binding, parse_finalize, parse_idempotency_key, parse_resolve};
use crate::inference::InferenceError;
use crate::protocol::{
    FinalizeResponse, IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAY_HEADER, StateResponse,
};
use crate::server::AppState;
use crate::server::accept::ClientAddr;
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
        "inference": app.sessions.inference().health(),
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
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let input = parse_resolve(&body)?;
    let key = parse_idempotency_key(headers.get(IDEMPOTENCY_KEY_HEADER).map(|v| v.as_bytes()))?;
    let json = HeaderValue::from_static("application/json");
    let resolved = app.sessions.resolve(&id, input, key, ip(client)).await;
    app.metrics.resolved(app.sessions.inference(), &resolved);
    Ok(match resolved? {
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
    client: Option<Extension<ClientAddr>>,
    Body(body): Body,
) -> Result<Json<FinalizeResponse>, ApiError> {
    let metadata = parse_finalize(&body)?;
    Ok(Json(
        app.sessions.finalize(&id, metadata, ip(client)).await?,
    ))
}

pub async fn bind(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
    client: Option<Extension<ClientAddr>>,
    Body(body): Body,
) -> Result<Json<StateResponse>, ApiError> {
    let (cluster_id, name) = parse_binding(&body)?;
    Ok(Json(
        app.sessions.bind(&id, cluster_id, name, ip(client)).await?,
    ))
}

/// `POST /speaker/resolve`: the built-in engine answering the inference service's contract,
/// so the seed's worker or any other gateway can use this one as its `INFERENCE_BASE_URL`.
/// Errors are the service's own (422 no speech or unreadable audio, 413 too long), not the
/// gateway's 502 mapping of them.
pub async fn speaker_service(State(app): State<AppState>, Body(body): Body) -> Response {
    let Some(engine) = app.sessions.inference().builtin() else {
        return ApiError::Unavailable(format!(
            "the built-in speaker engine is not running on this gateway (inference: {})",
            app.sessions.inference().describe()
        ))
        .into_response();
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"detail": "request body must be a JSON object"})),
            )
                .into_response();
        }
    };
    match engine.resolve(&request).await {
        Ok(answer) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            answer,
        )
            .into_response(),
        // The built-in engine's refusals are JSON text.
        Err(InferenceError::Backend { status, body, .. }) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(other) => ApiError::Unavailable(other.to_string()).into_response(),
    }
}

/// The requesting client's address, counted against its cap on live sessions.
fn ip(client: Option<Extension<ClientAddr>>) -> Option<std::net::IpAddr> {
    client.map(|Extension(ClientAddr(ip))| ip)
}
