//! The built-in speaker engine, end to end through a real gateway with no inference service
//! configured: resolve answers, the timeline of stored audio, names, bad input, a broken model,
//! and the engine as an inference service of its own.
//!
//! The audio is `speakers/tests/fixtures/two_voices.wav`: two synthetic voices taking turns,
//! with labels, and `four_voices_31s.wav`, where two alike voices share a cluster until the
//! engine splits it (see that folder's README).

mod support;

use base64::Engine as _;
use gateway::inference::InferenceMode;
use serde_json::{Value, json};
use speakers::der::{self, Turn};
use support::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../speakers/tests/fixtures/two_voices"
);

/// The fixture's PCM (16 kHz mono s16le) and its labelled turns.
fn two_voices() -> (Vec<u8>, Vec<Turn>) {
    fixture(FIXTURE)
}

/// The fixture at `path` (without extension): its PCM and its labelled turns.
fn fixture(path: &str) -> (Vec<u8>, Vec<Turn>) {
    let mut reader = hound::WavReader::open(format!("{path}.wav")).unwrap();
    let pcm: Vec<u8> = reader
        .samples::<i16>()
        .flat_map(|s| s.unwrap().to_le_bytes())
        .collect();
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{path}.json")).unwrap()).unwrap();
    let turns = labels["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            Turn::new(
                t["start_ms"].as_u64().unwrap(),
                t["end_ms"].as_u64().unwrap(),
                t["speaker"].as_str().unwrap(),
            )
        })
        .collect();
    (pcm, turns)
}

/// Bytes of the fixture from `from_ms` to `to_ms`.
fn slice(pcm: &[u8], from_ms: u64, to_ms: u64) -> &[u8] {
    let at = |ms: u64| ((ms * 32) as usize).min(pcm.len());
    &pcm[at(from_ms)..at(to_ms)]
}

fn resolve_body(pcm: &[u8], asr_text: Option<&str>, roster: &[&str]) -> Value {
    let mut body = json!({"audio": {
        "content_b64": base64::engine::general_purpose::STANDARD.encode(pcm),
        "format": "pcm_s16le", "sample_rate": 16000, "channels": 1,
    }});
    if let Some(text) = asr_text {
        body["asr_text"] = json!(text);
    }
    if !roster.is_empty() {
        body["roster"] = json!(
            roster
                .iter()
                .map(|n| json!({"name": n}))
                .collect::<Vec<_>>()
        );
    }
    body
}

async fn resolve(gw: &TestGateway, session: &str, body: Value) -> (u16, Value) {
    gw.send_json("POST", &format!("/v1/sessions/{session}/resolve"), body)
        .await
}

/// Streams `pcm` as frames `first_seq..` (the last one padded with silence).
async fn stream(gw: &TestGateway, session: &str, pcm: &[u8], first_seq: u64) -> u64 {
    stream_to(&gw.ws(session), session, pcm, first_seq).await
}

/// As [`stream`], on the socket at `url` (a stream other than the mic).
async fn stream_to(url: &str, session: &str, pcm: &[u8], first_seq: u64) -> u64 {
    let mut socket = connect(url).await;
    hello(&mut socket).await;
    let mut seq = first_seq;
    for frame in pcm.chunks(32_000) {
        let mut frame = frame.to_vec();
        frame.resize(32_000, 0);
        let ack = ask(&mut socket, &chunk_with(session, seq, &frame)).await;
        assert_eq!(ack["status"], "stored", "{ack}");
        seq += 1;
    }
    seq - 1
}

