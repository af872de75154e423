//! The HTTP routes against a real gateway and a contract-honouring inference service: resolve
//! (answers, replays, every failure), state, bindings, finalize, audio.wav, health and keys.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use gateway::inference::{InferenceConfig, InferenceMode};
use serde_json::{Value, json};
use support::inference::{Behaviour, FakeInference, gateway_with_inference};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn with_inference(timeout_ms: u64) -> (TestGateway, FakeInference) {
    gateway_with_inference(Some("inference-key"), Duration::from_millis(timeout_ms)).await
}

fn resolve_body() -> Value {
    json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le", "sample_rate": 16000, "channels": 1},
           "asr_text": "hello there", "roster": [{"name": "Ada Lovelace", "email": "ada@example.com"}]})
}

async fn post_resolve(gw: &TestGateway, session: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(gw.http(&format!("/v1/sessions/{session}/resolve")))
        .json(&resolve_body());
    if let Some(key) = key {
        request = request.header("x-idempotency-key", key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn health_says_what_is_configured_without_calling_inference() {
    let (gw, inference) = with_inference(1000).await;
    let (code, body) = gw.get_json("/health").await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["storage"], "local");
    assert_eq!(body["inference_configured"], true);
    assert!(body["version"].is_string());
    assert!(inference.bodies().is_empty());
}

#[tokio::test]
async fn resolve_forwards_state_and_keeps_the_answer() {
    let (gw, inference) = with_inference(5000).await;
    let response = post_resolve(&gw, "r1", None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-idempotent-replay").is_none());
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["cluster_id"], "spk_1");
    assert_eq!(answer["decision"], "confirm");
    assert_eq!(answer["speaker_name"], "Ada Lovelace");

    let sent = &inference.bodies()[0];
    assert_eq!(sent["session_id"], "r1");
    assert_eq!(sent["audio"]["content_b64"], "AAAA");
    assert_eq!(sent["asr_text"], "hello there");
    assert_eq!(sent["state"]["roster"][0]["email"], "ada@example.com");
    assert_eq!(sent["state"]["clusters"], json!([]));
    assert_eq!(inference.headers(0)["x-api-key"], "inference-key");

    let (code, state) = gw.get_json("/v1/sessions/r1/state").await;
    assert_eq!(code, 200);
    assert_eq!(state["event_count"], 1);
    assert_eq!(state["state"]["clusters"][0]["cluster_id"], "spk_1");
    assert_eq!(
        state["state"]["clusters"][0]["centroid"],
        json!([0.125, -0.5, 0.75])
    );
    assert_eq!(state["ingest"], Value::Null);
    assert!(state["updated_at"].as_str().unwrap().ends_with('Z'));

    // The second resolve starts from the state the first left.
    post_resolve(&gw, "r1", None).await;
    assert_eq!(
        inference.bodies()[1]["state"]["clusters"][0]["cluster_id"],
        "spk_1"
    );
    let (_, state) = gw.get_json("/v1/sessions/r1/state").await;
    assert_eq!(state["state"]["clusters"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_idempotent_replay_returns_the_stored_answer_without_calling_inference() {
    let (gw, inference) = with_inference(5000).await;
    let first: Value = post_resolve(&gw, "idem", Some("req-1"))
        .await
        .json()
        .await
        .unwrap();
    let replay = post_resolve(&gw, "idem", Some("req-1")).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["x-idempotent-replay"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(inference.bodies().len(), 1);
    let (_, state) = gw.get_json("/v1/sessions/idem/state").await;
    assert_eq!(state["event_count"], 1);
    // Another key is a new request.
    post_resolve(&gw, "idem", Some("req-2")).await;
    assert_eq!(inference.bodies().len(), 2);
}

#[tokio::test]
async fn every_inference_failure_is_a_502_and_changes_nothing() {
    let (gw, inference) = with_inference(300).await;
    post_resolve(&gw, "fail", None).await;
    let (_, before) = gw.get_json("/v1/sessions/fail/state").await;

    for code in [401u16, 413, 422, 429, 500] {
        inference.set(Behaviour::Fail(code));
        let response = post_resolve(&gw, "fail", Some(&format!("k{code}"))).await;
        assert_eq!(response.status(), 502, "backend {code}");
        if code == 429 {
            assert_eq!(response.headers()["retry-after"], "7");
            assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["detail"], format!("inference backend returned {code}"));
        assert_eq!(body["backend_status"], code);
        // The backend's answer as text, as the seed passes it on.
        let backend: Value = serde_json::from_str(body["backend_body"].as_str().unwrap()).unwrap();
        assert!(backend["detail"].is_string(), "{body}");
    }

    inference.set(Behaviour::Slow(Duration::from_millis(2000)));
    let response = post_resolve(&gw, "fail", None).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "inference request failed: timed out after 300 ms"
    );

    inference.set(Behaviour::NotJson);
    let body: Value = post_resolve(&gw, "fail", None).await.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("inference returned non-JSON")
    );

    inference.set(Behaviour::WrongShape);
    let response = post_resolve(&gw, "fail", None).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("inference answer is not a resolve answer")
    );

    let (_, after) = gw.get_json("/v1/sessions/fail/state").await;
    assert_eq!(after, before, "no failure changed the state");

    // A failed idempotent request is not replayed: the key works once inference is back.
    inference.set(Behaviour::Answer);
    let retry = post_resolve(&gw, "fail", Some("k500")).await;
    assert_eq!(retry.status(), 200);
    assert!(retry.headers().get("x-idempotent-replay").is_none());
}

#[tokio::test]
async fn unreachable_inference_is_a_502_transport_failure() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = TestGateway::start_with(|c| {
        c.inference = Some(InferenceConfig {
            base_url: format!("http://{unused}"),
            api_key: None,
            timeout: Duration::from_secs(2),
            resolve_path: "/speaker/resolve".into(),
        })
    })
    .await;
    let response = post_resolve(&gw, "down", None).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("inference request failed: "),
        "{body}"
    );
}

#[tokio::test]
async fn resolve_without_inference_is_503_and_bad_bodies_are_400() {
    let off = TestGateway::start_with(|c| c.inference_mode = InferenceMode::Off).await;
    let response = post_resolve(&off, "s", None).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "speaker resolution is off (--inference off / GATEWAY_INFERENCE=off)"
    );
    let (_, health) = off.get_json("/health").await;
    assert_eq!(health["inference_configured"], false);

    let gw = TestGateway::start_with(|c| c.inference_mode = InferenceMode::Http).await;
    let response = post_resolve(&gw, "s", None).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("INFERENCE_BASE_URL"),
        "{body}"
    );

    for body in [
        json!({}),
        json!({"audio": {"format": "pcm_s16le"}}),
        json!({"audio": {"content_b64": "AA"}}),
    ] {
        let (code, answer) = gw.send_json("POST", "/v1/sessions/s/resolve", body).await;
        assert_eq!(code, 400);
        assert_eq!(
            answer["detail"],
            "audio.content_b64 and audio.format are required"
        );
    }
    let response = reqwest::Client::new()
        .post(gw.http("/v1/sessions/s/resolve"))
        .body(vec![b'x'; 9 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("request body too large")
    );
}

