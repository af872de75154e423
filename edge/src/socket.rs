//! The ingest WebSocket on the hibernation API: the runtime keeps the connection, and wakes
//! the session's object for each message. What the object must remember about a socket
//! between messages (its session, stream, and whether it proved the key) is the socket's
//! attachment, so a hibernated object picks up where it left.
//!
//! Each message is answered in the object's turn, so ACKs leave in the order frames arrived;
//! the runtime holds an answer until the writes it reports are durable.

use serde::{Deserialize, Serialize};
use worker::{WebSocket, WebSocketIncomingMessage};

use crate::auth::key_matches;
use crate::config;
use crate::now_ms;
use crate::session_object::SessionObject;
use contract::protocol::{MAX_WS_MESSAGE_BYTES, ServerMessage};
use session_core::clock::EpochMs;
use session_core::message::{Incoming, MessageError, parse_message};
use session_core::session_id::SessionId;
use session_core::socket::{
    AUTH_REQUIRED, AUTH_REQUIRED_REASON, AUTH_TIMED_OUT, AUTH_TIMED_OUT_REASON, CLOSE_POLICY, Next,
    error, failure, refusal,
};
use session_core::stream::Stream;

/// What the object keeps with each socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketInfo {
    /// The session id as the client sent it.
    pub id: String,
    pub stream: String,
    /// False until a socket whose upgrade lacked the key sends `{"type":"auth"}`.
    pub proved: bool,
    /// Until when (epoch ms) an unproved socket may stay silent; the object's alarm closes it
    /// then (see [`close_silent`]). Absent in attachments written before the deadline existed.
    #[serde(default)]
    pub auth_deadline: Option<EpochMs>,
}

// The server gateway's close codes (`gateway/src/server/ws.rs`).
const NORMAL: u16 = 1000;
const SIZE: u16 = 1009;
const ERROR: u16 = session_core::socket::CLOSE_HOST_FAILED;

pub async fn on_message(
    object: &SessionObject,
    ws: &WebSocket,
    message: WebSocketIncomingMessage,
) -> worker::Result<()> {
    let Some(mut info) = ws.deserialize_attachment::<SocketInfo>()? else {
        ws.close(Some(ERROR), Some("socket state lost; reconnect"))?;
        return Ok(());
    };
    let text = match message {
        WebSocketIncomingMessage::String(text) => Some(text),
        WebSocketIncomingMessage::Binary(bytes) if bytes.len() <= MAX_WS_MESSAGE_BYTES => None,
        WebSocketIncomingMessage::Binary(_) => {
            return close_too_large(ws);
        }
    };
    if text
        .as_ref()
        .is_some_and(|t| t.len() > MAX_WS_MESSAGE_BYTES)
    {
        return close_too_large(ws);
    }
    if !info.proved {
        return authenticate(object, ws, &mut info, text.as_deref());
    }
    let (answer, next) = match text {
        None => (refusal(MessageError::Binary), Next::Continue),
        Some(text) => answer(object, &info, &text).await,
    };
    ws.send_with_str(serde_json::to_string(&answer)?)?;
    if let Next::Close(code, reason) = next {
        ws.close(Some(code), Some(reason))?;
    }
    Ok(())
}

fn close_too_large(ws: &WebSocket) -> worker::Result<()> {
    ws.close(
        Some(SIZE),
        Some("message too large: at most 65536 bytes per message"),
    )
}

/// The first message of a socket that must prove the key: `auth` with the right key, or an
/// error and a close with 1008.
fn authenticate(
    object: &SessionObject,
    ws: &WebSocket,
    info: &mut SocketInfo,
    text: Option<&str>,
) -> worker::Result<()> {
    let expected = config::api_key(object.env());
    let proved = match (expected, text.map(parse_message)) {
        (None, _) => true,
        (Some(expected), Some(Ok(Incoming::Auth(key)))) => key_matches(&expected, &key),
        _ => false,
    };
    if proved {
        info.proved = true;
        info.auth_deadline = None;
        ws.serialize_attachment(&*info)?;
        return ws.send_with_str(serde_json::to_string(&ServerMessage::Authenticated)?);
    }
    refuse(ws, AUTH_REQUIRED, AUTH_REQUIRED_REASON)
}

fn refuse(ws: &WebSocket, detail: &str, reason: &str) -> worker::Result<()> {
    ws.send_with_str(serde_json::to_string(&error(detail, None))?)?;
    ws.close(Some(CLOSE_POLICY), Some(reason))
}

/// Closes every socket of the object still silent past its authentication deadline (the
/// server gateway's error and close), and returns the next deadline still to come, if any.
/// Called by the object's alarm, which a socket that must authenticate sets when it opens.
pub fn close_silent(sockets: Vec<WebSocket>, now: EpochMs) -> Option<EpochMs> {
    let mut next: Option<EpochMs> = None;
    for ws in sockets {
        let Ok(Some(info)) = ws.deserialize_attachment::<SocketInfo>() else {
            continue;
        };
        match info.auth_deadline {
            Some(deadline) if !info.proved && deadline <= now => {
                // A socket closing meanwhile refuses the send; nothing is left to do for it.
                let _ = refuse(&ws, AUTH_TIMED_OUT, AUTH_TIMED_OUT_REASON);
            }
            Some(deadline) if !info.proved => {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
            _ => {}
        }
    }
    next
}

async fn answer(object: &SessionObject, info: &SocketInfo, text: &str) -> (ServerMessage, Next) {
    let (id, stream) = match (SessionId::parse(&info.id), Stream::parse(&info.stream)) {
        (Ok(id), Ok(stream)) => (id, stream),
        _ => {
            return (
                error("socket state unreadable; reconnect", None),
                Next::Close(ERROR, "socket state lost; reconnect"),
            );
        }
    };
    let answer = match parse_message(text) {
        Err(err) => refusal(err),
        Ok(Incoming::Hello) => {
            match object
                .with_session(&id, async |s| s.ready(stream, now_ms()).await)
                .await
            {
                Ok(ready) => ServerMessage::Ready(ready),
                Err(err) => return failure(err, None),
            }
        }
        Ok(Incoming::Status) => {
            match object
                .with_session(&id, async |s| s.status(stream, now_ms()).await)
                .await
            {
                Ok(status) => ServerMessage::Status(status),
                Err(err) => return failure(err, None),
            }
        }
        Ok(Incoming::Ping) => ServerMessage::Pong { ts: now_ms() },
        Ok(Incoming::Auth(_)) => ServerMessage::Authenticated,
        Ok(Incoming::Close(reason)) => {
            return (
                ServerMessage::Closing { reason },
                Next::Close(NORMAL, "closing"),
            );
        }
        Ok(Incoming::Chunk(chunk)) => {
            let seq = chunk.seq;
            match object
                .with_session(&id, async |s| s.chunk(stream, chunk, now_ms()).await)
                .await
            {
                Ok(ack) => {
                    if ack.key.is_some() {
                        object.frame_stored().await;
                    }
                    ServerMessage::Ack(ack)
                }
                Err(err) => return failure(err, Some(seq)),
            }
        }
    };
    (answer, Next::Continue)
}
