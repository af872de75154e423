//! How the HTTP API answers a failure, once for every host (the server gateway's
//! `server/error.rs`, the edge's `error.rs`): the status of each class of failure, which class
//! each error of the session core falls in ([`ApiFailure`], which a host answers as it is), the
//! fixed texts and the JSON of the `{"detail": ...}` bodies both hosts send ([`body`]). A host
//! keeps only its framework's glue (writing the response) and the errors of its own parts (its
//! inference client, its request checks); the shared contract suite
//! (`gateway/tests/contract.rs`) pins the statuses and texts on both.

use crate::history::HistoryError;
use crate::ports::StorageError;
use crate::session::SessionError;
use crate::session_id::SessionIdError;
use crate::speakers::RequestError;

/// The classes of API failures, each with its one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A request or message the contract refuses (400).
    BadRequest,
    /// The API key is missing or wrong (401).
    Unauthorized,
    /// A browser origin not allowed to use the gateway (403).
    Forbidden,
    /// No such route, session, cluster or result (404).
    NotFound,
    /// A known route asked with another method (405).
    MethodNotAllowed,
    /// The body took too long to arrive (408).
    RequestTimeout,
    /// The request conflicts with what is stored (409).
    Conflict,
    /// A body over the cap (413).
    TooLarge,
    /// A body that is not sent as JSON (415).
    UnsupportedMediaType,
    /// A `Host` a loopback listener does not answer (421).
    MisdirectedHost,
    /// A well-formed request for something the host will not produce (422).
    Unprocessable,
    /// A socket route asked without the upgrade (426).
    UpgradeRequired,
    /// Over a per-client cap on what the host holds; later may work (429).
    TooManyRequests,
    /// Storage failed (500).
    Internal,
    /// The inference service failed or answered something unusable (502).
    BadGateway,
    /// Inference is not configured or not available (503).
    Unavailable,
}

impl ErrorClass {
    /// The HTTP status of this class.
    pub const fn status(self) -> u16 {
        match self {
            ErrorClass::BadRequest => 400,
            ErrorClass::Unauthorized => 401,
            ErrorClass::Forbidden => 403,
            ErrorClass::NotFound => 404,
            ErrorClass::MethodNotAllowed => 405,
            ErrorClass::RequestTimeout => 408,
            ErrorClass::Conflict => 409,
            ErrorClass::TooLarge => 413,
            ErrorClass::UnsupportedMediaType => 415,
            ErrorClass::MisdirectedHost => 421,
            ErrorClass::Unprocessable => 422,
            ErrorClass::UpgradeRequired => 426,
            ErrorClass::TooManyRequests => 429,
            ErrorClass::Internal => 500,
            ErrorClass::BadGateway => 502,
            ErrorClass::Unavailable => 503,
        }
    }
}

/// A failure of the session core as the API answers it: its class and its `detail` text.
/// A host keeps it as it is (its error type has a variant for it), so the class chosen here
/// is the status sent, with no second mapping in the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub class: ErrorClass,
    pub detail: String,
}

/// What an inference service that answered with an error adds to the 502's body, as the seed
/// sends it: its status and its raw response text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendAnswer {
    pub status: u16,
    pub body: String,
}

/// The JSON body of every failure: `{"detail": ...}`, plus `backend_status` and
/// `backend_body` for a failing inference service.
pub fn body(detail: &str, backend: Option<&BackendAnswer>) -> serde_json::Value {
    let mut body = serde_json::json!({ "detail": detail });
    if let Some(backend) = backend {
        body["backend_status"] = backend.status.into();
        body["backend_body"] = backend.body.as_str().into();
    }
    body
}

impl ApiFailure {
    fn new(class: ErrorClass, err: &impl std::fmt::Display) -> ApiFailure {
        ApiFailure {
            class,
            detail: err.to_string(),
        }
    }
}

impl From<&SessionError> for ApiFailure {
    fn from(err: &SessionError) -> ApiFailure {
        let class = match err {
            SessionError::IdCollision { .. }
            | SessionError::SeqConflict { .. }
            | SessionError::EventLogFull(_) => ErrorClass::Conflict,
            SessionError::MeetingMismatch { .. } => ErrorClass::BadRequest,
            SessionError::LiveSessionCap { .. } => ErrorClass::TooManyRequests,
            SessionError::UnknownCluster(_) => ErrorClass::NotFound,
            SessionError::Answer(_) => ErrorClass::BadGateway,
            SessionError::Storage(_) => ErrorClass::Internal,
        };
        ApiFailure::new(class, err)
    }
}

impl From<&HistoryError> for ApiFailure {
    fn from(err: &HistoryError) -> ApiFailure {
        let class = match err {
            HistoryError::BadQuery(_) => ErrorClass::BadRequest,
            HistoryError::NotFound(_) | HistoryError::NotFinalized(_) => ErrorClass::NotFound,
            HistoryError::SocketOpen(_) => ErrorClass::Conflict,
            HistoryError::Session(err) => return err.into(),
        };
        ApiFailure::new(class, err)
    }
}

impl From<&SessionIdError> for ApiFailure {
    fn from(err: &SessionIdError) -> ApiFailure {
        ApiFailure::new(ErrorClass::BadRequest, err)
    }
}

