//! Every HTTP failure, and how it maps to a status and a `{"detail": ...}` body. The status of
//! each class, the class of each session-core error and the fixed texts are shared with the
//! edge host (`session_core::api_error`, history's included); this file adds the server's own
//! failures (inference, host and origin checks) and writes the response.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::core::api_error::{self, ApiFailure, BackendAnswer, ErrorClass};
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
    /// A failure of the session core, with the class the shared mapping gave it.
    #[error("{}", .0.detail)]
    Core(ApiFailure),
    #[error("{0}")]
    BadRequest(String),
    #[error("{}", api_error::UNAUTHORIZED)]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{}", api_error::METHOD_NOT_ALLOWED)]
    MethodNotAllowed,
    /// A well-formed request for something the gateway will not produce (an `audio.wav` over
    /// its cap).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{}", api_error::body_too_large(*.0))]
    TooLarge(usize),
    #[error("{}", api_error::UPGRADE_REQUIRED)]
    UpgradeRequired,
    /// A `Host` that is not a loopback name on a loopback listener (DNS rebinding).
    #[error(
        "host not allowed: this gateway listens on a loopback address and answers only requests for localhost, 127.0.0.1 or [::1]"
    )]
    MisdirectedHost,
    /// An `Origin` the operator has not allowed, on a socket or a state-changing request.
    #[error("{}", api_error::foreign_origin(.0))]
    ForeignOrigin(String),
    #[error("{}", api_error::UNSUPPORTED_MEDIA_TYPE)]
    UnsupportedMediaType,
    #[error("request body not received within {0} s")]
    BodyTimeout(u64),
    /// The inference service failed: unreachable, or its error answer (`backend`) passed on.
    #[error("{detail}")]
    BadGateway {
        detail: String,
        backend: Option<BackendAnswer>,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    #[error("{0}")]
    Unavailable(String),
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
            ApiError::NotFound(_) => ErrorClass::NotFound,
            ApiError::MethodNotAllowed => ErrorClass::MethodNotAllowed,
            ApiError::Unprocessable(_) => ErrorClass::Unprocessable,
            ApiError::TooLarge(_) => ErrorClass::TooLarge,
            ApiError::UpgradeRequired => ErrorClass::UpgradeRequired,
            ApiError::MisdirectedHost => ErrorClass::MisdirectedHost,
            ApiError::ForeignOrigin(_) => ErrorClass::Forbidden,
            ApiError::UnsupportedMediaType => ErrorClass::UnsupportedMediaType,
            ApiError::BodyTimeout(_) => ErrorClass::RequestTimeout,
            ApiError::BadGateway { .. } => ErrorClass::BadGateway,
            ApiError::Unavailable(_) => ErrorClass::Unavailable,
        }
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.class().status()).expect("a valid status")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let class = self.class();
        let detail = self.to_string();
        let (backend, headers) = match self {
            ApiError::BadGateway {
                backend, headers, ..
            } => (backend, headers),
            _ => (None, Vec::new()),
        };
        let mut response =
            (status, Json(api_error::body(&detail, backend.as_ref()))).into_response();
        response.headers_mut().extend(headers);
        // Only storage failures are internal errors (session-core's mapping).
        if class == ErrorClass::Internal {
            response.extensions_mut().insert(StorageFailed);
        }
        response
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
                            backend: None,
                            headers: Vec::new(),
                        }
                    }
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
    }
}
