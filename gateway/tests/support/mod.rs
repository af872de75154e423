//! Test helpers: a real gateway on a free port, a WebSocket client, frames, and an inference
//! service that honours the contract. Each helper starts a real thing in one line.
#![allow(dead_code)]

pub mod child;
pub mod inference;
pub mod kill;
pub mod s3;

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use gateway::protocol::{Ack, ServerMessage};
use gateway::server::{GatewayConfig, RunningGateway};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A gateway running in this process with its own data directory.
pub struct TestGateway {
    pub gateway: Option<RunningGateway>,
    pub data: TempDir,
    pub config: GatewayConfig,
}

impl TestGateway {
    pub async fn start() -> TestGateway {
        TestGateway::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut GatewayConfig)) -> TestGateway {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = GatewayConfig::local(data.path());
        configure(&mut config);
        let gateway = gateway::server::start(config.clone())
            .await
            .expect("gateway starts");
        TestGateway {
            gateway: Some(gateway),
            data,
            config,
        }
    }

    /// Stops it and starts it again on the same data directory (a new port).
    pub async fn restart(&mut self) {
        if let Some(running) = self.gateway.take() {
            running.shutdown().await.expect("clean shutdown");
        }
        self.gateway = Some(
            gateway::server::start(self.config.clone())
                .await
                .expect("restart"),
        );
    }

    pub fn http(&self, path: &str) -> String {
        format!("{}{}", self.gateway.as_ref().unwrap().http_url(), path)
    }

    pub fn ws(&self, session: &str) -> String {
        format!(
            "{}/v1/audio/ws/{}",
            self.gateway.as_ref().unwrap().ws_url(),
            session
        )
    }

    /// Path of an object in the local object directory: results (and frames stored one
    /// file each, `FrameStore::Files`).
    pub fn object(&self, key: &str) -> std::path::PathBuf {
        self.data.path().join("objects").join(key)
    }

    /// The stored bytes of an object, wherever the store put them (frames go to the log).
    pub fn read_object(&self, key: &str) -> Option<Vec<u8>> {
        gateway::storage::read_local(self.data.path(), key).expect("readable storage")
    }

    /// Spoils a stored frame behind the gateway's back: flips its last byte in the log.
    pub fn damage_frame(&self, key: &str) {
        let conn = rusqlite::Connection::open(self.data.path().join("gateway.sqlite3")).unwrap();
        // `sessions/<safe id>/chunks/<seq>.pcm` (the mic) or
        // `sessions/<safe id>/streams/<stream>/chunks/<seq>.pcm`.
        let parts: Vec<&str> = key.split('/').collect();
        let (safe_id, stream) = match parts[..] {
            ["sessions", id, "chunks", _] => (id, "mic"),
            ["sessions", id, "streams", stream, "chunks", _] => (id, stream),
            _ => panic!("not a frame key: {key}"),
        };
        let seq: i64 = parts[parts.len() - 1]
            .trim_end_matches(".pcm")
            .parse()
            .expect("a frame key's seq");
        // Its location lies in its `frames` row.
        let (segment, offset, len): (i64, i64, i64) = conn
            .query_row(
                "SELECT log_segment, log_offset, log_len FROM frames
                 WHERE safe_id = ?1 AND stream = ?2 AND seq = ?3 AND log_segment IS NOT NULL",
                rusqlite::params![safe_id, stream, seq],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("a logged frame");
        let path = self
            .data
            .path()
            .join(format!("objects/frame-log/{segment:08}.log"));
        let mut bytes = std::fs::read(&path).unwrap();
        // The payload ends after a 16-byte header and the key.
        let last = (offset + 16 + key.len() as i64 + len - 1) as usize;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }

    /// Bytes in the frame log's segments.
    pub fn log_bytes(&self) -> u64 {
        std::fs::read_dir(self.data.path().join("objects/frame-log"))
            .unwrap()
            .map(|entry| entry.unwrap().metadata().unwrap().len())
            .sum()
    }

    pub async fn connect(&self, session: &str) -> Socket {
        connect(&self.ws(session)).await
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(self.http(path)).await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn send_json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = reqwest::Client::new()
            .request(method, self.http(path))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

pub async fn connect(url: &str) -> Socket {
    let (socket, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("connect");
    socket
}

/// Sends `message` and returns the next JSON answer.
pub async fn ask(socket: &mut Socket, message: &Value) -> Value {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("send");
    next_json(socket).await
}

pub async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("answer in time")
            .expect("socket open")
            .expect("no socket error");
        match message {
            Message::Text(text) => {
                return serde_json::from_str(text.as_str()).expect("JSON answer");
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text answer, got {other:?}"),
        }
    }
}

/// Waits for the server's close frame and returns it.
pub async fn close_frame(socket: &mut Socket) -> Option<CloseFrame> {
    loop {
        match tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(frame))) => return frame,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// One second of PCM whose bytes identify `seq` (so a misplaced frame is detectable).
pub fn pcm(seq: u64) -> Vec<u8> {
    (0..16_000u32)
        .flat_map(|i| ((i as u64 * 7 + seq * 131) as i16).to_le_bytes())
        .collect()
}

pub fn chunk(session: &str, seq: u64) -> Value {
    chunk_with(session, seq, &pcm(seq))
}

pub fn chunk_with(session: &str, seq: u64, pcm: &[u8]) -> Value {
    json!({
        "type": "chunk", "meeting_id": session, "seq": seq, "timestamp_ms": 1_764_000_000_000u64 + seq * 1000,
        "sample_rate": 16000, "channels": 1, "format": "pcm_s16le",
        "content_b64": base64::engine::general_purpose::STANDARD.encode(pcm),
    })
}

/// A chunk of `pcm` captured at `captured_at` (epoch ms).
pub fn chunk_at(session: &str, seq: u64, captured_at: u64, pcm: &[u8]) -> Value {
    let mut chunk = chunk_with(session, seq, pcm);
    chunk["timestamp_ms"] = json!(captured_at);
    chunk
}

/// An answer's status, headers and whole body.
pub async fn answer_parts(
    response: reqwest::Response,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

pub async fn send_chunk(socket: &mut Socket, session: &str, seq: u64) -> Ack {
    match serde_json::from_value(ask(socket, &chunk(session, seq)).await).expect("server message") {
        ServerMessage::Ack(ack) => ack,
        other => panic!("expected an ack for seq {seq}, got {other:?}"),
    }
}

pub async fn hello(socket: &mut Socket) -> Value {
    let ready = ask(socket, &json!({"type": "hello"})).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    ready
}

/// A GET sent byte for byte (clients normalise `%2E%2E` away), returning status and body.
pub async fn raw_get(gw: &TestGateway, path: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gw.gateway.as_ref().unwrap().addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}
