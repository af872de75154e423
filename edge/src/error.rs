//! Every HTTP failure of the edge host, and how it maps to a status and a `{"detail": ...}`
//! body. The status of each class, the class of each session-core error and the fixed texts
//! are shared with the server gateway (`session_core::api_error`); the shared contract suite
//! (`gateway/tests/contract.rs`) runs against both hosts and pins them.

use worker::{Headers, Response};

use crate::inference::InferenceError;
use session_core::api_error::{self, ApiFailure, BackendAnswer, ErrorClass};
use session_core::history::HistoryError;
use session_core::ports::StorageError;
use session_core::session::SessionError;
use session_core::session_id::SessionIdError;
use session_core::speakers::RequestError;

/// Largest HTTP body accepted: a 30-second resolve window is ~1.3 MB of base64 (as the server).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub enum ApiError {
    /// A failure of the session core, with the class the shared mapping gave it.
    Core(ApiFailure),
    BadRequest(String),
    Unauthorized,
    /// A browser page's socket or write, from an origin not allowed (`session_core::origin`).
    ForeignOrigin(String),
    NotFound(String),
    MethodNotAllowed,
    Unprocessable(String),
    TooLarge,
    UpgradeRequired,
    UnsupportedMediaType,
    /// The inference service failed: unreachable, or its error answer (`backend`) passed on.
    BadGateway {
        detail: String,
        backend: Option<BackendAnswer>,
        headers: Vec<(String, String)>,
    },
    Unavailable(String),
    /// The runtime failed (not the session core's storage, which is a `Core` failure).
    Internal(String),
}

impl ApiError {
    pub fn route_not_found() -> ApiError {
        ApiError::NotFound(api_error::ROUTE_NOT_FOUND.into())
    }

    fn class(&self) -> ErrorClass {
        match self {
            ApiError::Core(failure) => failure.class,
            ApiError::BadRequest(_) => ErrorClass::BadRequest,
            ApiError::Unauthorized => ErrorClass::Unauthorized,
            ApiError::ForeignOrigin(_) => ErrorClass::Forbidden,
            ApiError::NotFound(_) => ErrorClass::NotFound,
            ApiError::MethodNotAllowed => ErrorClass::MethodNotAllowed,
            ApiError::TooLarge => ErrorClass::TooLarge,
            ApiError::UnsupportedMediaType => ErrorClass::UnsupportedMediaType,
            ApiError::Unprocessable(_) => ErrorClass::Unprocessable,
            ApiError::UpgradeRequired => ErrorClass::UpgradeRequired,
            ApiError::Internal(_) => ErrorClass::Internal,
            ApiError::BadGateway { .. } => ErrorClass::BadGateway,
            ApiError::Unavailable(_) => ErrorClass::Unavailable,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            ApiError::Core(failure) => failure.detail.clone(),
            ApiError::BadRequest(d)
            | ApiError::NotFound(d)
            | ApiError::Unprocessable(d)
            | ApiError::Unavailable(d)
            | ApiError::Internal(d)
            | ApiError::BadGateway { detail: d, .. } => d.clone(),
            ApiError::Unauthorized => api_error::UNAUTHORIZED.into(),
            ApiError::ForeignOrigin(origin) => api_error::foreign_origin(origin),
            ApiError::MethodNotAllowed => api_error::METHOD_NOT_ALLOWED.into(),
            ApiError::TooLarge => api_error::body_too_large(MAX_BODY_BYTES),
            ApiError::UpgradeRequired => api_error::UPGRADE_REQUIRED.into(),
            ApiError::UnsupportedMediaType => api_error::UNSUPPORTED_MEDIA_TYPE.into(),
        }
    }

    /// The answer: the status and `{"detail"}` (with the backend's status and text for a
    /// failing inference service, as the seed sends them).
    pub fn into_response(self) -> worker::Result<Response> {
        let status = self.class().status();
        let detail = self.detail();
        let (backend, extra) = match self {
            ApiError::BadGateway {
                backend, headers, ..
            } => (backend, headers),
            _ => (None, Vec::new()),
        };
        let body = api_error::body(&detail, backend.as_ref());
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

/// A session-core failure, as the shared mapping classes it.
impl From<ApiFailure> for ApiError {
    fn from(failure: ApiFailure) -> ApiError {
        ApiError::Core(failure)
    }
}

impl From<SessionIdError> for ApiError {
    fn from(err: SessionIdError) -> ApiError {
        ApiFailure::from(&err).into()
    }
}

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> ApiError {
        ApiFailure::from(&err).into()
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> ApiError {
        ApiFailure::from(&err).into()
    }
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> ApiError {
        ApiFailure::from(&err).into()
    }
}

impl From<HistoryError> for ApiError {
    fn from(err: HistoryError) -> ApiError {
        ApiFailure::from(&err).into()
    }
}

impl From<InferenceError> for ApiError {
    fn from(err: InferenceError) -> ApiError {
        let detail = err.to_string();
        match err {
            InferenceError::NotConfigured => ApiError::Unavailable(detail),
            InferenceError::Transport(_) | InferenceError::AnswerTooLarge => ApiError::BadGateway {
                detail,
                backend: None,
                headers: Vec::new(),
            },
            InferenceError::Backend {
                status,
                body,
                headers,
            } => ApiError::BadGateway {
                detail,
                backend: Some(BackendAnswer { status, body }),
                headers,
            },
        }
    }
}
