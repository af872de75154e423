//! Issue 9, item 9 (bounded state): the caps of `gateway::core::caps` against a real gateway.
//! Each refusal is a 4xx whose `detail` names the cap, and the session's state (and its
//! objects) are the same after it as before. The caps that input alone can reach (roster,
//! names, idempotency keys, metadata, a 24-hour gap in `audio.wav`, body and message sizes)
//! are checked on every host by the contract suite (`contract.rs`); these need the server
//! (its fake inference service, its database, or gigabytes of `audio.wav` headers).

mod support;

use std::time::Duration;

use gateway::core::caps::{
    MAX_EVENTS_PER_SESSION, MAX_INFERENCE_ANSWER_BYTES, MAX_REPLAYS_PER_SESSION, MAX_WAV_SECONDS,
};
use serde_json::{Value, json};
use support::inference::{Behaviour, FakeInference, gateway_with_inference};
use support::*;

async fn with_inference() -> (TestGateway, FakeInference) {
    gateway_with_inference(None, Duration::from_secs(10)).await
}

fn resolve_body(roster: Value) -> Value {
    json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}, "roster": roster})
}

/// POSTs a resolve; answers status, whether it was a replay, and the body.
async fn resolve(
    gw: &TestGateway,
    session: &str,
    body: &Value,
    key: Option<&str>,
) -> (u16, bool, Value) {
    let mut request = reqwest::Client::new()
        .post(gw.http(&format!("/v1/sessions/{session}/resolve")))
        .json(body);
    if let Some(key) = key {
        request = request.header("x-idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let replay = response.headers().contains_key("x-idempotent-replay");
    (status, replay, response.json().await.unwrap_or(Value::Null))
}

async fn state(gw: &TestGateway, session: &str) -> Value {
    let (code, state) = gw.get_json(&format!("/v1/sessions/{session}/state")).await;
    assert_eq!(code, 200);
    state
}

/// A session with one resolve answered (cluster `spk_1`, one event).
async fn resolved_once(gw: &TestGateway, session: &str) -> Value {
    let (code, _, _) = resolve(gw, session, &resolve_body(json!([{"name": "Ada"}])), None).await;
    assert_eq!(code, 200);
    state(gw, session).await
}

#[tokio::test]
async fn item9_a_session_keeps_only_its_newest_replays() {
    let (gw, inference) = with_inference().await;
    let body = resolve_body(json!([]));
    for n in 1..=MAX_REPLAYS_PER_SESSION + 1 {
        let (code, replay, _) = resolve(&gw, "replays", &body, Some(&format!("k{n}"))).await;
        assert_eq!((code, replay), (200, false));
    }
    let asked = inference.bodies().len();
    let (code, replay, _) = resolve(&gw, "replays", &body, Some("k2")).await;
    assert_eq!((code, replay), (200, true), "the newest are kept");
    let (code, replay, _) = resolve(&gw, "replays", &body, Some("k1")).await;
    assert_eq!((code, replay), (200, false), "the oldest was dropped");
    assert_eq!(inference.bodies().len(), asked + 1);
}

/// Fills session `session`'s event log to the cap behind the gateway's back (a real log that
/// long takes 20 000 requests): copies of its first event, and the count to match.
fn fill_event_log(data: &std::path::Path, session: &str) {
    let conn = rusqlite::Connection::open(data.join("gateway.sqlite3")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < {MAX_EVENTS_PER_SESSION})
         INSERT INTO events (safe_id, idx, event)
             SELECT '{session}', i, (SELECT event FROM events WHERE safe_id = '{session}' AND idx = 1)
             FROM n;
         UPDATE sessions SET event_count = {MAX_EVENTS_PER_SESSION} WHERE safe_id = '{session}';
         COMMIT;"
    ))
    .unwrap();
}

