//! Every HTTP failure, and how it maps to a status and a `{"detail": ...}` body.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::core::ports::StorageError;
use crate::core::session::SessionError;
use crate::core::session_id::SessionIdError;
use crate::core::speakers::RequestError;
use crate::inference::InferenceError;
use crate::server::metrics::StorageFailed;
use crate::sessions::ResolveError;
use crate::sessions::history::HistoryError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    /// Over a per-client cap on what the gateway holds (live sessions); later may work.
    #[error("{0}")]
    TooManyRequests(String),
    /// A well-formed request for something the gateway will not produce (an `audio.wav` over
    /// its cap).
    #[error("{0}")]
    Unprocessable(String),
    #[error("request body too large (at most {0} bytes)")]
    TooLarge(usize),
    #[error("websocket upgrade required")]
    UpgradeRequired,
    /// A `Host` that is not a loopback name on a loopback listener (DNS rebinding).
    #[error(
        "host not allowed: this gateway listens on a loopback address and answers only requests for localhost, 127.0.0.1 or [::1]"
    )]
    MisdirectedHost,
    /// An `Origin` the operator has not allowed, on a socket or a state-changing request.
    #[error(
        "origin '{0}' is not allowed: web pages may not use this gateway (an operator can allow an origin with --allow-origin / GATEWAY_ALLOW_ORIGINS)"
    )]
    ForeignOrigin(String),
    #[error("request body must be JSON sent with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("request body not received within {0} s")]
    BodyTimeout(u64),
    #[error("{detail}")]
    BadGateway {
        detail: String,
        backend_status: Option<u16>,
        backend_body: Option<Value>,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn route_not_found() -> ApiError {
        ApiError::NotFound("route not found".into())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            ApiError::MisdirectedHost => StatusCode::MISDIRECTED_REQUEST,
            ApiError::ForeignOrigin(_) => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = self.to_string();
        match self {
            ApiError::BadGateway {
                backend_status,
                backend_body,
                headers,
                ..
            } => {
                let mut body = json!({ "detail": detail });
                if let Some(code) = backend_status {
                    body["backend_status"] = json!(code);
                    body["backend_body"] = backend_body.unwrap_or(Value::Null);
                }
                let mut response = (status, Json(body)).into_response();
                response.headers_mut().extend(headers);
                response
            }
            // Only storage failures are internal errors (see the `From`s below).
            ApiError::Internal(_) => {
                let mut response = (status, Json(json!({ "detail": detail }))).into_response();
                response.extensions_mut().insert(StorageFailed);
                response
            }
            _ => (status, Json(json!({ "detail": detail }))).into_response(),
        }
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
            SessionError::LiveSessionCap { .. } => ApiError::TooManyRequests(detail),
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

impl From<HistoryError> for ApiError {
    fn from(err: HistoryError) -> ApiError {
        let detail = err.to_string();
        match err {
            HistoryError::BadQuery(_) => ApiError::BadRequest(detail),
            HistoryError::NotFound(_) | HistoryError::NotFinalized(_) => ApiError::NotFound(detail),
            HistoryError::SocketOpen(_) => ApiError::Conflict(detail),
            HistoryError::Session(err) => err.into(),
        }
    }
}

impl From<ResolveError> for ApiError {
    fn from(err: ResolveError) -> ApiError {
        match err {
            ResolveError::Session(err) => err.into(),
            ResolveError::Inference(err) => {
                let detail = err.to_string();
                match err {
                    InferenceError::NotConfigured
                    | InferenceError::Off
                    | InferenceError::Unavailable(_) => ApiError::Unavailable(detail),
                    InferenceError::Transport(_) | InferenceError::AnswerTooLarge => {
                        ApiError::BadGateway {
                            detail,
                            backend_status: None,
                            backend_body: None,
                            headers: Vec::new(),
                        }
                    }
                    InferenceError::Backend {
                        status,
                        body,
                        headers,
                    } => ApiError::BadGateway {
                        detail,
                        backend_status: Some(status),
                        backend_body: Some(Value::String(body)),
                        headers,
                    },
                }
            }
        }
    }
}
