//! How an ingest socket answers a message it could not serve, the same on every host: which
//! failures the client can fix (an error, the socket stays open) and which are the host's (an
//! error that says to send again, and a close so the client reconnects to a fresh session).

use contract::protocol::ServerMessage;

use crate::message::MessageError;
use crate::session::SessionError;

/// WebSocket close code for a failure of the host (RFC 6455 "internal error").
pub const CLOSE_HOST_FAILED: u16 = 1011;

/// WebSocket close code for a socket that did not prove the API key (RFC 6455 "policy
/// violation").
pub const CLOSE_POLICY: u16 = 1008;

/// How long a socket whose upgrade did not carry the API key may take to send
/// `{"type":"auth","key":"..."}`, in ms: a silent socket must not hold a connection forever.
pub const AUTH_DEADLINE_MS: u64 = 5_000;

/// The error for a first message that is not `auth` with the right key.
pub const AUTH_REQUIRED: &str = "authentication required: send {\"type\":\"auth\",\"key\":\"...\"} first, or the key in the upgrade headers";
/// The close reason that goes with [`AUTH_REQUIRED`].
pub const AUTH_REQUIRED_REASON: &str = "authentication required";

/// The error for a socket silent past [`AUTH_DEADLINE_MS`].
pub const AUTH_TIMED_OUT: &str =
    "authentication required: no {\"type\":\"auth\",\"key\":\"...\"} message within 5 s";
/// The close reason that goes with [`AUTH_TIMED_OUT`].
pub const AUTH_TIMED_OUT_REASON: &str = "authentication timed out";

/// What the socket does after sending an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

/// An error answer the client can act on; `seq` names the frame it is about.
pub fn error(detail: impl ToString, seq: Option<u64>) -> ServerMessage {
    ServerMessage::Error {
        detail: detail.to_string(),
        seq,
        retry: false,
    }
}

/// The answer to a message that did not parse or validate.
pub fn refusal(err: MessageError) -> ServerMessage {
    error(err, None)
}

/// The answer to a session call that failed. A storage failure is the host's fault, not the
/// client's: the error says to send again (`retry`), and the socket closes with 1011 so that the
/// client reconnects and its next socket gets a freshly loaded session. Anything else the client
/// can fix; the socket stays open.
pub fn failure(err: SessionError, seq: Option<u64>) -> (ServerMessage, Next) {
    match err {
        SessionError::Storage(_) => (
            ServerMessage::Error {
                detail: err.to_string(),
                seq,
                retry: true,
            },
            Next::Close(
                CLOSE_HOST_FAILED,
                "storage failed; reconnect and send again",
            ),
        ),
        _ => (error(err, seq), Next::Continue),
    }
}
