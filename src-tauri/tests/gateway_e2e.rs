//! The recorder against the real gateway: every frame arrives, byte for byte, across gateway
//! restarts too.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::*;
use gateway::server::GatewayConfig;
use gateway::storage::FrameStore;
use recorder::endpoint::GatewayEndpoint;
use recorder::engine::{Recorder, RecorderConfig};
use recorder::events::UplinkCounters;
use recorder::source::{InputSpec, Pacing};
use recorder::spool::{Durability, Spool, SpooledFrame};
use recorder::uplink::{Backoff, Uplink, UplinkConfig};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_90_second_wav_streamed_as_fast_as_possible_arrives_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let wav = write_wav(&dir.path().join("talk.wav"), 90);
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let endpoint = GatewayEndpoint::parse(&gw.http_url(), None).unwrap();

    let mut config = RecorderConfig::new(
        endpoint,
        "e2e fast/1",
        InputSpec::Wav(wav),
        dir.path().join("spool"),
    );
    config.pacing = Pacing::AsFastAsPossible;
    config.resolve = None;
    let started = Instant::now();
    let mut handle = Recorder::start(config).unwrap();
    handle.audio_finished().await;
    let summary = handle.stop(Duration::from_secs(60)).await;
    let elapsed = started.elapsed();

    assert!(summary.drained, "{summary:?}");
    assert_eq!(summary.samples, 90 * 16_000);
    assert_eq!(summary.frames, 90);
    assert_eq!(summary.uplink.acked, 90);
    assert_eq!(summary.uplink.stored, 90);
    assert_eq!(summary.uplink.pending, 0);
    assert_eq!(summary.uplink.errors, 0);

    let local = wav_pcm(summary.local_copy.as_ref().unwrap().as_ref());
    assert_eq!(local.len(), 90 * 32_000);
    let (remote, missing) = gateway_pcm(&gw.http_url(), "e2e%20fast%2F1").await;
    assert_eq!(missing, 0);
    assert_same_audio(&remote, &local);
    let state = gateway_state(&gw.http_url(), "e2e%20fast%2F1").await;
    let ingest = state.ingest.unwrap().status;
    assert_eq!(
        (
            ingest.received_chunks,
            ingest.missing_chunks,
            ingest.last_seq
        ),
        (90, 0, 90)
    );
    let l = &summary.uplink.latency;
    println!(
        "90 s streamed in {:.2} s ({:.0}x real time); ACK latency min {:.2} avg {:.2} p99 {:.2} ms",
        elapsed.as_secs_f64(),
        90.0 / elapsed.as_secs_f64(),
        l.min_ms.unwrap(),
        l.avg_ms.unwrap(),
        l.p99_ms.unwrap()
    );
    gw.shutdown().await.unwrap();
}

/// Waits until the uplink has had `n` ACKs.
async fn acked_at_least(counters: &mut watch::Receiver<UplinkCounters>, n: u64) {
    let deadline = Duration::from_secs(30);
    tokio::time::timeout(deadline, counters.wait_for(|c| c.acked >= n))
        .await
        .unwrap_or_else(|_| panic!("no {n} ACKs within {deadline:?}"))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_restarted_twice_mid_stream_still_gets_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let wav = write_wav(&dir.path().join("talk.wav"), 90);
    let data = dir.path().join("gateway");
    let gw = start_gateway(&data, any_port()).await;
    let addr = gw.addr();
    let base = gw.http_url();
    let session = "restarts";

    // The real pipeline frames the file into a list; the test hands frames to the real uplink
    // in three portions so that each gateway restart lands mid-stream, deterministically.
    let local_copy = dir.path().join("local.wav");
    let frames = frame_wav(&wav, &local_copy);
    assert_eq!(frames.len(), 90);

    let spool = Spool::open(dir.path().join("spool"), session, Durability::Sync).unwrap();
    let mut config = UplinkConfig::new(GatewayEndpoint::parse(&base, None).unwrap(), session);
    config.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        jitter: 0.2,
    };
    config.report_interval = Duration::ZERO;
    let uplink = Uplink::start(config, spool, recorder::events::EventSink::new());
    let mut counters = uplink.counters();
    let sender = uplink.frames();
    let mut rest = frames.into_iter();

    for frame in rest.by_ref().take(30) {
        sender.send(frame);
    }
    acked_at_least(&mut counters, 5).await;
    gw.shutdown().await.unwrap(); // first stop, with chunks in flight
    for frame in rest.by_ref().take(30) {
        sender.send(frame); // held in the spool while the gateway is down
    }
    let gw = start_gateway(&data, addr).await;
    acked_at_least(&mut counters, 35).await;
    gw.shutdown().await.unwrap(); // second stop
    for frame in rest.by_ref() {
        sender.send(frame);
    }
    let gw = start_gateway(&data, addr).await;
    drop(sender);
    let outcome = uplink.finish(Duration::from_secs(60)).await;

    assert!(outcome.drained, "{outcome:?}");
    let c = &outcome.counters;
    assert_eq!(c.pending, 0);
    assert!(c.reconnects >= 2, "{c:?}");
    assert_eq!(c.errors, 0);
    assert_eq!(c.queued, 90);
    assert_eq!(c.stored + c.duplicate, c.acked);
    let (remote, missing) = gateway_pcm(&base, session).await;
    assert_eq!(missing, 0);
    assert_same_audio(&remote, &wav_pcm(&local_copy));
    let ingest = gateway_state(&base, session).await.ingest.unwrap().status;
    assert_eq!((ingest.last_seq, ingest.missing_chunks), (90, 0));
    println!(
        "restarts: sent {} (resent {}), acked {} (stored {}, duplicate {}), reconnects {}",
        c.sent, c.resent, c.acked, c.stored, c.duplicate, c.reconnects
    );
    gw.shutdown().await.unwrap();
}

