//! One WebSocket to the gateway's ingest endpoint, speaking the typed wire messages.
//!
//! [`Connection::open`] does the whole opening: TCP (and TLS for `wss://`), the upgrade with the
//! API key in its headers, `hello`, and the wait for `ready`. After that the uplink sends
//! [`ClientMessage`]s and reads [`ServerMessage`]s; WebSocket-level pings and other frames are
//! handled here and never reach it.

use std::time::Duration;

use base64::Engine as _;
use contract::protocol::{
    CHANNELS, Chunk, ClientMessage, FORMAT, Ready, SAMPLE_RATE, ServerMessage,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::endpoint::API_KEY_HEADER;
use crate::spool::SpooledFrame;

/// Why a connection could not be opened or broke.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("cannot reach the gateway: {0}")]
    Connect(String),
    #[error("the gateway refused the connection: HTTP {status}{detail}")]
    Refused { status: u16, detail: String },
    #[error("the gateway did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the gateway refused hello: {0}")]
    Hello(String),
    #[error("connection lost: {0}")]
    Lost(String),
    #[error("the gateway closed the connection{0}")]
    Closed(String),
    #[error("unexpected message from the gateway: {0}")]
    Protocol(String),
}

/// What one read from the socket produced.
#[derive(Debug)]
pub enum Incoming {
    /// A wire message.
    Message(ServerMessage),
    /// A WebSocket control frame or anything else the uplink does not care about.
    Other,
}

/// An open, greeted ingest WebSocket.
pub struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Longest a send may wait for the socket to take a message: a gateway that stops reading
    /// fills the buffers, and a send without a deadline would then wait forever.
    send_timeout: Duration,
}

impl Connection {
    /// Connects, sends `hello` and waits for `ready`, all within `timeout`; each later send
    /// must also complete within `timeout`.
    pub async fn open(
        url: &Url,
        api_key: Option<&str>,
        timeout: Duration,
    ) -> Result<(Connection, Ready), ConnectionError> {
        tokio::time::timeout(timeout, Self::open_inner(url, api_key, timeout))
            .await
            .map_err(|_| ConnectionError::Timeout(timeout))?
    }

    async fn open_inner(
        url: &Url,
        api_key: Option<&str>,
        send_timeout: Duration,
    ) -> Result<(Connection, Ready), ConnectionError> {
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| ConnectionError::Connect(e.to_string()))?;
        if let Some(key) = api_key {
            let value = HeaderValue::from_str(key).map_err(|_| {
                ConnectionError::Connect("the API key is not a valid header".into())
            })?;
            request.headers_mut().insert(API_KEY_HEADER, value);
        }
        let (ws, _response) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(refusal)?;
        let mut conn = Connection { ws, send_timeout };
        conn.send(&ClientMessage::Hello).await?;
        loop {
            match conn.recv().await? {
                Incoming::Message(ServerMessage::Ready(ready)) => return Ok((conn, ready)),
                Incoming::Message(ServerMessage::Error { detail, .. }) => {
                    return Err(ConnectionError::Hello(detail));
                }
                Incoming::Message(ServerMessage::Authenticated) | Incoming::Other => {}
                Incoming::Message(other) => {
                    return Err(ConnectionError::Protocol(format!(
                        "expected ready, got {other:?}"
                    )));
                }
            }
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), ConnectionError> {
        let text = serde_json::to_string(message).expect("client messages serialize");
        match tokio::time::timeout(self.send_timeout, self.ws.send(Message::text(text))).await {
            Ok(sent) => sent.map_err(|e| ConnectionError::Lost(e.to_string())),
            Err(_) => Err(ConnectionError::Lost(format!(
                "the gateway took no data for {:?}",
                self.send_timeout
            ))),
        }
    }

    /// Sends a spooled frame as a `chunk` of `session_id`.
    pub async fn send_frame(
        &mut self,
        session_id: &str,
        frame: &SpooledFrame,
    ) -> Result<(), ConnectionError> {
        let chunk = Chunk {
            meeting_id: session_id.to_owned(),
            seq: frame.seq,
            timestamp_ms: frame.timestamp_ms,
            sample_rate: SAMPLE_RATE,
            channels: CHANNELS,
            format: FORMAT.to_owned(),
            content_b64: base64::engine::general_purpose::STANDARD.encode(&frame.pcm),
        };
        self.send(&ClientMessage::Chunk(chunk)).await
    }

    /// Reads the next frame from the socket. Cancel-safe: usable as a `select!` branch.
    pub async fn recv(&mut self) -> Result<Incoming, ConnectionError> {
        match self.ws.next().await {
            None => Err(ConnectionError::Closed(String::new())),
            Some(Err(e)) => Err(ConnectionError::Lost(e.to_string())),
            Some(Ok(Message::Text(text))) => serde_json::from_str(text.as_str())
                .map(Incoming::Message)
                .map_err(|e| ConnectionError::Protocol(format!("{e}: {}", clip(text.as_str())))),
            Some(Ok(Message::Close(frame))) => Err(ConnectionError::Closed(
                frame
                    .map(|f| format!(" ({} {})", u16::from(f.code), f.reason))
                    .unwrap_or_default(),
            )),
            Some(Ok(_)) => Ok(Incoming::Other),
        }
    }

    /// Says goodbye (`close`, then a normal WebSocket close), waiting at most `timeout`.
    pub async fn close(mut self, reason: &str, timeout: Duration) {
        let goodbye = async {
            let _ = self
                .send(&ClientMessage::Close {
                    reason: Some(reason.to_owned()),
                })
                .await;
            // The gateway answers `closing` and closes; read until it does.
            while let Ok(incoming) = self.recv().await {
                if let Incoming::Message(ServerMessage::Closing { .. }) = incoming {
                    break;
                }
            }
            let _ = self
                .ws
                .close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                }))
                .await;
        };
        let _ = tokio::time::timeout(timeout, goodbye).await;
    }
}

/// Maps a failed upgrade to a message that says what the user can do about it.
fn refusal(error: tungstenite::Error) -> ConnectionError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let detail = serde_json::from_str::<contract::protocol::ErrorBody>(&body)
                .map(|b| b.detail)
                .unwrap_or(body);
            let hint = match status {
                401 => " (wrong or missing API key)",
                404 => " (is this URL a gateway?)",
                _ => "",
            };
            ConnectionError::Refused {
                status,
                detail: if detail.is_empty() {
                    hint.to_owned()
                } else {
                    format!(": {}{hint}", clip(&detail))
                },
            }
        }
        other => ConnectionError::Connect(other.to_string()),
    }
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}
