//! The shared contract suite: the wire contract checked through the network only (HTTP and
//! the ingest socket), so the same tests run against every host of the session core. One
//! rule is checked behind the host's back: frames end up as objects at the seed's keys
//! (`sessions/<safe id>/chunks/<seq8>.pcm`), read from the host's storage
//! (`CONTRACT_OBJECTS_CMD` for an external host).
//!
//! By default each test starts a server gateway in this process. With `CONTRACT_HOST_URL` set
//! they run against that host instead: `scripts/edge.sh` runs them against the edge worker
//! (edge/) under `wrangler dev --local`, started with
//! - `GATEWAY_API_KEY` = `CONTRACT_API_KEY` (every test sends it; some check refusals),
//! - `INFERENCE_BASE_URL` = `http://CONTRACT_INFERENCE_ADDR`, where this suite's fake
//!   inference service listens, and `INFERENCE_TIMEOUT_MS` = 1000,
//! - `CONTRACT_RESTART_CMD`: a command that restarts the host on the same storage and returns
//!   once it answers again (the restart tests),
//! - `CONTRACT_OBJECTS_CMD`: a command that, given object keys as arguments, prints the
//!   objects stored at them as JSON `{"<key>": "<base64>" | null}`,
//! - `GATEWAY_ALLOW_ORIGINS` = [`ALLOWED_ORIGIN`] (the browser-origin test).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use serde_json::{Value, json};
use support::*;
use tokio::sync::RwLock;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The key of an in-process host (an external one says its own in `CONTRACT_API_KEY`).
const LOCAL_KEY: &str = "contract-key";
/// The inference timeout both kinds of host are configured with.
const INFERENCE_TIMEOUT_MS: u64 = 1000;
/// The one web origin both kinds of host allow (`GATEWAY_ALLOW_ORIGINS`).
const ALLOWED_ORIGIN: &str = "https://app.example.com";
/// `Host::deadline` of a host at `CONTRACT_HOST_URL`.
const EXTERNAL_DEADLINE: Duration = Duration::from_secs(60);

/// Tests share an external host; the restart test takes it alone.
static HOST_IN_USE: RwLock<()> = RwLock::const_new(());

/// The host under test.
struct Host {
    /// The in-process gateway, or `None` for an external host.
    local: Option<TestGateway>,
    external: Option<String>,
    key: String,
    _turn: HostTurn,
}

enum HostTurn {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'static, ()>),
}

impl Host {
    async fn start() -> Host {
        let turn = HostTurn::Shared(HOST_IN_USE.read().await);
        Host::with_turn(turn).await
    }

    /// A host no other test uses meanwhile (it is going to be restarted).
    async fn start_alone() -> Host {
        let turn = HostTurn::Alone(HOST_IN_USE.write().await);
        Host::with_turn(turn).await
    }

    async fn with_turn(turn: HostTurn) -> Host {
        let inference = fake_inference();
        if let Ok(url) = std::env::var("CONTRACT_HOST_URL") {
            return Host {
                local: None,
                external: Some(url.trim_end_matches('/').to_owned()),
                key: std::env::var("CONTRACT_API_KEY")
                    .expect("CONTRACT_API_KEY with CONTRACT_HOST_URL"),
                _turn: turn,
            };
        }
        let gw = TestGateway::start_with(|c| {
            c.api_key = Some(LOCAL_KEY.into());
            c.allow_origins = vec![ALLOWED_ORIGIN.into()];
            c.inference = Some(gateway::inference::InferenceConfig {
                base_url: format!("http://{inference}"),
                api_key: None,
                timeout: Duration::from_millis(INFERENCE_TIMEOUT_MS),
                resolve_path: "/speaker/resolve".into(),
            });
        })
        .await;
        Host {
            local: Some(gw),
            external: None,
            key: LOCAL_KEY.into(),
            _turn: turn,
        }
    }

    /// How long one request or connect may take. An external host gets longer: `wrangler dev`
    /// on a busy 2-core machine once took over 20 s to answer the first `audio.wav` after a
    /// restart (the worker is rebuilt and the objects read back from its local R2).
    fn deadline(&self) -> Duration {
        match &self.local {
            Some(_) => DEADLINE,
            None => EXTERNAL_DEADLINE,
        }
    }

    fn http(&self, path: &str) -> String {
        match &self.local {
            Some(gw) => gw.http(path),
            None => format!("{}{path}", self.external.as_deref().unwrap()),
        }
    }

    fn ws(&self, session: &str) -> String {
        self.http(&format!("/v1/audio/ws/{session}"))
            .replacen("http", "ws", 1)
    }

    /// A socket that sent the key in its upgrade.
    async fn connect(&self, session: &str) -> Socket {
        self.connect_url(self.ws(session)).await
    }

    /// A socket on `stream` (`?stream=`) that sent the key in its upgrade.
    async fn connect_stream(&self, session: &str, stream: &str) -> Socket {
        self.connect_url(format!("{}?stream={stream}", self.ws(session)))
            .await
    }

    async fn connect_url(&self, url: String) -> Socket {
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("x-api-key", self.key.parse().unwrap());
        let (socket, _) =
            tokio::time::timeout(self.deadline(), tokio_tungstenite::connect_async(request))
                .await
                .expect("connect in time")
                .expect("connect");
        socket
    }

    /// A request with the key.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.http(path))
            .header("x-api-key", &self.key)
            .timeout(self.deadline())
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        answer(self.request(reqwest::Method::GET, path)).await
    }

    async fn send_json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        answer(self.request(method, path).json(&body)).await
    }

    /// Restarts the host on the same storage.
    async fn restart(&mut self) {
        if let Some(gw) = &mut self.local {
            gw.restart().await;
            return;
        }
        let command = std::env::var("CONTRACT_RESTART_CMD")
            .expect("CONTRACT_RESTART_CMD: how to restart the host at CONTRACT_HOST_URL");
        let status = tokio::time::timeout(
            Duration::from_secs(300),
            tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .status(),
        )
        .await
        .expect("the host restarts within 5 minutes")
        .expect("the restart command runs");
        assert!(status.success(), "{command}: {status}");
    }
}

impl Host {
    /// The objects stored at `keys` (`None` where there is none), read from the host's
    /// storage, not through it.
    async fn objects(&self, keys: &[String]) -> Vec<Option<Vec<u8>>> {
        if let Some(gw) = &self.local {
            return keys.iter().map(|key| gw.read_object(key)).collect();
        }
        let command = std::env::var("CONTRACT_OBJECTS_CMD").expect(
            "CONTRACT_OBJECTS_CMD: how to read the objects of the host at CONTRACT_HOST_URL",
        );
        let output = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{command} \"$@\""))
                .arg("sh")
                .args(keys)
                .output(),
        )
        .await
        .expect("the objects are read within 2 minutes")
        .expect("the objects command runs");
        assert!(
            output.status.success(),
            "{command}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let found: HashMap<String, Option<String>> =
            serde_json::from_slice(&output.stdout).expect("the objects command prints JSON");
        keys.iter()
            .map(|key| {
                found[key].as_ref().map(|b64| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .expect("base64")
                })
            })
            .collect()
    }

    /// The objects at `keys` once all of them exist: a host may store frames as objects
    /// behind the ACK (the edge moves them from its Durable Object's SQLite to R2 in batches).
    /// Fails after a minute with the keys still missing.
    async fn objects_once_stored(&self, keys: &[String]) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let objects = self.objects(keys).await;
            if objects.iter().all(Option::is_some) {
                return objects.into_iter().map(Option::unwrap).collect();
            }
            let missing: Vec<&String> = keys
                .iter()
                .zip(&objects)
                .filter(|(_, o)| o.is_none())
                .map(|(k, _)| k)
                .collect();
            assert!(
                tokio::time::Instant::now() < deadline,
                "no objects at {missing:?} a minute after their ACKs"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The object key of frame `seq` of the mic stream (the seed's).
fn frame_key(session: &str, seq: u64) -> String {
    format!("sessions/{session}/chunks/{seq:08}.pcm")
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A session id no earlier run used (an external host keeps its storage between runs).
fn session(name: &str) -> String {
    static RUN: OnceLock<u128> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    });
    format!("{name}-{run:x}")
}

// --- the fake inference service ----------------------------------------------------------------

/// Where this process's fake inference service listens. It runs on a thread of its own, so it
/// outlives each test's runtime; an external host was told its address in advance
/// (`CONTRACT_INFERENCE_ADDR`). What it answers depends on the session id, so parallel tests
/// do not disturb each other: ids containing `inference-fails` get a 500, `inference-slow` an
/// answer after 3 s; others a resolve answer that adds cluster `spk_<n>` (n-th request of
/// that session).
fn fake_inference() -> String {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        let addr = std::env::var("CONTRACT_INFERENCE_ADDR").unwrap_or("127.0.0.1:0".into());
        let listener = std::net::TcpListener::bind(&addr).expect("the fake inference address");
        listener.set_nonblocking(true).unwrap();
        let bound = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
                let app = axum::Router::new()
                    .route("/speaker/resolve", axum::routing::post(fake_resolve))
                    .with_state(counts);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        bound
    })
    .clone()
}