/// Records `input` (a tone lasts `tone_seconds`) into `session` from the spool under `spool`,
/// as fast as possible, with the start the app and the CLI use; returns the first seq and the
/// summary.
async fn record_from_spool(
    gw_url: &str,
    session: &str,
    input: InputSpec,
    spool: &std::path::Path,
    tone_seconds: u64,
) -> (u64, recorder::events::Summary) {
    let endpoint = GatewayEndpoint::parse(gw_url, None).unwrap();
    let mut config = RecorderConfig::new(endpoint, session, input, spool);
    config.pacing = Pacing::AsFastAsPossible;
    config.duration = Some(Duration::from_secs(tone_seconds));
    config.resolve = None;
    let mut handle = Recorder::start_checked(config).await.unwrap();
    let first_seq = handle.first_seq();
    handle.audio_finished().await;
    (first_seq, handle.stop(Duration::from_secs(30)).await)
}

/// Issue 9, item 1: a second device (a fresh spool) recording into a session the gateway
/// already holds frames for continues after them; before, its seqs 1, 2, 3 collided with the
/// first device's and the new audio never landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item1_a_fresh_spool_on_an_existing_session_continues_after_the_gateways_last_seq() {
    let dir = tempfile::tempdir().unwrap();
    let wav = write_wav(&dir.path().join("first.wav"), 4);
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let url = gw.http_url();

    let (first_seq, first) = record_from_spool(
        &url,
        "shared",
        InputSpec::Wav(wav),
        &dir.path().join("laptop-a"),
        4,
    )
    .await;
    assert_eq!((first_seq, first.frames, first.uplink.stored), (1, 4, 4));

    let (second_seq, second) = record_from_spool(
        &url,
        "shared",
        InputSpec::Tone { freq: 1000.0 },
        &dir.path().join("laptop-b"),
        3,
    )
    .await;
    assert_eq!(
        second_seq, 5,
        "the second spool numbers after the gateway's frames"
    );
    assert!(second.drained, "{second:?}");
    assert_eq!(
        (
            second.uplink.stored,
            second.uplink.errors,
            second.uplink.rejected
        ),
        (3, 0, 0)
    );

    let ingest = gateway_state(&url, "shared").await.ingest.unwrap().status;
    assert_eq!((ingest.last_seq, ingest.received_chunks), (7, 7));
    let (remote, missing) = gateway_pcm(&url, "shared").await;
    assert_eq!(missing, 0);
    let first_local = wav_pcm(first.local_copy.as_ref().unwrap().as_ref());
    assert_eq!(
        &remote[..4 * 32_000],
        &first_local[..],
        "the first laptop's audio is intact"
    );
    // The second laptop's copy holds silence for the seconds it never recorded, then its own.
    let second_local = wav_pcm(second.local_copy.as_ref().unwrap().as_ref());
    assert_eq!(second_local.len(), 7 * 32_000);
    assert!(second_local[..4 * 32_000].iter().all(|&b| b == 0));
    assert_same_audio(&remote[4 * 32_000..], &second_local[4 * 32_000..]);
    gw.shutdown().await.unwrap();
}

