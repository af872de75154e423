//! An unauthenticated socket costs nothing: with a key configured, a socket whose upgrade did
//! not carry it gets [`AUTH_DEADLINE`] to send `{"type":"auth","key":"..."}` as its first
//! message. Until then no session actor exists for it and nothing is read from storage; any
//! other first message (text, binary, ping or pong), a wrong key, or silence closes it with
//! 1008 (policy violation) after an error saying why.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};

use crate::core::message::{Incoming, parse_message};
use crate::core::socket::{
    AUTH_DEADLINE_MS, AUTH_REQUIRED, AUTH_REQUIRED_REASON, AUTH_TIMED_OUT, AUTH_TIMED_OUT_REASON,
};
use crate::protocol::ServerMessage;
use crate::server::AppState;
use crate::server::auth::key_matches;

/// How long a socket may take to authenticate (the same on every host).
pub const AUTH_DEADLINE: Duration = Duration::from_millis(AUTH_DEADLINE_MS);

/// Most time spent writing the answer to an authentication attempt (a peer may stop reading).
const SEND_DEADLINE: Duration = Duration::from_secs(5);

/// Waits for the socket to prove the key. Returns it once it has (after answering
/// `authenticated`), or `None` once it is closed. A gateway without a key, or a socket that
/// proved the key in its upgrade headers, passes straight through.
pub async fn authenticate(
    app: &AppState,
    mut socket: WebSocket,
    proved: bool,
) -> Option<WebSocket> {
    let Some(expected) = app.api_key.as_deref().filter(|_| !proved) else {
        return Some(socket);
    };
    let mut stopping = app.stopping.clone();
    let first = tokio::select! {
        first = tokio::time::timeout(AUTH_DEADLINE, socket.recv()) => Some(first),
        _ = stopping.wait_for(|stop| *stop) => None,
    };
    let Some(first) = first else {
        close(&mut socket, close_code::AWAY, "server shutting down").await;
        return None;
    };
    let (detail, reason) = match first {
        Err(_elapsed) => (AUTH_TIMED_OUT, AUTH_TIMED_OUT_REASON),
        Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return None,
        Ok(Some(Ok(Message::Text(text)))) => match parse_message(text.as_str()) {
            Ok(Incoming::Auth(key)) if key_matches(expected, &key) => {
                return send(&mut socket, &ServerMessage::Authenticated)
                    .await
                    .then_some(socket);
            }
            _ => (AUTH_REQUIRED, AUTH_REQUIRED_REASON),
        },
        Ok(Some(Ok(_binary_or_ping))) => (AUTH_REQUIRED, AUTH_REQUIRED_REASON),
    };
    refuse(socket, detail.to_owned(), close_code::POLICY, reason).await;
    None
}

/// Answers a socket the gateway will not serve with an error message (`detail`) and closes it
/// with `code` and `reason`.
pub async fn refuse(mut socket: WebSocket, detail: String, code: u16, reason: &'static str) {
    let refusal = ServerMessage::Error {
        detail,
        seq: None,
        retry: false,
    };
    if send(&mut socket, &refusal).await {
        close(&mut socket, code, reason).await;
    }
}

/// Sends one message within [`SEND_DEADLINE`]; false if it could not.
async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    let text = serde_json::to_string(message).expect("server messages serialize");
    matches!(
        tokio::time::timeout(SEND_DEADLINE, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(SEND_DEADLINE, socket.send(Message::Close(Some(frame)))).await;
}