async fn fake_resolve(
    State(counts): State<Arc<Mutex<HashMap<String, usize>>>>,
    Json(body): Json<Value>,
) -> Response {
    let session = body["session_id"].as_str().unwrap_or("").to_owned();
    if session.contains("inference-fails") {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"detail": "internal error"})),
        )
            .into_response();
    }
    if session.contains("inference-slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let count = {
        let mut counts = counts.lock().unwrap();
        let n = counts.entry(session.clone()).or_default();
        *n += 1;
        *n
    };
    let mut state = body["state"].clone();
    let cluster_id = format!("spk_{count}");
    let mut clusters = state["clusters"].as_array().cloned().unwrap_or_default();
    clusters.push(json!({"cluster_id": cluster_id, "centroid": [0.125, -0.5], "sample_count": 1}));
    state["clusters"] = Value::Array(clusters);
    let speaker = body["state"]["roster"][0]["name"].clone();
    Json(json!({
        "session_id": session,
        "cluster_id": cluster_id,
        "speaker_name": speaker,
        "decision": if speaker.is_null() { "unknown" } else { "confirm" },
        "evidence": {"sv_score": 0.42, "threshold_low": 0.35, "threshold_high": 0.7, "segment_count": 1},
        "updated_state": state,
    }))
    .into_response()
}

fn resolve_body() -> Value {
    json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}, "asr_text": "hello",
           "roster": [{"name": "Ada Lovelace"}]})
}

// --- the contract ---------------------------------------------------------------------------

