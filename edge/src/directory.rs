//! The directory of sessions: one Durable Object (binding [`DIRECTORY_BINDING`], the one
//! instance named [`DIRECTORY_NAME`]) that knows which sessions are stored and where each sits
//! in the list, so `GET /v1/sessions` can page through sessions that each live in their own
//! object.
//!
//! Why an object of our own, not D1 or an R2 listing: R2 lists keys by name, not newest
//! first, holds a session's frames only seconds after their ACKs (`objects.rs`) and holds
//! nothing for a session with only resolves; D1 would be a second database, with its own
//! migrations, to deploy for one small table. A Durable Object with SQLite storage is what the
//! edge runs on already (it persists under `wrangler dev --local` like the sessions do), and
//! its requests are taken one at a time, so two sessions telling it at once cannot race.
//!
//! What it holds is small and changes rarely: per session its safe name (the name of its
//! object), its id, and its place in the list (its start, 0 before it has a stream). A
//! session's object tells it when the session is first stored, when its first stream starts
//! (its place moves from 0 to the start, once) and when it is deleted: a few small writes per
//! session, never one per frame (`session_object.rs`, `listing`). What changes with frames
//! (counts, `updated_at`, speakers, finalized) is asked of each listed session's object
//! (`history.rs`), for the sessions of one page only.
//!
//! The directory may name a session that is gone (its object told the directory, then its
//! own write failed; or the directory could not be told of a delete): that session's object
//! answers no summary and removes the entry in its own turn, and the list skips it.

use serde::{Deserialize, Serialize};
use worker::{
    DurableObject, Env, Method, Request, RequestInit, Response, SqlStorage, SqlStorageValue, State,
    Stub, durable_object,
};

use crate::config::{DIRECTORY_BINDING, DIRECTORY_NAME};
use session_core::clock::EpochMs;
use session_core::history::{Cursor, Page};

/// One listed session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The name of the session's object (its storage-safe id).
    pub safe_id: String,
    /// The client's id.
    pub session_id: String,
    /// Its start (epoch ms), 0 before its first stream: the list's order.
    pub sort_key: EpochMs,
}

