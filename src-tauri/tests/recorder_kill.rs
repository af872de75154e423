//! The recorder process killed with SIGKILL mid-stream and started again with the same session
//! and spool: the gateway ends up with every frame, byte-identical to the local copy.

mod e2e_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contract::protocol::FRAME_BYTES;
use e2e_support::*;

fn recorder_cli(
    gateway: &str,
    wav: &std::path::Path,
    spool: &std::path::Path,
    pace: &str,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_recorder-cli"))
        .args([
            "stream",
            "--gateway",
            gateway,
            "--session",
            "killme",
            "--input",
        ])
        .arg(wav)
        .arg(pace)
        .args(["--resolve-every", "0", "--spool-dir"])
        .arg(spool)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("recorder-cli starts")
}

/// Waits for the child to exit within `deadline`.
async fn exit_within(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < deadline,
            "recorder-cli still running after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_recorder_resumes_its_spool_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let wav = write_wav(&dir.path().join("talk.wav"), 12);
    let spool = dir.path().join("spool");
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let base = gw.http_url();

    // Run 1, in real time: killed once the gateway has stored four frames.
    let mut first = recorder_cli(&base, &wav, &spool, "--realtime");
    wait_until("four stored frames", Duration::from_secs(30), || async {
        let state = gateway_state(&base, "killme").await;
        state.ingest.is_some_and(|i| i.status.received_chunks >= 4)
    })
    .await;
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let spool_meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spool.join("killme/spool.json")).unwrap()).unwrap();
    let resumed_at = spool_meta["next_seq"].as_u64().unwrap();
    assert!(
        resumed_at >= 5,
        "run 1 framed at least 4 frames: {spool_meta}"
    );

    // Run 2, as fast as possible: sends what run 1 left, then the whole file again.
    let mut second = recorder_cli(&base, &wav, &spool, "--fast");
    let status = exit_within(&mut second, Duration::from_secs(60)).await;
    let mut out = String::new();
    std::io::Read::read_to_string(second.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(status.success(), "second run: {status}, {out}");

    let local = wav_pcm(&spool.join("killme/local.wav"));
    assert_eq!(
        local.len() as u64,
        (resumed_at - 1) * FRAME_BYTES as u64 + 12 * 32_000
    );
    let (remote, missing) = gateway_pcm(&base, "killme").await;
    assert_eq!(missing, 0);
    assert_same_audio(&remote, &local);
    let ingest = gateway_state(&base, "killme").await.ingest.unwrap().status;
    assert_eq!(ingest.missing_chunks, 0);
    assert_eq!(ingest.last_seq, resumed_at - 1 + 12);
    println!("killed after seq {}; second run: {out}", resumed_at - 1);
    gw.shutdown().await.unwrap();
}