#[tokio::test]
async fn health_answers_without_a_key() {
    let host = Host::start().await;
    let response = reqwest::get(host.http("/health")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["app"], "interview-gateway");
    assert_eq!(body["inference_configured"], true);
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_bad_ids_are_refused_in_json() {
    let host = Host::start().await;
    let s = session("routes");
    let cases = [
        ("GET", "/v1/nothing".to_owned(), 404, "route not found"),
        (
            "GET",
            format!("/v1/sessions/{s}/nothing"),
            404,
            "route not found",
        ),
        (
            "POST",
            format!("/v1/sessions/{s}/state"),
            405,
            "method not allowed",
        ),
        (
            "GET",
            format!("/v1/sessions/{s}/finalize"),
            405,
            "method not allowed",
        ),
        (
            "GET",
            format!("/v1/sessions/{s}"),
            405,
            "method not allowed",
        ),
        (
            "POST",
            format!("/v1/audio/ws/{s}"),
            405,
            "method not allowed",
        ),
        (
            "GET",
            format!("/v1/audio/ws/{s}"),
            426,
            "websocket upgrade required",
        ),
        (
            "GET",
            format!("/v1/sessions/{}/state", "x".repeat(129)),
            400,
            "session_id must be at most 128 characters",
        ),
    ];
    for (method, path, status, detail) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (code, body) = answer(host.request(method.clone(), &path)).await;
        assert_eq!(
            (code, body["detail"].as_str()),
            (status, Some(detail)),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn an_api_key_guards_every_route_and_socket_but_health() {
    let host = Host::start().await;
    let s = session("keyed");
    let client = reqwest::Client::new();
    let url = host.http(&format!("/v1/sessions/{s}/state"));
    for request in [
        client.get(&url),
        client.get(&url).header("x-api-key", "guess"),
        client.get(&url).bearer_auth("guess"),
    ] {
        let (code, body) = answer(request).await;
        assert_eq!(
            (code, body["detail"].as_str()),
            (401, Some("missing or invalid API key"))
        );
    }
    assert_eq!(answer(client.get(&url).bearer_auth(&host.key)).await.0, 200);

    // A socket that proves the key in its first message.
    let mut ws = connect(&host.ws(&s)).await;
    let answer = ask(&mut ws, &json!({"type": "auth", "key": host.key})).await;
    assert_eq!(answer, json!({"type": "authenticated"}));
    assert_eq!(send_chunk(&mut ws, &s, 1).await.last_seq, 1);

    // Any other first message, or a wrong key, is refused and the socket closed with 1008.
    let mut ws = connect(&host.ws(&s)).await;
    ws.send(Message::text(chunk(&s, 2).to_string()))
        .await
        .unwrap();
    let refusal = next_json(&mut ws).await;
    assert_eq!(refusal["type"], "error");
    assert_eq!(
        refusal["detail"],
        "authentication required: send {\"type\":\"auth\",\"key\":\"...\"} first, or the key in the upgrade headers"
    );
    assert_eq!(u16::from(close_frame(&mut ws).await.unwrap().code), 1008);
    let mut ws = connect(&host.ws(&s)).await;
    let refusal = ask(&mut ws, &json!({"type": "auth", "key": "guess"})).await;
    assert_eq!(refusal["type"], "error");
    assert_eq!(u16::from(close_frame(&mut ws).await.unwrap().code), 1008);

    let (_, state) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(
        state["ingest"]["received_chunks"], 1,
        "frame 2 was never stored"
    );
}

/// A socket whose upgrade lacked the key and that never sends `auth` is refused once the
/// deadline passes, not held open (on the edge, the session object's alarm closes it).
#[tokio::test]
async fn a_silent_socket_without_the_key_is_closed_at_the_auth_deadline() {
    let host = Host::start().await;
    let s = session("silent");
    let opened = std::time::Instant::now();
    let mut ws = connect(&host.ws(&s)).await;
    let refusal = next_json(&mut ws).await;
    assert_eq!(
        refusal,
        json!({"type": "error", "detail": "authentication required: no {\"type\":\"auth\",\"key\":\"...\"} message within 5 s"})
    );
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (1008, "authentication timed out")
    );
    assert!(
        opened.elapsed() >= Duration::from_millis(gateway::core::socket::AUTH_DEADLINE_MS),
        "closed after {:?}, before the deadline",
        opened.elapsed()
    );
}

#[tokio::test]
async fn the_seed_client_flow_hello_chunks_status_ping_close() {
    let host = Host::start().await;
    let s = session("seed");
    let mut ws = host.connect(&s).await;
    let ready = hello(&mut ws).await;
    assert_eq!(ready["session_id"], s.as_str());
    assert_eq!(ready["target_sample_rate"], 16000);
    assert_eq!(ready["target_channels"], 1);
    assert_eq!(ready["target_format"], "pcm_s16le");
    assert_eq!(ready["ingest"]["type"], "status");
    assert_eq!(ready["ingest"]["meeting_id"], s.as_str());
    assert_eq!(ready["ingest"]["last_seq"], 0);

    for seq in 1..=3u64 {
        let ack = ask(&mut ws, &chunk(&s, seq)).await;
        assert_eq!(
            ack,
            json!({"type": "ack", "seq": seq, "status": "stored",
                   "key": format!("sessions/{s}/chunks/{seq:08}.pcm"),
                   "last_seq": seq, "missing_count": 0, "duplicate_count": 0})
        );
    }
    let status = ask(&mut ws, &json!({"type": "status"})).await;
    assert_eq!(status["type"], "status");
    assert_eq!(status["session_id"], s.as_str());
    assert_eq!(status["received_chunks"], 3);
    assert_eq!(status["missing_chunks"], 0);
    assert_eq!(status["duplicate_chunks"], 0);
    assert_eq!(status["bytes_stored"], 96_000);
    assert!(status["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(status["updated_at"].as_str().unwrap().ends_with('Z'));

    let pong = ask(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong");
    assert!(pong["ts"].as_u64().unwrap() > 1_700_000_000_000);

    let long = "r".repeat(300);
    let closing = ask(&mut ws, &json!({"type": "close", "reason": long})).await;
    assert_eq!(
        closing,
        json!({"type": "closing", "reason": "r".repeat(120)})
    );
    assert_eq!(u16::from(close_frame(&mut ws).await.unwrap().code), 1000);
}

#[tokio::test]
async fn duplicates_gap_fillers_and_conflicts() {
    let host = Host::start().await;
    let s = session("dups");
    let mut ws = host.connect(&s).await;
    send_chunk(&mut ws, &s, 1).await;
    let ack = ask(&mut ws, &chunk(&s, 3)).await;
    assert_eq!(
        (ack["last_seq"].as_u64(), ack["missing_count"].as_u64()),
        (Some(3), Some(1))
    );
    let again = ask(&mut ws, &chunk(&s, 3)).await;
    assert_eq!(
        again,
        json!({"type": "ack", "seq": 3, "status": "duplicate", "last_seq": 3, "missing_count": 1, "duplicate_count": 1})
    );
    // A late frame fills the gap.
    let filler = ask(&mut ws, &chunk(&s, 2)).await;
    assert_eq!(filler["status"], "stored");
    assert_eq!(filler["missing_count"], 0);
    // The same seq with other audio overwrites nothing.
    let other = chunk_with(&s, 1, &pcm(99));
    let conflict = ask(&mut ws, &other).await;
    assert_eq!(
        conflict,
        json!({"type": "error", "seq": 1, "detail": "seq 1 of the mic stream is already stored with different audio; nothing was overwritten. Continue after last_seq 3"})
    );
    let status = ask(&mut ws, &json!({"type": "status"})).await;
    assert_eq!(
        (
            &status["received_chunks"],
            &status["duplicate_chunks"],
            &status["missing_chunks"]
        ),
        (&json!(3), &json!(1), &json!(0))
    );
}

#[tokio::test]
async fn each_bad_message_gets_its_own_error_and_the_socket_stays_open() {
    let host = Host::start().await;
    let s = session("refusals");
    let mut ws = host.connect(&s).await;
    let with = |field: &str, value: Value| {
        let mut message = chunk(&s, 1);
        message[field] = value;
        message
    };
    let cases = [
        (with("seq", json!(0)), "seq must be a positive integer"),
        (with("seq", json!("1")), "seq must be a positive integer"),
        (
            with("timestamp_ms", json!(0)),
            "timestamp_ms must be a positive number",
        ),
        (
            with("sample_rate", json!(48000)),
            "sample_rate must be 16000",
        ),
        (with("channels", json!(2)), "channels must be 1"),
        (with("format", json!("f32le")), "format must be pcm_s16le"),
        (with("meeting_id", json!(5)), "meeting_id must be a string"),
        (
            with("content_b64", json!("AAAA")),
            "content_b64 must decode to exactly 32000 bytes, got 3",
        ),
        (
            with("meeting_id", json!("someone-else")),
            &*format!("meeting_id mismatch: expected '{s}', got 'someone-else'"),
        ),
        (json!({"type": "dance"}), "unsupported message type: dance"),
        (json!({}), "message type is required"),
        (json!([1]), "message must be a JSON object"),
    ];
    for (message, detail) in cases {
        let refusal = ask(&mut ws, &message).await;
        assert_eq!(refusal["type"], "error", "{message}");
        assert_eq!(refusal["detail"], detail, "{message}");
    }
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(
        next_json(&mut ws).await["detail"],
        "binary messages are not supported; send JSON text"
    );
    ws.send(Message::text("{")).await.unwrap();
    assert!(
        next_json(&mut ws).await["detail"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
    let status = ask(&mut ws, &json!({"type": "status"})).await;
    assert_eq!(status["received_chunks"], 0, "nothing was stored");
}

#[tokio::test]
async fn state_of_an_unknown_session_is_empty() {
    let host = Host::start().await;
    let s = session("never-seen");
    let (code, body) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        json!({"session_id": s, "state": {"clusters": [], "bindings": {}, "config": {}},
               "event_count": 0, "updated_at": null, "ingest": null})
    );
}

#[tokio::test]
async fn resolve_forwards_the_state_keeps_the_answer_and_replays_by_key() {
    let host = Host::start().await;
    let s = session("resolve");
    let path = format!("/v1/sessions/{s}/resolve");
    let response = host
        .request(reqwest::Method::POST, &path)
        .header("x-idempotency-key", "req-1")
        .json(&resolve_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-idempotent-replay").is_none());
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["cluster_id"], "spk_1");
    assert_eq!(first["speaker_name"], "Ada Lovelace");
    assert_eq!(first["updated_state"]["roster"][0]["name"], "Ada Lovelace");

    let replay = host
        .request(reqwest::Method::POST, &path)
        .header("x-idempotency-key", "req-1")
        .json(&resolve_body())
        .send()
        .await
        .unwrap();
    assert_eq!(replay.headers()["x-idempotent-replay"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);

    let (code, state) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(code, 200);
    assert_eq!(state["event_count"], 1, "the replay asked no one");
    assert_eq!(state["state"]["clusters"][0]["cluster_id"], "spk_1");
    assert!(state["updated_at"].as_str().unwrap().ends_with('Z'));

    for body in [json!({}), json!({"audio": {"format": "pcm_s16le"}})] {
        let (code, answer) = host.send_json("POST", &path, body).await;
        assert_eq!(
            (code, answer["detail"].as_str()),
            (400, Some("audio.content_b64 and audio.format are required"))
        );
    }
}

#[tokio::test]
async fn inference_failures_and_timeouts_are_502_and_change_nothing() {
    let host = Host::start().await;
    let failing = session("inference-fails");
    let (code, body) = host
        .send_json(
            "POST",
            &format!("/v1/sessions/{failing}/resolve"),
            resolve_body(),
        )
        .await;
    assert_eq!(code, 502);
    assert_eq!(body["detail"], "inference backend returned 500");
    assert_eq!(body["backend_status"], 500);
    let backend: Value = serde_json::from_str(body["backend_body"].as_str().unwrap()).unwrap();
    assert_eq!(backend, json!({"detail": "internal error"}));

    let slow = session("inference-slow");
    let (code, body) = host
        .send_json(
            "POST",
            &format!("/v1/sessions/{slow}/resolve"),
            resolve_body(),
        )
        .await;
    assert_eq!(code, 502);
    assert_eq!(
        body["detail"],
        format!("inference request failed: timed out after {INFERENCE_TIMEOUT_MS} ms")
    );
    for s in [failing, slow] {
        let (_, state) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
        assert_eq!(state["event_count"], 0);
    }
}

#[tokio::test]
async fn a_binding_names_a_cluster() {
    let host = Host::start().await;
    let s = session("bind");
    let path = format!("/v1/sessions/{s}/bindings");
    let (code, body) = host
        .send_json(
            "PUT",
            &path,
            json!({"cluster_id": "spk_1", "name": "Grace"}),
        )
        .await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (404, Some("cluster not found: spk_1"))
    );
    let (code, _) = host
        .send_json("POST", &format!("/v1/sessions/{s}/resolve"), resolve_body())
        .await;
    assert_eq!(code, 200);
    let (code, body) = host
        .send_json("PUT", &path, json!({"cluster_id": "spk_1", "name": "  "}))
        .await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (400, Some("name must not be empty"))
    );
    let (code, body) = host
        .send_json(
            "PUT",
            &path,
            json!({"cluster_id": "spk_1", "name": " Grace Hopper "}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(body["session_id"], s.as_str());
    assert_eq!(body["state"]["bindings"]["spk_1"], "Grace Hopper");
    assert_eq!(body["state"]["clusters"][0]["bound_name"], "Grace Hopper");
    assert_eq!(body["event_count"], 2);
}

#[tokio::test]
async fn finalize_writes_result_json_and_finalizing_again_rewrites_it() {
    let host = Host::start().await;
    let s = session("fin");
    let (code, body) = host.get_json(&format!("/v1/sessions/{s}/result")).await;
    assert_eq!(
        (code, body["detail"].clone()),
        (404, json!(format!("session '{s}' not found")))
    );
    let mut ws = host.connect(&s).await;
    send_chunk(&mut ws, &s, 1).await;
    let (code, body) = host.get_json(&format!("/v1/sessions/{s}/result")).await;
    assert_eq!(
        (code, body["detail"].clone()),
        (
            404,
            json!(format!(
                "session '{s}' has not been finalized: no result.json"
            ))
        )
    );

    let path = format!("/v1/sessions/{s}/finalize");
    let (code, done) = host
        .send_json("POST", &path, json!({"metadata": {"interviewer": "Kim"}}))
        .await;
    assert_eq!(code, 200);
    assert_eq!(done["session_id"], s.as_str());
    assert_eq!(done["result_key"], format!("sessions/{s}/result.json"));
    assert_eq!(done["event_count"], 0);
    let (code, result) = host.get_json(&format!("/v1/sessions/{s}/result")).await;
    assert_eq!(code, 200);
    assert_eq!(result["session_id"], s.as_str());
    assert_eq!(result["finalized_at"], done["finalized_at"]);
    assert_eq!(result["metadata"], json!({"interviewer": "Kim"}));
    assert_eq!(result["ingest"]["received_chunks"], 1);
    assert_eq!(result["events"], json!([]));

    send_chunk(&mut ws, &s, 2).await;
    // An empty body counts as {}.
    let response = host
        .request(reqwest::Method::POST, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, result) = host.get_json(&format!("/v1/sessions/{s}/result")).await;
    assert_eq!(result["ingest"]["received_chunks"], 2);
    assert_eq!(result["metadata"], json!({}));

    let response = host
        .request(reqwest::Method::POST, &path)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "request body must be a JSON object");
    let response = host
        .request(reqwest::Method::POST, &path)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn audio_wav_joins_the_frames_with_silence_for_missing_seconds() {
    let host = Host::start().await;
    let s = session("wav");
    let path = format!("/v1/sessions/{s}/audio.wav");
    let (code, body) = host.get_json(&path).await;
    assert_eq!(
        (code, body["detail"].clone()),
        (404, json!(format!("no audio stored for session '{s}'")))
    );
    let mut ws = host.connect(&s).await;
    for seq in [1, 2, 4] {
        send_chunk(&mut ws, &s, seq).await;
    }
    let response = host
        .request(reqwest::Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    assert_eq!(response.headers()["x-missing-seconds"], "1");
    assert_eq!(response.headers()["x-unreadable-seconds"], "0");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), 44 + 4 * 32_000);
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes(bytes[40..44].try_into().unwrap()),
        4 * 32_000
    );
    let second = |n: usize| &bytes[44 + (n - 1) * 32_000..44 + n * 32_000];
    assert_eq!(second(1), pcm(1));
    assert_eq!(second(2), pcm(2));
    assert!(
        second(3).iter().all(|b| *b == 0),
        "the missing second is silence"
    );
    assert_eq!(second(4), pcm(4));

    let (code, body) = host.get_json(&format!("{path}?stream=loud")).await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (400, Some("unknown stream 'loud': use mic or system or mix"))
    );
}

/// One second whose every sample is `value`.
fn flat(value: i16) -> Vec<u8> {
    value.to_le_bytes().repeat(16_000)
}

async fn wav(
    host: &Host,
    session: &str,
    query: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = host
        .request(
            reqwest::Method::GET,
            &format!("/v1/sessions/{session}/audio.wav{query}"),
        )
        .send()
        .await
        .unwrap();
    answer_parts(response).await
}

/// The meeting audio is a stream of its own, kept across a restart of the host.
#[tokio::test]
async fn the_system_stream_has_its_own_seqs_keys_counters_and_audio() {
    let mut host = Host::start_alone().await;
    let s = session("two-streams");
    let mut mic = host.connect(&s).await;
    let mut system = host.connect_stream(&s, "system").await;
    let ready = hello(&mut system).await;
    assert_eq!(ready["ingest"]["last_seq"], 0);

    for seq in 1..=3 {
        let ack = ask(&mut mic, &chunk_at(&s, seq, 1_000 * seq, &flat(100))).await;
        assert_eq!(ack["key"], format!("sessions/{s}/chunks/{seq:08}.pcm"));
    }
    for seq in [1, 2, 4] {
        let ack = ask(&mut system, &chunk_at(&s, seq, 1_000 * seq, &flat(-7))).await;
        assert_eq!(ack["status"], "stored", "{ack}");
        assert_eq!(
            ack["key"],
            format!("sessions/{s}/streams/system/chunks/{seq:08}.pcm")
        );
    }
    let status = ask(&mut system, &json!({"type": "status"})).await;
    assert_eq!(
        (
            status["last_seq"].as_u64(),
            status["missing_chunks"].as_u64()
        ),
        (Some(4), Some(1))
    );

    host.restart().await;
    let (code, state) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(code, 200);
    assert_eq!(
        state["ingest"]["last_seq"], 3,
        "the seed's field is the mic's"
    );
    assert_eq!(state["streams"]["mic"]["received_chunks"], 3);
    assert_eq!(state["streams"]["system"]["received_chunks"], 3);
    assert_eq!(state["streams"]["system"]["missing_chunks"], 1);

    let (code, headers, body) = wav(&host, &s, "?stream=system").await;
    assert_eq!(code, 200);
    assert_eq!(headers["x-missing-seconds"], "1");
    assert_eq!(body.len(), 44 + 4 * 32_000);
    let expected: Vec<u8> = [flat(-7), flat(-7), flat(0), flat(-7)].concat();
    assert!(
        body[44..] == expected[..],
        "system audio in seq order, silence for seq 3"
    );
    let (_, _, body) = wav(&host, &s, "").await;
    assert_eq!(
        body.len(),
        44 + 3 * 32_000,
        "no query: the mic, as the seed served it"
    );
}

#[tokio::test]
async fn the_mix_puts_the_mic_left_and_the_meeting_right_aligned_by_capture_time() {
    let host = Host::start().await;
    let s = session("mix");
    let mut mic = host.connect(&s).await;
    let mut system = host.connect_stream(&s, "system").await;
    let t0 = 1_764_000_000_000u64;
    for seq in 1..=2 {
        let ack = ask(
            &mut mic,
            &chunk_at(&s, seq, t0 + 1_000 * (seq - 1), &flat(1_000)),
        )
        .await;
        assert_eq!(ack["status"], "stored", "{ack}");
    }
    // The meeting audio began 250 ms after the mic.
    for seq in 1..=2 {
        let pcm = flat(-2_000);
        let ack = ask(
            &mut system,
            &chunk_at(&s, seq, t0 + 250 + 1_000 * (seq - 1), &pcm),
        )
        .await;
        assert_eq!(ack["status"], "stored", "{ack}");
    }
    let (code, headers, body) = wav(&host, &s, "?stream=mix").await;
    assert_eq!(code, 200);
    assert_eq!(u16::from_le_bytes([body[22], body[23]]), 2, "stereo");
    let (left, right): (Vec<i16>, Vec<i16>) = body[44..]
        .chunks_exact(4)
        .map(|lr| {
            (
                i16::from_le_bytes([lr[0], lr[1]]),
                i16::from_le_bytes([lr[2], lr[3]]),
            )
        })
        .unzip();
    // 2.25 s in all: the meeting stream ends 250 ms after the mic's.
    assert_eq!(left.len(), 36_000);
    assert_eq!(headers["content-length"], (44 + 36_000 * 4).to_string());
    assert!(left[..32_000].iter().all(|&v| v == 1_000));
    assert!(left[32_000..].iter().all(|&v| v == 0));
    assert!(
        right[..4_000].iter().all(|&v| v == 0),
        "250 ms before the meeting audio"
    );
    assert!(right[4_000..].iter().all(|&v| v == -2_000));
}

/// `audio.wav` with a `Range` header: status, headers and body.
async fn wav_range(
    host: &Host,
    method: reqwest::Method,
    path: &str,
    range: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = host
        .request(method, path)
        .header("range", range)
        .send()
        .await
        .unwrap();
    answer_parts(response).await
}

/// A seek asks for part of the file: 206 with exactly those bytes of the whole file, whether
/// the range lies in the header, across a second's boundary, at the end or open-ended; past the
/// end is 416; a range header this host ignores gets the whole file.
#[tokio::test]
async fn audio_wav_answers_a_range_with_exactly_those_bytes_of_the_whole_file() {
    let host = Host::start().await;
    let s = session("wav-range");
    let mut ws = host.connect(&s).await;
    for seq in [1, 2, 4] {
        send_chunk(&mut ws, &s, seq).await;
    }
    let path = format!("/v1/sessions/{s}/audio.wav");
    let (code, headers, whole) = wav(&host, &s, "").await;
    let total = 44 + 4 * 32_000;
    assert_eq!(code, 200);
    assert_eq!(whole.len(), total);
    assert_eq!(
        headers["accept-ranges"], "bytes",
        "a whole answer says ranges are served"
    );
    assert_eq!(headers["content-length"], total.to_string());
    assert!(headers.get("content-range").is_none());

    let second = |n: usize| 44 + (n - 1) * 32_000;
    let cases = [
        ("bytes=0-43", 0, 43),
        ("bytes=8-15", 8, 15),
        ("bytes=40-47", 40, 47),
        // The last 10 bytes of second 1 and the first 6 of second 2.
        (
            &*format!("bytes={}-{}", second(2) - 10, second(2) + 5),
            second(2) - 10,
            second(2) + 5,
        ),
        // Across the silent third second into the fourth.
        (
            &*format!("bytes={}-{}", second(3) - 1, second(4) + 99),
            second(3) - 1,
            second(4) + 99,
        ),
        ("bytes=-100", total - 100, total - 1),
        (
            &*format!("bytes={}-", second(4) + 7),
            second(4) + 7,
            total - 1,
        ),
        (&*format!("bytes=100-{}", total + 500), 100, total - 1),
        ("bytes=-999999", 0, total - 1),
    ];
    for (range, first, last) in cases {
        let (code, headers, body) = wav_range(&host, reqwest::Method::GET, &path, range).await;
        assert_eq!(code, 206, "{range}");
        assert_eq!(
            headers["content-range"],
            format!("bytes {first}-{last}/{total}"),
            "{range}"
        );
        assert_eq!(
            headers["content-length"],
            (last - first + 1).to_string(),
            "{range}"
        );
        assert_eq!(headers["accept-ranges"], "bytes");
        assert_eq!(headers["content-type"], "audio/wav");
        assert_eq!(
            headers["x-missing-seconds"], "1",
            "the count stays on a 206"
        );
        assert_eq!(headers["x-unreadable-seconds"], "0");
        assert!(
            body == whole[first..=last],
            "{range}: the whole file's bytes"
        );
    }

    for range in [
        format!("bytes={total}-"),
        format!("bytes={}-{}", total + 1, total + 9),
    ] {
        let (code, headers, body) = wav_range(&host, reqwest::Method::GET, &path, &range).await;
        assert_eq!(code, 416, "{range}");
        assert_eq!(headers["content-range"], format!("bytes */{total}"));
        assert_eq!(headers["accept-ranges"], "bytes");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["detail"],
            format!("range not satisfiable: audio.wav is {total} bytes")
        );
    }

    for range in [
        "bytes=5-3",
        "bytes=abc",
        "bytes=0-1,5-6",
        "items=0-5",
        "bytes",
    ] {
        let (code, headers, body) = wav_range(&host, reqwest::Method::GET, &path, range).await;
        assert_eq!(code, 200, "{range:?} is ignored");
        assert!(headers.get("content-range").is_none());
        assert_eq!(headers["accept-ranges"], "bytes");
        assert!(body == whole, "{range:?}: the whole file");
    }

    let range = format!("bytes={}-", second(4));
    let (code, headers, body) = wav_range(&host, reqwest::Method::HEAD, &path, &range).await;
    assert_eq!(code, 206, "HEAD answers as GET does");
    assert_eq!(
        headers["content-range"],
        format!("bytes {}-{}/{total}", second(4), total - 1)
    );
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(body.is_empty());
}

/// A range of the stereo mix: the same bytes as the whole mix, the short last block included.
#[tokio::test]
async fn a_range_of_the_mix_is_those_bytes_of_the_whole_mix() {
    let host = Host::start().await;
    let s = session("mix-range");
    let mut mic = host.connect(&s).await;
    let mut system = host.connect_stream(&s, "system").await;
    let t0 = 1_764_000_000_000u64;
    for seq in 1..=2 {
        let at = t0 + 1_000 * (seq - 1);
        let ack = ask(&mut mic, &chunk_at(&s, seq, at, &pcm(seq))).await;
        assert_eq!(ack["status"], "stored", "{ack}");
        let ack = ask(&mut system, &chunk_at(&s, seq, at + 250, &pcm(seq + 10))).await;
        assert_eq!(ack["status"], "stored", "{ack}");
    }
    let (code, _, whole) = wav(&host, &s, "?stream=mix").await;
    assert_eq!(code, 200);
    let total = 44 + 36_000 * 4;
    assert_eq!(whole.len(), total);
    let path = format!("/v1/sessions/{s}/audio.wav?stream=mix");
    let block = |n: usize| 44 + n * 64_000;
    for (first, last) in [
        (block(1) - 3, block(1) + 2),
        (block(2) - 5, total - 1),
        (30, block(1) + 10),
    ] {
        let range = format!("bytes={first}-{last}");
        let (code, headers, body) = wav_range(&host, reqwest::Method::GET, &path, &range).await;
        assert_eq!(code, 206, "{range}");
        assert_eq!(
            headers["content-range"],
            format!("bytes {first}-{last}/{total}")
        );
        assert!(body == whole[first..=last], "{range}");
    }
}

/// `DELETE`: refused while a socket streams into the session, then every object and row goes
/// and the id is free again.
#[tokio::test]
async fn delete_waits_for_the_socket_then_removes_everything_and_frees_the_id() {
    let host = Host::start().await;
    let s = session("delete");
    let path = format!("/v1/sessions/{s}");
    let (code, body) = host.send_json("DELETE", &path, json!(null)).await;
    assert_eq!(
        (code, body["detail"].clone()),
        (404, json!(format!("session '{s}' not found")))
    );

    let mut ws = host.connect(&s).await;
    send_chunk(&mut ws, &s, 1).await;
    send_chunk(&mut ws, &s, 2).await;
    let (code, _) = host
        .send_json("POST", &format!("{path}/finalize"), json!({}))
        .await;
    assert_eq!(code, 200);
    let (code, body) = host.send_json("DELETE", &path, json!(null)).await;
    assert_eq!(
        (code, body["detail"].clone()),
        (
            409,
            json!(format!(
                "session '{s}' has an open socket: stop streaming into it (close the socket) before deleting it"
            ))
        )
    );
    assert_eq!(
        send_chunk(&mut ws, &s, 3).await.last_seq,
        3,
        "the socket streams on"
    );

    let closing = ask(&mut ws, &json!({"type": "close"})).await;
    assert_eq!(closing["type"], "closing");
    close_frame(&mut ws).await;
    // Gone from the client's side too (the reply to the close frame only leaves with the
    // socket's next write; dropping it closes the connection).
    drop(ws);
    // A host lets go of the socket just after its close frame, not before: ask until it has.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let deleted = loop {
        let (code, body) = host.send_json("DELETE", &path, json!(null)).await;
        if code != 409 || tokio::time::Instant::now() > deadline {
            assert_eq!(code, 200, "{body}");
            break body;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(
        deleted,
        json!({"session_id": s, "deleted": true, "objects_deleted": 4}),
        "three frames and result.json"
    );

    for route in ["/result", "/audio.wav"] {
        let (code, _) = host.get_json(&format!("{path}{route}")).await;
        assert_eq!(code, 404, "{route}");
    }
    let (code, state) = host.get_json(&format!("{path}/state")).await;
    assert_eq!(code, 200);
    assert_eq!(
        (&state["event_count"], &state["ingest"]),
        (&json!(0), &Value::Null)
    );
    let (code, _) = host.send_json("DELETE", &path, json!(null)).await;
    assert_eq!(code, 404);

    // The id is free again: a new recording under it starts from nothing.
    let mut ws = host.connect(&s).await;
    let ready = hello(&mut ws).await;
    assert_eq!(ready["ingest"]["received_chunks"], 0);
    let ack = send_chunk(&mut ws, &s, 1).await;
    assert_eq!(
        (ack.status, ack.last_seq),
        (gateway::protocol::AckStatus::Stored, 1)
    );
}

/// Frames, state and objects outlive the host: stopped and started again on the same storage
/// between frames (for the edge, wrangler restarted: DO SQLite and R2 persisted).
#[tokio::test]
async fn a_restarted_host_keeps_frames_state_and_objects() {
    let mut host = Host::start_alone().await;
    let s = session("restart");
    let mut ws = host.connect(&s).await;
    send_chunk(&mut ws, &s, 1).await;
    send_chunk(&mut ws, &s, 3).await;
    let (code, _) = host
        .send_json("POST", &format!("/v1/sessions/{s}/resolve"), resolve_body())
        .await;
    assert_eq!(code, 200);
    let (code, _) = host
        .send_json(
            "POST",
            &format!("/v1/sessions/{s}/finalize"),
            json!({"metadata": {"n": 1}}),
        )
        .await;
    assert_eq!(code, 200);
    drop(ws);

    host.restart().await;

    let mut ws = host.connect(&s).await;
    let ready = hello(&mut ws).await;
    assert_eq!(ready["ingest"]["last_seq"], 3);
    assert_eq!(ready["ingest"]["received_chunks"], 2);
    assert_eq!(ready["ingest"]["missing_chunks"], 1);
    let again = ask(&mut ws, &chunk(&s, 3)).await;
    assert_eq!(
        again["status"], "duplicate",
        "the stored seqs survived: {again}"
    );
    let filler = send_chunk(&mut ws, &s, 2).await;
    assert_eq!((filler.last_seq, filler.missing_count), (3, 0));

    let (_, state) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(state["event_count"], 1);
    assert_eq!(state["state"]["clusters"][0]["cluster_id"], "spk_1");
    let (code, result) = host.get_json(&format!("/v1/sessions/{s}/result")).await;
    assert_eq!(code, 200, "{result}");
    assert_eq!(result["metadata"], json!({"n": 1}));
    // Still finalized after the restart, so the new frame refreshed result.json.
    assert_eq!(result["ingest"]["received_chunks"], 3);

    let response = host
        .request(reqwest::Method::GET, &format!("/v1/sessions/{s}/audio.wav"))
        .send()
        .await
        .unwrap();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), 44 + 3 * 32_000);
    for seq in 1..=3usize {
        assert_eq!(
            &bytes[44 + (seq - 1) * 32_000..44 + seq * 32_000],
            pcm(seq as u64)
        );
    }
}

/// The storage rule: every ACKed frame becomes one object at its seed key with its bytes
/// (on the edge behind the ACK, moved from the object's SQLite to R2), and `audio.wav` reads
/// the same bytes wherever the frames are.
#[tokio::test]
async fn acked_frames_become_objects_at_their_keys_and_the_wav_stays_the_same() {
    let host = Host::start().await;
    let s = session("objects");
    let mut ws = host.connect(&s).await;
    for seq in 1..=6 {
        send_chunk(&mut ws, &s, seq).await;
    }
    let (code, _, before) = wav(&host, &s, "").await;
    assert_eq!(code, 200);
    let expected: Vec<u8> = (1..=6).flat_map(pcm).collect();
    assert_eq!(&before[44..], &expected[..]);

    let keys: Vec<String> = (1..=6).map(|seq| frame_key(&s, seq)).collect();
    let objects = host.objects_once_stored(&keys).await;
    for (seq, object) in (1..=6).zip(&objects) {
        assert_eq!(object, &pcm(seq), "the object of frame {seq}");
    }
    let (_, _, after) = wav(&host, &s, "").await;
    assert_eq!(
        after, before,
        "audio.wav is the same once the frames are objects"
    );
    // A frame stored as an object is still known: its resend is a duplicate, and a changed
    // one a conflict.
    let again = ask(&mut ws, &chunk(&s, 3)).await;
    assert_eq!(again["status"], "duplicate", "{again}");
    let changed = ask(&mut ws, &chunk_with(&s, 3, &pcm(4))).await;
    assert_eq!(changed["type"], "error", "{changed}");
}

/// When `finalize` answers, every frame ACKed before it is an object at its key (both
/// streams), so whoever reads the bucket after `result.json` finds the whole session.
#[tokio::test]
async fn after_finalize_every_acked_frame_is_an_object_at_its_key() {
    let host = Host::start().await;
    let s = session("fin-objects");
    let mut mic = host.connect(&s).await;
    let mut system = host.connect_stream(&s, "system").await;
    for seq in 1..=3 {
        send_chunk(&mut mic, &s, seq).await;
    }
    let ack = ask(&mut system, &chunk_with(&s, 1, &flat(77))).await;
    assert_eq!(ack["status"], "stored", "{ack}");
    let (code, done) = host
        .send_json("POST", &format!("/v1/sessions/{s}/finalize"), json!({}))
        .await;
    assert_eq!(code, 200, "{done}");

    let mut keys: Vec<String> = (1..=3).map(|seq| frame_key(&s, seq)).collect();
    keys.push(format!("sessions/{s}/streams/system/chunks/00000001.pcm"));
    keys.push(format!("sessions/{s}/result.json"));
    let objects = host.objects(&keys).await;
    for (seq, object) in (1..=3).zip(&objects) {
        assert_eq!(object.as_deref(), Some(&pcm(seq)[..]), "frame {seq}");
    }
    assert_eq!(
        objects[3].as_deref(),
        Some(&flat(77)[..]),
        "the system frame"
    );
    let result: Value =
        serde_json::from_slice(objects[4].as_deref().expect("result.json")).unwrap();
    assert_eq!(result["ingest"]["received_chunks"], 3);
}

/// A host restarted while frames are on their way to their objects (for the edge: wrangler
/// stopped with frames waiting in SQLite and a move to R2 perhaps half done) loses none:
/// the session counts them all, `audio.wav` has their bytes, and each ends up at its key.
#[tokio::test]
async fn a_restart_while_frames_become_objects_loses_none() {
    let mut host = Host::start_alone().await;
    let s = session("restart-move");
    let mut ws = host.connect(&s).await;
    for seq in 1..=8 {
        send_chunk(&mut ws, &s, seq).await;
    }
    // The first frames are objects, the rest are sent and the host stopped at once.
    host.objects_once_stored(&[frame_key(&s, 1)]).await;
    for seq in 9..=24 {
        send_chunk(&mut ws, &s, seq).await;
    }
    drop(ws);
    host.restart().await;

    let mut ws = host.connect(&s).await;
    let ready = hello(&mut ws).await;
    assert_eq!(ready["ingest"]["received_chunks"], 24);
    assert_eq!(ready["ingest"]["missing_chunks"], 0);
    let expected: Vec<u8> = (1..=24).flat_map(pcm).collect();
    let (code, _, before) = wav(&host, &s, "").await;
    assert_eq!(code, 200);
    assert_eq!(&before[44..], &expected[..]);
    let keys: Vec<String> = (1..=24).map(|seq| frame_key(&s, seq)).collect();
    let objects = host.objects_once_stored(&keys).await;
    for (seq, object) in (1..=24).zip(&objects) {
        assert_eq!(object, &pcm(seq), "the object of frame {seq}");
    }
    let (_, _, after) = wav(&host, &s, "").await;
    assert_eq!(after, before);
}

// --- hostile input: browser pages and caps (every host checks them) --------------------------

/// The request a browser page makes to open a socket, from `origin`, with the key (so only
/// the origin can refuse it).
fn upgrade_from(host: &Host, session: &str, origin: &str) -> reqwest::RequestBuilder {
    host.request(reqwest::Method::GET, &format!("/v1/audio/ws/{session}"))
        .header("origin", origin)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
}

/// A web page is not a client: a socket or a write from an origin the operator has not
/// allowed is refused with 403 and changes nothing; reads, native clients (no `Origin`) and
/// allowed origins are served.
#[tokio::test]
async fn a_page_from_a_foreign_origin_may_not_open_sockets_or_write() {
    let host = Host::start().await;
    let s = session("origin");
    let evil = "https://evil.example";
    let refused = format!(
        "origin '{evil}' is not allowed: web pages may not use this gateway (an operator can allow an origin with --allow-origin / GATEWAY_ALLOW_ORIGINS)"
    );
    let (code, body) = answer(upgrade_from(&host, &s, evil)).await;
    assert_eq!((code, body["detail"].as_str()), (403, Some(&refused[..])));
    let (code, body) = answer(upgrade_from(&host, &s, "HTTPS://Evil.example/")).await;
    assert_eq!((code, body["detail"].as_str()), (403, Some(&refused[..])));
    for (method, path, body) in [
        ("POST", format!("/v1/sessions/{s}/finalize"), json!({})),
        ("POST", format!("/v1/sessions/{s}/resolve"), resolve_body()),
        (
            "PUT",
            format!("/v1/sessions/{s}/bindings"),
            json!({"cluster_id": "spk_1", "name": "Eve"}),
        ),
        ("DELETE", format!("/v1/sessions/{s}"), Value::Null),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let request = host
            .request(method.clone(), &path)
            .header("origin", evil)
            .json(&body);
        let (code, answer) = answer(request).await;
        assert_eq!(
            (code, answer["detail"].as_str()),
            (403, Some(&refused[..])),
            "{method} {path}"
        );
    }
    let (code, state) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(code, 200);
    assert_eq!(state["event_count"], 0, "nothing was resolved: {state}");
    assert_eq!(
        state["ingest"],
        Value::Null,
        "no socket was opened: {state}"
    );
    let (code, _) = host.get_json(&format!("/v1/sessions/{s}/result")).await;
    assert_eq!(code, 404, "nothing was finalized");

    // A read from any page is answered (the browser keeps it from the page without CORS).
    let request = host
        .request(reqwest::Method::GET, &format!("/v1/sessions/{s}/state"))
        .header("origin", evil);
    assert_eq!(answer(request).await.0, 200);
    // The allowed origin opens sockets and writes.
    let mut request = host.ws(&s).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-api-key", host.key.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", ALLOWED_ORIGIN.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the allowed origin's socket opens");
    assert_eq!(send_chunk(&mut ws, &s, 1).await.last_seq, 1);
    let request = host
        .request(reqwest::Method::POST, &format!("/v1/sessions/{s}/finalize"))
        .header("origin", ALLOWED_ORIGIN)
        .json(&json!({}));
    assert_eq!(answer(request).await.0, 200);
}

/// A roster or an idempotency key over its cap is refused before inference is asked, and
/// the session keeps its state; at the cap they are taken.
#[tokio::test]
async fn resolve_input_over_the_caps_is_refused_and_changes_nothing() {
    let host = Host::start().await;
    let s = session("caps-resolve");
    let path = format!("/v1/sessions/{s}/resolve");
    let (code, _) = host.send_json("POST", &path, resolve_body()).await;
    assert_eq!(code, 200);
    let (_, before) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    let roster = |n: usize| {
        json!(
            (0..n)
                .map(|i| json!({"name": format!("Person {i}")}))
                .collect::<Vec<_>>()
        )
    };
    let with_roster = |roster: Value| json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}, "roster": roster});
    for (roster, detail) in [
        (roster(101), "roster must have at most 100 entries"),
        (
            json!([{"name": "n".repeat(201)}]),
            "roster names must be at most 200 characters",
        ),
        (
            json!([{"name": "Ada", "email": format!("{}@x.io", "a".repeat(254))}]),
            "roster emails must be at most 254 characters",
        ),
    ] {
        let (code, body) = host.send_json("POST", &path, with_roster(roster)).await;
        assert_eq!((code, body["detail"].as_str()), (400, Some(detail)));
    }
    let request = host
        .request(reqwest::Method::POST, &path)
        .header("x-idempotency-key", "k".repeat(257))
        .json(&resolve_body());
    let (code, body) = answer(request).await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (
            400,
            Some("x-idempotency-key must be at most 256 characters")
        )
    );
    let (_, after) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(after, before, "the refusals changed nothing");

    let (code, _) = host
        .send_json("POST", &path, with_roster(roster(100)))
        .await;
    assert_eq!(code, 200, "a roster at the cap is taken");
    let (_, after) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(after["state"]["roster"].as_array().unwrap().len(), 100);
}

