//! Issue 9, items 7, 8 and 10: the browser is not a client, unauthenticated clients cost
//! nothing, and outbound calls follow no redirects. Each test is named after its item and
//! fails on a gateway without the rule it pins.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures_util::SinkExt;
use gateway::inference::InferenceConfig;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

const PAGE: &str = "https://evil.example";
const KEY: &str = "s3cret";

/// Opens the ingest socket with extra upgrade headers; the refusal's status and JSON body, if
/// the gateway refused the upgrade.
async fn upgrade_with(
    gw: &TestGateway,
    session: &str,
    headers: &[(&'static str, &str)],
) -> Result<Socket, (u16, Value)> {
    let mut request = gw.ws(session).into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("upgrade answered in time")
    {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((response.status().as_u16(), body))
        }
        Err(other) => panic!("upgrade failed without an HTTP answer: {other}"),
    }
}

/// A request sent byte for byte (so `Host` can be anything); status and JSON body.
async fn raw_request(gw: &TestGateway, head: &str) -> (u16, Value) {
    let addr = gw.gateway.as_ref().unwrap().addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
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

async fn live_sessions(gw: &TestGateway) -> u64 {
    gw.get_json("/health").await.1["live_sessions"]
        .as_u64()
        .unwrap()
}

/// Rows in the sessions table of the gateway's database.
fn stored_sessions(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("gateway.sqlite3")).unwrap();
    db.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
        .unwrap()
}

fn post(gw: &TestGateway, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(gw.http(path))
}

#[tokio::test]
async fn item_7_a_page_cannot_open_the_socket_unless_its_origin_is_allowed() {
    let gw =
        TestGateway::start_with(|c| c.allow_origins = vec!["https://app.example/".into()]).await;
    let (status, body) = upgrade_with(&gw, "o1", &[("origin", PAGE)])
        .await
        .expect_err("a page's upgrade is refused");
    assert_eq!(status, 403);
    assert_eq!(
        body["detail"],
        "origin 'https://evil.example' is not allowed: web pages may not use this gateway (an operator can allow an origin with --allow-origin / GATEWAY_ALLOW_ORIGINS)"
    );
    assert_eq!(
        live_sessions(&gw).await,
        0,
        "a refused upgrade starts nothing"
    );
    // `Origin: null` (sandboxed frames, file:// pages) is a page too.
    let (status, _) = upgrade_with(&gw, "o1", &[("origin", "null")])
        .await
        .expect_err("refused");
    assert_eq!(status, 403);

    // An allowed origin, and a native client (no Origin), stream as before.
    let mut allowed = upgrade_with(&gw, "o1", &[("origin", "https://APP.example")])
        .await
        .expect("an allowed origin opens the socket");
    assert_eq!(send_chunk(&mut allowed, "o1", 1).await.last_seq, 1);
    let mut native = gw.connect("o1").await;
    assert_eq!(send_chunk(&mut native, "o1", 2).await.last_seq, 2);
}

#[tokio::test]
async fn item_7_a_page_cannot_finalize_or_rename_a_speaker() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("o2").await;
    send_chunk(&mut ws, "o2", 1).await;
    for (method, action, body) in [
        ("POST", "finalize", json!({})),
        (
            "PUT",
            "bindings",
            json!({"cluster_id": "spk_0", "name": "Mallory"}),
        ),
        (
            "POST",
            "resolve",
            json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}}),
        ),
    ] {
        let response = reqwest::Client::new()
            .request(
                method.parse().unwrap(),
                gw.http(&format!("/v1/sessions/o2/{action}")),
            )
            .header("origin", PAGE)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {action}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("origin 'https://evil.example' is not allowed"),
            "{body}"
        );
    }
    assert!(!gw.object("sessions/o2/result.json").exists());
    let (_, state) = gw.get_json("/v1/sessions/o2/state").await;
    assert_eq!(state["event_count"], 0);
    // A page's GET is not refused for its Origin: it cannot read the answer (no CORS).
    let response = reqwest::Client::new()
        .get(gw.http("/v1/sessions/o2/state"))
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn item_7_a_rebound_host_is_refused_on_a_loopback_listener() {
    let gw = TestGateway::start().await;
    let port = gw.gateway.as_ref().unwrap().addr().port();
    for host in [format!("evil.example:{port}"), "evil.example".to_owned()] {
        let (status, body) = raw_request(
            &gw,
            &format!(
                "GET /v1/sessions/r1/state HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status, 421, "{host}");
        assert_eq!(
            body["detail"],
            "host not allowed: this gateway listens on a loopback address and answers only requests for localhost, 127.0.0.1 or [::1]"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_owned(),
    ] {
        let (status, body) = raw_request(
            &gw,
            &format!(
                "GET /v1/sessions/r1/state HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!((status, &body["session_id"]), (200, &json!("r1")), "{host}");
    }
    // The socket too: a rebinding page cannot stream either.
    let (status, _) = upgrade_with(&gw, "r1", &[("host", "evil.example")])
        .await
        .expect_err("a rebound upgrade is refused");
    assert_eq!(status, 421);
}

#[tokio::test]
async fn item_7_bodies_must_be_json() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("j1").await;
    send_chunk(&mut ws, "j1", 1).await;
    // What a page can send cross-origin without a preflight: text/plain, a form, no type.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        for (method, action, body) in [
            ("POST", "finalize", r#"{"metadata":{"by":"page"}}"#),
            (
                "PUT",
                "bindings",
                r#"{"cluster_id":"spk_0","name":"Mallory"}"#,
            ),
            (
                "POST",
                "resolve",
                r#"{"audio":{"content_b64":"AAAA","format":"pcm_s16le"}}"#,
            ),
        ] {
            let mut request = reqwest::Client::new()
                .request(
                    method.parse().unwrap(),
                    gw.http(&format!("/v1/sessions/j1/{action}")),
                )
                .body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {action} as {content_type:?}"
            );
            assert_eq!(
                response.json::<Value>().await.unwrap()["detail"],
                "request body must be JSON sent with Content-Type: application/json"
            );
        }
    }
    assert!(!gw.object("sessions/j1/result.json").exists());
    let (_, state) = gw.get_json("/v1/sessions/j1/state").await;
    assert_eq!(state["event_count"], 0);

    // JSON with parameters is JSON; an empty body (the seed's finalize) needs no type.
    let response = post(&gw, "/v1/sessions/j1/finalize")
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(r#"{"metadata":{"by":"app"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = post(&gw, "/v1/sessions/j1/finalize").send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// `gateway serve` with `args` and `env`: its stderr up to the startup line, and the address.
async fn serve_binary(data: &Path, args: &[&str], env: &[(&str, &Path)]) -> (String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gateway"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("GATEWAY_API_KEY")
        .env_remove("GATEWAY_API_KEY_FILE")
        .env_remove("GATEWAY_LISTEN")
        .env_remove("INFERENCE_BASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, stdout.read_line(&mut line))
        .await
        .expect("startup line in time")
        .unwrap();
    let addr = line
        .strip_prefix("gateway listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
        .to_owned();
    // Everything before the startup line is on stderr by now; take it and stop the child.
    let mut stderr = child.stderr.take().unwrap();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut log = String::new();
    stderr.read_to_string(&mut log).await.unwrap();
    (log, addr)
}

#[tokio::test]
async fn item_7_a_public_listener_without_a_key_is_warned_about() {
    let data = tempfile::tempdir().unwrap();
    let (log, addr) = serve_binary(data.path(), &["--listen", "0.0.0.0:0"], &[]).await;
    assert!(
        log.contains("warning: listening on 0.0.0.0:0 without an API key"),
        "{log}"
    );
    assert!(addr.starts_with("0.0.0.0:"), "{addr}");

    let (log, _) = serve_binary(data.path(), &["--listen", "127.0.0.1:0"], &[]).await;
    assert!(!log.contains("warning:"), "{log}");
}

#[tokio::test]
async fn item_10_the_api_key_can_come_from_a_file() {
    let data = tempfile::tempdir().unwrap();
    let key_file = data.path().join("api-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gateway"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("gw"))
        .env_remove("GATEWAY_API_KEY")
        .env_remove("INFERENCE_BASE_URL")
        .env("GATEWAY_API_KEY_FILE", &key_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, stdout.read_line(&mut line))
        .await
        .expect("startup line in time")
        .unwrap();
    let addr = line
        .strip_prefix("gateway listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
        .to_owned();
    let url = format!("http://{addr}/v1/sessions/f1/state");
    let client = reqwest::Client::new();
    let without = client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), 401);
    let with = client
        .get(&url)
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 200, "the file's key without its newline");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

async fn keyed() -> TestGateway {
    TestGateway::start_with(|c| c.api_key = Some(KEY.into())).await
}

#[tokio::test]
async fn item_8_an_unauthenticated_socket_starts_no_session() {
    let gw = keyed().await;
    let mut ws = gw.connect("u1").await;
    // The upgrade is done and the socket waits for its key: nothing exists for it yet.
    assert_eq!(live_sessions(&gw).await, 0);
    assert_eq!(stored_sessions(gw.data.path()), 0);
    let answer = ask(&mut ws, &json!({"type": "auth", "key": KEY})).await;
    assert_eq!(answer, json!({"type": "authenticated"}));
    hello(&mut ws).await;
    assert_eq!(live_sessions(&gw).await, 1);

    // A wrong key is refused without starting anything either.
    let mut ws = gw.connect("u2").await;
    let answer = ask(&mut ws, &json!({"type": "auth", "key": "guess"})).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(u16::from(close_frame(&mut ws).await.unwrap().code), 1008);
    assert_eq!(live_sessions(&gw).await, 1);
}

#[tokio::test]
async fn item_8_an_unauthenticated_socket_is_closed_on_its_first_other_message() {
    let gw = keyed().await;
    let first_messages = [
        Message::Ping(vec![1, 2, 3].into()),
        Message::Binary(vec![0; 16].into()),
        Message::text(json!({"type": "ping"}).to_string()),
        Message::text(json!({"type": "hello"}).to_string()),
    ];
    for first in first_messages {
        let mut ws = gw.connect("u3").await;
        ws.send(first.clone()).await.unwrap();
        let answer = next_json(&mut ws).await;
        assert_eq!(answer["type"], "error", "{first:?}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .starts_with("authentication required"),
            "{answer}"
        );
        let frame = close_frame(&mut ws).await.expect("a close frame");
        assert_eq!(u16::from(frame.code), 1008, "{first:?}");
        assert_eq!(frame.reason.as_str(), "authentication required");
    }
    assert_eq!(live_sessions(&gw).await, 0);
}

#[tokio::test]
async fn item_8_an_unauthenticated_socket_is_closed_after_the_deadline() {
    let gw = keyed().await;
    let opened = Instant::now();
    let mut ws = gw.connect("u4").await;
    let answer = next_json(&mut ws).await;
    assert_eq!(
        answer["detail"],
        "authentication required: no {\"type\":\"auth\",\"key\":\"...\"} message within 5 s"
    );
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert!(opened.elapsed() >= gateway::server::AUTH_DEADLINE);
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(frame.reason.as_str(), "authentication timed out");
    assert_eq!(live_sessions(&gw).await, 0);
}

#[tokio::test]
async fn item_8_a_read_of_an_unknown_session_starts_nothing() {
    let gw = TestGateway::start().await;
    let (code, body) = gw.get_json("/v1/sessions/nobody/state").await;
    assert_eq!(code, 200, "the seed answers the empty state");
    assert_eq!(body["event_count"], 0);
    assert_eq!(body["ingest"], Value::Null);
    let (code, body) = gw.get_json("/v1/sessions/nobody/audio.wav").await;
    assert_eq!(code, 404);
    assert_eq!(body["detail"], "no audio stored for session 'nobody'");
    assert_eq!(live_sessions(&gw).await, 0);
    assert_eq!(stored_sessions(gw.data.path()), 0);
    assert!(!gw.data.path().join("objects/sessions/nobody").exists());

    // A stored session still reads the same with no actor running.
    let mut ws = gw.connect("somebody").await;
    send_chunk(&mut ws, "somebody", 1).await;
    let (_, state) = gw.get_json("/v1/sessions/somebody/state").await;
    assert_eq!(state["ingest"]["received_chunks"], 1);
}

#[tokio::test]
async fn item_8_a_client_that_sends_its_headers_slowly_is_cut_off() {
    let gw = TestGateway::start().await;
    let addr = gw.gateway.as_ref().unwrap().addr();
    let opened = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // The head is never finished; the gateway closes the connection at its deadline.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest))
        .await
        .expect("the gateway closed the connection");
    assert!(opened.elapsed() >= gateway::server::HEADER_READ_TIMEOUT);
    // hyper answers 408 before closing, or just closes; never serves the request.
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        read.is_err() || answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test]
async fn item_10_a_redirecting_inference_backend_is_not_followed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // Where the redirect points: it must never be called.
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let elsewhere = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { "{}" }
    });
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_url = format!("http://{}/steal", target.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(target, elsewhere).await });
    let redirect = axum::Router::new().fallback(move || {
        let to = target_url.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", to)], "") }
    });
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_url = format!("http://{}", backend.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(backend, redirect).await });

    let gw = TestGateway::start_with(|c| {
        c.inference = Some(InferenceConfig {
            base_url: backend_url,
            api_key: Some("inference-key".into()),
            timeout: Duration::from_secs(5),
            resolve_path: "/speaker/resolve".into(),
        })
    })
    .await;
    let (code, body) = gw
        .send_json(
            "POST",
            "/v1/sessions/rd/resolve",
            json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}}),
        )
        .await;
    assert_eq!(code, 502, "{body}");
    assert_eq!(body["backend_status"], 307);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
    let (_, state) = gw.get_json("/v1/sessions/rd/state").await;
    assert_eq!(state["event_count"], 0);
}

