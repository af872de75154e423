//! The session's Durable Object: the only writer of one session's state, as the server's
//! session actor is. Every operation — a socket's message, state, resolve, finalize, a binding,
//! `audio.wav` — takes the object's turn lock, so they run one at a time in arrival order
//! (the runtime may deliver the next event while one waits on R2 or the inference service).
//!
//! The session is loaded from SQL on first use and kept while the object lives; after a
//! storage failure it is dropped and the next request loads it again. A hibernated object
//! comes back with nothing in memory and the same storage.
//!
//! The object's alarm has two jobs: it closes sockets silent past their authentication
//! deadline, and it moves ACKed frames from the object's SQLite to R2 (`objects.rs`). The
//! first frame written after a move arms it for [`move_delay_ms`] later, so frames go to R2 in
//! batches, off the ACK path; a session loaded with frames still waiting arms it too (an
//! isolate evicted between a frame's write and the alarm's).
//!
//! The object keeps the session directory (`directory.rs`) told of its session: after each
//! operation it compares the session's place in the list (stored or not, its start) with what
//! it last told the directory, in memory, and tells it only when that changed: when the
//! session is first stored, when its first stream starts, and (in `DELETE`) when it goes. A
//! frame adds that comparison and nothing else. Were the directory unreachable, the next
//! operation tells it again.

use std::cell::Cell;

use serde_json::Value;
use tokio::sync::Mutex;
use worker::{
    DurableObject, Env, Headers, Request, Response, ScheduledTime, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair, durable_object,
};

use crate::config::{self, BUCKET_BINDING, InferenceConfig};
use crate::directory::{Directory, Entry};
use crate::error::ApiError;
use crate::inference::{self, InferenceError};
use crate::now_ms;
use crate::objects::{FrameTable, SessionObjects};
use crate::route::Operation;
use crate::socket::{self, SocketInfo};
use crate::storage::SqlSessionStorage;
use crate::wav;
use crate::worker::{ID_PARAM, MUST_AUTHENTICATE_PARAM, STREAM_PARAM};
use contract::protocol::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAY_HEADER};
use session_core::clock::EpochMs;
use session_core::history::{Deleted, HistoryError, SessionSummary};
use session_core::ports::{ObjectStorage, StorageError};
use session_core::session::{Session, SessionError};
use session_core::session_id::SessionId;
use session_core::socket::AUTH_DEADLINE_MS;
use session_core::speakers::{parse_binding, parse_finalize, parse_idempotency_key, parse_resolve};
use session_core::stream::Stream;

/// The core's session over this object's storage.
pub type EdgeSession = Session<SqlSessionStorage, SessionObjects>;

#[durable_object]
pub struct SessionObject {
    state: State,
    env: Env,
    /// The loaded session, behind the turn lock (tokio's mutex is FIFO: turns are taken in
    /// the order events arrived).
    session: Mutex<Option<EdgeSession>>,
    /// Held for a whole resolve, so each starts from the state the previous one left, while
    /// frames keep taking turns during the inference call.
    resolving: Mutex<()>,
    /// Held while frames move to R2 (not the turn lock: frames keep being ACKed meanwhile),
    /// and by `DELETE`, so no move puts a frame back into a session being deleted.
    moving: Mutex<()>,
    /// The alarm is set to move the frames written since the last move. Only memory: an
    /// evicted object forgets it, and then arms the alarm once more than needed.
    move_armed: Cell<bool>,
}

impl DurableObject for SessionObject {
    fn new(state: State, env: Env) -> Self {
        SessionObject {
            state,
            env,
            session: Mutex::new(None),
            resolving: Mutex::new(()),
            moving: Mutex::new(()),
            move_armed: Cell::new(false),
        }
    }

