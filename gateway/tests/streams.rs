//! A session's second stream (meeting audio, `?stream=system`) and what a resent seq may and
//! may not do (issue 9 items 1 and 4), on the server gateway. The system stream's own seqs, keys,
//! counters and audio, and the stereo mix, are checked on both hosts by the contract suite
//! (`contract.rs`).

mod support;

use serde_json::Value;
use support::*;

const SESSION: &str = "two-streams";

/// One second whose every sample is `value`.
fn flat(value: i16) -> Vec<u8> {
    value.to_le_bytes().repeat(16_000)
}

async fn wav(gw: &TestGateway, query: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::get(gw.http(&format!("/v1/sessions/{SESSION}/audio.wav{query}")))
        .await
        .unwrap();
    answer_parts(response).await
}

#[tokio::test]
async fn an_unknown_stream_is_refused_before_the_upgrade_and_on_audio() {
    let gw = TestGateway::start().await;
    let url = format!("{}?stream=speaker", gw.ws(SESSION)).replace("ws://", "http://");
    let response = reqwest::Client::new()
        .get(url)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "unknown stream 'speaker': use mic or system"
    );

    let (status, body) = gw
        .get_json(&format!("/v1/sessions/{SESSION}/audio.wav?stream=both"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "unknown stream 'both': use mic or system or mix"
    );
}

#[tokio::test]
async fn a_reused_seq_with_other_audio_is_refused_and_nothing_is_overwritten() {
    let gw = TestGateway::start().await;
    let mut first = gw.connect(SESSION).await;
    for seq in 1..=2 {
        ask(&mut first, &chunk_at(SESSION, seq, 1_000 * seq, &flat(5))).await;
    }
    // A second laptop (or a fresh spool) starts the same session over at seq 1.
    let mut second = gw.connect(SESSION).await;
    let answer = ask(&mut second, &chunk_at(SESSION, 1, 9_000, &flat(6))).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["seq"], 1);
    assert_eq!(
        answer["detail"],
        "seq 1 of the mic stream is already stored with different audio; nothing was overwritten. Continue after last_seq 2"
    );
    assert_eq!(
        gw.read_object(&format!("sessions/{SESSION}/chunks/00000001.pcm"))
            .unwrap(),
        flat(5)
    );
    // The same bytes again are a true duplicate.
    let answer = ask(&mut second, &chunk_at(SESSION, 1, 1_000, &flat(5))).await;
    assert_eq!(
        (
            answer["status"].as_str(),
            answer["duplicate_count"].as_u64()
        ),
        (Some("duplicate"), Some(1))
    );
}

#[tokio::test]
async fn an_unreadable_frame_is_served_as_silence_and_rewritten_by_a_resend() {
    let gw = TestGateway::start().await;
    let mut ws = gw.connect(SESSION).await;
    for seq in 1..=3 {
        ask(
            &mut ws,
            &chunk_at(SESSION, seq, 1_000 * seq, &flat(seq as i16)),
        )
        .await;
    }
    let damaged = format!("sessions/{SESSION}/chunks/00000002.pcm");
    gw.damage_frame(&damaged);
    assert_eq!(
        gw.read_object(&damaged),
        None,
        "a damaged record is no frame"
    );

    let (code, headers, body) = wav(&gw, "").await;
    assert_eq!(code, 200);
    assert_eq!(headers["x-unreadable-seconds"], "1");
    assert_eq!(headers["x-missing-seconds"], "0");
    let expected: Vec<u8> = [flat(1), flat(0), flat(3)].concat();
    assert!(
        body[44..] == expected[..],
        "the whole file, silence for the damaged second"
    );

    let ack = ask(&mut ws, &chunk_at(SESSION, 2, 2_000, &flat(2))).await;
    assert_eq!(ack["status"], "stored", "{ack}");
    assert_eq!(gw.read_object(&damaged).unwrap(), flat(2));
    let (_, headers, body) = wav(&gw, "").await;
    assert_eq!(headers["x-unreadable-seconds"], "0");
    let expected: Vec<u8> = [flat(1), flat(2), flat(3)].concat();
    assert!(body[44..] == expected[..]);
}
