//! The S3 object-store path (DESIGN.md §4, issue 2 item 5) against a real S3-protocol server:
//! moto's `moto_server`, started by the test on a free port. Frames and `result.json` are read
//! back through the S3 API byte for byte, and `audio.wav` is served from the bucket.
//!
//! The gateway reads its S3 settings from the standard `AWS_*` variables, so this file holds a
//! single test that sets them before any other thread exists: environment is per process, and
//! no other test shares this binary.
//!
//! Without a working `moto_server` on PATH the test is skipped with one line on stderr saying
//! why and how to install it (`scripts/test.sh` puts it in a venv), unless `REQUIRE_S3` is set
//! (`.ci/run` sets it): then a server that cannot start is a failure, so CI never passes
//! without having run it.

mod support;

use std::io::Write;

use serde_json::{Value, json};
use support::s3::{S3Server, free_port};
use support::*;

const BUCKET: &str = "interview-test";
const SESSION: &str = "s3-session";

#[test]
fn frames_and_results_go_to_an_s3_bucket_and_come_back() {
    if let Err(reason) = moto_server_runs() {
        let required = std::env::var("REQUIRE_S3").is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required,
            "REQUIRE_S3 is set, but {reason}; {HOW_TO_INSTALL}"
        );
        // Straight to stderr: the test harness captures `eprintln!` of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED s3 test: {reason}; {HOW_TO_INSTALL} (REQUIRE_S3=1 makes this a failure)"
        );
        return;
    }
    let port = free_port();
    // SAFETY: the only thread of this test binary's test is this one, and no runtime or client
    // has started yet, so nothing reads the environment concurrently.
    unsafe {
        std::env::set_var("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"));
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        for stray in [
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
        ] {
            std::env::remove_var(stray);
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(frames_and_results_round_trip(port));
}

