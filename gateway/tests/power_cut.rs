//! Issue 10: under `--durability power` an ACK survives a power cut, not only `kill -9`.
//!
//! The real `gateway` binary runs with its data directory on a FUSE file system (the
//! `powercut` crate) that keeps every write in memory until it is synced. Frames are streamed
//! pipelined, the gateway is killed with frames in flight, and then the power is "cut": what
//! was not synced is thrown away and the backing directory holds only what a disk would have
//! kept. A new gateway on that directory must hold every frame that was ACKed, byte for byte,
//! and its counters must cover them. The same run under `--durability process` loses ACKed
//! frames, which shows the cut really discards and that `power` is what keeps them.
#![cfg(target_os = "linux")]

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use powercut::Mount;
use serde_json::Value;
use support::child::ChildGateway;
use support::kill::stream_until_crash;
use support::*;

const SESSION: &str = "battery";
/// Frames offered; the kill lands after [`ACKS_BEFORE_CUT`] ACKs with more in flight.
const TOTAL: u64 = 120;
const ACKS_BEFORE_CUT: usize = 40;

/// What a run under `durability` ACKed, and what a gateway found after the power came back:
/// the ACKed seqs whose frame is gone or different, and the counters it reports.
struct AfterTheCut {
    acked: BTreeSet<u64>,
    lost: Vec<u64>,
    ingest: Value,
    cut_summary: String,
}

async fn cut_power_while_streaming(durability: &str, frame_store: &str) -> AfterTheCut {
    let backing = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mount = mount(backing.path(), mountpoint.path()).await;
    let data_on_mount = mount.mountpoint().join("data");
    let mut gw = ChildGateway::start_under(
        &[],
        &["--durability", durability, "--frame-store", frame_store],
        &data_on_mount,
        logs.path(),
    )
    .await;
    let outcome =
        stream_until_crash(&mut gw, SESSION, (1..=TOTAL).collect(), ACKS_BEFORE_CUT).await;
    assert!(
        outcome.never_acked > 0,
        "the kill landed with frames in flight"
    );
    let acked: BTreeSet<u64> = outcome.acks.iter().map(|ack| ack.seq).collect();
    drop(gw);
    let cut_summary = tokio::task::spawn_blocking(move || mount.cut())
        .await
        .unwrap()
        .expect("the power is cut");
    eprintln!(
        "--durability {durability} --frame-store {frame_store}: {} ACKed; {cut_summary}",
        acked.len()
    );

    let data = backing.path().join("data");
    let gw =
        ChildGateway::start_under(&[], &["--frame-store", frame_store], &data, logs.path()).await;
    let lost = acked
        .iter()
        .copied()
        .filter(|&seq| {
            let key = format!("sessions/{SESSION}/chunks/{seq:08}.pcm");
            gw.read_object(&key) != Some(pcm(seq))
        })
        .collect();
    let ingest = ingest_after_restart(&gw).await;
    AfterTheCut {
        acked,
        lost,
        ingest,
        cut_summary,
    }
}

async fn ingest_after_restart(gw: &ChildGateway) -> Value {
    let mut ws = connect(&gw.ws(SESSION)).await;
    hello(&mut ws).await["ingest"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_acked_under_power_survives_a_power_cut() {
    if powercut::skip_without_fuse("every_frame_acked_under_power_survives_a_power_cut") {
        return;
    }
    // The log (the default) and one file per frame (the design before it) both keep them.
    for store in ["log", "files"] {
        let after = cut_power_while_streaming("power", store).await;
        assert!(
            after.acked.len() >= ACKS_BEFORE_CUT,
            "{}",
            after.acked.len()
        );
        assert!(
            after.lost.is_empty(),
            "{store}: ACKed frames lost to the power cut: {:?} ({})",
            after.lost,
            after.cut_summary
        );
        let received = after.ingest["received_chunks"].as_u64().unwrap();
        assert!(
            received >= after.acked.len() as u64,
            "{store}: the counters cover every ACK: {} for {} ACKs",
            after.ingest,
            after.acked.len()
        );
        assert!(
            after.ingest["last_seq"].as_u64().unwrap() >= *after.acked.last().unwrap(),
            "{store}: {}",
            after.ingest
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_process_durability_a_power_cut_loses_acked_frames() {
    if powercut::skip_without_fuse("under_process_durability_a_power_cut_loses_acked_frames") {
        return;
    }
    let after = cut_power_while_streaming("process", "log").await;
    assert!(
        !after.lost.is_empty(),
        "nothing synced, so the cut takes ACKed frames: {} ACKed, none lost ({})",
        after.acked.len(),
        after.cut_summary
    );
}

/// The layer itself loses nothing when the power stays on (a clean unmount after the kill).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cut_every_acked_frame_is_there_under_either_durability() {
    if powercut::skip_without_fuse(
        "without_a_cut_every_acked_frame_is_there_under_either_durability",
    ) {
        return;
    }
    let backing = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mount = mount(backing.path(), mountpoint.path()).await;
    let mut gw = ChildGateway::start_under(
        &[],
        &["--durability", "process"],
        &mount.mountpoint().join("data"),
        logs.path(),
    )
    .await;
    let outcome =
        stream_until_crash(&mut gw, SESSION, (1..=TOTAL).collect(), ACKS_BEFORE_CUT).await;
    drop(gw);
    tokio::task::spawn_blocking(move || mount.keep())
        .await
        .unwrap()
        .expect("a clean unmount");
    let gw = ChildGateway::start(&backing.path().join("data"), logs.path()).await;
    for ack in &outcome.acks {
        let key = format!("sessions/{SESSION}/chunks/{:08}.pcm", ack.seq);
        assert_eq!(gw.read_object(&key), Some(pcm(ack.seq)), "{key}");
    }
}

async fn mount(backing: &Path, mountpoint: &Path) -> Mount {
    let (backing, mountpoint) = (backing.to_owned(), mountpoint.to_owned());
    tokio::task::spawn_blocking(move || Mount::start(&backing, &mountpoint))
        .await
        .unwrap()
        .expect("the power-cut file system mounts")
}
