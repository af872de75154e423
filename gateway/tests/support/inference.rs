//! A speaker-inference service for tests that honours the real service's contract: resolve
//! answers shaped as DESIGN.md §3, and, on demand, each error code, a slow answer, or non-JSON.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the next requests get.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// A resolve answer that assigns cluster `spk_<n>` where n counts distinct requests.
    Answer,
    /// A status code with the service's JSON error body (401, 413, 422, 429 with headers, 500).
    Fail(u16),
    /// Answers after this long.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    NotJson,
    /// 200 with JSON that is not a resolve answer.
    WrongShape,
    /// 200 with a valid resolve answer padded to `bytes`, sent with a `Content-Length` or,
    /// when `chunked`, as a stream that announces no length.
    Huge { bytes: usize, chunked: bool },
}

#[derive(Clone)]
struct Shared {
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    expected_key: Option<String>,
}

pub struct FakeInference {
    pub addr: SocketAddr,
    shared: Shared,
}

impl FakeInference {
    pub async fn start(expected_key: Option<&str>) -> FakeInference {
        let shared = Shared {
            behaviour: Arc::new(Mutex::new(Behaviour::Answer)),
            requests: Arc::default(),
            expected_key: expected_key.map(str::to_owned),
        };
        let app = axum::Router::new()
            .route("/speaker/resolve", post(resolve))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeInference { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Bodies received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.shared
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    pub fn headers(&self, index: usize) -> HeaderMap {
        self.shared.requests.lock().unwrap()[index].0.clone()
    }
}

async fn resolve(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let count = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push((headers.clone(), body.clone()));
        requests.len()
    };
    if let Some(key) = &shared.expected_key {
        if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(key) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"detail": "invalid api key"})),
            )
                .into_response();
        }
    }
    let behaviour = shared.behaviour.lock().unwrap().clone();
    match behaviour {
        Behaviour::Answer => Json(answer(&body, count)).into_response(),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            Json(answer(&body, count)).into_response()
        }
        Behaviour::NotJson => (StatusCode::OK, "<html>oops</html>").into_response(),
        Behaviour::WrongShape => Json(json!({"ok": true})).into_response(),
        Behaviour::Huge { bytes, chunked } => {
            let mut padded = answer(&body, count);
            padded["padding"] = json!("");
            let base = padded.to_string().len();
            padded["padding"] = Value::String("x".repeat(bytes.saturating_sub(base)));
            let text = padded.to_string();
            let content_type = [(axum::http::header::CONTENT_TYPE, "application/json")];
            if !chunked {
                return (content_type, text).into_response();
            }
            let pieces: Vec<Result<Vec<u8>, std::convert::Infallible>> = text
                .into_bytes()
                .chunks(64 * 1024)
                .map(|c| Ok(c.to_vec()))
                .collect();
            let stream = futures_util::stream::iter(pieces);
            (content_type, axum::body::Body::from_stream(stream)).into_response()
        }
        Behaviour::Fail(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            let detail = match code {
                413 => "payload too large",
                422 => "no speech detected",
                429 => "rate limited",
                _ => "internal error",
            };
            let mut response = (status, Json(json!({"detail": detail}))).into_response();
            if code == 429 {
                let h = response.headers_mut();
                h.insert("x-ratelimit-limit", "10".parse().unwrap());
                h.insert("x-ratelimit-remaining", "0".parse().unwrap());
                h.insert("retry-after", "7".parse().unwrap());
            }
            response
        }
    }
}

/// Adds one cluster per request to the state it was sent, as the real service grows clusters.
fn answer(body: &Value, count: usize) -> Value {
    let mut state = body["state"].clone();
    let cluster_id = format!("spk_{count}");
    let clusters = state["clusters"].as_array().cloned().unwrap_or_default();
    let mut clusters = clusters;
    clusters.push(
        json!({"cluster_id": cluster_id, "centroid": [0.125, -0.5, 0.75], "sample_count": 1}),
    );
    state["clusters"] = Value::Array(clusters);
    let speaker = body["state"]["roster"][0]["name"]
        .as_str()
        .map(str::to_owned);
    json!({
        "session_id": body["session_id"],
        "cluster_id": cluster_id,
        "speaker_name": speaker,
        "decision": if speaker.is_some() { "confirm" } else { "unknown" },
        "evidence": {"sv_score": 0.42, "threshold_low": 0.35, "threshold_high": 0.7, "segment_count": 1},
        "updated_state": state,
    })
}

/// A test gateway whose inference service is a new fake (expecting `key`, if any), asked with
/// `timeout`.
pub async fn gateway_with_inference(
    key: Option<&'static str>,
    timeout: Duration,
) -> (super::TestGateway, FakeInference) {
    let inference = FakeInference::start(key).await;
    let url = inference.url();
    let gw = super::TestGateway::start_with(|c| {
        c.inference = Some(gateway::inference::InferenceConfig {
            base_url: url,
            api_key: key.map(str::to_owned),
            timeout,
            resolve_path: "/speaker/resolve".into(),
        })
    })
    .await;
    (gw, inference)
}