/// The accept loop that brings the header deadline (item 8) must still stop gracefully: a
/// request in flight when the gateway stops is finished (its event committed) before
/// `shutdown` returns.
#[tokio::test]
async fn item_8_shutdown_waits_for_the_request_in_flight() {
    use support::inference::{Behaviour, FakeInference};

    let inference = FakeInference::start(None).await;
    inference.set(Behaviour::Slow(Duration::from_millis(1500)));
    let url = inference.url();
    let mut gw = TestGateway::start_with(|c| {
        c.inference = Some(InferenceConfig {
            base_url: url,
            api_key: None,
            timeout: Duration::from_secs(10),
            resolve_path: "/speaker/resolve".into(),
        })
    })
    .await;
    let request = reqwest::Client::new()
        .post(gw.http("/v1/sessions/late/resolve"))
        .json(&json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}}))
        .send();
    let answer = tokio::spawn(request);
    let asked = Instant::now();
    while inference.bodies().is_empty() {
        assert!(asked.elapsed() < DEADLINE, "inference was never asked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.gateway.take().unwrap().shutdown().await.unwrap();
    let db = rusqlite::Connection::open(gw.data.path().join("gateway.sqlite3")).unwrap();
    let events: i64 = db
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, 1, "shutdown returned before the request finished");
    assert_eq!(answer.await.unwrap().unwrap().status(), 200);
}