/// A speaker name over the cap or with control characters is refused and changes nothing.
#[tokio::test]
async fn a_binding_name_over_the_cap_or_with_control_characters_is_refused() {
    let host = Host::start().await;
    let s = session("caps-names");
    let (code, _) = host
        .send_json("POST", &format!("/v1/sessions/{s}/resolve"), resolve_body())
        .await;
    assert_eq!(code, 200);
    let (_, before) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    let path = format!("/v1/sessions/{s}/bindings");
    let control = "name must not contain control characters (line breaks, tabs, escapes)";
    for (name, detail) in [
        ("é".repeat(201), "name must be at most 200 characters"),
        ("Ada\nLovelace".to_owned(), control),
        ("Ada\u{1b}[2J".to_owned(), control),
    ] {
        let (code, body) = host
            .send_json("PUT", &path, json!({"cluster_id": "spk_1", "name": name}))
            .await;
        assert_eq!(
            (code, body["detail"].as_str()),
            (400, Some(detail)),
            "{name:?}"
        );
    }
    let (_, after) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(after, before);
    let longest = "é".repeat(200);
    let (code, body) = host
        .send_json(
            "PUT",
            &path,
            json!({"cluster_id": "spk_1", "name": longest}),
        )
        .await;
    assert_eq!(code, 200, "a name at the cap is taken");
    assert_eq!(body["state"]["bindings"]["spk_1"], longest.as_str());
}

