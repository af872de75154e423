//! Live speaker resolution through the real gateway to a small inference service that honours
//! the contract; the one-time "unavailable" state when the gateway has none; and the gateway's
//! built-in engine, with nothing configured, telling two recorded voices apart.

mod e2e_support;

use std::time::Duration;

use axum::Json;
use axum::routing::post;
use base64::Engine as _;
use contract::protocol::Decision;
use e2e_support::*;
use gateway::inference::{InferenceConfig, InferenceMode};
use gateway::server::GatewayConfig;
use recorder::endpoint::GatewayEndpoint;
use recorder::engine::{Recorder, RecorderConfig, ResolveSettings};
use recorder::events::Event;
use recorder::source::{InputSpec, Pacing};
use serde_json::{Value, json};

/// Answers every resolve with one cluster; checks the body's shape and reports the audio size
/// as `segment_count` so the test can see what the recorder sent.
async fn inference(Json(body): Json<Value>) -> Json<Value> {
    let audio = &body["audio"];
    assert_eq!(audio["format"], "pcm_s16le");
    assert_eq!(audio["sample_rate"], 16000);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(audio["content_b64"].as_str().unwrap())
        .unwrap();
    let roster = &body["state"]["roster"];
    Json(json!({
        "session_id": body["session_id"],
        "cluster_id": "spk_0",
        "speaker_name": roster[0]["name"],
        "decision": "auto",
        "evidence": {"sv_score": 0.91, "threshold_low": 0.5, "threshold_high": 0.8,
                     "segment_count": bytes.len() / 32000},
        "updated_state": {"clusters": [{"cluster_id": "spk_0", "centroid": [0.1, 0.2],
                          "sample_count": 1}], "bindings": {}, "roster": roster, "config": {}}
    }))
}

fn tone_config(base: &str, dir: &std::path::Path, session: &str) -> RecorderConfig {
    let mut config = RecorderConfig::new(
        GatewayEndpoint::parse(base, None).unwrap(),
        session,
        InputSpec::Tone { freq: 440.0 },
        dir.join("spool"),
    );
    config.pacing = Pacing::RealTime;
    config.resolve = Some(ResolveSettings {
        every: Duration::from_millis(1500),
        window: Duration::from_secs(2),
        roster: vec![contract::protocol::RosterEntry {
            name: "Ada".into(),
            email: None,
        }],
        asr_text: None,
    });
    config
}

/// Waits for the first event `pick` accepts.
async fn next_matching<T>(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(event) = rx.recv().await
                && let Some(found) = pick(event)
            {
                return found;
            }
        }
    })
    .await
    .expect("event within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_the_inference_service_arrive_as_speaker_events() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inference_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/speaker/resolve", post(inference));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut config = GatewayConfig::local(dir.path().join("gateway"));
    config.inference = Some(InferenceConfig {
        base_url: inference_url,
        api_key: None,
        timeout: Duration::from_secs(5),
        resolve_path: "/speaker/resolve".into(),
    });
    let gw = gateway::server::start(config).await.unwrap();

    let handle = Recorder::start(tone_config(&gw.http_url(), dir.path(), "speakers")).unwrap();
    let mut events = handle.subscribe();
    let answer = next_matching(&mut events, |e| match e {
        Event::Speaker(answer) => Some(answer),
        _ => None,
    })
    .await;
    assert_eq!(answer.cluster_id, "spk_0");
    assert_eq!(answer.speaker_name.as_deref(), Some("Ada"));
    assert_eq!(answer.decision, Decision::Auto);
    let seconds = answer.evidence["segment_count"].as_u64().unwrap();
    assert!(
        (1..=2).contains(&seconds),
        "window of at most 2 s, got {seconds}"
    );
    let summary = handle.stop(Duration::from_secs(10)).await;
    assert!(summary.drained);
    let state = gateway_state(&gw.http_url(), "speakers").await;
    assert!(state.event_count >= 1);
    assert_eq!(state.state.clusters[0].cluster_id, "spk_0");
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_inference_is_reported_once_not_every_tick() {
    let dir = tempfile::tempdir().unwrap();
    // `--inference http` with no service URL: the one setup left where /resolve answers 503.
    let mut gateway_config = GatewayConfig::local(dir.path().join("gateway"));
    gateway_config.inference_mode = InferenceMode::Http;
    let gw = gateway::server::start(gateway_config).await.unwrap();
    let mut config = tone_config(&gw.http_url(), dir.path(), "no-inference");
    config.resolve.as_mut().unwrap().every = Duration::from_millis(300);
    let handle = Recorder::start(config).unwrap();
    let mut events = handle.subscribe();
    let detail = next_matching(&mut events, |e| match e {
        Event::ResolveUnavailable { detail } => Some(detail),
        _ => None,
    })
    .await;
    assert!(detail.contains("INFERENCE_BASE_URL"), "{detail}");
    // Several more ticks pass: no second report and no resolve errors.
    let quiet = tokio::time::timeout(Duration::from_millis(1500), async {
        loop {
            match events.recv().await {
                Ok(Event::ResolveUnavailable { .. }) => return "unavailable again",
                Ok(Event::Error { .. }) => return "an error",
                _ => {}
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "got {:?}", quiet.ok());
    handle.stop(Duration::from_secs(10)).await;
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_voice_recording_streamed_into_a_default_gateway_ends_with_two_speakers() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../speakers/tests/fixtures/two_voices"
    );
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{fixture}.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let mut config = RecorderConfig::new(
        GatewayEndpoint::parse(&gw.http_url(), None).unwrap(),
        "two-voices",
        InputSpec::Wav(format!("{fixture}.wav").into()),
        dir.path().join("spool"),
    );
    config.pacing = Pacing::AsFastAsPossible;
    config.resolve = Some(ResolveSettings {
        every: Duration::from_millis(500),
        window: Duration::from_secs(4),
        roster: Vec::new(),
        asr_text: None,
    });
    let mut handle = Recorder::start(config).unwrap();
    let mut events = handle.subscribe();
    // Live answers come from the built-in engine: no inference service was configured.
    let answer = next_matching(&mut events, |e| match e {
        Event::Speaker(answer) => Some(answer),
        _ => None,
    })
    .await;
    assert!(answer.cluster_id.starts_with("spk_"), "{answer:?}");
    handle.audio_finished().await;
    let summary = handle.stop(Duration::from_secs(20)).await;
    assert!(summary.drained);
    let endpoint = GatewayEndpoint::parse(&gw.http_url(), None).unwrap();
    recorder::engine::finalize(&endpoint, "two-voices")
        .await
        .unwrap();

    let state = gateway_state(&gw.http_url(), "two-voices").await;
    assert_eq!(state.state.clusters.len(), 2, "{:?}", state.state);
    let turns = |value: &Value, key: &str| -> Vec<speakers::der::Turn> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                speakers::der::Turn::new(
                    t["start_ms"].as_u64().unwrap(),
                    t["end_ms"].as_u64().unwrap(),
                    t[key].as_str().unwrap(),
                )
            })
            .collect()
    };
    let hypothesis = turns(&state.state.extra["timeline"], "cluster_id");
    let reference = turns(&labels["turns"], "speaker");
    let report = speakers::der::score(&reference, &hypothesis, 250);
    assert!(report.der() <= 0.15, "DER {:.3}: {report:?}", report.der());
    gw.shutdown().await.unwrap();
}