    async fn fetch(&self, request: Request) -> worker::Result<Response> {
        match self.serve(request).await {
            Ok(response) => Ok(response),
            Err(err) => err.into_response(),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        socket::on_message(self, &ws, message).await
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        // Complete the closing handshake (1005/1006 are not codes one may send).
        let code = match code {
            1005 | 1006 => 1000,
            code => code as u16,
        };
        let _ = ws.close(Some(code), Some("closing"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        Ok(())
    }

    /// Sockets that had to authenticate and stayed silent past their deadline are closed, and
    /// waiting frames move to R2 (at most [`MOVES_PER_ALARM`] batches; the alarm comes back at
    /// once for the rest, or after [`MOVE_RETRY_MS`] when R2 failed).
    async fn alarm(&self) -> worker::Result<Response> {
        let mut next = socket::close_silent(self.state.get_websockets(), now_ms());
        let mut later = |at: EpochMs| next = Some(next.map_or(at, |n| n.min(at)));
        match self.move_frames(MOVES_PER_ALARM).await {
            Ok(true) => later(now_ms()),
            Ok(false) => {}
            Err(_) => later(now_ms() + MOVE_RETRY_MS),
        }
        if let Some(next) = next {
            self.alarm_by(next).await?;
        }
        Response::empty()
    }
}

/// Batches of frames one alarm moves before it hands the isolate back (and comes again).
const MOVES_PER_ALARM: usize = 8;
/// How long after a failed move to R2 the alarm tries again.
const MOVE_RETRY_MS: EpochMs = 10_000;

/// How long after the first frame of a batch the alarm moves frames to R2
/// (`EDGE_FRAME_MOVE_DELAY_MS`, default 5 s): longer means fewer, larger batches.
fn move_delay_ms(env: &Env) -> EpochMs {
    config::setting(env, "EDGE_FRAME_MOVE_DELAY_MS")
        .and_then(|ms| ms.trim().parse().ok())
        .unwrap_or(DEFAULT_MOVE_DELAY_MS)
}
const DEFAULT_MOVE_DELAY_MS: EpochMs = 5_000;

/// An alarm at epoch ms `at` (workers-rs takes an offset from now).
fn alarm_time(at: EpochMs) -> ScheduledTime {
    ScheduledTime::from(at.saturating_sub(now_ms()) as i64)
}

impl SessionObject {
    async fn serve(&self, mut request: Request) -> Result<Response, ApiError> {
        let url = request.url()?;
        let param = |name: &str| {
            url.query_pairs()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.into_owned())
        };
        let id = SessionId::parse(&param(ID_PARAM).unwrap_or_default())?;
        let operation = Operation::parse(url.path().trim_start_matches('/'))
            .ok_or_else(ApiError::route_not_found)?;
        let stream = param(STREAM_PARAM);
        match operation {
            Operation::Socket => {
                let stream = match stream.as_deref() {
                    None => Stream::Mic,
                    Some(name) => {
                        Stream::parse(name).map_err(|e| ApiError::BadRequest(e.to_string()))?
                    }
                };
                let proved = param(MUST_AUTHENTICATE_PARAM).is_none();
                let info = SocketInfo {
                    id: id.as_str().to_owned(),
                    stream: stream.as_str().to_owned(),
                    proved,
                    auth_deadline: (!proved).then(|| now_ms() + AUTH_DEADLINE_MS),
                };
                self.accept_socket(info).await
            }
            Operation::State => {
                let state = self.with_session(&id, async |s| Ok(s.state())).await?;
                Ok(Response::from_json(&state)?)
            }
            Operation::Finalize => {
                let metadata = parse_finalize(&request.bytes().await?)?;
                // Every frame ACKed so far is in R2 at its key before result.json says the
                // session is done.
                while self.move_frames(usize::MAX).await? {}
                let done = self
                    .with_session(&id, async |s| s.finalize(metadata, now_ms()).await)
                    .await?;
                Ok(Response::from_json(&done)?)
            }
            Operation::Bindings => {
                let (cluster_id, name) = parse_binding(&request.bytes().await?)?;
                let state = self
                    .with_session(&id, async |s| s.bind(&cluster_id, &name, now_ms()).await)
                    .await?;
                Ok(Response::from_json(&state)?)
            }
            Operation::Resolve => {
                let body = request.bytes().await?;
                let key = request.headers().get(IDEMPOTENCY_KEY_HEADER)?;
                self.resolve(&id, &body, key.as_deref()).await
            }
            Operation::Audio => {
                let range = request.headers().get("range")?;
                wav::serve(self, &id, stream.as_deref(), range.as_deref()).await
            }
            Operation::Result => self.result(&id).await,
            Operation::Delete => self.delete(&id).await,
            Operation::Summary => self.summary(&id).await,
        }
    }

    async fn accept_socket(&self, info: SocketInfo) -> Result<Response, ApiError> {
        if let Some(deadline) = info.auth_deadline {
            self.alarm_by(deadline).await?;
        }
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(&info)?;
        Ok(Response::from_websocket(pair.client)?)
    }

    /// Makes sure the object's alarm goes off no later than `at` (epoch ms). An earlier one is
    /// as good: the alarm closes only sockets past their deadline, moves whatever frames wait,
    /// and sets itself again for what is left.
    async fn alarm_by(&self, at: EpochMs) -> worker::Result<()> {
        let storage = self.state.storage();
        match storage.get_alarm().await? {
            Some(set) if set <= at as i64 => Ok(()),
            _ => storage.set_alarm(alarm_time(at)).await,
        }
    }

    /// A frame was stored: the alarm is armed to move it to R2 (once per batch, not per
    /// frame). Its failure does not touch the frame, which is durable in the table already:
    /// the next frame, or the session's next load, arms it again.
    pub async fn frame_stored(&self) {
        if self.move_armed.replace(true) {
            return;
        }
        if self
            .alarm_by(now_ms() + move_delay_ms(&self.env))
            .await
            .is_err()
        {
            self.move_armed.set(false);
        }
    }

    /// Moves waiting frames to R2, at most `batches` batches; answers whether frames still
    /// wait. When none do, the alarm counts as disarmed (checked and cleared with no `await`
    /// between, so a frame written after it arms the alarm again).
    async fn move_frames(&self, batches: usize) -> Result<bool, StorageError> {
        let _moving = self.moving.lock().await;
        let bucket = self
            .env
            .bucket(BUCKET_BINDING)
            .map_err(|e| StorageError(format!("R2 binding: {e}")))?;
        let table = FrameTable::new(self.state.storage().sql(), bucket)?;
        for _ in 0..batches {
            if table.move_batch().await? == 0 {
                break;
            }
        }
        let waiting = table.has_waiting()?;
        if !waiting {
            self.move_armed.set(false);
        }
        Ok(waiting)
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The objects of session `id`: frames in this object's SQLite, the rest in R2.
    pub fn objects(&self, id: &SessionId) -> Result<SessionObjects, StorageError> {
        let bucket = self
            .env
            .bucket(BUCKET_BINDING)
            .map_err(|e| StorageError(format!("R2 binding: {e}")))?;
        SessionObjects::new(id, self.state.storage().sql(), bucket)
    }

    /// Runs `f` on the session in this object's turn (loading it first if needed).
    pub async fn with_session<T>(
        &self,
        id: &SessionId,
        f: impl AsyncFnOnce(&mut EdgeSession) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        let mut live = self.session.lock().await;
        if live.is_none() {
            let storage = SqlSessionStorage::new(self.state.storage().sql())?;
            let objects = self.objects(id)?;
            let waiting = objects.table().has_waiting()?;
            *live = Some(Session::open(id.clone(), storage, objects).await?);
            if waiting {
                self.frame_stored().await;
            }
        }
        let session = live.as_mut().expect("loaded above");
        session.check_id(id)?;
        let result = f(session).await;
        if matches!(result, Err(SessionError::Storage(_))) {
            // Whatever the failed write left in memory is not trusted: load again next time.
            *live = None;
        } else {
            self.keep_listed(session).await;
        }
        result
    }

    /// Tells the directory where the session belongs in the list, if that changed since it
    /// was last told (see the module doc). Still in the session's turn, so the directory
    /// hears of one session's changes in the order they happened.
    async fn keep_listed(&self, session: &EdgeSession) {
        let storage = session.storage();
        if !storage.is_stored() {
            return;
        }
        let sort_key = session.started_at().unwrap_or(0);
        if storage.listed() == Some(sort_key) {
            return;
        }
        let entry = Entry {
            safe_id: session.id().safe().to_owned(),
            session_id: session.id().as_str().to_owned(),
            sort_key,
        };
        let told = match Directory::open(&self.env) {
            Ok(directory) => directory.enter(&entry).await,
            Err(err) => Err(err),
        };
        let noted = told
            .map_err(|e| e.to_string())
            .and_then(|()| storage.note_listed(sort_key).map_err(|e| e.to_string()));
        if let Err(err) = noted {
            // The operation itself succeeded; its next one tells the directory again.
            worker::console_warn!(
                "session {}: the session directory was not told: {err}",
                session.id().escaped()
            );
        }
    }

    /// The session's line of the list (`null` when no session is stored here). In the
    /// session's turn: an entry the directory has for a session not stored (see
    /// `directory.rs`) is removed here, where no write of the session can come in between.
    async fn summary(&self, id: &SessionId) -> Result<Response, ApiError> {
        let _turn = self.session.lock().await;
        let facts = SqlSessionStorage::new(self.state.storage().sql())?.facts()?;
        if facts.is_none() {
            Directory::open(&self.env)?.remove(id.safe()).await?;
        }
        Ok(Response::from_json(
            &facts.as_ref().map(SessionSummary::from),
        )?)
    }

    /// The stored `result.json` of a finalized session (the server's history texts).
    async fn result(&self, id: &SessionId) -> Result<Response, ApiError> {
        let not_finalized = || ApiError::from(HistoryError::NotFinalized(id.to_string()));
        // In the session's turn: a finalize in flight is either done or not begun.
        let _turn = self.session.lock().await;
        let storage = SqlSessionStorage::new(self.state.storage().sql())?;
        let Some((existing, finalized_at)) = storage.finalized()? else {
            return Err(HistoryError::NotFound(id.to_string()).into());
        };
        if existing != id.as_str() {
            return Err(SessionError::IdCollision {
                requested: id.to_string(),
                existing,
            }
            .into());
        }
        if finalized_at.is_none() {
            return Err(not_finalized());
        }
        let bytes = self
            .objects(id)?
            .get(&id.result_key())
            .await?
            .ok_or_else(not_finalized)?;
        Ok(Response::from_bytes(bytes)?.with_headers(json_headers()?))
    }

    /// `DELETE`: every object under the session's prefix, then its rows; refused while a
    /// socket is open on it (a recorder still streaming would refill it). Afterwards the id is
    /// free: the next request starts an empty session. The server gateway's answers and texts.
    async fn delete(&self, id: &SessionId) -> Result<Response, ApiError> {
        // No resolve is between its read and its write, no move of frames to R2, and no other
        // request in between.
        let _one_at_a_time = self.resolving.lock().await;
        let _no_move = self.moving.lock().await;
        let mut live = self.session.lock().await;
        if !self.state.get_websockets().is_empty() {
            return Err(HistoryError::SocketOpen(id.to_string()).into());
        }
        let storage = SqlSessionStorage::new(self.state.storage().sql())?;
        if let Some((existing, _)) = storage.finalized()?
            && existing != id.as_str()
        {
            return Err(SessionError::IdCollision {
                requested: id.to_string(),
                existing,
            }
            .into());
        }
        // Whatever happens next, the session in memory no longer matches storage.
        *live = None;
        // Objects first: if that fails the rows still name the session, so a retry finds it.
        let objects_deleted = self.objects(id)?.delete_all(&id.prefix()).await?;
        let had_rows = storage.delete_all()?;
        if !had_rows && objects_deleted == 0 {
            return Err(HistoryError::NotFound(id.to_string()).into());
        }
        // Off the list. Were the directory unreachable, the entry stays until a list asks
        // this object for its summary, which finds nothing here and removes it.
        let unlisted = match Directory::open(&self.env) {
            Ok(directory) => directory.remove(id.safe()).await,
            Err(err) => Err(err),
        };
        if let Err(err) = unlisted {
            worker::console_warn!(
                "session {}: deleted, but the session directory was not told: {err}",
                id.escaped()
            );
        }
        Ok(Response::from_json(&Deleted {
            session_id: id.to_string(),
            deleted: true,
            objects_deleted,
        })?)
    }

    /// Resolve: replay for a known idempotency key, else ask inference with the session's
    /// state and keep its answer (the server gateway's steps, in the same order).
    async fn resolve(
        &self,
        id: &SessionId,
        body: &[u8],
        key: Option<&str>,
    ) -> Result<Response, ApiError> {
        let input = parse_resolve(body)?;
        let key = parse_idempotency_key(key.map(str::as_bytes))?;
        let _one_at_a_time = self.resolving.lock().await;
        if let Some(key) = &key
            && let Some(answer) = self.with_session(id, async |s| s.replay(key).await).await?
        {
            let headers = json_headers()?;
            headers.set(IDEMPOTENT_REPLAY_HEADER, "true")?;
            return Ok(Response::from_bytes(answer.into_bytes())?.with_headers(headers));
        }
        let request: Value = self
            .with_session(id, async |s| s.inference_body(&input))
            .await?;
        let config = InferenceConfig::from_env(&self.env).ok_or(InferenceError::NotConfigured)?;
        let answer = inference::resolve(&config, &request).await?;
        self.with_session(id, async |s| {
            s.apply_answer(&input, &answer, key.as_deref(), now_ms())
                .await
        })
        .await?;
        Ok(Response::from_bytes(answer)?.with_headers(json_headers()?))
    }
}

fn json_headers() -> worker::Result<Headers> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(headers)
}
