//! Issue 7, as a user meets it from the command line: a two-voice recording streamed by the
//! `recorder-cli` binary into a gateway with nothing configured (so the built-in engine
//! attributes it) ends with two voices and a timeline within the DER target; a name given by
//! hand survives more audio of the same voices, streamed by a second run of the tool.
#![cfg(unix)]

mod e2e_support;

use std::path::Path;

use e2e_support::*;
use serde_json::{Value, json};
use speakers::der::{self, Turn};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../speakers/tests/fixtures/two_voices"
);
const SESSION: &str = "cli-two-voices";

/// Runs `recorder-cli` with `args` to the end and returns what it printed; it must succeed.
async fn cli(args: &[&str]) -> String {
    let output = run_recorder_cli(args).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    format!("{}{stderr}", String::from_utf8_lossy(&output.stdout))
}

/// Streams the fixture into the session from a spool of its own, as fast as it goes, with no
/// resolves asked: the timeline comes from the gateway's own attribution.
async fn stream(base: &str, spool: &Path) {
    let args = [
        "stream",
        "--gateway",
        base,
        "--session",
        SESSION,
        "--input",
        &format!("{FIXTURE}.wav"),
        "--fast",
        "--resolve-every",
        "0",
        "--spool-dir",
        &spool.display().to_string(),
    ];
    cli(&args).await;
}

async fn finalize(base: &str) {
    let args = ["finalize", "--gateway", base, "--session", SESSION];
    let said = cli(&args).await;
    assert!(
        said.contains(&format!(
            "finalized {SESSION}: sessions/{SESSION}/result.json"
        )),
        "{said}"
    );
}

async fn state(base: &str) -> Value {
    reqwest::get(format!("{base}/v1/sessions/{SESSION}/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn turns(value: &Value, speaker_key: &str) -> Vec<Turn> {
    value
        .as_array()
        .expect("a list of turns")
        .iter()
        .map(|t| {
            Turn::new(
                t["start_ms"].as_u64().unwrap(),
                t["end_ms"].as_u64().unwrap(),
                t[speaker_key].as_str().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_voices_streamed_by_the_cli_are_told_apart_and_a_given_name_survives_more_audio() {
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURE}.json")).unwrap()).unwrap();
    let reference = turns(&labels["turns"], "speaker");
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let base = gw.http_url();

    stream(&base, &dir.path().join("spool-1")).await;
    finalize(&base).await;
    let first = state(&base).await;
    let clusters = first["state"]["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2, "{first}");
    // The WAV's seconds, the last one padded to a whole frame.
    let stored_ms = first["ingest"]["last_seq"]
        .as_u64()
        .expect("ingest counters")
        * 1000;
    let wav = hound::WavReader::open(format!("{FIXTURE}.wav")).unwrap();
    let wav_ms = u64::from(wav.duration()) * 1000 / u64::from(wav.spec().sample_rate);
    assert!(stored_ms >= wav_ms && stored_ms < wav_ms + 1000, "{first}");
    assert_eq!(
        first["state"]["attribution"]["through_ms"], stored_ms,
        "every stored second attributed: {first}"
    );
    let hypothesis = turns(&first["state"]["timeline"], "cluster_id");
    let report = der::score(&reference, &hypothesis, 250);
    assert!(report.der() <= 0.15, "DER {:.3}: {report:?}", report.der());

    // The interviewer names the first voice heard, then more of the same conversation comes.
    let named = hypothesis[0].speaker.clone();
    let answer = reqwest::Client::new()
        .put(format!("{base}/v1/sessions/{SESSION}/bindings"))
        .json(&json!({"cluster_id": named, "name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    stream(&base, &dir.path().join("spool-2")).await;
    finalize(&base).await;

    let after = state(&base).await;
    assert_eq!(after["state"]["bindings"][&named], "Ada", "{after}");
    let cluster = after["state"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster_id"] == named.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(cluster["bound_name"], "Ada", "{after}");
    // The second run continued after the first's last second: both passes on one timeline.
    let both: Vec<Turn> = reference
        .iter()
        .cloned()
        .chain(reference.iter().map(|t| {
            Turn::new(
                t.start_ms + stored_ms,
                t.end_ms + stored_ms,
                t.speaker.clone(),
            )
        }))
        .collect();
    let again = turns(&after["state"]["timeline"], "cluster_id");
    let report = der::score(&both, &again, 250);
    assert!(
        report.der() <= 0.15,
        "DER {:.3} over both runs: {report:?}",
        report.der()
    );
    assert_eq!(report.hyp_speakers, 2, "{report:?}");
    gw.shutdown().await.unwrap();
}
