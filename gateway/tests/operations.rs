//! The headless gateway as an operator runs it (issue 11, item 11): `/metrics` counts what
//! happened, `/ready` fails when storage does and names the part, JSON logs parse.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::child::ChildGateway;
use support::inference::{Behaviour, gateway_with_inference};
use support::{DEADLINE, TestGateway, ask, chunk, hello, send_chunk};

/// The samples of a Prometheus text exposition, by `name{labels}` as written.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            (series.to_owned(), value)
        })
        .collect()
}

async fn scrape(gw: &TestGateway) -> HashMap<String, f64> {
    let response = reqwest::get(gw.http("/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    samples(&response.text().await.unwrap())
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:?}"))
}

#[tokio::test]
async fn metrics_count_each_frame_its_bytes_and_its_ack_latency() {
    const N: u64 = 7;
    let gw = TestGateway::start().await;
    let before = scrape(&gw).await;
    assert_eq!(
        value(&before, "gateway_frames_total{status=\"stored\"}"),
        0.0
    );
    assert_eq!(value(&before, "gateway_live_sessions"), 0.0);
    assert_eq!(value(&before, "gateway_open_sockets"), 0.0);

    let mut socket = gw.connect("metrics-1").await;
    hello(&mut socket).await;
    for seq in 1..=N {
        send_chunk(&mut socket, "metrics-1", seq).await;
    }
    // The socket answers one message at a time and counts an answer before it reads the next:
    // once the pong is here, every ACK before it is counted.
    assert_eq!(
        ask(&mut socket, &json!({"type": "ping"})).await["type"],
        "pong"
    );
    let after = scrape(&gw).await;
    assert_eq!(
        value(&after, "gateway_frames_total{status=\"stored\"}"),
        N as f64
    );
    assert_eq!(
        value(&after, "gateway_frames_total{status=\"duplicate\"}"),
        0.0
    );
    assert_eq!(
        value(&after, "gateway_frames_total{status=\"rejected\"}"),
        0.0
    );
    assert_eq!(
        value(&after, "gateway_stored_bytes_total"),
        (N * 32_000) as f64
    );
    assert_eq!(value(&after, "gateway_ack_latency_seconds_count"), N as f64);
    assert_eq!(
        value(&after, "gateway_ack_latency_seconds_bucket{le=\"+Inf\"}"),
        N as f64
    );
    assert!(value(&after, "gateway_ack_latency_seconds_sum") > 0.0);
    assert_eq!(value(&after, "gateway_live_sessions"), 1.0);
    assert_eq!(value(&after, "gateway_open_sockets"), 1.0);

    // A resend is a duplicate (no bytes), a chunk that breaks a rule is rejected (no ACK).
    assert_eq!(
        send_chunk(&mut socket, "metrics-1", 3).await.status,
        gateway::protocol::AckStatus::Duplicate
    );
    let mut bad = chunk("metrics-1", N + 1);
    bad["sample_rate"] = json!(44_100);
    assert_eq!(ask(&mut socket, &bad).await["type"], "error");
    assert_eq!(
        ask(&mut socket, &json!({"type": "ping"})).await["type"],
        "pong"
    );
    let later = scrape(&gw).await;
    assert_eq!(
        value(&later, "gateway_frames_total{status=\"stored\"}"),
        N as f64
    );
    assert_eq!(
        value(&later, "gateway_frames_total{status=\"duplicate\"}"),
        1.0
    );
    assert_eq!(
        value(&later, "gateway_frames_total{status=\"rejected\"}"),
        1.0
    );
    assert_eq!(
        value(&later, "gateway_stored_bytes_total"),
        (N * 32_000) as f64
    );
    assert_eq!(
        value(&later, "gateway_ack_latency_seconds_count"),
        (N + 1) as f64
    );
    assert_eq!(value(&later, "gateway_storage_errors_total"), 0.0);

    drop(socket);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while value(&scrape(&gw).await, "gateway_open_sockets") != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed socket is still counted open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn resolve_calls_and_failures_are_counted_by_engine_and_reason() {
    let (gw, inference) = gateway_with_inference(None, Duration::from_millis(2000)).await;
    let body = json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}});
    let expect = |behaviour: Behaviour, status: u16| {
        inference.set(behaviour);
        let gw = &gw;
        let body = body.clone();
        async move {
            let (code, answer) = gw
                .send_json("POST", "/v1/sessions/resolving/resolve", body)
                .await;
            assert_eq!(code, status, "{answer}");
        }
    };
    expect(Behaviour::Answer, 200).await;
    expect(Behaviour::Fail(500), 502).await;
    expect(Behaviour::Fail(429), 502).await;
    expect(Behaviour::NotJson, 502).await;
    let metrics = scrape(&gw).await;
    assert_eq!(
        value(&metrics, "gateway_resolve_requests_total{engine=\"http\"}"),
        4.0
    );
    assert_eq!(
        value(
            &metrics,
            "gateway_resolve_failures_total{engine=\"http\",reason=\"backend\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &metrics,
            "gateway_resolve_failures_total{engine=\"http\",reason=\"bad_answer\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            "gateway_resolve_failures_total{engine=\"http\",reason=\"transport\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            &metrics,
            "gateway_resolve_requests_total{engine=\"builtin\"}"
        ),
        0.0
    );
}

