//! The ingest WebSocket against a real gateway: the seed client's flow, duplicates, gap fillers,
//! every refusal, and sessions shared by two sockets.

mod support;

use futures_util::SinkExt;
use gateway::protocol::AckStatus;
use gateway::storage::FrameStore;
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_seed_smoke_client_works_unchanged() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("meeting-1").await;
    let ready = hello(&mut ws).await;
    assert_eq!(ready["session_id"], "meeting-1");
    assert_eq!(ready["target_sample_rate"], 16000);
    assert_eq!(ready["target_channels"], 1);
    assert_eq!(ready["target_format"], "pcm_s16le");
    assert_eq!(ready["ingest"]["type"], "status");
    assert_eq!(ready["ingest"]["meeting_id"], "meeting-1");

    // Three one-second 220 Hz chunks, as the seed's smoke script sends.
    for seq in 1..=3u64 {
        let tone: Vec<u8> = (0..16_000)
            .flat_map(|i| {
                let t = i as f64 / 16_000.0;
                (((t * 220.0 * std::f64::consts::TAU).sin() * 12_000.0) as i16).to_le_bytes()
            })
            .collect();
        let ack = ask(&mut ws, &chunk_with("meeting-1", seq, &tone)).await;
        assert_eq!(ack["type"], "ack");
        assert_eq!(ack["status"], "stored");
        assert_eq!(ack["seq"], seq);
        assert_eq!(
            ack["key"],
            format!("sessions/meeting-1/chunks/{seq:08}.pcm")
        );
        assert_eq!(ack["last_seq"], seq);
        assert_eq!(ack["missing_count"], 0);
        assert_eq!(ack["duplicate_count"], 0);
        let stored = gw.read_object(ack["key"].as_str().unwrap()).unwrap();
        assert_eq!(stored, tone, "object bytes are the frame's PCM");
    }
    let status = ask(&mut ws, &json!({"type": "status"})).await;
    assert_eq!(status["type"], "status");
    assert_eq!(status["received_chunks"], 3);
    assert_eq!(status["missing_chunks"], 0);
    assert_eq!(status["bytes_stored"], 96_000);
    assert!(status["started_at"].as_str().unwrap().ends_with('Z'));

    let pong = ask(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong");
    assert!(pong["ts"].as_u64().unwrap() > 1_700_000_000_000);

    let closing = ask(&mut ws, &json!({"type": "close", "reason": "done"})).await;
    assert_eq!(closing, json!({"type": "closing", "reason": "done"}));
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1000);
}

#[tokio::test]
async fn duplicates_are_acked_without_a_key_and_not_rewritten() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("dup").await;
    send_chunk(&mut ws, "dup", 1).await;
    let written = gw.log_bytes();
    let again = ask(&mut ws, &chunk("dup", 1)).await;
    assert_eq!(
        again,
        json!({"type": "ack", "seq": 1, "status": "duplicate", "last_seq": 1, "missing_count": 0, "duplicate_count": 1})
    );
    assert_eq!(gw.log_bytes(), written, "nothing written again");
    let status = ask(&mut ws, &json!({"type": "status"})).await;
    assert_eq!(status["received_chunks"], 1);
    assert_eq!(status["duplicate_chunks"], 1);
}

#[tokio::test]
async fn a_late_gap_filler_is_stored_and_lowers_missing() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("gaps").await;
    assert_eq!(send_chunk(&mut ws, "gaps", 1).await.missing_count, 0);
    let jump = send_chunk(&mut ws, "gaps", 4).await;
    assert_eq!((jump.last_seq, jump.missing_count), (4, 2));
    let fill = send_chunk(&mut ws, "gaps", 2).await;
    assert_eq!(
        fill.key.as_deref(),
        Some("sessions/gaps/chunks/00000002.pcm")
    );
    assert_eq!((fill.last_seq, fill.missing_count), (4, 1));
    let fill = send_chunk(&mut ws, "gaps", 3).await;
    assert_eq!(
        (fill.last_seq, fill.missing_count, fill.duplicate_count),
        (4, 0, 0)
    );
    assert_eq!(
        gw.read_object("sessions/gaps/chunks/00000003.pcm").unwrap(),
        pcm(3)
    );
}