/// Issue 9, item 8: one client address holds at most the configured number of connections; one
/// more is answered 429 with the cap and closed, and a place freed is usable again.
#[tokio::test]
async fn item_8_a_client_over_its_connection_cap_gets_429_and_a_freed_place_is_reused() {
    let gw = TestGateway::start_with(|config| config.max_connections_per_client = 2).await;
    let first = gw.connect("capped").await;
    let _second = gw.connect("capped").await;

    let mut third = tokio::net::TcpStream::connect(gw.gateway.as_ref().unwrap().addr())
        .await
        .unwrap();
    let mut answer = String::new();
    use tokio::io::AsyncReadExt as _;
    tokio::time::timeout(DEADLINE, third.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    assert!(
        answer.ends_with(
            r#"{"detail":"too many connections from this address: at most 2 may be open at once"}"#
        ),
        "{answer}"
    );

    drop(first);
    // The gateway notices the close on its own schedule: try until the place is free.
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let (status, _) = gw.get_json("/health").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(
            std::time::Instant::now() < deadline,
            "the freed place was never reused"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Issue 9, item 8: one client address keeps at most the configured number of sessions live.
/// One more is refused (a socket: an error and close code 1013; a request: 429), a session
/// already live stays open to it, and once one of its sessions has gone idle it may start
/// another.
#[tokio::test]
async fn item_8_a_client_over_its_live_session_cap_is_refused_until_one_goes_idle() {
    let gw = TestGateway::start_with(|config| {
        config.max_sessions_per_client = 2;
        config.idle_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    let mut first = gw.connect("live-1").await;
    hello(&mut first).await;
    let mut second = gw.connect("live-2").await;
    hello(&mut second).await;
    let detail = "too many live sessions from this address: at most 2 may be open at once; \
                  finish one, or wait a minute after one goes quiet";

    let mut third = gw.connect("live-3").await;
    let refusal = next_json(&mut third).await;
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert_eq!(refusal["detail"], detail);
    let close = close_frame(&mut third).await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1013, "{close:?}");
    let binding = json!({"cluster_id": "spk_0", "name": "Ada"});
    let (status, body) = gw
        .send_json("PUT", "/v1/sessions/live-3/bindings", binding.clone())
        .await;
    assert_eq!((status, body), (429, json!({ "detail": detail })));
    assert_eq!(live_sessions(&gw).await, 2, "nothing was started");

    // A live session is still open to the same address (here: no such cluster yet).
    let (status, _) = gw
        .send_json("PUT", "/v1/sessions/live-1/bindings", binding.clone())
        .await;
    assert_eq!(status, 404);

    // Once `live-2` has gone idle its place is free again.
    drop(second);
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let (status, body) = gw
            .send_json("PUT", "/v1/sessions/live-3/bindings", binding.clone())
            .await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "the idle session's place was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
