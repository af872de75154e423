//! Every HTTP failure of the edge host, and how it maps to a status and a `{"detail": ...}`
//! body. The texts are the server gateway's (`gateway/src/server/error.rs`); the shared
//! contract suite (`gateway/tests/contract.rs`) runs against both hosts and pins them.

use serde_json::{Value, json};
use worker::{Headers, Response};

use crate::inference::InferenceError;
use session_core::ports::StorageError;
use session_core::session::SessionError;
use session_core::session_id::SessionIdError;
use session_core::speakers::RequestError;

/// Largest HTTP body accepted: a 30-second resolve window is ~1.3 MB of base64 (as the server).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized,
    NotFound(String),
    MethodNotAllowed,
    Conflict(String),
    Unprocessable(String),
    TooLarge,
    UpgradeRequired,
    UnsupportedMediaType,
    BadGateway {
        detail: String,
        backend_status: Option<u16>,
        backend_body: Option<String>,
        headers: Vec<(String, String)>,
    },
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    pub fn route_not_found() -> ApiError {
        ApiError::NotFound("route not found".into())
    }

    fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Unprocessable(_) => 422,
            ApiError::UpgradeRequired => 426,
            ApiError::Internal(_) => 500,
            ApiError::BadGateway { .. } => 502,
            ApiError::Unavailable(_) => 503,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            ApiError::BadRequest(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::Unprocessable(d)
            | ApiError::Unavailable(d)
            | ApiError::Internal(d)
            | ApiError::BadGateway { detail: d, .. } => d.clone(),
            ApiError::Unauthorized => "missing or invalid API key".into(),
            ApiError::MethodNotAllowed => "method not allowed".into(),
            ApiError::TooLarge => {
                format!("request body too large (at most {MAX_BODY_BYTES} bytes)")
            }
            ApiError::UpgradeRequired => "websocket upgrade required".into(),
            ApiError::UnsupportedMediaType => {
                "request body must be JSON sent with Content-Type: application/json".into()
            }
        }
    }

    /// The answer: the status and `{"detail"}` (with the backend's status and text for a
    /// failing inference service, as the seed sends them).
    pub fn into_response(self) -> worker::Result<Response> {
        let status = self.status();
        let mut body = json!({ "detail": self.detail() });
        let mut extra = Vec::new();
        if let ApiError::BadGateway {
            backend_status: Some(code),
            backend_body,
            headers,
            ..
        } = self
        {
            body["backend_status"] = json!(code);
            body["backend_body"] = backend_body.map_or(Value::Null, Value::String);
            extra = headers;
        }
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        for (name, value) in extra {
            headers.set(&name, &value)?;
        }
        Ok(Response::from_bytes(serde_json::to_vec(&body)?)?
            .with_status(status)
            .with_headers(headers))
    }
}

impl From<worker::Error> for ApiError {
    fn from(err: worker::Error) -> ApiError {
        ApiError::Internal(format!("edge runtime error: {err}"))
    }
}

impl From<SessionIdError> for ApiError {
    fn from(err: SessionIdError) -> ApiError {
        ApiError::BadRequest(err.to_string())
    }
}

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> ApiError {
        ApiError::BadRequest(err.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> ApiError {
        ApiError::Internal(err.to_string())
    }
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> ApiError {
        let detail = err.to_string();
        match err {
            SessionError::IdCollision { .. }
            | SessionError::SeqConflict { .. }
            | SessionError::EventLogFull(_) => ApiError::Conflict(detail),
            SessionError::MeetingMismatch { .. } => ApiError::BadRequest(detail),
            SessionError::LiveSessionCap { .. } => ApiError::Conflict(detail),
            SessionError::UnknownCluster(_) => ApiError::NotFound(detail),
            SessionError::Answer(_) => ApiError::BadGateway {
                detail,
                backend_status: None,
                backend_body: None,
                headers: Vec::new(),
            },
            SessionError::Storage(_) => ApiError::Internal(detail),
        }
    }
}

impl From<InferenceError> for ApiError {
    fn from(err: InferenceError) -> ApiError {
        let detail = err.to_string();
        match err {
            InferenceError::NotConfigured => ApiError::Unavailable(detail),
            InferenceError::Transport(_) | InferenceError::AnswerTooLarge => ApiError::BadGateway {
                detail,
                backend_status: None,
                backend_body: None,
                headers: Vec::new(),
            },
            InferenceError::Backend {
                status,
                body,
                headers,
            } => ApiError::BadGateway {
                detail,
                backend_status: Some(status),
                backend_body: Some(body),
                headers,
            },
        }
    }
}
