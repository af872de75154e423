//! Issue 11, item 12: `recorder-cli` as a command-line tool. Its live line is for terminals
//! only (a log file gets plain lines), and a second Ctrl-C while it waits for the gateway stops
//! it at once, leaving the unsent frames in the spool.
#![cfg(unix)]

mod e2e_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e_support::*;

const CLI: &str = RECORDER_CLI;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_the_counters_are_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let base = gw.http_url();
    let spool = dir.path().join("spool");
    let output = run_recorder_cli([
        "stream",
        "--gateway",
        &base,
        "--session",
        "plain",
        "--input",
        "tone:440",
        "--duration",
        "3",
        "--fast",
        "--resolve-every",
        "0",
        "--spool-dir",
        &spool.display().to_string(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "no terminal control codes in a pipe: {stderr:?}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("sent 3 acked 3 pending 0")),
        "the final counters on a line of their own: {stderr}"
    );
    gw.shutdown().await.unwrap();
}

#[test]
fn a_second_ctrl_c_stops_waiting_for_the_gateway_and_keeps_the_frames_in_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    // A gateway address nobody listens on: every frame stays held.
    let unreachable = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let spool = dir.path().join("spool");
    let mut child = Command::new(CLI)
        .args(["stream", "--gateway", &unreachable, "--session", "held"])
        .args(["--input", "tone:440", "--duration", "600"])
        .args([
            "--resolve-every",
            "0",
            "--drain-timeout",
            "600",
            "--spool-dir",
        ])
        .arg(&spool)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder-cli starts");
    let (lines, seen) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = lines.send(line.unwrap_or_default());
        }
    });
    let pid = child.id().to_string();
    let interrupt = || {
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success());
    };
    let wait_for = |text: &str| -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = seen.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(text);
                got.push(line);
                if found {
                    return got;
                }
            }
        }
        panic!("no line with {text:?} in 30 s; got {got:?}");
    };

    // Recording until two frames are held, then the first Ctrl-C: stop recording and wait
    // for the gateway.
    let frames = spool.join("held/frames");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&frames).map_or(0, |d| d.count()) < 2 {
        assert!(Instant::now() < deadline, "no frames held after 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    interrupt();
    wait_for("stopping");
    // The second: stop waiting. Sent again until it lands, in case it came before the wait
    // began listening for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        interrupt();
        std::thread::sleep(Duration::from_millis(200));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running after a second Ctrl-C"
        );
    };
    assert_eq!(status.code(), Some(130), "{status:?}");
    let said = wait_for("frames stay in the spool");
    assert!(
        said.last()
            .unwrap()
            .contains("recorder-cli send --session held"),
        "{said:?}"
    );
    let held = std::fs::read_dir(&frames).unwrap().count();
    assert!(held >= 2, "{held} frames in the spool");
}

/// A file cut short (its header promises 4 s, 2.5 s are there): the input fails mid-recording,
/// which a script sees in exit code 4 and the words, and what was read before the failure
/// still reached the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_that_fails_mid_recording_exits_4_after_delivering_what_it_gave() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let wav = write_wav(&dir.path().join("cut.wav"), 4);
    // 48 kHz stereo 16-bit: 192,000 bytes a second after the 44-byte header.
    let file = std::fs::OpenOptions::new().write(true).open(&wav).unwrap();
    file.set_len(44 + 192_000 * 5 / 2 + 1).unwrap();
    drop(file);
    let base = gw.http_url();
    let spool = dir.path().join("spool");
    let output = run_recorder_cli([
        "stream",
        "--gateway",
        &base,
        "--session",
        "cut",
        "--input",
        &wav.display().to_string(),
        "--fast",
        "--resolve-every",
        "0",
        "--spool-dir",
        &spool.display().to_string(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("recording incomplete: mic input lost: ")
                && l.contains("cut.wav")),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("acked 3 (stored 3"), "{stdout}");
    let state = gateway_state(&gw.http_url(), "cut").await;
    let ingest = state.ingest.expect("ingest counters").status;
    assert_eq!((ingest.received_chunks, ingest.missing_chunks), (3, 0));
    gw.shutdown().await.unwrap();
}