#[tokio::test]
async fn every_bad_message_gets_its_own_error_and_the_socket_stays_open() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("bad").await;
    let cases = [
        (json!({"seq": 0}), "seq must be a positive integer"),
        (json!({"seq": -2}), "seq must be a positive integer"),
        (json!({"seq": 2.5}), "seq must be a positive integer"),
        (json!({"seq": "3"}), "seq must be a positive integer"),
        (json!({"sample_rate": 44100}), "sample_rate must be 16000"),
        (json!({"channels": 2}), "channels must be 1"),
        (json!({"format": "pcm_f32le"}), "format must be pcm_s16le"),
        (
            json!({"timestamp_ms": -5}),
            "timestamp_ms must be a positive number",
        ),
        (
            json!({"content_b64": "@@@"}),
            "content_b64 is not valid base64",
        ),
        (
            json!({"content_b64": "AAAA"}),
            "content_b64 must decode to exactly 32000 bytes, got 3",
        ),
        (
            json!({"meeting_id": "someone-else"}),
            "meeting_id mismatch: expected 'bad', got 'someone-else'",
        ),
    ];
    for (overrides, expected) in cases {
        let mut message = chunk("bad", 1);
        for (k, v) in overrides.as_object().unwrap() {
            message[k] = v.clone();
        }
        let answer = ask(&mut ws, &message).await;
        assert_eq!(answer["type"], "error", "{overrides}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(detail.starts_with(expected), "{overrides}: {detail}");
    }
    ws.send(Message::text("{not json")).await.unwrap();
    assert!(
        next_json(&mut ws).await["detail"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
    ws.send(Message::text("[]")).await.unwrap();
    assert_eq!(
        next_json(&mut ws).await["detail"],
        "message must be a JSON object"
    );
    ws.send(Message::text(r#"{"type":"shout"}"#)).await.unwrap();
    assert_eq!(
        next_json(&mut ws).await["detail"],
        "unsupported message type: shout"
    );
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        next_json(&mut ws).await["detail"],
        "binary messages are not supported; send JSON text"
    );
    // Nothing was stored for any of them, and the socket still works.
    let status = ask(&mut ws, &json!({"type": "status"})).await;
    assert_eq!(
        (
            status["received_chunks"].as_u64(),
            status["last_seq"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert!(gw.read_object("sessions/bad/chunks/00000001.pcm").is_none());
    assert_eq!(send_chunk(&mut ws, "bad", 1).await.last_seq, 1);
}

#[tokio::test]
async fn a_message_over_64_kib_is_refused_with_close_1009() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("huge").await;
    let mut message = chunk("huge", 1);
    message["padding"] = json!("x".repeat(70_000));
    let _ = ws.send(Message::text(message.to_string())).await;
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009);
    assert!(frame.reason.contains("65536"), "{}", frame.reason);
    // The session is untouched.
    let mut ws = gw.connect("huge").await;
    let status = ask(&mut ws, &json!({"type": "status"})).await;
    assert_eq!(status["received_chunks"], 0);
}

#[tokio::test]
async fn two_sockets_on_one_session_keep_exact_counters() {
    let gw = TestGateway::start().await;
    let (mut a, mut b) = (gw.connect("shared").await, gw.connect("shared").await);
    let odd = async {
        let mut acks = Vec::new();
        for seq in (1..=40).step_by(2) {
            acks.push(send_chunk(&mut a, "shared", seq).await);
        }
        acks
    };
    let even = async {
        let mut acks = Vec::new();
        for seq in (2..=40).step_by(2) {
            acks.push(send_chunk(&mut b, "shared", seq).await);
        }
        // And every odd one again: each is either already stored (duplicate) or not yet.
        for seq in (1..=40).step_by(2) {
            acks.push(send_chunk(&mut b, "shared", seq).await);
        }
        acks
    };
    let (odd, even) = tokio::join!(odd, even);
    let stored = odd.iter().chain(&even).filter(|a| a.key.is_some()).count();
    let duplicates = odd.iter().chain(&even).filter(|a| a.key.is_none()).count();
    assert_eq!(stored, 40, "each seq stored exactly once");
    assert_eq!(duplicates, 20);
    let status = ask(&mut a, &json!({"type": "status"})).await;
    assert_eq!(status["received_chunks"], 40);
    assert_eq!(status["duplicate_chunks"], 20);
    assert_eq!(status["missing_chunks"], 0);
    assert_eq!(status["bytes_stored"], 40 * 32_000);
}

#[tokio::test]
async fn unsafe_session_ids_stay_inside_their_own_folder() {
    let gw = TestGateway::start().await;
    // `a b/..%2F` URL-encoded.
    let mut ws = gw.connect("a%20b%2F..%252F").await;
    let ready = hello(&mut ws).await;
    assert_eq!(ready["session_id"], "a b/..%2F");
    let ack = send_chunk(&mut ws, "a b/..%2F", 1).await;
    assert_eq!(
        ack.key.as_deref(),
        Some("sessions/a_b_.._2F/chunks/00000001.pcm")
    );
    assert!(
        gw.read_object("sessions/a_b_.._2F/chunks/00000001.pcm")
            .is_some()
    );

    // `a_b_.._2F` itself shares that folder name: refused rather than mixed in.
    let mut other = gw.connect("a_b_.._2F").await;
    let answer = ask(&mut other, &json!({"type": "hello"})).await;
    assert_eq!(answer["type"], "error");
    assert!(
        answer["detail"].as_str().unwrap().contains("same name"),
        "{answer}"
    );

    for (path, status, detail) in [
        (
            "/v1/sessions/../state",
            400,
            "session_id must not be '.' or '..'",
        ),
        (
            "/v1/sessions/%2E%2E/state",
            400,
            "session_id must not be '.' or '..'",
        ),
        (
            "/v1/sessions/./state",
            400,
            "session_id must not be '.' or '..'",
        ),
        ("/v1/sessions//state", 400, "session_id is required"),
        (
            &format!("/v1/sessions/{}/state", "x".repeat(129)),
            400,
            "session_id must be at most 128 characters",
        ),
    ] {
        let (code, body) = raw_get(&gw, path).await;
        assert_eq!(
            (code, body["detail"].as_str()),
            (status, Some(detail)),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_socket_route_refuses_plain_http_and_other_methods() {
    let gw = TestGateway::start().await;
    let (code, body) = gw.get_json("/v1/audio/ws/s1").await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (426, Some("websocket upgrade required"))
    );
    let (code, body) = gw.send_json("POST", "/v1/audio/ws/s1", json!({})).await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (405, Some("method not allowed"))
    );
    let (code, body) = gw.get_json("/nope").await;
    assert_eq!(
        (code, body["detail"].as_str()),
        (404, Some("route not found"))
    );
}

#[tokio::test]
async fn an_idle_session_leaves_memory_and_comes_back_from_storage() {
    let gw =
        TestGateway::start_with(|c| c.idle_timeout = std::time::Duration::from_millis(100)).await;
    let mut ws = gw.connect("idle").await;
    send_chunk(&mut ws, "idle", 1).await;
    send_chunk(&mut ws, "idle", 3).await;
    drop(ws);
    // Wait (bounded) until the actor has retired: /health counts live sessions.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while gw.get_json("/health").await.1["live_sessions"] != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle actor never retired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, state) = gw.get_json("/v1/sessions/idle/state").await;
    assert_eq!(state["ingest"]["received_chunks"], 2);
    assert_eq!(state["ingest"]["missing_chunks"], 1);
    let mut ws = gw.connect("idle").await;
    let again = ask(&mut ws, &chunk("idle", 3)).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(send_chunk(&mut ws, "idle", 2).await.missing_count, 0);
}

/// Issue 9, item 3: a storage failure is the gateway's fault. The chunk's error says `retry`,
/// the socket closes with 1011 so the client reconnects, nothing is counted as stored, and the
/// same frame sent again on a new socket once storage works is stored whole.
#[tokio::test]
async fn item3_a_storage_failure_says_retry_closes_with_1011_and_the_resend_is_stored() {
    // Frames one file each, so a folder can be made unwritable; the session core's answer
    // to a failed write is the same whichever store failed.
    let gw = TestGateway::start_with(|config| config.frame_store = FrameStore::Files).await;
    let mut ws = gw.connect("flaky").await;
    hello(&mut ws).await;
    send_chunk(&mut ws, "flaky", 1).await;
    // The frames' directory becomes unwritable: a file where it was.
    let chunks = gw.object("sessions/flaky/chunks");
    let aside = chunks.with_extension("aside");
    std::fs::rename(&chunks, &aside).unwrap();
    std::fs::write(&chunks, b"not a directory").unwrap();

    let answer = ask(&mut ws, &chunk("flaky", 2)).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["seq"], 2);
    assert_eq!(answer["retry"], true, "{answer}");
    let close = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1011, "{close:?}");

    std::fs::remove_file(&chunks).unwrap();
    std::fs::rename(&aside, &chunks).unwrap();
    let mut ws = gw.connect("flaky").await;
    let ready = hello(&mut ws).await;
    assert_eq!(
        ready["ingest"]["last_seq"], 1,
        "the failed frame was not counted: {ready}"
    );
    let ack = send_chunk(&mut ws, "flaky", 2).await;
    assert_eq!(
        (ack.seq, ack.status, ack.last_seq),
        (2, AckStatus::Stored, 2)
    );
    assert_eq!(
        gw.read_object("sessions/flaky/chunks/00000002.pcm")
            .unwrap(),
        pcm(2)
    );
}

/// A refusal the client can fix (here a wrong sample rate) keeps the socket open and does not
/// say `retry`.
#[tokio::test]
async fn item3_a_frame_the_client_can_fix_is_refused_without_retry_and_the_socket_stays() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("fixable").await;
    hello(&mut ws).await;
    let mut bad = chunk("fixable", 1);
    bad["sample_rate"] = serde_json::json!(44100);
    let answer = ask(&mut ws, &bad).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert!(answer.get("retry").is_none(), "{answer}");
    let ack = send_chunk(&mut ws, "fixable", 1).await;
    assert_eq!(ack.status, AckStatus::Stored);
}

/// Issue 9, item 10: ids that differ only in case or trailing dots would share one folder of
/// objects on macOS and Windows; the second is refused as a collision and stores nothing.
#[tokio::test]
async fn item10_ids_differing_only_in_case_or_trailing_dots_are_refused_as_colliding() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect("Interview").await;
    hello(&mut ws).await;
    send_chunk(&mut ws, "Interview", 1).await;
    for other in ["interview", "INTERVIEW.", "Interview.."] {
        let mut ws = gw.connect(other).await;
        let answer = ask(&mut ws, &serde_json::json!({"type": "hello"})).await;
        assert_eq!(answer["type"], "error", "{other}: {answer}");
        assert_eq!(
            answer["detail"],
            format!(
                "session id '{other}' is stored under the same name as session 'Interview'; choose another id"
            )
        );
        let (status, _) = gw.get_json(&format!("/v1/sessions/{other}/state")).await;
        assert_eq!(status, 409, "{other}");
    }
    assert!(
        gw.read_object("sessions/Interview/chunks/00000001.pcm")
            .is_some()
    );
    for other in ["interview", "INTERVIEW.", "Interview.."] {
        let key = format!("sessions/{other}/chunks/00000001.pcm");
        assert_eq!(gw.read_object(&key), None, "nothing stored for {other}");
    }
}