/// Finalize metadata over 64 KiB is refused and writes no `result.json`; at the cap it is
/// taken.
#[tokio::test]
async fn finalize_metadata_over_the_cap_is_refused_and_writes_nothing() {
    let host = Host::start().await;
    let s = session("caps-meta");
    let mut ws = host.connect(&s).await;
    send_chunk(&mut ws, &s, 1).await;
    let path = format!("/v1/sessions/{s}/finalize");
    // `{"notes":"…"}` is 12 bytes around the text.
    let notes = "n".repeat(64 * 1024 - 12);
    let (code, body) = host
        .send_json(
            "POST",
            &path,
            json!({"metadata": {"notes": format!("{notes}n")}}),
        )
        .await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (400, Some("metadata must be at most 65536 bytes of JSON"))
    );
    let (code, _) = host.get_json(&format!("/v1/sessions/{s}/result")).await;
    assert_eq!(code, 404, "no result.json was written");
    let (code, _) = host
        .send_json("POST", &path, json!({"metadata": {"notes": notes}}))
        .await;
    assert_eq!(code, 200, "metadata at the cap is taken");
}

/// An `audio.wav` over 24 hours (mostly silence for seconds never received) is refused with
/// 422, for one stream and for the mix, and the session is left as it was.
#[tokio::test]
async fn an_audio_wav_over_24_hours_is_refused() {
    let host = Host::start().await;
    let s = session("caps-gap");
    let mut ws = host.connect(&s).await;
    for seq in [1, 134_217] {
        send_chunk(&mut ws, &s, seq).await;
    }
    let (_, before) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    let (code, _, body) = wav(&host, &s, "").await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (code, body["detail"].as_str()),
        (
            422,
            Some(
                &format!(
                    "audio.wav (mic) of session '{s}' would be 134217 s long, 134215 s of it never received (silence); the gateway serves at most 86400 s (24 h) of audio in one file"
                )[..]
            )
        )
    );
    let (code, _, _) = wav(&host, &s, "?stream=mix").await;
    assert_eq!(code, 422);
    let (_, after) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(after, before);
}