async fn frames_and_results_round_trip(port: u16) {
    let s3 = S3Server::start_on(port).await;
    s3.create_bucket(BUCKET).await;
    let mut gw = TestGateway::start_with(|c| c.objects = Some(format!("s3://{BUCKET}"))).await;
    let startup = gw.gateway.as_ref().unwrap().startup_line();
    assert!(
        startup.contains(&format!("storage: s3://{BUCKET}")),
        "{startup}"
    );
    let (code, health) = gw.get_json("/health").await;
    assert_eq!(
        (code, health["storage"].as_str()),
        (200, Some("s3://interview-test"))
    );

    // Five frames, the third arriving late as a gap filler.
    let mut ws = gw.connect(SESSION).await;
    hello(&mut ws).await;
    for seq in [1, 2, 4, 5, 3] {
        let ack = send_chunk(&mut ws, SESSION, seq).await;
        let key = format!("sessions/{SESSION}/chunks/{seq:08}.pcm");
        assert_eq!(ack.key.as_deref(), Some(key.as_str()), "{ack:?}");
    }
    let status = ask(&mut ws, &json!({"type": "status"})).await;
    assert_eq!(status["received_chunks"], 5, "{status}");
    assert_eq!(status["missing_chunks"], 0, "{status}");
    assert_eq!(status["bytes_stored"], 160_000, "{status}");

    // Through the S3 API: exactly the five frame objects, each with its exact bytes.
    let prefix = format!("sessions/{SESSION}/chunks/");
    let keys = s3.list_keys(BUCKET, &prefix).await;
    let expected: Vec<String> = (1..=5).map(|seq| format!("{prefix}{seq:08}.pcm")).collect();
    assert_eq!(keys, expected);
    for seq in 1..=5u64 {
        let key = format!("{prefix}{seq:08}.pcm");
        let bytes = s3
            .get_object(BUCKET, &key)
            .await
            .unwrap_or_else(|code| panic!("{key}: {code}"));
        assert!(bytes == pcm(seq), "{key} holds frame {seq}'s exact bytes");
        assert!(
            !gw.object(&key).exists(),
            "{key} must not be written locally"
        );
    }

    // Finalize writes result.json into the bucket.
    let (code, answer) = gw
        .send_json(
            "POST",
            &format!("/v1/sessions/{SESSION}/finalize"),
            json!({"metadata": {"interviewer": "Ada"}}),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["result_key"],
        format!("sessions/{SESSION}/result.json")
    );
    let result = s3
        .get_object(BUCKET, &format!("sessions/{SESSION}/result.json"))
        .await
        .expect("result.json in the bucket");
    let result: Value = serde_json::from_slice(&result).expect("result.json is JSON");
    assert_eq!(result["session_id"], SESSION);
    assert_eq!(result["ingest"]["received_chunks"], 5);
    assert_eq!(result["metadata"], json!({"interviewer": "Ada"}));
    assert_eq!(result["finalized_at"], answer["finalized_at"]);

    let audio: Vec<u8> = (1..=5).flat_map(pcm).collect();
    assert_wav(&gw, &audio).await;

    // After a restart the frames are still known (duplicates) and still served from the bucket.
    gw.restart().await;
    let mut ws = gw.connect(SESSION).await;
    let again = ask(&mut ws, &chunk(SESSION, 3)).await;
    assert_eq!(
        (again["type"].as_str(), again["status"].as_str()),
        (Some("ack"), Some("duplicate"))
    );
    assert_wav(&gw, &audio).await;

    // History on a bucket: the result is the bucket's bytes; a delete empties the session's
    // prefix (list + bulk delete) and leaves the session list.
    let stored = s3
        .get_object(BUCKET, &format!("sessions/{SESSION}/result.json"))
        .await
        .unwrap();
    let response = reqwest::get(gw.http(&format!("/v1/sessions/{SESSION}/result")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap() == stored);
    drop(ws);
    let deleted = loop {
        // The socket above lets go of the session as its task ends.
        let (code, body) = gw
            .send_json("DELETE", &format!("/v1/sessions/{SESSION}"), Value::Null)
            .await;
        if code != 409 {
            assert_eq!(code, 200, "{body}");
            break body;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(deleted["objects_deleted"], 6, "five frames and the result");
    assert!(
        s3.list_keys(BUCKET, &format!("sessions/{SESSION}/"))
            .await
            .is_empty()
    );
    let (_, list) = gw.get_json("/v1/sessions").await;
    assert_eq!(list["sessions"], json!([]));

    // A bucket that does not exist: the write fails, so there is an error and no ACK, and the
    // session counts nothing.
    let broken = TestGateway::start_with(|c| c.objects = Some("s3://no-such-bucket".into())).await;
    let mut ws = broken.connect("lost").await;
    let answer = ask(&mut ws, &chunk("lost", 1)).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["seq"], 1, "{answer}");
    assert_eq!(
        answer["retry"], true,
        "the bucket, not the frame, is at fault: {answer}"
    );
    // A storage failure closes the socket (1011); the client's next socket finds nothing counted.
    close_frame(&mut ws).await;
    let mut ws = broken.connect("lost").await;
    let status = ask(&mut ws, &json!({"type": "status"})).await;
    assert_eq!(status["received_chunks"], 0, "{status}");
    assert_eq!(status["last_seq"], 0, "{status}");
}

/// What to do when the server is missing, in one line.
const HOW_TO_INSTALL: &str = "install moto's S3 server with `bash scripts/test.sh` (a venv in \
     ~/.cache/interview-recorder/venv) or `python3 -m venv VENV && VENV/bin/pip install \
     'moto[server]>=5,<6'` and put VENV/bin on PATH";

/// Whether `moto_server` starts at all: `moto_server --help` loads moto and its web server
/// (about a second), so a broken install is told apart from a missing one before the test runs.
fn moto_server_runs() -> Result<(), String> {
    match std::process::Command::new("moto_server")
        .arg("--help")
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            Err(format!(
                "moto_server on PATH does not start ({}: {})",
                out.status,
                last.unwrap_or("no output")
            ))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err("moto_server is not on PATH".to_owned())
        }
        Err(err) => Err(format!("moto_server cannot be run ({err})")),
    }
}

/// `GET audio.wav` through the gateway: a 44-byte header, then exactly `pcm`.
async fn assert_wav(gw: &TestGateway, pcm: &[u8]) {
    let response = reqwest::get(gw.http(&format!("/v1/sessions/{SESSION}/audio.wav")))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    assert_eq!(response.headers()["x-missing-seconds"], "0");
    let wav = response.bytes().await.unwrap();
    assert_eq!(wav.len(), 44 + pcm.len());
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes(wav[40..44].try_into().unwrap()) as usize,
        pcm.len()
    );
    assert!(
        wav[44..] == pcm[..],
        "audio.wav data is the frames in seq order"
    );
}
