//! One-line helpers for the end-to-end tests: a real gateway in this process, generated WAVs,
//! and the comparisons every test ends with.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use contract::protocol::{FRAME_BYTES, MISSING_SECONDS_HEADER, StateResponse};
use gateway::server::{GatewayConfig, RunningGateway};
use recorder::pipeline::{self, PipelineConfig, PipelineEvent, StopHandle};
use recorder::source::{self, InputSpec, OpenOptions, Pacing};
use recorder::spool::SpooledFrame;

/// Starts the real gateway on `listen` (port 0 for a free one) with its data in `data_dir`.
pub async fn start_gateway(data_dir: &Path, listen: std::net::SocketAddr) -> RunningGateway {
    let mut config = GatewayConfig::local(data_dir);
    config.listen = listen;
    gateway::server::start(config)
        .await
        .expect("gateway starts")
}

/// A free loopback address (for the first start; restarts reuse the address it got).
pub fn any_port() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Writes `secs` seconds of 48 kHz stereo 16-bit audio: a tone plus deterministic noise that
/// differs between channels, so every frame's bytes are distinct.
pub fn write_wav(path: &Path, secs: u32) -> PathBuf {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    let mut noise: u32 = 0x1234_5678;
    for n in 0..(48_000 * secs) {
        let t = f64::from(n) / 48_000.0;
        let tone = 8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin();
        for _ in 0..2 {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            let jitter = f64::from((noise >> 20) as i32 - 2048);
            writer.write_sample((tone + jitter) as i16).unwrap();
        }
    }
    writer.finalize().unwrap();
    path.to_owned()
}

/// Frames `wav` through the real pipeline as fast as possible (its local copy to `local_copy`),
/// for tests that hand the frames to an uplink themselves.
pub fn frame_wav(wav: &Path, local_copy: &Path) -> Vec<SpooledFrame> {
    let capture = source::open(
        &InputSpec::Wav(wav.to_owned()),
        OpenOptions {
            pacing: Pacing::AsFastAsPossible,
            tone_duration: None,
        },
    )
    .unwrap();
    let mut frames = Vec::new();
    let config = PipelineConfig {
        local_copy: Some(local_copy.to_owned()),
        ..PipelineConfig::default()
    };
    pipeline::run(capture, &config, &StopHandle::new(), |event| {
        if let PipelineEvent::Frame(f) = event {
            frames.push(SpooledFrame {
                seq: f.seq,
                timestamp_ms: f.timestamp_ms,
                pcm: f.pcm,
            });
        }
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    frames
}

/// The data bytes of a 16-bit WAV file.
pub fn wav_pcm(path: &Path) -> Vec<u8> {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    reader
        .samples::<i16>()
        .flat_map(|s| s.unwrap().to_le_bytes())
        .collect()
}

/// The gateway's `audio.wav` for `session`: its PCM and its missing-seconds header.
pub async fn gateway_pcm(base: &str, session: &str) -> (Vec<u8>, u64) {
    let response = reqwest::get(format!("{base}/v1/sessions/{session}/audio.wav"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let missing = response
        .headers()
        .get(MISSING_SECONDS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("missing-seconds header");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    (bytes[44..].to_vec(), missing)
}

/// The gateway's view of a session.
pub async fn gateway_state(base: &str, session: &str) -> StateResponse {
    reqwest::get(format!("{base}/v1/sessions/{session}/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Asserts the rule the tests pin: the gateway holds the local copy byte for byte, followed by
/// the silence that pads the last frame, and nothing else.
pub fn assert_same_audio(gateway: &[u8], local: &[u8]) {
    let frames = local.len().div_ceil(FRAME_BYTES);
    assert_eq!(
        gateway.len(),
        frames * FRAME_BYTES,
        "gateway holds {frames} whole frames"
    );
    let first_diff = gateway.iter().zip(local).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "PCM differs at byte {first_diff:?}");
    assert!(
        gateway[local.len()..].iter().all(|&b| b == 0),
        "padding is silence"
    );
}

/// Polls `check` every 20 ms until it is true or `deadline` passes.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `recorder-cli` binary of this build.
pub const RECORDER_CLI: &str = env!("CARGO_BIN_EXE_recorder-cli");

/// Runs `recorder-cli` with `args` to its end, off the async threads, with no stdin.
pub async fn run_recorder_cli<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(RECORDER_CLI)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("recorder-cli runs")
    })
    .await
    .expect("the recorder-cli runner")
}