#[tokio::test]
async fn a_resolve_with_nothing_to_answer_it_is_counted_unavailable() {
    let gw = TestGateway::start_with(|c| c.inference_mode = gateway::inference::InferenceMode::Off)
        .await;
    let (code, _) = gw
        .send_json(
            "POST",
            "/v1/sessions/off/resolve",
            json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}}),
        )
        .await;
    assert_eq!(code, 503);
    let metrics = scrape(&gw).await;
    assert_eq!(
        value(
            &metrics,
            "gateway_resolve_failures_total{engine=\"off\",reason=\"unavailable\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn metrics_need_the_api_key_when_one_is_set_and_probes_do_not() {
    let gw = TestGateway::start_with(|c| c.api_key = Some("operator-key".into())).await;
    let client = reqwest::Client::new();
    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.unwrap().status().as_u16()
    };
    assert_eq!(status(client.get(gw.http("/metrics"))).await, 401);
    assert_eq!(
        status(client.get(gw.http("/metrics")).bearer_auth("wrong")).await,
        401
    );
    // What Prometheus sends with `authorization: credentials_file` in its scrape config.
    assert_eq!(
        status(client.get(gw.http("/metrics")).bearer_auth("operator-key")).await,
        200
    );
    assert_eq!(
        status(
            client
                .get(gw.http("/metrics"))
                .header("x-api-key", "operator-key")
        )
        .await,
        200
    );
    assert_eq!(status(client.get(gw.http("/ready"))).await, 200);
    assert_eq!(status(client.get(gw.http("/health"))).await, 200);
}

#[tokio::test]
async fn ready_is_200_when_the_database_and_the_objects_work() {
    let gw = TestGateway::start().await;
    let (code, body) = gw.get_json("/ready").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "objects": "ok"}})
    );
    // Probes at once (a load balancer, an orchestrator and the container's health check)
    // share the storage work and all see it succeed.
    let together = futures_util::future::join_all((0..8).map(|_| gw.get_json("/ready"))).await;
    assert!(
        together.iter().all(|(code, _)| *code == 200),
        "{together:?}"
    );
    // The probe object stays out of every session's way.
    let (_, listed) = gw.get_json("/v1/sessions").await;
    assert_eq!(listed["sessions"], json!([]), "{listed}");
    let (code, health) = gw.get_json("/health").await;
    assert_eq!((code, &health["status"]), (200, &json!("ok")));
}

/// Makes `dir` a place nobody can write into. Permission bits do it for an ordinary user;
/// root ignores them, so for root the folder is set aside and a plain file takes its name
/// (nothing can be created inside a file, whoever asks).
fn make_unwritable(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(dir.join("write-test"), b"x").is_ok() {
        std::fs::remove_file(dir.join("write-test")).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let aside = dir.with_extension("aside");
        std::fs::rename(dir, &aside).unwrap();
        std::fs::write(dir, b"not a folder").unwrap();
    }
}

#[tokio::test]
async fn ready_is_503_naming_the_objects_when_their_folder_is_unwritable() {
    let gw = TestGateway::start().await;
    make_unwritable(&gw.data.path().join("objects"));
    let (code, body) = gw.get_json("/ready").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(
        body["checks"]["objects"],
        "failed: the object store cannot be written"
    );
    assert_eq!(
        body["detail"],
        "not ready: objects: the object store cannot be written"
    );
    assert!(
        !body
            .to_string()
            .contains(&gw.data.path().display().to_string()),
        "no local paths in an open answer: {body}"
    );

    // A request that needs the objects fails, and is counted as a storage error.
    let (code, _) = gw
        .send_json("POST", "/v1/sessions/stuck/finalize", json!({}))
        .await;
    assert_eq!(code, 500);
    assert_eq!(
        value(&scrape(&gw).await, "gateway_storage_errors_total"),
        1.0
    );
}