/// An HTTP body over 8 MiB is refused with 413, and a socket message over 64 KiB closes the
/// socket with 1009 (message too big), before either is read whole.
#[tokio::test]
async fn a_body_over_8_mib_and_a_message_over_64_kib_are_refused() {
    let host = Host::start().await;
    let s = session("caps-size");
    let huge = format!(
        "{{\"audio\":{{\"content_b64\":\"{}\",\"format\":\"pcm_s16le\"}}}}",
        "A".repeat(8 * 1024 * 1024)
    );
    let request = host
        .request(reqwest::Method::POST, &format!("/v1/sessions/{s}/resolve"))
        .header("content-type", "application/json")
        .body(huge);
    let (code, body) = answer(request).await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (413, Some("request body too large (at most 8388608 bytes)"))
    );
    let mut ws = host.connect(&s).await;
    ws.send(Message::text("x".repeat(64 * 1024 + 1)))
        .await
        .unwrap();
    let close = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1009);
    let (_, state) = host.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(state["event_count"], 0);
}

// --- history: the session list ----------------------------------------------------------------
//
// An external host is shared by the tests running beside these, so they look only at their
// own sessions in the list and walk it whole, page by page.

/// Streams `seqs` of `session` on a socket of `stream` (`None`: the mic), then closes it.
async fn record(host: &Host, session: &str, stream: Option<&str>, seqs: &[u64]) {
    let mut ws = match stream {
        None => host.connect(session).await,
        Some(stream) => host.connect_stream(session, stream).await,
    };
    hello(&mut ws).await;
    for &seq in seqs {
        send_chunk(&mut ws, session, seq).await;
    }
    let closing = ask(&mut ws, &json!({"type": "close"})).await;
    assert_eq!(closing["type"], "closing");
    close_frame(&mut ws).await;
}