impl From<&RequestError> for ApiFailure {
    fn from(err: &RequestError) -> ApiFailure {
        ApiFailure::new(ErrorClass::BadRequest, err)
    }
}

impl From<&StorageError> for ApiFailure {
    fn from(err: &StorageError) -> ApiFailure {
        ApiFailure::new(ErrorClass::Internal, err)
    }
}

/// 401: no key, or the wrong one.
pub const UNAUTHORIZED: &str = "missing or invalid API key";
/// 404 for a path no route matches.
pub const ROUTE_NOT_FOUND: &str = "route not found";
/// 405.
pub const METHOD_NOT_ALLOWED: &str = "method not allowed";
/// 426.
pub const UPGRADE_REQUIRED: &str = "websocket upgrade required";
/// 415.
pub const UNSUPPORTED_MEDIA_TYPE: &str =
    "request body must be JSON sent with Content-Type: application/json";

/// 413: a body over `max` bytes.
pub fn body_too_large(max: usize) -> String {
    format!("request body too large (at most {max} bytes)")
}

/// 403: a browser page from `origin`, which the operator has not allowed.
pub fn foreign_origin(origin: &str) -> String {
    format!(
        "origin '{origin}' is not allowed: web pages may not use this gateway (an operator can allow an origin with --allow-origin / GATEWAY_ALLOW_ORIGINS)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speakers::{AnswerError, EventLogFull};
    use crate::stream::Stream;

    /// The rule: which status each error of the session core gets, with its own text.
    #[test]
    fn each_session_error_has_its_status_and_its_own_text() {
        let cases = [
            (
                SessionError::IdCollision {
                    requested: "a b".into(),
                    existing: "a_b".into(),
                },
                409,
            ),
            (
                SessionError::MeetingMismatch {
                    expected: "s".into(),
                    got: "t".into(),
                },
                400,
            ),
            (SessionError::UnknownCluster("spk_9".into()), 404),
            (
                SessionError::SeqConflict {
                    stream: Stream::Mic,
                    seq: 1,
                    last_seq: 2,
                },
                409,
            ),
            (SessionError::LiveSessionCap { cap: 4 }, 429),
            (SessionError::EventLogFull(EventLogFull), 409),
            (SessionError::Answer(AnswerError::NotJson("x".into())), 502),
            (SessionError::Storage(StorageError("disk".into())), 500),
        ];
        for (err, status) in cases {
            let failure = ApiFailure::from(&err);
            assert_eq!(failure.class.status(), status, "{err:?}");
            assert_eq!(failure.detail, err.to_string());
        }
        assert_eq!(
            ApiFailure::from(&SessionError::MeetingMismatch {
                expected: "s".into(),
                got: "t".into()
            })
            .detail,
            "meeting_id mismatch: expected 's', got 't'"
        );
    }

    #[test]
    fn bad_ids_and_bodies_are_400_and_storage_failures_500() {
        let id = ApiFailure::from(&SessionIdError::DotSegment);
        assert_eq!(
            (id.class.status(), id.detail.as_str()),
            (400, "session_id must not be '.' or '..'")
        );
        let body = ApiFailure::from(&RequestError::MissingAudio);
        assert_eq!(
            (body.class.status(), body.detail.as_str()),
            (400, "audio.content_b64 and audio.format are required")
        );
        let storage = ApiFailure::from(&StorageError("R2 write failed".into()));
        assert_eq!(
            (storage.class.status(), storage.detail.as_str()),
            (500, "storage error: R2 write failed")
        );
    }

    #[test]
    fn history_refusals_have_their_statuses() {
        let cases = [
            (HistoryError::BadQuery("limit".into()), 400),
            (HistoryError::NotFound("s".into()), 404),
            (HistoryError::NotFinalized("s".into()), 404),
            (HistoryError::SocketOpen("s".into()), 409),
            (HistoryError::from(StorageError("disk".into())), 500),
        ];
        for (err, status) in cases {
            let failure = ApiFailure::from(&err);
            assert_eq!(failure.class.status(), status, "{err:?}");
            assert_eq!(failure.detail, err.to_string());
        }
    }

    #[test]
    fn a_body_is_the_detail_with_the_backends_answer_when_there_is_one() {
        assert_eq!(body("no", None), serde_json::json!({"detail": "no"}));
        let backend = BackendAnswer {
            status: 429,
            body: "{\"detail\":\"slow down\"}".into(),
        };
        assert_eq!(
            body("inference service returned 429", Some(&backend)),
            serde_json::json!({
                "detail": "inference service returned 429",
                "backend_status": 429,
                "backend_body": "{\"detail\":\"slow down\"}",
            })
        );
    }

    #[test]
    fn fixed_texts() {
        assert_eq!(
            body_too_large(8 * 1024 * 1024),
            "request body too large (at most 8388608 bytes)"
        );
        assert_eq!(
            foreign_origin("https://evil.example"),
            "origin 'https://evil.example' is not allowed: web pages may not use this gateway (an operator can allow an origin with --allow-origin / GATEWAY_ALLOW_ORIGINS)"
        );
    }
}
