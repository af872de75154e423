//! `--durability`: what an ACK promises (issue 10). Under `power` every ACKed frame's log
//! record and the database commit (its row, index row and counters) are synced to stable storage
//! before the ACK; under `process` nothing is synced per frame (an ACK survives `kill -9`, see
//! `crash.rs`).
//!
//! The real binary runs under `strace`, which counts the sync calls it makes while frames are
//! sent one at a time. `power_cut.rs` shows what those syncs buy: every ACKed frame survives a
//! simulated power cut.
#![cfg(target_os = "linux")]

mod support;

use support::child::ChildGateway;
use support::*;

/// Frames sent, each after the previous one's ACK.
const FRAMES: u64 = 12;

/// Sync calls (`fsync`, `fdatasync`) the gateway made while storing [`FRAMES`] frames.
async fn syncs_while_storing(durability: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("syncs.trace");
    let trace_arg = trace.to_str().unwrap().to_owned();
    let strace = [
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=fsync,fdatasync",
        "-o",
        &trace_arg,
    ];
    assert!(
        std::process::Command::new("strace")
            .arg("-V")
            .output()
            .is_ok(),
        "this test needs strace (apt-get install strace; .ci/run installs it)"
    );
    let mut gw = ChildGateway::start_under(
        &strace,
        &["--durability", durability],
        &dir.path().join("data"),
        dir.path(),
    )
    .await;
    let mut ws = connect(&gw.ws("durable")).await;
    hello(&mut ws).await;
    // Syncs from opening the database and the first session row are not per frame.
    let before = count_syncs(&trace);
    for seq in 1..=FRAMES {
        assert_eq!(send_chunk(&mut ws, "durable", seq).await.seq, seq);
    }
    drop(ws);
    // Stop gateway and strace together; strace writes out its trace as it exits.
    gw.signal_group(libc::SIGTERM);
    gw.exited().await;
    let syncs = count_syncs(&trace) - before.min(count_syncs(&trace));
    eprintln!("--durability {durability}: {syncs} sync calls for {FRAMES} frames");
    syncs
}

fn count_syncs(trace: &std::path::Path) -> usize {
    std::fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("fsync(") || line.contains("fdatasync("))
        .count()
}

#[tokio::test]
async fn power_syncs_each_frames_log_record_and_its_commit_before_the_ack() {
    let syncs = syncs_while_storing("power").await;
    // Per frame: the frame log, and the database's log (the frame's row, its index row and
    // the counters, in one commit).
    assert!(
        syncs >= 2 * FRAMES as usize,
        "{syncs} sync calls for {FRAMES} frames under --durability power"
    );
}

#[tokio::test]
async fn process_does_not_sync_per_frame() {
    let syncs = syncs_while_storing("process").await;
    assert!(
        syncs < FRAMES as usize,
        "{syncs} sync calls for {FRAMES} frames under --durability process"
    );
}