/// The whole list, walked page by page with `limit`: each page at most `limit` long, every
/// line the list's shape. (Its order is checked on a test's own sessions: another test's
/// session may start its first stream while the list is read.)
async fn listed(host: &Host, limit: usize) -> Vec<Value> {
    let (mut sessions, mut after) = (Vec::new(), None::<String>);
    loop {
        let path = match &after {
            Some(cursor) => format!("/v1/sessions?limit={limit}&after={cursor}"),
            None => format!("/v1/sessions?limit={limit}"),
        };
        let (code, page) = host.get_json(&path).await;
        assert_eq!(code, 200, "{page}");
        let mut keys: Vec<&String> = page.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["next_cursor", "sessions"]);
        let items = page["sessions"].as_array().unwrap();
        assert!(items.len() <= limit, "{page}");
        for item in items {
            let mut keys: Vec<&String> = item.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(
                keys,
                [
                    "finalized",
                    "finalized_at",
                    "session_id",
                    "speaker_count",
                    "speakers",
                    "started_at",
                    "streams",
                    "updated_at"
                ],
                "{item}"
            );
        }
        sessions.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => break,
        }
    }
    sessions
}

/// The lines of `ids` in list order, each found exactly once.
fn lines_of<'a>(list: &'a [Value], ids: &[&str]) -> Vec<&'a Value> {
    let ours: Vec<&Value> = list
        .iter()
        .filter(|s| ids.contains(&s["session_id"].as_str().unwrap()))
        .collect();
    let mut found: Vec<&str> = ours
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    found.sort();
    let mut expected = ids.to_vec();
    expected.sort();
    assert_eq!(found, expected, "each session listed once");
    ours
}

