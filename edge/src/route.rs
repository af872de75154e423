//! Which operation a request asks for: the routes of the contract, with the server gateway's
//! 404 (`route not found`) and 405 (`method not allowed`).

use percent_encoding::percent_decode_str;
use worker::Method;

use crate::error::ApiError;
use session_core::session_id::SessionId;

/// What a request for one session asks for. Its name is also the path of the request the
/// Worker sends the session's Durable Object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Socket,
    State,
    Resolve,
    Finalize,
    Bindings,
    Audio,
    /// `GET /v1/sessions/{id}/result`: the stored `result.json` (history, beyond the seed).
    Result,
    /// `DELETE /v1/sessions/{id}`: the session's frames, result and rows (history).
    Delete,
    /// Internal, never routed from a client: the session's line of `GET /v1/sessions`, asked
    /// by the Worker's list (`history.rs`).
    Summary,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Socket => "socket",
            Operation::State => "state",
            Operation::Resolve => "resolve",
            Operation::Finalize => "finalize",
            Operation::Bindings => "bindings",
            Operation::Audio => "audio.wav",
            Operation::Result => "result",
            Operation::Delete => "delete",
            Operation::Summary => "summary",
        }
    }

    pub fn parse(name: &str) -> Option<Operation> {
        [
            Operation::Socket,
            Operation::State,
            Operation::Resolve,
            Operation::Finalize,
            Operation::Bindings,
            Operation::Audio,
            Operation::Result,
            Operation::Delete,
            Operation::Summary,
        ]
        .into_iter()
        .find(|op| op.as_str() == name)
    }

    /// Reached as `/v1/sessions/{id}/<name>` (the socket and delete have paths of their own;
    /// the summary is only the Worker's).
    fn is_sub_route(self) -> bool {
        !matches!(
            self,
            Operation::Socket | Operation::Delete | Operation::Summary
        )
    }

    fn method(self) -> Method {
        match self {
            Operation::Socket
            | Operation::State
            | Operation::Audio
            | Operation::Result
            | Operation::Summary => Method::Get,
            Operation::Resolve | Operation::Finalize => Method::Post,
            Operation::Bindings => Method::Put,
            Operation::Delete => Method::Delete,
        }
    }
}

/// A routed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    /// `GET /v1/sessions?limit=N&after=CURSOR`: the session list (history).
    List,
    Session(Operation, SessionId),
}

/// Routes `method path` (the path still percent-encoded, as in the URL).
pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let (expected, route) = match path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .collect::<Vec<_>>()[..]
    {
        ["health"] => (Method::Get, Target::Fixed(Route::Health)),
        ["v1", "sessions"] => (Method::Get, Target::Fixed(Route::List)),
        ["v1", "audio", "ws", id] if !id.is_empty() => {
            (Method::Get, Target::Session(Operation::Socket, id))
        }
        ["v1", "sessions", id] if !id.is_empty() => {
            (Method::Delete, Target::Session(Operation::Delete, id))
        }
        ["v1", "sessions", id, op] if !id.is_empty() => match Operation::parse(op) {
            Some(op) if op.is_sub_route() => (op.method(), Target::Session(op, id)),
            _ => return Err(ApiError::route_not_found()),
        },
        _ => return Err(ApiError::route_not_found()),
    };
    // A GET route also answers HEAD, as the server's router does.
    if *method != expected && !(expected == Method::Get && *method == Method::Head) {
        return Err(ApiError::MethodNotAllowed);
    }
    match route {
        Target::Fixed(route) => Ok(route),
        Target::Session(op, raw) => Ok(Route::Session(op, session_id(raw)?)),
    }
}

/// What a path names before its id is checked (the method is checked first, as the server's
/// router does).
enum Target<'a> {
    Fixed(Route),
    Session(Operation, &'a str),
}

/// The URL-decoded, checked id of a path segment.
fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| {
        ApiError::BadRequest("invalid session_id: the path is not valid UTF-8".into())
    })?;
    Ok(SessionId::parse(&decoded)?)
}
