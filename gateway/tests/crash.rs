//! Durability of the real `gateway` binary: an ACK means the frame and the ingest counters
//! survive `kill -9` (DESIGN.md §3), and SIGTERM stops the server gracefully (§4).
//!
//! A child `gateway serve` is fed frames pipelined (many in flight), killed with SIGKILL after
//! some ACKs, and restarted on the same data directory; twice. Every ACK the client received
//! must then be backed by the stored object and the committed counters; a frame that was in
//! flight may or may not be stored, and re-sending everything unACKed completes the session.
#![cfg(unix)]

mod support;

use gateway::protocol::FRAME_BYTES;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::child::ChildGateway;
use support::kill::stream_until_crash;
use support::*;

/// Frames in the whole session (seconds of audio).
const TOTAL: u64 = 200;
/// ACKs a round waits for before it kills the gateway.
const ACKS_BEFORE_KILL: usize = 25;

// Two threads, so the reader sees the ACKs (and kills) while the writer is still pushing frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_frames_survive_two_sigkills_and_the_session_completes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let session = "crash-1";
    let mut acked = BTreeSet::new();

    let mut gw = ChildGateway::start(&data, dir.path()).await;
    for round in 1..=2 {
        let unacked: Vec<u64> = (1..=TOTAL).filter(|s| !acked.contains(s)).collect();
        let before = acked.len();
        let outcome = stream_until_crash(&mut gw, session, unacked, ACKS_BEFORE_KILL).await;
        assert!(
            outcome.never_acked > 0,
            "round {round}: the kill should land with frames in flight"
        );
        acked.extend(outcome.acks.iter().map(|ack| ack.seq));
        eprintln!(
            "round {round}: {} ACKs ({} stored, {} duplicate), {} frames sent but never ACKed",
            outcome.acks.len(),
            outcome.acks.iter().filter(|a| a.key.is_some()).count(),
            outcome.acks.iter().filter(|a| a.key.is_none()).count(),
            outcome.never_acked
        );
        assert!(
            acked.len() >= before + ACKS_BEFORE_KILL,
            "round {round}: {} new ACKs",
            acked.len() - before
        );

        gw = ChildGateway::start(&data, dir.path()).await;
        assert_acked_frames_are_durable(&gw, session, &acked).await;
    }

    // Re-send everything still unACKed: each is stored now, or was stored by a frame that was in
    // flight at a kill (then it is a duplicate); either way the session ends complete.
    let rest: Vec<u64> = (1..=TOTAL).filter(|s| !acked.contains(s)).collect();
    let mut ws = connect(&gw.ws(session)).await;
    for &seq in &rest {
        let ack = send_chunk(&mut ws, session, seq).await;
        assert_eq!(ack.seq, seq);
    }
    let ingest = ingest_status(&gw, session).await;
    assert_eq!(ingest["received_chunks"], TOTAL, "{ingest}");
    assert_eq!(ingest["last_seq"], TOTAL, "{ingest}");
    assert_eq!(ingest["missing_chunks"], 0, "{ingest}");
    assert_eq!(
        ingest["bytes_stored"],
        TOTAL * FRAME_BYTES as u64,
        "{ingest}"
    );

    let response = reqwest::get(gw.http(&format!("/v1/sessions/{session}/audio.wav")))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-missing-seconds"], "0");
    let wav = response.bytes().await.unwrap();
    let expected: Vec<u8> = (1..=TOTAL).flat_map(pcm).collect();
    assert_eq!(wav.len(), 44 + expected.len());
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(&wav[36..40], b"data");
    assert_eq!(
        u32::from_le_bytes(wav[40..44].try_into().unwrap()) as usize,
        expected.len()
    );
    assert!(
        wav[44..] == expected[..],
        "audio.wav data is every frame's PCM in seq order"
    );

    let finalize = reqwest::Client::new()
        .post(gw.http(&format!("/v1/sessions/{session}/finalize")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(finalize.status().as_u16(), 200);
    let result: Value =
        serde_json::from_slice(&gw.read_object("sessions/crash-1/result.json").unwrap()).unwrap();
    assert_eq!(result["ingest"]["received_chunks"], TOTAL);
    assert_eq!(result["ingest"]["missing_chunks"], 0);
}

#[tokio::test]
async fn sigterm_stops_the_gateway_gracefully_with_a_socket_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut gw = ChildGateway::start(&data, dir.path()).await;
    let mut ws = connect(&gw.ws("term")).await;
    hello(&mut ws).await;
    assert_eq!(send_chunk(&mut ws, "term", 1).await.last_seq, 1);

    gw.signal(libc::SIGTERM);
    let frame = close_frame(&mut ws)
        .await
        .expect("the server closes the open socket");
    assert_eq!(u16::from(frame.code), 1001, "going away: {frame:?}");
    let status = gw.exited().await;
    assert!(status.success(), "{status:?}; log:\n{}", gw.log());
    assert!(gw.log().contains("gateway stopping"), "{}", gw.log());

    // What was ACKed before the stop is there after it.
    let gw = ChildGateway::start(&data, dir.path()).await;
    let ingest = ingest_status(&gw, "term").await;
    assert_eq!(
        (
            ingest["received_chunks"].as_u64(),
            ingest["last_seq"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        gw.read_object("sessions/term/chunks/00000001.pcm").unwrap(),
        pcm(1)
    );
}

/// After a restart: the counters cover every ACKed frame, each ACKed frame's object holds its
/// exact bytes, every frame object present is whole, and re-sending an ACKed frame is a duplicate.
async fn assert_acked_frames_are_durable(gw: &ChildGateway, session: &str, acked: &BTreeSet<u64>) {
    let ingest = ingest_status(gw, session).await;
    let received = ingest["received_chunks"].as_u64().unwrap();
    eprintln!(
        "after restart: {received} frames counted, {} ACKed",
        acked.len()
    );
    assert!(
        received >= acked.len() as u64,
        "{ingest} vs {} ACKed",
        acked.len()
    );
    assert!(
        ingest["last_seq"].as_u64().unwrap() >= *acked.last().unwrap(),
        "{ingest}"
    );
    assert_eq!(
        ingest["bytes_stored"],
        received * FRAME_BYTES as u64,
        "{ingest}"
    );

    for &seq in acked {
        let key = format!("sessions/{session}/chunks/{seq:08}.pcm");
        let bytes = gw
            .read_object(&key)
            .unwrap_or_else(|| panic!("{key} is stored"));
        assert!(bytes == pcm(seq), "{key} holds frame {seq}'s exact bytes");
    }
    // A kill may leave an object whose counters were not committed, never a torn one.
    let mut objects = 0u64;
    let last = ingest["last_seq"]
        .as_u64()
        .unwrap()
        .max(*acked.last().unwrap());
    for seq in 1..=TOTAL.max(last) {
        let key = format!("sessions/{session}/chunks/{seq:08}.pcm");
        if let Some(bytes) = gw.read_object(&key) {
            assert!(bytes == pcm(seq), "{key} is whole");
            objects += 1;
        }
    }
    assert!(
        objects >= received,
        "{objects} objects for {received} counted frames"
    );

    let mut ws = connect(&gw.ws(session)).await;
    for &seq in acked {
        let answer = ask(&mut ws, &chunk(session, seq)).await;
        assert_eq!(answer["type"], "ack", "{answer}");
        assert_eq!(answer["seq"], seq, "{answer}");
        assert_eq!(answer["status"], "duplicate", "{answer}");
        assert!(answer.get("key").is_none(), "{answer}");
    }
    let after = ingest_status(gw, session).await;
    assert_eq!(
        after["received_chunks"], received,
        "duplicates store nothing: {after}"
    );
}

/// `GET /v1/sessions/{id}/state` → its `ingest` object.
async fn ingest_status(gw: &ChildGateway, session: &str) -> Value {
    let response = reqwest::get(gw.http(&format!("/v1/sessions/{session}/state")))
        .await
        .expect("GET state");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["session_id"], session);
    assert!(body["ingest"].is_object(), "{body}");
    body["ingest"].clone()
}