#[tokio::test]
async fn state_of_an_unknown_session_is_empty() {
    let gw = TestGateway::start().await;
    let (code, body) = gw.get_json("/v1/sessions/never-seen/state").await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        json!({"session_id": "never-seen", "state": {"clusters": [], "bindings": {}, "config": {}},
               "event_count": 0, "updated_at": null, "ingest": null})
    );
    let (code, _) = gw
        .send_json("POST", "/v1/sessions/never-seen/state", json!({}))
        .await;
    assert_eq!(code, 405);
}

#[tokio::test]
async fn a_binding_renames_a_cluster_and_persists() {
    let (mut gw, _inference) = with_inference(5000).await;
    post_resolve(&gw, "b1", None).await;
    let refusals = [
        (
            json!({"cluster_id": "nope", "name": "Bob"}),
            404,
            "cluster not found: nope",
        ),
        (
            json!({"cluster_id": "spk_1", "name": " "}),
            400,
            "name must not be empty",
        ),
    ];
    for (request, status, detail) in refusals {
        let (code, body) = gw
            .send_json("PUT", "/v1/sessions/b1/bindings", request)
            .await;
        assert_eq!((code, body["detail"].as_str()), (status, Some(detail)));
    }

    let (code, body) = gw
        .send_json(
            "PUT",
            "/v1/sessions/b1/bindings",
            json!({"cluster_id": "spk_1", "name": "Grace Hopper"}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(body["state"]["bindings"]["spk_1"], "Grace Hopper");
    assert_eq!(body["state"]["clusters"][0]["bound_name"], "Grace Hopper");
    assert_eq!(body["event_count"], 2);

    gw.restart().await;
    let (_, state) = gw.get_json("/v1/sessions/b1/state").await;
    assert_eq!(state["state"]["bindings"]["spk_1"], "Grace Hopper");
    let (_, done) = gw
        .send_json("POST", "/v1/sessions/b1/finalize", json!({}))
        .await;
    let result: Value = serde_json::from_slice(
        &std::fs::read(gw.object(done["result_key"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let events = result["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["decision"], "manual");
    assert_eq!(events[1]["speaker_name"], "Grace Hopper");
    assert_eq!(events[1]["cluster_id"], "spk_1");
}

#[tokio::test]
async fn finalize_writes_result_json_and_rewrites_it_later() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("fin").await;
    send_chunk(&mut ws, "fin", 1).await;
    let (code, done) = gw
        .send_json(
            "POST",
            "/v1/sessions/fin/finalize",
            json!({"metadata": {"interviewer": "Kim"}}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(done["session_id"], "fin");
    assert_eq!(done["result_key"], "sessions/fin/result.json");
    assert_eq!(done["event_count"], 0);
    let read = || -> Value {
        serde_json::from_slice(&std::fs::read(gw.object("sessions/fin/result.json")).unwrap())
            .unwrap()
    };
    let result = read();
    assert_eq!(result["metadata"]["interviewer"], "Kim");
    assert_eq!(result["ingest"]["received_chunks"], 1);
    assert_eq!(result["finalized_at"], done["finalized_at"]);

    send_chunk(&mut ws, "fin", 2).await;
    // An empty body counts as {}.
    let response = reqwest::Client::new()
        .post(gw.http("/v1/sessions/fin/finalize"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(read()["ingest"]["received_chunks"], 2);
    assert_eq!(read()["metadata"], json!({}));

    let response = reqwest::Client::new()
        .post(gw.http("/v1/sessions/fin/finalize"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["detail"],
        "request body must be a JSON object"
    );
    let (code, body) = gw
        .send_json(
            "POST",
            "/v1/sessions/fin/finalize",
            json!({"metadata": [1]}),
        )
        .await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (400, Some("metadata must be a JSON object"))
    );
}

#[tokio::test]
async fn audio_wav_joins_frames_in_order_with_silence_for_missing_seconds() {
    let gw = TestGateway::start().await;
    let (code, body) = gw.get_json("/v1/sessions/nothing/audio.wav").await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (404, Some("no audio stored for session 'nothing'"))
    );

    let mut ws = gw.connect("wav").await;
    for seq in [3, 1, 5] {
        send_chunk(&mut ws, "wav", seq).await;
    }
    let response = reqwest::get(gw.http("/v1/sessions/wav/audio.wav"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    assert_eq!(response.headers()["x-missing-seconds"], "2");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), 44 + 5 * 32_000);
    let mut expected = Vec::new();
    for seq in 1..=5u64 {
        match seq {
            2 | 4 => expected.extend(vec![0u8; 32_000]),
            _ => expected.extend(pcm(seq)),
        }
    }
    assert!(
        bytes[44..] == expected[..],
        "data is the frames in seq order"
    );
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    assert_eq!(reader.duration(), 80_000);
}

#[tokio::test]
async fn resolves_and_frames_on_one_session_interleave_without_lost_updates() {
    let (gw, inference) = with_inference(5000).await;
    inference.set(Behaviour::Slow(Duration::from_millis(30)));
    let mut ws = gw.connect("busy").await;
    let frames = async {
        for seq in 1..=30 {
            send_chunk(&mut ws, "busy", seq).await;
        }
    };
    let resolves = futures_util::future::join_all((0..6).map(|_| post_resolve(&gw, "busy", None)));
    let (_, responses) = tokio::join!(frames, resolves);
    assert!(responses.iter().all(|r| r.status() == 200));
    let (_, state) = gw.get_json("/v1/sessions/busy/state").await;
    assert_eq!(state["event_count"], 6);
    assert_eq!(
        state["state"]["clusters"].as_array().unwrap().len(),
        6,
        "each resolve saw the last"
    );
    assert_eq!(state["ingest"]["received_chunks"], 30);
    assert_eq!(state["ingest"]["missing_chunks"], 0);
}

#[tokio::test]
async fn an_api_key_guards_every_route_but_health() {
    let gw = TestGateway::start_with(|c| c.api_key = Some("s3cret".into())).await;
    assert_eq!(gw.get_json("/health").await.0, 200);
    let (code, body) = gw.get_json("/v1/sessions/k/state").await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (401, Some("missing or invalid API key"))
    );
    let client = reqwest::Client::new();
    let url = gw.http("/v1/sessions/k/state");
    assert_eq!(
        client
            .get(&url)
            .header("x-api-key", "wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(&url)
            .header("x-api-key", "s3cret")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(&url)
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A socket with the key in its upgrade headers.
    let mut request = gw.ws("k").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-api-key", "s3cret".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    hello(&mut ws).await;

    // A socket that proves the key in its first message.
    let mut ws = gw.connect("k").await;
    let answer = ask(&mut ws, &json!({"type": "auth", "key": "s3cret"})).await;
    assert_eq!(answer, json!({"type": "authenticated"}));
    assert_eq!(send_chunk(&mut ws, "k", 1).await.last_seq, 1);

    // Any other first message is refused and the socket closed with 1008.
    let mut ws = gw.connect("k").await;
    ws.send(Message::text(chunk("k", 2).to_string()))
        .await
        .unwrap();
    let answer = next_json(&mut ws).await;
    assert_eq!(answer["type"], "error");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .starts_with("authentication required")
    );
    assert_eq!(u16::from(close_frame(&mut ws).await.unwrap().code), 1008);
    let mut ws = gw.connect("k").await;
    let answer = ask(&mut ws, &json!({"type": "auth", "key": "guess"})).await;
    assert_eq!(answer["type"], "error");
    assert_eq!(u16::from(close_frame(&mut ws).await.unwrap().code), 1008);

    // A wrong key in the headers is refused before the upgrade.
    let mut request = gw.ws("k").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-api-key", "guess".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
    // Frame 2 was never stored.
    let status = client
        .get(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(status["ingest"]["received_chunks"], 1);
}