/// Issue 9, item 3: the gateway's storage fails for a while (here its frames' directory is
/// replaced by a file). Every failed frame is sent again, as often as it takes, and none is set
/// aside; once storage works again every frame is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item3_frames_are_resent_without_limit_while_the_gateways_storage_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gateway");
    // Frames one file each, so their folder can be made unwritable; the gateway answers a
    // failed write the same way whichever store failed.
    let mut gateway_config = GatewayConfig::local(&data);
    gateway_config.frame_store = FrameStore::Files;
    let gw = gateway::server::start(gateway_config).await.unwrap();
    let base = gw.http_url();
    let session = "storage-fails";
    let frame = |seq: u64| SpooledFrame {
        seq,
        timestamp_ms: 1_764_000_000_000 + seq * 1000,
        pcm: (0..32_000u32)
            .map(|i| (i as u64 * 7 + seq * 131) as u8)
            .collect(),
    };
    let spool = Spool::open(dir.path().join("spool"), session, Durability::Sync).unwrap();
    let mut config = UplinkConfig::new(GatewayEndpoint::parse(&base, None).unwrap(), session);
    config.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        jitter: 0.2,
    };
    config.error_retry_delay = Duration::from_millis(20);
    config.report_interval = Duration::ZERO;
    let uplink = Uplink::start(config, spool, recorder::events::EventSink::new());
    let mut counters = uplink.counters();
    let sender = uplink.frames();
    for seq in 1..=3 {
        sender.send(frame(seq));
    }
    acked_at_least(&mut counters, 3).await;

    let chunks = data.join("objects/sessions/storage-fails/chunks");
    let aside = chunks.with_extension("aside");
    std::fs::rename(&chunks, &aside).unwrap();
    std::fs::write(&chunks, b"not a directory").unwrap();
    for seq in 4..=8 {
        sender.send(frame(seq));
    }
    // Well past the three refusals after which a refused frame would be set aside.
    tokio::time::timeout(
        Duration::from_secs(30),
        counters.wait_for(|c| c.errors >= 10),
    )
    .await
    .expect("the uplink keeps trying")
    .unwrap();
    assert_eq!(counters.borrow().rejected, 0);
    std::fs::remove_file(&chunks).unwrap();
    std::fs::rename(&aside, &chunks).unwrap();
    drop(sender);
    let outcome = uplink.finish(Duration::from_secs(30)).await;

    assert!(outcome.drained, "{outcome:?}");
    let c = &outcome.counters;
    assert_eq!((c.acked, c.rejected, c.pending), (8, 0, 0), "{c:?}");
    assert!(c.reconnects >= 3, "each failure closed the socket: {c:?}");
    for seq in 4..=8u64 {
        assert_eq!(
            std::fs::read(chunks.join(format!("{seq:08}.pcm"))).unwrap(),
            frame(seq).pcm
        );
    }
    gw.shutdown().await.unwrap();
}

/// Issue 11, item 4: audio held because the gateway was down is delivered by `recorder-cli
/// send`, without recording, once the gateway is back; the gateway then holds the local copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_audio_is_delivered_without_recording_once_the_gateway_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // An address where nothing listens yet: the recording cannot deliver anything.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let base = format!("http://{addr}");
    let spool = dir.path().join("spool");
    let mut config = RecorderConfig::new(
        GatewayEndpoint::parse(&base, None).unwrap(),
        "held",
        InputSpec::Tone { freq: 440.0 },
        &spool,
    );
    config.pacing = Pacing::AsFastAsPossible;
    config.duration = Some(Duration::from_secs(4));
    config.resolve = None;
    let mut handle = Recorder::start(config).unwrap();
    handle.audio_finished().await;
    let summary = handle.stop(Duration::from_millis(200)).await;
    assert!(!summary.drained);
    assert_eq!((summary.frames, summary.uplink.pending), (4, 4));

    let gw = start_gateway(&dir.path().join("gateway"), addr).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_recorder-cli"))
        .args([
            "send",
            "--gateway",
            &base,
            "--session",
            "held",
            "--timeout",
            "30",
        ])
        .arg("--spool-dir")
        .arg(&spool)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "mic: 4 frames held, 4 delivered (stored 4, duplicate 0), 0 still held"
    );
    let (remote, missing) = gateway_pcm(&base, "held").await;
    assert_eq!(missing, 0);
    assert_same_audio(
        &remote,
        &wav_pcm(summary.local_copy.as_ref().unwrap().as_ref()),
    );

    // Nothing is held now: a second send has nothing to do and says so.
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_recorder-cli"))
        .args([
            "send",
            "--gateway",
            &base,
            "--session",
            "held",
            "--spool-dir",
        ])
        .arg(&spool)
        .output()
        .await
        .unwrap();
    assert!(again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "mic: 0 frames held, 0 delivered (stored 0, duplicate 0), 0 still held"
    );
    gw.shutdown().await.unwrap();
}