impl Entry {
    pub fn place(&self) -> Cursor {
        Cursor {
            sort_key: self.sort_key,
            safe_id: self.safe_id.clone(),
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    safe_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    sort_key INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_start ON sessions (sort_key DESC, safe_id DESC);
";

// The internal routes of the directory object (only the Worker and session objects call it).
const ENTRY_URL: &str = "https://directory/entry";
const PAGE_URL: &str = "https://directory/page";
const SAFE_ID_PARAM: &str = "safe_id";
const LIMIT_PARAM: &str = "limit";
const AFTER_PARAM: &str = "after";

#[durable_object]
pub struct SessionDirectory {
    state: State,
    _env: Env,
}

impl DurableObject for SessionDirectory {
    fn new(state: State, env: Env) -> Self {
        SessionDirectory { state, _env: env }
    }

    async fn fetch(&self, mut request: Request) -> worker::Result<Response> {
        let sql = self.state.storage().sql();
        sql.exec(SCHEMA, None)?;
        let url = request.url()?;
        let param = |name: &str| {
            url.query_pairs()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.into_owned())
        };
        match (request.method(), url.path()) {
            (Method::Put, "/entry") => {
                let entry: Entry = request.json().await?;
                enter(&sql, &entry)?;
                Response::empty()
            }
            (Method::Delete, "/entry") => {
                let safe_id = param(SAFE_ID_PARAM).unwrap_or_default();
                sql.exec(
                    "DELETE FROM sessions WHERE safe_id = ?",
                    vec![safe_id.into()],
                )?;
                Response::empty()
            }
            (Method::Get, "/page") => {
                let limit = param(LIMIT_PARAM)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(1);
                let after = param(AFTER_PARAM)
                    .map(|text| {
                        Page::parse(None, Some(&text))
                            .map_err(|e| worker::Error::RustError(e.to_string()))
                    })
                    .transpose()?
                    .and_then(|page| page.after);
                Response::from_json(&page(&sql, after.as_ref(), limit)?)
            }
            _ => Response::error("no such directory route", 404),
        }
    }
}

fn int(n: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(n as i64)
}

fn enter(sql: &SqlStorage, entry: &Entry) -> worker::Result<()> {
    sql.exec(
        "INSERT INTO sessions (safe_id, session_id, sort_key) VALUES (?, ?, ?)
         ON CONFLICT (safe_id) DO UPDATE SET session_id = excluded.session_id,
             sort_key = excluded.sort_key",
        vec![
            entry.safe_id.as_str().into(),
            entry.session_id.as_str().into(),
            int(entry.sort_key),
        ],
    )?;
    Ok(())
}

/// Up to `limit` entries in list order (newest start first, ties by safe name descending:
/// SQLite compares text bytewise, as the server's does), after `after` when given.
fn page(sql: &SqlStorage, after: Option<&Cursor>, limit: u64) -> worker::Result<Vec<Entry>> {
    let cursor = match after {
        None => sql.exec(
            "SELECT safe_id, session_id, sort_key FROM sessions
             ORDER BY sort_key DESC, safe_id DESC LIMIT ?",
            vec![int(limit)],
        )?,
        Some(after) => sql.exec(
            "SELECT safe_id, session_id, sort_key FROM sessions
             WHERE sort_key < ? OR (sort_key = ? AND safe_id < ?)
             ORDER BY sort_key DESC, safe_id DESC LIMIT ?",
            vec![
                int(after.sort_key),
                int(after.sort_key),
                after.safe_id.as_str().into(),
                int(limit),
            ],
        )?,
    };
    cursor.to_array()
}

/// The directory as its callers use it.
pub struct Directory {
    stub: Stub,
}

impl Directory {
    pub fn open(env: &Env) -> worker::Result<Directory> {
        let stub = env
            .durable_object(DIRECTORY_BINDING)?
            .get_by_name(DIRECTORY_NAME)?;
        Ok(Directory { stub })
    }

    /// Lists the session, or moves it to its new place.
    pub async fn enter(&self, entry: &Entry) -> worker::Result<()> {
        let mut init = RequestInit::new();
        init.with_method(Method::Put)
            .with_body(Some(serde_json::to_string(entry)?.into()));
        let request = Request::new_with_init(ENTRY_URL, &init)?;
        done(self.stub.fetch_with_request(request).await?).await
    }

    /// Takes the session stored under `safe_id` off the list (nothing if it is not on it).
    pub async fn remove(&self, safe_id: &str) -> worker::Result<()> {
        let mut url = worker::Url::parse(ENTRY_URL)?;
        url.query_pairs_mut().append_pair(SAFE_ID_PARAM, safe_id);
        let mut init = RequestInit::new();
        init.with_method(Method::Delete);
        let request = Request::new_with_init(url.as_str(), &init)?;
        done(self.stub.fetch_with_request(request).await?).await
    }

    /// The entries of `page`, and one more when there is one (see [`Page::read_limit`]).
    pub async fn page(&self, page: &Page) -> worker::Result<Vec<Entry>> {
        let mut url = worker::Url::parse(PAGE_URL)?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair(LIMIT_PARAM, &page.read_limit().to_string());
            if let Some(after) = &page.after {
                query.append_pair(AFTER_PARAM, &after.to_string());
            }
        }
        let mut response = self.stub.fetch_with_str(url.as_str()).await?;
        if response.status_code() != 200 {
            return Err(failed(&mut response).await);
        }
        response.json().await
    }
}

async fn done(mut response: Response) -> worker::Result<()> {
    if (200..300).contains(&response.status_code()) {
        Ok(())
    } else {
        Err(failed(&mut response).await)
    }
}

async fn failed(response: &mut Response) -> worker::Error {
    let text = response.text().await.unwrap_or_default();
    worker::Error::RustError(format!(
        "session directory answered {}: {text}",
        response.status_code()
    ))
}
