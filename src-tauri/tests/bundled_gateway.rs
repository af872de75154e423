//! Issue 9, items 7 and 10 on the app's side: the bundled gateway has a key for this launch that
//! only the app's endpoint carries, so a keyless client (a web page, another program) is refused
//! while the app's own uplink and calls work; the recorder's HTTP calls follow no redirects.

// The bundled gateway is part of the app (feature `window`).
#![cfg(feature = "window")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gateway::inference::InferenceMode;
use gateway::server::GatewayConfig;
use recorder::bundled::BundledGateway;
use recorder::endpoint::{CallError, GatewayEndpoint};
use recorder::engine::{self, Recorder, RecorderConfig};
use recorder::source::{InputSpec, Pacing};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const DEADLINE: Duration = Duration::from_secs(20);

async fn bundled(data: &std::path::Path) -> BundledGateway {
    let mut config = GatewayConfig::local(data);
    config.inference_mode = InferenceMode::Off;
    BundledGateway::start(config)
        .await
        .expect("bundled gateway starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_7_the_bundled_gateway_refuses_a_keyless_client_while_the_apps_own_calls_work() {
    let dir = tempfile::tempdir().unwrap();
    let gw = bundled(&dir.path().join("gateway")).await;
    let endpoint = gw.endpoint().clone();
    let key = endpoint
        .api_key()
        .expect("the app's endpoint carries a key");
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");

    // A keyless client: HTTP is 401, a socket is closed on its first message.
    let client = reqwest::Client::new();
    let state = client
        .get(format!("{}/v1/sessions/app/state", gw.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(state.status(), 401);
    let finalize = client
        .post(format!("{}/v1/sessions/app/finalize", gw.http_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(finalize.status(), 401);
    let (mut ws, _) = tokio_tungstenite::connect_async(endpoint.audio_ws("app").as_str())
        .await
        .unwrap();
    ws.send(Message::text(json!({"type": "hello"}).to_string()))
        .await
        .unwrap();
    let mut refused = None;
    while let Some(message) = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap() {
        match message {
            Ok(Message::Text(text)) => {
                let answer: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(answer["type"], "error", "{answer}");
            }
            Ok(Message::Close(frame)) => {
                refused = frame.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(refused, Some(1008));

    // The app's own path: the engine streams a tone through the endpoint and finalizes.
    let mut config = RecorderConfig::new(
        endpoint.clone(),
        "app",
        InputSpec::Tone { freq: 440.0 },
        dir.path().join("spool"),
    );
    config.pacing = Pacing::AsFastAsPossible;
    config.duration = Some(Duration::from_secs(3));
    config.resolve = None;
    let mut recording = Recorder::start(config).unwrap();
    recording.audio_finished().await;
    let summary = recording.stop(DEADLINE).await;
    assert!(summary.drained, "{summary:?}");
    assert_eq!(summary.uplink.stored, 3);
    assert_eq!(summary.uplink.errors, 0);
    let done = engine::finalize(&endpoint, "app").await.unwrap();
    assert_eq!(done.result_key, "sessions/app/result.json");
    let result: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("gateway/objects/sessions/app/result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result["ingest"]["received_chunks"], 3);

    // Each launch has its own key.
    let other = bundled(&dir.path().join("other")).await;
    assert_ne!(other.endpoint().api_key(), Some(key));
    other.shutdown().await.unwrap();
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn item_10_the_recorder_follows_no_redirect() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let elsewhere = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { "{}" }
    });
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_url = format!("http://{}/elsewhere", target.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(target, elsewhere).await });
    let redirect = axum::Router::new().fallback(move || {
        let to = target_url.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [("location", to)],
                "",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirect).await });

    let endpoint = GatewayEndpoint::parse(&base, Some("k".into())).unwrap();
    let answer = endpoint
        .call_session(reqwest::Method::POST, "s", "finalize", &json!({}), DEADLINE)
        .await;
    assert!(
        matches!(answer, Err(CallError::Refused { status: 307, .. })),
        "{answer:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
}

#[tokio::test]
async fn item_10_recorder_cli_reads_its_key_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = GatewayConfig::local(dir.path().join("gateway"));
    config.inference_mode = InferenceMode::Off;
    config.api_key = Some("from-a-file".into());
    let gw = gateway::server::start(config).await.unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "from-a-file\n").unwrap();
    let finalize = |key_file: Option<&std::path::Path>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_recorder-cli"));
        command
            .args(["finalize", "--gateway", &gw.http_url(), "--session", "cli"])
            .env_remove("RECORDER_API_KEY")
            .env_remove("RECORDER_API_KEY_FILE");
        if let Some(path) = key_file {
            command.env("RECORDER_API_KEY_FILE", path);
        }
        command.output()
    };
    let without = finalize(None).await.unwrap();
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("HTTP 401"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let with = finalize(Some(&key_file)).await.unwrap();
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(
        String::from_utf8_lossy(&with.stdout)
            .starts_with("finalized cli: sessions/cli/result.json")
    );
    gw.shutdown().await.unwrap();
}