#[tokio::test]
async fn a_frame_the_storage_could_not_keep_is_a_storage_error_not_a_rejection() {
    // One file per frame, so a frame's write needs the objects folder.
    let gw = TestGateway::start_with(|c| c.frame_store = gateway::storage::FrameStore::Files).await;
    let mut socket = gw.connect("unkept").await;
    hello(&mut socket).await;
    send_chunk(&mut socket, "unkept", 1).await;
    make_unwritable(&gw.data.path().join("objects"));
    let refused = ask(&mut socket, &chunk("unkept", 2)).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["retry"], true, "{refused}");
    // The socket closes after a storage failure (1011), so the answer has been counted once
    // the close frame is here.
    let close = support::close_frame(&mut socket)
        .await
        .expect("a close frame");
    assert_eq!(u16::from(close.code), 1011);
    let metrics = scrape(&gw).await;
    assert_eq!(value(&metrics, "gateway_storage_errors_total"), 1.0);
    assert_eq!(
        value(&metrics, "gateway_frames_total{status=\"stored\"}"),
        1.0
    );
    assert_eq!(
        value(&metrics, "gateway_frames_total{status=\"rejected\"}"),
        0.0
    );
}

#[tokio::test]
async fn ready_is_503_naming_the_database_while_another_process_holds_its_write_lock() {
    let gw = TestGateway::start().await;
    let path = gw.data.path().join("gateway.sqlite3");
    // Another process's connection (a backup tool, an operator's sqlite3 shell) in a write
    // transaction: the gateway's commits wait for it.
    let (locked, is_locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked.send(()).unwrap();
        let _ = released.recv();
        conn.execute_batch("ROLLBACK").unwrap();
    });
    is_locked.recv().unwrap();
    let (code, body) = gw.get_json("/ready").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body["checks"]["database"],
        "failed: no answer within the probe deadline"
    );
    assert_eq!(body["checks"]["objects"], "ok");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("not ready: database:"),
        "{body}"
    );

    release.send(()).unwrap();
    holder.join().unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (code, body) = gw.get_json("/ready").await;
        if code == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready again after the lock was released: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ready_is_503_when_the_database_file_was_replaced_behind_the_gateway() {
    let gw = TestGateway::start().await;
    let path = gw.data.path().join("gateway.sqlite3");
    std::fs::rename(&path, path.with_extension("moved")).unwrap();
    std::fs::write(&path, b"not a database").unwrap();
    let (code, body) = gw.get_json("/ready").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body["checks"]["database"],
        "failed: the database file was replaced since the gateway opened it"
    );

    std::fs::remove_file(&path).unwrap();
    let (code, body) = gw.get_json("/ready").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body["checks"]["database"],
        "failed: the database file is gone"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_fields() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut gw = ChildGateway::start_under(&[], &["--log-format", "json"], &data, dir.path()).await;
    let response = reqwest::get(gw.http("/ready")).await.unwrap();
    assert_eq!(response.status(), 200);

    // The request's line is written once its answer has left: wait for it.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let request_line = loop {
        let found = gw.log().lines().find_map(|line| {
            let parsed: Value = serde_json::from_str(line).ok()?;
            (parsed["message"] == "request" && parsed["path"] == "/ready").then_some(parsed)
        });
        if let Some(line) = found {
            break line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no JSON request line for /ready; the log:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(request_line["level"], "INFO");
    assert_eq!(request_line["method"], "GET");
    assert_eq!(request_line["status"], 200);
    assert!(request_line["ms"].is_number(), "{request_line}");
    assert!(request_line["target"].is_string(), "{request_line}");
    let timestamp = request_line["timestamp"].as_str().unwrap();
    // RFC 3339 in UTC: `2026-11-27T21:04:28.123456Z`.
    let bytes = timestamp.as_bytes();
    assert!(
        bytes.len() >= 20
            && timestamp[..4].parse::<u16>().is_ok()
            && (bytes[4], bytes[7], bytes[10], bytes[13]) == (b'-', b'-', b'T', b':')
            && timestamp.ends_with('Z'),
        "{timestamp}"
    );

    gw.signal(libc::SIGTERM);
    assert!(gw.exited().await.success());
    let log = gw.log();
    for line in log.lines() {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            parsed["timestamp"].is_string() && parsed["level"].is_string(),
            "{line}"
        );
    }
    let messages: Vec<String> = log
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["message"].to_string())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("gateway listening on http://")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("gateway stopping")),
        "{messages:?}"
    );
}