#[tokio::test]
async fn the_session_list_pages_newest_first_with_each_sessions_audio_speakers_and_finalize() {
    let host = Host::start().await;
    // Named so that sessions starting in the same millisecond (ties go by name, descending)
    // still list in the order they started.
    let (old, named, two, quiet) = (
        session("list-1-old"),
        session("list-2-named"),
        session("list-3-two"),
        session("list-0-quiet"),
    );
    record(&host, &old, None, &[1]).await;
    // Named: a speaker the interviewer named, finalized.
    record(&host, &named, None, &[1, 2]).await;
    let (code, _) = host
        .send_json(
            "POST",
            &format!("/v1/sessions/{named}/resolve"),
            resolve_body(),
        )
        .await;
    assert_eq!(code, 200);
    let binding = json!({"cluster_id": "spk_1", "name": "Grace Hopper"});
    let (code, _) = host
        .send_json("PUT", &format!("/v1/sessions/{named}/bindings"), binding)
        .await;
    assert_eq!(code, 200);
    let (code, done) = host
        .send_json("POST", &format!("/v1/sessions/{named}/finalize"), json!({}))
        .await;
    assert_eq!(code, 200);
    // Two streams: mic seqs 1, 2 and 4 (3 never came), one second of meeting audio.
    record(&host, &two, None, &[1, 2, 4]).await;
    record(&host, &two, Some("system"), &[1]).await;
    // Quiet: only a resolve, no audio.
    let (code, _) = host
        .send_json(
            "POST",
            &format!("/v1/sessions/{quiet}/resolve"),
            resolve_body(),
        )
        .await;
    assert_eq!(code, 200);

    let whole = listed(&host, 50).await;
    let ours = lines_of(&whole, &[&old, &named, &two, &quiet]);
    let order: Vec<&str> = ours
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [two.as_str(), named.as_str(), old.as_str(), quiet.as_str()],
        "newest start first, the session without audio last"
    );
    let by_small_pages = listed(&host, 2).await;
    let paged: Vec<&Value> = lines_of(&by_small_pages, &[&old, &named, &two, &quiet]);
    assert_eq!(
        paged, ours,
        "pages of 2 list the same lines in the same order"
    );

    let (two, named, old, quiet) = (ours[0], ours[1], ours[2], ours[3]);
    assert_eq!(
        two["streams"],
        json!({"mic": {"frames": 3, "seconds": 4}, "system": {"frames": 1, "seconds": 1}})
    );
    assert_eq!(
        (&two["finalized"], &two["finalized_at"]),
        (&json!(false), &Value::Null)
    );
    assert_eq!(
        (&named["finalized"], &named["finalized_at"]),
        (&json!(true), &done["finalized_at"])
    );
    assert_eq!(
        named["streams"],
        json!({"mic": {"frames": 2, "seconds": 2}})
    );
    assert_eq!(
        (&named["speaker_count"], &named["speakers"]),
        (&json!(1), &json!(["Grace Hopper"]))
    );
    assert!(named["updated_at"].as_str().unwrap() >= done["finalized_at"].as_str().unwrap());
    assert!(named["updated_at"].as_str().unwrap() >= named["started_at"].as_str().unwrap());
    assert_eq!(old["streams"], json!({"mic": {"frames": 1, "seconds": 1}}));
    assert_eq!(
        (&old["speaker_count"], &old["speakers"]),
        (&json!(0), &json!([]))
    );
    assert_eq!(
        (&quiet["started_at"], &quiet["streams"]),
        (&Value::Null, &json!({}))
    );
    assert_eq!(quiet["speaker_count"], 1, "its resolve's cluster, unnamed");
    assert_eq!(quiet["speakers"], json!([]));
    assert!(quiet["updated_at"].is_string());
}

#[tokio::test]
async fn a_deleted_session_leaves_the_list_and_comes_back_when_recorded_again() {
    let host = Host::start().await;
    let s = session("list-deleted");
    let path = format!("/v1/sessions/{s}");
    record(&host, &s, None, &[1, 2]).await;
    let first = lines_of(&listed(&host, 50).await, &[&s])[0].clone();
    assert_eq!(first["finalized"], false);
    let (code, _) = host
        .send_json("POST", &format!("{path}/finalize"), json!({}))
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        lines_of(&listed(&host, 50).await, &[&s])[0]["finalized"],
        true
    );

    let (code, body) = host.send_json("DELETE", &path, json!(null)).await;
    assert_eq!(code, 200, "{body}");
    let after_delete = listed(&host, 50).await;
    assert!(
        after_delete
            .iter()
            .all(|line| line["session_id"] != s.as_str()),
        "gone from the list"
    );

    // Recorded again under the same id: listed again, as the new recording.
    record(&host, &s, None, &[1]).await;
    let again = lines_of(&listed(&host, 50).await, &[&s])[0].clone();
    assert_eq!(
        again["streams"],
        json!({"mic": {"frames": 1, "seconds": 1}})
    );
    assert_eq!(again["finalized"], false);
    assert!(again["started_at"].as_str().unwrap() >= first["started_at"].as_str().unwrap());
}

#[tokio::test]
async fn the_list_needs_the_key_and_refuses_a_bad_limit_or_cursor_or_method() {
    let host = Host::start().await;
    let client = reqwest::Client::new();
    let url = host.http("/v1/sessions");
    for request in [
        client.get(&url),
        client.get(&url).header("x-api-key", "guess"),
        client.get(&url).bearer_auth("guess"),
    ] {
        let (code, body) = answer(request).await;
        assert_eq!(
            (code, body["detail"].as_str()),
            (401, Some("missing or invalid API key"))
        );
    }
    assert_eq!(answer(client.get(&url).bearer_auth(&host.key)).await.0, 200);

    for query in ["limit=0", "limit=501", "limit=ten", "limit=-1", "limit="] {
        let (code, body) = host.get_json(&format!("/v1/sessions?{query}")).await;
        assert_eq!(
            (code, body["detail"].as_str()),
            (400, Some("limit must be a whole number from 1 to 500")),
            "{query}"
        );
    }
    for query in [
        "after=nonsense",
        "after=12",
        "after=12:a%2Fb",
        "after=x:y",
        "after=",
    ] {
        let (code, body) = host.get_json(&format!("/v1/sessions?{query}")).await;
        assert_eq!(
            (code, body["detail"].as_str()),
            (
                400,
                Some("invalid cursor: pass the next_cursor of the previous page unchanged")
            ),
            "{query}"
        );
    }
    // A cursor past every session: an empty last page.
    let (code, body) = host.get_json("/v1/sessions?limit=500&after=0:-").await;
    assert_eq!(
        (code, body),
        (200, json!({"sessions": [], "next_cursor": null}))
    );
    for method in ["POST", "PUT", "DELETE"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (code, body) = answer(host.request(method.clone(), "/v1/sessions")).await;
        assert_eq!(
            (code, body["detail"].as_str()),
            (405, Some("method not allowed")),
            "{method}"
        );
    }
}