#[tokio::test]
async fn item9_a_session_whose_event_log_is_full_refuses_resolves_and_bindings_and_still_finalizes()
{
    let (mut gw, inference) = with_inference().await;
    let (code, _, first) = resolve(&gw, "full", &resolve_body(json!([])), Some("first")).await;
    assert_eq!(code, 200);
    gw.gateway.take().unwrap().shutdown().await.unwrap();
    fill_event_log(gw.data.path(), "full");
    gw.restart().await;
    let before = state(&gw, "full").await;
    assert_eq!(before["event_count"], MAX_EVENTS_PER_SESSION);

    let full = "this session has reached its cap of 20000 speaker events (resolves and name corrections); nothing was changed: finalize it and go on under a new session id";
    let (code, _, body) = resolve(&gw, "full", &resolve_body(json!([])), Some("second")).await;
    assert_eq!((code, body["detail"].as_str()), (409, Some(full)));
    assert_eq!(inference.bodies().len(), 1, "inference was not asked");
    let (code, body) = gw
        .send_json(
            "PUT",
            "/v1/sessions/full/bindings",
            json!({"cluster_id": "spk_1", "name": "Ada"}),
        )
        .await;
    assert_eq!((code, body["detail"].as_str()), (409, Some(full)));
    assert_eq!(state(&gw, "full").await, before);

    // What was answered is still replayed, and finalize writes the whole (bounded) log.
    let (code, replay, again) = resolve(&gw, "full", &resolve_body(json!([])), Some("first")).await;
    assert_eq!((code, replay, again), (200, true, first));
    let (code, done) = gw
        .send_json("POST", "/v1/sessions/full/finalize", json!({}))
        .await;
    assert_eq!(
        (code, done["event_count"].as_u64()),
        (200, Some(MAX_EVENTS_PER_SESSION))
    );
}

#[tokio::test]
async fn item9_an_inference_answer_over_the_cap_is_a_502_and_changes_nothing() {
    let (gw, inference) = with_inference().await;
    let before = resolved_once(&gw, "big").await;
    let detail = "inference answer too large: more than 2097152 bytes (the gateway's cap on a resolve answer); nothing was changed";
    for chunked in [false, true] {
        inference.set(Behaviour::Huge {
            bytes: MAX_INFERENCE_ANSWER_BYTES + 1,
            chunked,
        });
        let (code, _, body) = resolve(&gw, "big", &resolve_body(json!([])), Some("big")).await;
        assert_eq!(
            (code, body["detail"].as_str()),
            (502, Some(detail)),
            "chunked: {chunked}"
        );
        assert_eq!(body.get("backend_status"), None);
        assert_eq!(state(&gw, "big").await, before);
    }

    inference.set(Behaviour::Huge {
        bytes: MAX_INFERENCE_ANSWER_BYTES,
        chunked: true,
    });
    let (code, replay, answer) = resolve(&gw, "big", &resolve_body(json!([])), Some("big")).await;
    assert_eq!(
        (code, replay),
        (200, false),
        "an answer at the cap is taken, not a replay"
    );
    assert_eq!(answer.to_string().len(), MAX_INFERENCE_ANSWER_BYTES);
    assert_eq!(state(&gw, "big").await["event_count"], 2);
}

async fn get_wav(gw: &TestGateway, path: &str) -> reqwest::Response {
    reqwest::get(gw.http(path)).await.unwrap()
}

#[tokio::test]
async fn item9_an_audio_wav_of_24_hours_is_served_and_one_second_more_is_refused() {
    let gw = TestGateway::start().await;
    // Exactly a day is served (headers only: the body is 2.8 GB of mostly silence).
    let mut ws = gw.connect("day").await;
    for seq in [1, MAX_WAV_SECONDS] {
        send_chunk(&mut ws, "day", seq).await;
    }
    let response = get_wav(&gw, "/v1/sessions/day/audio.wav").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.content_length(),
        Some(44 + MAX_WAV_SECONDS * 32_000)
    );
    drop(response);
    // One second more is refused.
    send_chunk(&mut ws, "day", MAX_WAV_SECONDS + 1).await;
    let response = get_wav(&gw, "/v1/sessions/day/audio.wav").await;
    assert_eq!(response.status(), 422);

    // A stereo mix is also bound by its 32-bit header: 18.6 h.
    let mut ws = gw.connect("long").await;
    for seq in [1, 70_000] {
        send_chunk(&mut ws, "long", seq).await;
    }
    assert_eq!(
        get_wav(&gw, "/v1/sessions/long/audio.wav").await.status(),
        200
    );
    let response = get_wav(&gw, "/v1/sessions/long/audio.wav?stream=mix").await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "audio.wav (mix) of session 'long' would be 70000 s long, 69998 s of it never received (silence); a stereo WAV holds at most 67108 s: download ?stream=mic and ?stream=system instead"
    );
}
