//! `GET /v1/sessions`: the session list, as the server gateway answers it (the shapes, the
//! page query and its refusals are `session_core::history`'s).
//!
//! Which sessions, in which order: the directory object's (`directory.rs`). What each line
//! says (frames, `updated_at`, speakers, finalized): that session's own object, asked for its
//! summary; all the page's objects are asked at once. A session the directory still names
//! but whose object holds nothing (deleted meanwhile) is left out of the page.

use futures_util::future::join_all;
use worker::{Env, Response, Url};

use crate::config::SESSIONS_BINDING;
use crate::directory::{Directory, Entry};
use crate::error::ApiError;
use crate::worker::ID_PARAM;
use session_core::history::{Page, SessionList, SessionSummary};

/// The list's query parameters.
const LIMIT_PARAM: &str = "limit";
const AFTER_PARAM: &str = "after";

pub async fn list(env: &Env, url: &Url) -> Result<Response, ApiError> {
    // The last of repeated parameters counts, as with the server's query parsing.
    let param = |name: &str| {
        url.query_pairs()
            .filter(|(n, _)| n == name)
            .last()
            .map(|(_, v)| v.into_owned())
    };
    let page = Page::parse(param(LIMIT_PARAM).as_deref(), param(AFTER_PARAM).as_deref())?;
    let entries = Directory::open(env)?.page(&page).await?;
    let (entries, next_cursor) = page.split(entries, Entry::place);
    let summaries = join_all(entries.iter().map(|entry| summary(env, entry))).await;
    let mut sessions = Vec::with_capacity(summaries.len());
    for summary in summaries {
        sessions.extend(summary?);
    }
    Ok(Response::from_json(&SessionList {
        sessions,
        next_cursor,
    })?)
}

/// The listed session's line, from its object; `None` when it holds no session.
async fn summary(env: &Env, entry: &Entry) -> Result<Option<SessionSummary>, ApiError> {
    let mut url =
        Url::parse("https://session/summary").map_err(|e| ApiError::Internal(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair(ID_PARAM, &entry.session_id);
    let stub = env
        .durable_object(SESSIONS_BINDING)?
        .get_by_name(&entry.safe_id)?;
    let mut response = stub.fetch_with_str(url.as_str()).await?;
    if response.status_code() != 200 {
        // The object's own `{"detail"}` (a storage failure): the list fails with it.
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let detail = body["detail"].as_str().unwrap_or("no detail").to_owned();
        return Err(ApiError::Internal(format!(
            "session '{}' could not be listed: {detail}",
            entry.session_id
        )));
    }
    Ok(response.json().await?)
}