fn timeline(state: &Value) -> Vec<Turn> {
    state["state"]["timeline"]
        .as_array()
        .map(|turns| {
            turns
                .iter()
                .map(|t| {
                    Turn::new(
                        t["start_ms"].as_u64().unwrap(),
                        t["end_ms"].as_u64().unwrap(),
                        t["cluster_id"].as_str().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn health_names_the_builtin_engine_when_no_service_is_configured() {
    let gw = TestGateway::start().await;
    let (code, health) = gw.get_json("/health").await;
    assert_eq!(code, 200);
    assert_eq!(health["inference_configured"], true);
    assert_eq!(health["inference"]["engine"], "builtin");
    assert_eq!(health["inference"]["available"], true);
    let line = gw.gateway.as_ref().unwrap().startup_line();
    assert!(
        line.contains("| inference: builtin (GE2E d-vector"),
        "{line}"
    );
}

#[tokio::test]
async fn resolve_tells_two_voices_apart_and_knows_the_first_again() {
    let gw = TestGateway::start().await;
    let (pcm, _) = two_voices();
    let (code, first) = resolve(&gw, "r", resolve_body(slice(&pcm, 0, 4300), None, &[])).await;
    assert_eq!(code, 200, "{first}");
    let (_, second) = resolve(&gw, "r", resolve_body(slice(&pcm, 4400, 8400), None, &[])).await;
    let (_, third) = resolve(&gw, "r", resolve_body(slice(&pcm, 8400, 12800), None, &[])).await;
    assert_eq!(first["cluster_id"], "spk_1", "{first}");
    assert_eq!(first["decision"], "unknown");
    assert_ne!(second["cluster_id"], first["cluster_id"], "{second}");
    assert_eq!(third["cluster_id"], first["cluster_id"], "{third}");
    let score = third["evidence"]["sv_score"].as_f64().unwrap();
    assert!(score > 0.7, "the same voice scores {score}");
    assert_eq!(
        third["evidence"]["threshold_high"].as_f64().unwrap() as f32,
        0.82
    );
    assert_eq!(
        third["updated_state"]["clusters"].as_array().unwrap().len(),
        2
    );
    let (_, state) = gw.get_json("/v1/sessions/r/state").await;
    assert_eq!(state["event_count"], 3);
    assert_eq!(state["state"], third["updated_state"]);
}

#[tokio::test]
async fn a_self_introduction_names_the_voice_and_a_manual_name_is_never_overwritten() {
    let gw = TestGateway::start().await;
    let (pcm, _) = two_voices();
    let roster = ["Ada Lovelace", "Grace Hopper"];
    let body = resolve_body(slice(&pcm, 0, 4300), Some("Hello, I'm Ada."), &roster);
    let (code, answer) = resolve(&gw, "n", body).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["speaker_name"], "Ada Lovelace");
    assert_eq!(answer["decision"], "auto");
    assert_eq!(answer["evidence"]["name_hit"], true);
    let cluster = answer["cluster_id"].as_str().unwrap().to_owned();
    assert_eq!(
        answer["updated_state"]["bindings"][&cluster],
        "Ada Lovelace"
    );

    // The interviewer corrects it; the voice introducing itself again changes nothing.
    let (code, _) = gw
        .send_json(
            "PUT",
            "/v1/sessions/n/bindings",
            json!({"cluster_id": cluster, "name": "Grace Hopper"}),
        )
        .await;
    assert_eq!(code, 200);
    let body = resolve_body(slice(&pcm, 8400, 12800), Some("I'm Ada"), &roster);
    let (_, again) = resolve(&gw, "n", body).await;
    assert_eq!(again["cluster_id"], cluster.as_str());
    assert_eq!(again["speaker_name"], "Grace Hopper", "{again}");
    assert_eq!(again["decision"], "confirm");
    assert_eq!(again["updated_state"]["bindings"][&cluster], "Grace Hopper");
}

#[tokio::test]
async fn unusable_audio_is_refused_as_the_service_would_and_changes_nothing() {
    let gw = TestGateway::start().await;
    let silence = vec![0u8; 32_000 * 5];
    let long = vec![0u8; 32_000 * 31];
    // A stranger's format is echoed cut to 32 characters (the fuzz target `speaker_audio`).
    let cut_format = format!(
        "audio.format must be pcm_s16le or wav, not '{}'",
        "x".repeat(32)
    );
    let cases = [
        (resolve_body(&silence, None, &[]), 422, "no speech detected"),
        (
            resolve_body(&long, None, &[]),
            413,
            "audio is longer than 30 s",
        ),
        (
            json!({"audio": {"content_b64": "@@not base64@@", "format": "pcm_s16le"}}),
            422,
            "audio.content_b64 is not valid base64",
        ),
        (
            json!({"audio": {"content_b64": "AAAA", "format": "mp3"}}),
            422,
            "audio.format must be pcm_s16le or wav, not 'mp3'",
        ),
        (
            json!({"audio": {"content_b64": "AAAA", "format": "x".repeat(10_000)}}),
            422,
            cut_format.as_str(),
        ),
        (
            json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le", "sample_rate": 44100}}),
            422,
            "pcm_s16le audio must be 16000 Hz mono",
        ),
    ];
    for (body, status, detail) in cases {
        let (code, answer) = resolve(&gw, "bad", body).await;
        assert_eq!(code, 502, "{answer}");
        assert_eq!(
            answer["detail"],
            format!("inference backend returned {status}")
        );
        assert_eq!(answer["backend_status"], status);
        let backend: Value =
            serde_json::from_str(answer["backend_body"].as_str().unwrap()).unwrap();
        assert!(
            backend["detail"].as_str().unwrap().starts_with(detail),
            "{answer}"
        );
    }
    let (_, state) = gw.get_json("/v1/sessions/bad/state").await;
    assert_eq!(state["event_count"], 0);
    assert_eq!(state["state"]["clusters"], json!([]));
}

#[tokio::test]
async fn a_broken_model_file_is_reported_and_resolve_answers_503() {
    let data = tempfile::tempdir().unwrap();
    let model = data.path().join("broken.safetensors");
    std::fs::write(&model, b"not a model").unwrap();
    let gw = TestGateway::start_with(|c| {
        c.inference_mode = InferenceMode::Builtin;
        c.speaker_model = Some(model.clone());
    })
    .await;
    let (_, health) = gw.get_json("/health").await;
    assert_eq!(health["inference"]["available"], false);
    assert!(
        health["inference"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("speaker model is not a valid safetensors file"),
        "{health}"
    );
    let line = gw.gateway.as_ref().unwrap().startup_line();
    assert!(
        line.contains("inference: builtin unavailable: speaker model is not a valid"),
        "{line}"
    );
    let (pcm, _) = two_voices();
    let (code, answer) = resolve(&gw, "m", resolve_body(slice(&pcm, 0, 4000), None, &[])).await;
    assert_eq!(code, 503, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .starts_with("the built-in speaker engine is unavailable")
    );
    // Audio is still taken.
    assert_eq!(stream(&gw, "m", slice(&pcm, 0, 2000), 1).await, 2);
}

#[tokio::test]
async fn the_engine_answers_the_inference_contract_as_a_service() {
    let gw = TestGateway::start().await;
    let (pcm, _) = two_voices();
    let mut body = resolve_body(slice(&pcm, 0, 4300), None, &[]);
    body["session_id"] = json!("svc");
    body["state"] = json!({"clusters": [], "bindings": {}, "config": {}});
    let (code, answer) = gw.send_json("POST", "/speaker/resolve", body).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["session_id"], "svc");
    assert_eq!(answer["cluster_id"], "spk_1");
    assert_eq!(
        answer["updated_state"]["clusters"][0]["centroid"]
            .as_array()
            .unwrap()
            .len(),
        256
    );
    let mut silent = resolve_body(&[0u8; 64_000], None, &[]);
    silent["session_id"] = json!("svc");
    let (code, answer) = gw.send_json("POST", "/speaker/resolve", silent).await;
    assert_eq!(
        (code, answer),
        (422, json!({"detail": "no speech detected"}))
    );
    let (_, state) = gw.get_json("/v1/sessions/svc/state").await;
    assert_eq!(
        state["event_count"], 0,
        "the service keeps no session state"
    );
}

#[tokio::test]
async fn stored_audio_is_attributed_into_a_timeline_and_a_rename_survives_more_audio() {
    let gw = TestGateway::start().await;
    let (pcm, labels) = two_voices();
    let last = stream(&gw, "t", &pcm, 1).await;
    let (code, _) = gw
        .send_json("POST", "/v1/sessions/t/finalize", json!({}))
        .await;
    assert_eq!(code, 200);
    let (_, state) = gw.get_json("/v1/sessions/t/state").await;
    let turns = timeline(&state);
    let clusters = state["state"]["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2, "{state}");
    assert_eq!(state["state"]["attribution"]["through_ms"], last * 1000);
    let report = der::score(&labels, &turns, 250);
    assert!(
        report.der() <= 0.15,
        "DER {:.3}: {report:?}\n{turns:?}",
        report.der()
    );
    assert!(turns.iter().all(|t| t.end_ms <= last * 1000));
    let result: Value =
        serde_json::from_slice(&std::fs::read(gw.object("sessions/t/result.json")).unwrap())
            .unwrap();
    assert_eq!(result["state"]["timeline"], state["state"]["timeline"]);

    // Name the first voice, then the same conversation again: the name stays, and the new
    // audio is attributed to the same two voices.
    let first = turns[0].speaker.clone();
    let (code, _) = gw
        .send_json(
            "PUT",
            "/v1/sessions/t/bindings",
            json!({"cluster_id": first, "name": "Ada"}),
        )
        .await;
    assert_eq!(code, 200);
    let end = stream(&gw, "t", &pcm, last + 1).await;
    gw.send_json("POST", "/v1/sessions/t/finalize", json!({}))
        .await;
    let (_, state) = gw.get_json("/v1/sessions/t/state").await;
    let named = state["state"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster_id"] == first.as_str())
        .unwrap()
        .clone();
    assert_eq!(named["bound_name"], "Ada", "{state}");
    assert_eq!(state["state"]["bindings"][&first], "Ada");
    let again = timeline(&state);
    let offset = last * 1000;
    let shifted: Vec<Turn> = labels
        .iter()
        .map(|t| Turn::new(t.start_ms + offset, t.end_ms + offset, t.speaker.clone()))
        .chain(labels.iter().cloned())
        .collect();
    let report = der::score(&shifted, &again, 250);
    assert!(
        report.der() <= 0.15,
        "DER {:.3} over both passes",
        report.der()
    );
    assert_eq!(report.hyp_speakers, 2);
    assert_eq!(state["state"]["attribution"]["through_ms"], end * 1000);
}

/// The cluster of the timeline's turn that covers `ms`.
fn cluster_at(turns: &[Turn], ms: u64) -> Option<&str> {
    turns
        .iter()
        .find(|t| t.start_ms <= ms && ms < t.end_ms)
        .map(|t| t.speaker.as_str())
}

#[tokio::test]
async fn turns_already_on_the_timeline_move_with_their_voice_when_a_cluster_splits() {
    let gw = TestGateway::start().await;
    let (pcm, labels) = fixture(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../speakers/tests/fixtures/four_voices_31s"
    ));
    // The first 12 s (voice a, then voice d, alike enough to share a cluster online) are
    // attributed and on the timeline before the rest is heard.
    let first = stream(&gw, "split", slice(&pcm, 0, 12_000), 1).await;
    gw.send_json("POST", "/v1/sessions/split/finalize", json!({}))
        .await;
    let (_, state) = gw.get_json("/v1/sessions/split/state").await;
    let early = timeline(&state);
    let shared = cluster_at(&early, 2_000)
        .expect("voice a attributed")
        .to_owned();
    assert_eq!(
        cluster_at(&early, 6_900),
        Some(shared.as_str()),
        "online, voices a and d share a cluster: {early:?}"
    );
    let (code, _) = gw
        .send_json(
            "PUT",
            "/v1/sessions/split/bindings",
            json!({"cluster_id": shared, "name": "Ada"}),
        )
        .await;
    assert_eq!(code, 200);

    // The rest: voice d's next turn and more of voice a show the cluster to hold two voices.
    stream(&gw, "split", slice(&pcm, 12_000, 31_000), first + 1).await;
    gw.send_json("POST", "/v1/sessions/split/finalize", json!({}))
        .await;
    let (_, state) = gw.get_json("/v1/sessions/split/state").await;
    let turns = timeline(&state);
    let clusters = state["state"]["clusters"].as_array().unwrap();
    // The split gave voices a and d a cluster each, and the turns heard before it followed
    // their voice: each voice's turns, early and late, carry one label, not the other's.
    let label_of = |speaker: &str, ms: u64| {
        assert!(
            labels
                .iter()
                .any(|t| t.speaker == speaker && t.start_ms <= ms && ms < t.end_ms),
            "{speaker} speaks at {ms} ms"
        );
        cluster_at(&turns, ms).unwrap_or_else(|| panic!("no turn at {ms} ms: {turns:?}"))
    };
    let a = label_of("a", 29_800);
    for ms in [1_000, 3_000, 5_000, 9_000] {
        assert_eq!(label_of("a", ms), a, "voice a at {ms} ms: {turns:?}");
    }
    let d = label_of("d", 13_000);
    assert_ne!(a, d, "{turns:?}");
    assert_eq!(
        label_of("d", 6_900),
        d,
        "voice d's turn before the split moved with it: {turns:?}"
    );
    // The interviewer's name stays where it was put; no automatic decision moved it.
    let named = clusters
        .iter()
        .find(|c| c["cluster_id"] == shared.as_str())
        .expect("the named cluster is kept");
    assert_eq!(named["bound_name"], "Ada", "{state}");
    assert_eq!(state["state"]["bindings"][&shared], "Ada");
    let names = clusters.iter().filter(|c| c["bound_name"] == "Ada").count();
    assert_eq!(names, 1, "the new cluster does not take the name");
}

/// `pcm` with every labelled turn of `speaker` silenced.
fn without(pcm: &[u8], labels: &[Turn], speaker: &str) -> Vec<u8> {
    let mut out = pcm.to_vec();
    for turn in labels.iter().filter(|t| t.speaker == speaker) {
        let at = |ms: u64| ((ms * 32) as usize).min(out.len());
        let (from, to) = (at(turn.start_ms), at(turn.end_ms));
        out[from..to].fill(0);
    }
    out
}

#[tokio::test]
async fn each_stream_is_diarized_on_its_own_and_the_mic_is_the_interviewer() {
    let gw = TestGateway::start().await;
    let (pcm, labels) = two_voices();
    // A remote interview: voice a on the microphone, voice b in the meeting audio.
    stream(&gw, "split", &without(&pcm, &labels, "b"), 1).await;
    let system_url = format!("{}?stream=system", gw.ws("split"));
    let last = stream_to(&system_url, "split", &without(&pcm, &labels, "a"), 1).await;
    let (code, _) = gw
        .send_json("POST", "/v1/sessions/split/finalize", json!({}))
        .await;
    assert_eq!(code, 200);
    let (_, state) = gw.get_json("/v1/sessions/split/state").await;
    let clusters = state["state"]["clusters"].as_array().unwrap();
    let of = |stream: &str| -> Vec<&Value> {
        clusters.iter().filter(|c| c["stream"] == stream).collect()
    };
    assert_eq!(of("mic").len(), 1, "{state}");
    assert_eq!(of("system").len(), 1, "{state}");
    assert_eq!(of("mic")[0]["role"], "interviewer");
    assert_eq!(of("system")[0]["role"], "remote");
    let remote = of("system")[0]["cluster_id"].as_str().unwrap().to_owned();
    assert!(remote.starts_with("sys_"), "{remote}");
    assert_eq!(
        state["state"]["attribution"]["streams"]["system"]["through_ms"],
        last * 1000
    );
    let turns = state["state"]["timeline"].as_array().unwrap();
    assert!(
        turns
            .iter()
            .all(|t| (t["stream"] == "system") == (t["cluster_id"] == remote.as_str())),
        "a stream's turns name only its own voices: {turns:?}"
    );
    let report = der::score(&labels, &timeline(&state), 250);
    assert!(report.der() <= 0.15, "DER {:.3}: {report:?}", report.der());
}

#[tokio::test]
async fn meeting_audio_leaking_into_the_mic_is_not_attributed_to_the_interviewer() {
    let gw = TestGateway::start().await;
    let (pcm, labels) = two_voices();
    let remote = without(&pcm, &labels, "a");
    // No headphones: the remote voice comes out of the speakers and back into the mic 40 ms
    // later at half the level (-6 dB against the interviewer's voice).
    let own = without(&pcm, &labels, "b");
    let delay = 40 * 32;
    let mic: Vec<u8> = own
        .chunks_exact(2)
        .enumerate()
        .flat_map(|(i, s)| {
            let echo = (i * 2)
                .checked_sub(delay)
                .map_or(0, |at| i16::from_le_bytes([remote[at], remote[at + 1]]) / 2);
            i16::from_le_bytes([s[0], s[1]])
                .saturating_add(echo)
                .to_le_bytes()
        })
        .collect();
    stream(&gw, "echo", &mic, 1).await;
    let system_url = format!("{}?stream=system", gw.ws("echo"));
    stream_to(&system_url, "echo", &remote, 1).await;
    gw.send_json("POST", "/v1/sessions/echo/finalize", json!({}))
        .await;
    let (_, state) = gw.get_json("/v1/sessions/echo/state").await;
    let turns = state["state"]["timeline"].as_array().unwrap();
    // Remote speech (b's labelled turns) covered by turns on the mic.
    let overlap = |start: u64, end: u64| -> u64 {
        labels
            .iter()
            .filter(|l| l.speaker == "b")
            .map(|l| end.min(l.end_ms).saturating_sub(start.max(l.start_ms)))
            .sum()
    };
    let on_mic: u64 = turns
        .iter()
        .filter(|t| t["stream"] == "mic")
        .map(|t| {
            overlap(
                t["start_ms"].as_u64().unwrap(),
                t["end_ms"].as_u64().unwrap(),
            )
        })
        .sum();
    let remote_ms: u64 = labels
        .iter()
        .filter(|l| l.speaker == "b")
        .map(|l| l.end_ms - l.start_ms)
        .sum();
    eprintln!("remote speech attributed to the mic: {on_mic} ms of {remote_ms} ms");
    assert!(
        on_mic * 10 <= remote_ms,
        "{on_mic} ms of {remote_ms} ms of remote speech attributed to the mic: {turns:?}"
    );
    let mic_voices = state["state"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["stream"] == "mic")
        .count();
    assert_eq!(
        mic_voices, 1,
        "the echo is no second voice on the mic: {state}"
    );
}
