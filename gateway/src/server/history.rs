//! The history routes: list sessions, read a finalized result, delete a session.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::SessionPath;
use crate::sessions::history::{Deleted, Page, SessionList};

/// `GET /v1/sessions?limit=N&after=CURSOR`
pub async fn list(
    State(app): State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SessionList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let page = Page::parse(
        query.get("limit").map(String::as_str),
        query.get("after").map(String::as_str),
    )?;
    Ok(Json(app.sessions.list(page).await?))
}

/// `GET /v1/sessions/{id}/result`: the stored `result.json`, byte for byte.
pub async fn result(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
) -> Result<Response, ApiError> {
    let bytes = app.sessions.result(&id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// `DELETE /v1/sessions/{id}`
pub async fn delete(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
) -> Result<Json<Deleted>, ApiError> {
    Ok(Json(app.sessions.delete(&id).await?))
}
