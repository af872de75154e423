//! The ingest WebSocket: one task per connection reads a message, has the session answer it,
//! and writes the answer before reading the next, so ACKs leave in the order frames arrived.

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{State, ws::rejection::WebSocketUpgradeRejection};
use axum::response::{IntoResponse, Response};

use crate::actor::SessionHandle;
use crate::core::message::{Incoming, MessageError, parse_message};
use crate::core::socket::{Next, failure, refusal};
use crate::core::stream::Stream;
use crate::protocol::{MAX_WS_MESSAGE_BYTES, ServerMessage};
use crate::server::AppState;
use crate::server::accept::ClientAddr;
use crate::server::auth::KeyChecked;
use crate::server::error::ApiError;
use crate::server::extract::{SessionPath, StreamName};
use crate::server::socket_auth::{authenticate, refuse};
use crate::sessions::now_ms;

/// How much a socket reads from the kernel at a time. The WebSocket library's default (128 KiB)
/// zero-fills that much of the socket's buffer on every read and keeps it for the socket's life:
/// about 128 KiB resident per live socket, most of the memory of thousands of idle real-time
/// sessions. A frame (about 43 KB) now takes three reads instead of one; `gateway bench`, 2,000
/// real-time sessions: peak RSS 296–322 MiB at 128 KiB, 170–174 MiB at 16 KiB; at saturation a
/// few per cent more CPU per frame.
const READ_BUFFER_BYTES: usize = 16 * 1024;

pub async fn upgrade(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
    stream: StreamName,
    checked: Option<Extension<KeyChecked>>,
    client: Option<Extension<ClientAddr>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return ApiError::UpgradeRequired.into_response();
    };
    let stream = match stream.stream() {
        Ok(stream) => stream,
        Err(err) => return err.into_response(),
    };
    let proved = checked.is_none_or(|Extension(KeyChecked(ok))| ok);
    let sockets = app.sockets.clone();
    upgrade
        .max_message_size(MAX_WS_MESSAGE_BYTES)
        .max_frame_size(MAX_WS_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            sockets.track(async move {
                // No actor, no storage read, before the socket has proved the key.
                let Some(socket) = authenticate(&app, socket, proved).await else {
                    return;
                };
                let client = client.map(|Extension(ClientAddr(ip))| ip);
                let handle = match app.sessions.handle(&id, client) {
                    Ok(handle) => handle,
                    Err(err) => {
                        // Over the address's cap on live sessions: it may try again later.
                        refuse(
                            socket,
                            err.to_string(),
                            close_code::AGAIN,
                            "too many sessions",
                        )
                        .await;
                        return;
                    }
                };
                Connection {
                    app,
                    handle,
                    stream,
                }
                .serve(socket)
                .await
            })
        })
}

/// One client's socket on one session.
struct Connection {
    app: AppState,
    /// Held for the connection's life, which keeps the session's actor alive.
    handle: SessionHandle,
    /// Which of the session's streams this socket feeds.
    stream: Stream,
}

impl Connection {
    async fn serve(mut self, mut socket: WebSocket) {
        let started = std::time::Instant::now();
        let mut stopping = self.app.stopping.clone();
        let mut messages = 0u64;
        let end = loop {
            let received = tokio::select! {
                received = socket.recv() => received,
                _ = stopping.wait_for(|stop| *stop) => break Some((close_code::AWAY, "server shutting down")),
            };
            let message = match received {
                None | Some(Ok(Message::Close(_))) => break None,
                Some(Err(err)) => break Some(receive_failure(err)),
                Some(Ok(message)) => message,
            };
            let received = std::time::Instant::now();
            messages += 1;
            let (answer, next) = match message {
                Message::Text(text) => self.answer(text.as_str()).await,
                Message::Binary(_) => (refusal(MessageError::Binary), Next::Continue),
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(_) => unreachable!("handled above"),
            };
            let text = serde_json::to_string(&answer).expect("server messages serialize");
            if socket.send(Message::Text(text.into())).await.is_err() {
                break None;
            }
            self.app.metrics.answered(&answer, received);
            if let Next::Close(code, reason) = next {
                break Some((code, reason));
            }
        };
        if let Some((code, reason)) = end {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
        tracing::info!(
            session = %self.handle.id().escaped(),
            messages,
            secs = started.elapsed().as_secs_f64(),
            "socket closed"
        );
    }

    async fn answer(&mut self, text: &str) -> (ServerMessage, Next) {
        let incoming = parse_message(text);
        let sessions = &self.app.sessions;
        let answer = match incoming {
            Err(err) => refusal(err),
            Ok(Incoming::Hello) => match sessions.ready(&self.handle, self.stream).await {
                Ok(ready) => ServerMessage::Ready(ready),
                Err(err) => return failure(err, None),
            },
            Ok(Incoming::Status) => match sessions.status(&self.handle, self.stream).await {
                Ok(status) => ServerMessage::Status(status),
                Err(err) => return failure(err, None),
            },
            Ok(Incoming::Ping) => ServerMessage::Pong { ts: now_ms() },
            Ok(Incoming::Auth(_)) => ServerMessage::Authenticated,
            Ok(Incoming::Close(reason)) => {
                return (
                    ServerMessage::Closing { reason },
                    Next::Close(close_code::NORMAL, "closing"),
                );
            }
            Ok(Incoming::Chunk(chunk)) => {
                let seq = chunk.seq;
                match sessions.chunk(&self.handle, self.stream, chunk).await {
                    Ok(ack) => ServerMessage::Ack(ack),
                    Err(err) => return failure(err, Some(seq)),
                }
            }
        };
        (answer, Next::Continue)
    }
}

/// How to close after a read failed: an oversized message gets 1009 and says the limit.
fn receive_failure(err: axum::Error) -> (u16, &'static str) {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match err.into_inner().downcast::<WsError>() {
        Ok(ws) if matches!(*ws, WsError::Capacity(_)) => (
            close_code::SIZE,
            "message too large: at most 65536 bytes per message",
        ),
        _ => (close_code::PROTOCOL, "protocol error"),
    }
}
