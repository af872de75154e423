//! Meeting audio as the session's second stream, against the real gateway: the mic and the
//! system stream each arrive complete and byte-identical to their local copies, across a
//! gateway restart, and the gateway's stereo mix lines them up by capture time.
//!
//! Both sources are WAV files played in real time, so the restart lands mid-stream. The two
//! files carry the same irregular noise bursts at the same sample positions (over different
//! tones), so in the mix the bursts coincide exactly when both streams' `timestamp_ms` are the
//! capture times of their frames' first samples; the files start playing within a few ms of
//! each other.

mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e_support::*;
use recorder::endpoint::GatewayEndpoint;
use recorder::engine::{Recorder, RecorderConfig};
use recorder::events::UplinkCounters;
use recorder::source::InputSpec;
use recorder::spool::Durability;
use recorder::stream::Stream;
use recorder::uplink::Backoff;
use serde_json::Value;
use tokio::sync::watch;

const SECONDS: u32 = 8;
const RATE: u32 = 48_000;
/// Where the shared bursts start (seconds): irregular, so no lag but the true one lines them up.
const BURSTS: [f64; 10] = [0.3, 1.1, 1.45, 2.6, 3.05, 4.4, 5.2, 5.35, 6.7, 7.3];
const BURST_SECONDS: f64 = 0.08;

/// Deterministic noise in `[-1, 1)` for sample `n` (splitmix64).
fn noise(n: u64) -> f64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// A tone of `freq` Hz plus the shared bursts, on `channels` identical channels.
fn write_source(path: &Path, channels: u16, freq: f64) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..u64::from(RATE * SECONDS) {
        let t = n as f64 / f64::from(RATE);
        let tone = 0.1 * (2.0 * std::f64::consts::PI * freq * t).sin();
        let burst = if BURSTS.iter().any(|&s| (s..s + BURST_SECONDS).contains(&t)) {
            0.5 * noise(n)
        } else {
            0.0
        };
        let sample = ((tone + burst) * 32767.0) as i16;
        for _ in 0..channels {
            writer.write_sample(sample).unwrap();
        }
    }
    writer.finalize().unwrap();
}

/// Waits until the counters satisfy `check`.
async fn counters_reach(
    counters: &mut watch::Receiver<UplinkCounters>,
    what: &str,
    check: impl FnMut(&UplinkCounters) -> bool,
) {
    let deadline = Duration::from_secs(30);
    tokio::time::timeout(deadline, counters.wait_for(check))
        .await
        .unwrap_or_else(|_| panic!("not within {deadline:?}: {what}"))
        .unwrap();
}

/// `GET {path}` on the gateway: status and body.
async fn get(base: &str, path: &str) -> (u16, bytes::Bytes) {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap())
}

/// The PCM of a 16-bit WAV the gateway served, and its channel count.
fn wav_body(body: &[u8]) -> (u16, Vec<i16>) {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(body)).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.bits_per_sample), (16_000, 16));
    let samples = reader.samples::<i16>().map(Result::unwrap).collect();
    (spec.channels, samples)
}

fn as_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// The lag (in samples) at which `b` best matches `a`, searched over `±max_lag` around
/// `around`: positive when `b`'s content comes later than `a`'s.
fn best_lag(a: &[f64], b: &[f64], around: i64, max_lag: i64) -> i64 {
    (around - max_lag..=around + max_lag)
        .max_by(|&x, &y| {
            let score = |lag: i64| -> f64 {
                a.iter()
                    .enumerate()
                    .filter_map(|(i, &va)| {
                        let j = i as i64 + lag;
                        (0..b.len() as i64).contains(&j).then(|| va * b[j as usize])
                    })
                    .sum()
            };
            score(x).total_cmp(&score(y))
        })
        .unwrap()
}

/// Energy per millisecond (16 samples), mean removed: a coarse view for a wide lag search.
fn envelope(samples: &[f64]) -> Vec<f64> {
    let e: Vec<f64> = samples
        .chunks(16)
        .map(|c| c.iter().map(|s| s * s).sum())
        .collect();
    let mean = e.iter().sum::<f64>() / e.len() as f64;
    e.into_iter().map(|v| v - mean).collect()
}

/// The offset of the right channel's content against the left's, in ms: a wide search (±1 s)
/// on the envelopes, then a sample-exact one around it.
fn mix_lag_ms(left: &[i16], right: &[i16]) -> f64 {
    let to_f64 = |s: &[i16]| s.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    let (l, r) = (to_f64(left), to_f64(right));
    let coarse_ms = best_lag(&envelope(&l), &envelope(&r), 0, 1000);
    let fine = best_lag(&l, &r, coarse_ms * 16, 32);
    fine as f64 / 16.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mic_and_system_audio_arrive_whole_across_a_gateway_restart_and_line_up_in_the_mix() {
    let dir = tempfile::tempdir().unwrap();
    let (mic_wav, system_wav) = (dir.path().join("mic.wav"), dir.path().join("meeting.wav"));
    write_source(&mic_wav, 2, 440.0);
    write_source(&system_wav, 1, 1000.0);
    let data = dir.path().join("gateway");
    let gw = start_gateway(&data, any_port()).await;
    let (addr, base) = (gw.addr(), gw.http_url());
    let session = "two-streams";

    let endpoint = GatewayEndpoint::parse(&base, None).unwrap();
    let mut config = RecorderConfig::new(
        endpoint,
        session,
        InputSpec::Wav(mic_wav),
        dir.path().join("spool"),
    );
    config.system = Some(InputSpec::Wav(system_wav));
    config.resolve = None;
    config.durability = Durability::Flush;
    config.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        jitter: 0.2,
    };
    let mut handle = Recorder::start(config).unwrap();
    let mut mic = handle.counters();
    let mut system = handle.stream_counters(Stream::System).unwrap();
    assert!(handle.stream_counters(Stream::Mic).is_some());

    // Both streams flowing, then the gateway goes away while frames keep coming.
    counters_reach(&mut mic, "2 mic ACKs", |c| c.acked >= 2).await;
    counters_reach(&mut system, "2 system ACKs", |c| c.acked >= 2).await;
    gw.shutdown().await.unwrap();
    counters_reach(&mut mic, "mic frames held", |c| c.pending >= 2).await;
    counters_reach(&mut system, "system frames held", |c| c.pending >= 2).await;
    let gw = start_gateway(&data, addr).await;

    handle.audio_finished().await;
    let mic_copy = handle.local_copy();
    assert_eq!(mic_copy, handle.session_dir().join("local.wav"));
    let system_copy = handle.stream_local_copy(Stream::System).unwrap();
    assert_eq!(
        system_copy,
        handle.session_dir().join("streams/system/local.wav")
    );
    let summary = handle.stop(Duration::from_secs(60)).await;

    assert!(summary.drained, "{summary:?}");
    let sys = summary.system.as_deref().expect("a system stream summary");
    for (name, frames, samples, uplink) in [
        ("mic", summary.frames, summary.samples, &summary.uplink),
        ("system", sys.frames, sys.samples, &sys.uplink),
    ] {
        // The system stream may be stopped a little before its file's end, with the mic's.
        assert!(
            samples > u64::from(SECONDS - 1) * 16_000 && samples <= u64::from(SECONDS) * 16_000,
            "{name}: {samples} samples"
        );
        assert_eq!(frames, samples.div_ceil(16_000), "{name}");
        assert_eq!(uplink.pending, 0, "{name}");
        assert_eq!(uplink.errors, 0, "{name}");
        assert!(uplink.reconnects >= 1, "{name}: {uplink:?}");
        assert_eq!(uplink.stored + uplink.duplicate, uplink.acked, "{name}");
        println!(
            "{name}: {frames} frames, sent {} (resent {}), acked {} (stored {}, duplicate {}), \
             reconnects {}",
            uplink.sent,
            uplink.resent,
            uplink.acked,
            uplink.stored,
            uplink.duplicate,
            uplink.reconnects
        );
    }
    assert_eq!(summary.local_copy.as_deref(), mic_copy.to_str());
    assert_eq!(sys.local_copy.as_deref(), system_copy.to_str());

    // Each stream as stored is its local copy, byte for byte (plus the last frame's padding).
    for (stream, local, frames) in [
        ("mic", summary.local_copy.clone().unwrap(), summary.frames),
        ("system", sys.local_copy.clone().unwrap(), sys.frames),
    ] {
        let (status, body) = get(
            &base,
            &format!("/v1/sessions/{session}/audio.wav?stream={stream}"),
        )
        .await;
        assert_eq!(status, 200, "{stream}: {}", String::from_utf8_lossy(&body));
        let (channels, pcm) = wav_body(&body);
        assert_eq!(channels, 1, "{stream}");
        assert_eq!(pcm.len() as u64, frames * 16_000, "{stream}");
        assert_same_audio(&as_bytes(&pcm), &wav_pcm(Path::new(&local)));
    }

    // The gateway's counters: both streams complete.
    let (status, body) = get(&base, &format!("/v1/sessions/{session}/state")).await;
    assert_eq!(status, 200);
    let state: Value = serde_json::from_slice(&body).unwrap();
    for (stream, frames) in [("mic", summary.frames), ("system", sys.frames)] {
        let ingest = &state["streams"][stream];
        assert_eq!(ingest["missing_chunks"], 0, "{stream}: {state}");
        assert_eq!(ingest["last_seq"], frames, "{stream}: {state}");
        assert_eq!(ingest["received_chunks"], frames, "{stream}: {state}");
    }
    assert_eq!(
        state["ingest"]["last_seq"], summary.frames,
        "the seed's field is the mic's"
    );

    // The mix: left the mic, right the meeting audio, the shared bursts at the same moment.
    let (status, body) = get(
        &base,
        &format!("/v1/sessions/{session}/audio.wav?stream=mix"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (channels, pcm) = wav_body(&body);
    assert_eq!(channels, 2);
    let left: Vec<i16> = pcm.iter().step_by(2).copied().collect();
    let right: Vec<i16> = pcm.iter().skip(1).step_by(2).copied().collect();
    let lag = mix_lag_ms(&left, &right);
    println!("mix: the meeting audio's bursts lie {lag:+.2} ms from the mic's");
    assert!(lag.abs() <= 20.0, "streams misaligned by {lag} ms");
    gw.shutdown().await.unwrap();
}

#[test]
fn the_lag_search_finds_a_known_offset() {
    // 30 ms of delay between two copies of the same bursts.
    let signal: Vec<i16> = (0..48_000u64)
        .map(|n| {
            let t = n as f64 / 16_000.0;
            let on = BURSTS.iter().any(|&s| (s..s + BURST_SECONDS).contains(&t));
            if on { (noise(n) * 10_000.0) as i16 } else { 0 }
        })
        .collect();
    let mut delayed = vec![0i16; 480];
    delayed.extend_from_slice(&signal[..signal.len() - 480]);
    assert_eq!(mix_lag_ms(&signal, &delayed), 30.0);
    assert_eq!(mix_lag_ms(&delayed, &signal), -30.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_cli_records_system_audio_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (mic_wav, system_wav) = (dir.path().join("mic.wav"), dir.path().join("meeting.wav"));
    write_source(&mic_wav, 2, 440.0);
    write_source(&system_wav, 1, 1000.0);
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let base = gw.http_url();
    let run = |session: &'static str, system: Option<PathBuf>| {
        let (base, mic_wav, spool) = (base.clone(), mic_wav.clone(), dir.path().join("spool"));
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_recorder-cli"));
            command
                .args(["stream", "--gateway", &base, "--session", session, "--fast"])
                .args(["--resolve-every", "0", "--input"])
                .arg(&mic_wav)
                .arg("--spool-dir")
                .arg(&spool);
            if let Some(path) = system {
                command
                    .arg("--system")
                    .arg(format!("file:{}", path.display()));
            }
            command.output().expect("recorder-cli runs")
        })
    };
    let with = run("cli-both", Some(system_wav)).await.unwrap();
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let stdout = String::from_utf8_lossy(&with.stdout);
    assert!(
        stdout.contains("system audio: 8 frames (8.0 s of audio)"),
        "{stdout}"
    );
    let without = run("cli-mic", None).await.unwrap();
    assert!(
        without.status.success(),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    assert!(!String::from_utf8_lossy(&without.stdout).contains("system audio"));

    let state = |session: &'static str| {
        let base = base.clone();
        async move {
            let (_, body) = get(&base, &format!("/v1/sessions/{session}/state")).await;
            serde_json::from_slice::<Value>(&body).unwrap()
        }
    };
    let both = state("cli-both").await;
    assert_eq!(both["streams"]["system"]["last_seq"], 8, "{both}");
    assert_eq!(both["streams"]["system"]["missing_chunks"], 0, "{both}");
    assert_eq!(both["ingest"]["last_seq"], 8, "{both}");
    let mic_only = state("cli-mic").await;
    assert_eq!(mic_only["ingest"]["last_seq"], 8, "{mic_only}");
    assert!(
        mic_only
            .get("streams")
            .is_none_or(|s| s.get("system").is_none()),
        "{mic_only}"
    );
    gw.shutdown().await.unwrap();
}

/// A PulseAudio daemon of the test's own, with a null sink as the default output, stopped on
/// drop.
struct NullSink {
    daemon: std::process::Child,
    /// `unix:<runtime dir>/pulse/native`, for the clients' `PULSE_SERVER`.
    server: String,
}

impl NullSink {
    /// Starts the daemon in `dir`; `None` when PulseAudio is not installed.
    fn start(dir: &Path) -> Option<NullSink> {
        let runtime = dir.join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::write(
            dir.join("null.pa"),
            "load-module module-native-protocol-unix auth-anonymous=1\n\
             load-module module-null-sink sink_name=nullsink rate=48000\n\
             set-default-sink nullsink\n\
             set-default-source nullsink.monitor\n",
        )
        .unwrap();
        let daemon = Command::new("pulseaudio")
            .args(["--daemonize=no", "--exit-idle-time=-1", "-n", "-F"])
            .arg(dir.join("null.pa"))
            .arg(format!(
                "--log-target=file:{}",
                dir.join("pa.log").display()
            ))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let daemon = match daemon {
            Ok(daemon) => daemon,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot start pulseaudio: {e}"),
        };
        let socket = runtime.join("pulse/native");
        let mut sink = NullSink {
            daemon,
            server: format!("unix:{}", socket.display()),
        };
        let started = std::time::Instant::now();
        while !socket.exists() {
            if let Some(status) = sink.daemon.try_wait().unwrap() {
                panic!(
                    "pulseaudio exited ({status}): {}",
                    std::fs::read_to_string(dir.join("pa.log")).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pulseaudio's socket did not appear"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(sink)
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The loudest 100 ms of `samples`, as RMS in full-scale units.
/// Writes 3 s of a 0.5-amplitude 1 kHz stereo tone at `rate`, to play into a sink.
fn write_meeting_tone(path: &Path, rate: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..rate * 3 {
        let v = 0.5 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / f64::from(rate)).sin();
        for _ in 0..2 {
            writer.write_sample((v * 32767.0) as i16).unwrap();
        }
    }
    writer.finalize().unwrap();
}

/// Starts `recorder-cli stream` recording a mic tone for `seconds` and the default output's
/// audio (the null sink's server) as the system stream.
fn record_with_system_default(
    sink: &NullSink,
    base: &str,
    session: &str,
    spool: &Path,
    seconds: u32,
) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_recorder-cli"))
        .args(["stream", "--gateway", base, "--session", session])
        .args(["--resolve-every", "0", "--system", "default"])
        .args(["--input", "tone:440", "--duration", &seconds.to_string()])
        .arg("--spool-dir")
        .arg(spool)
        .env("PULSE_SERVER", &sink.server)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the gateway holds `frames` frames of the session's system stream.
async fn system_frames_reach(base: &str, session: &str, frames: u64) {
    wait_until(
        "frames of the system stream",
        Duration::from_secs(20),
        || {
            let base = base.to_owned();
            let session = session.to_owned();
            async move {
                let (_, body) = get(&base, &format!("/v1/sessions/{session}/state")).await;
                let state: Value = serde_json::from_slice(&body).unwrap();
                state["streams"]["system"]["last_seq"].as_u64() >= Some(frames)
            }
        },
    )
    .await;
}

/// Runs a PulseAudio client tool (`pactl`, `paplay`) against the null sink's server.
async fn pulse(sink: &NullSink, program: &str, args: &[&str]) {
    let status = tokio::process::Command::new(program)
        .args(args)
        .env("PULSE_SERVER", &sink.server)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap_or_else(|e| panic!("{program} (pulseaudio-utils) runs: {e}"));
    assert!(status.success(), "{program} {args:?}");
}

/// The gateway's system stream of `session`, checked to be the local copy byte for byte.
async fn stored_system_stream(base: &str, session: &str, spool: &Path) -> Vec<i16> {
    let (status, body) = get(
        base,
        &format!("/v1/sessions/{session}/audio.wav?stream=system"),
    )
    .await;
    assert_eq!(status, 200);
    let (_, stored) = wav_body(&body);
    let local = spool.join(session).join("streams/system/local.wav");
    assert_same_audio(&as_bytes(&stored), &wav_pcm(&local));
    stored
}

fn loudest_rms(samples: &[i16]) -> f64 {
    samples
        .chunks(1600)
        .map(|c| {
            let power: f64 = c.iter().map(|&s| (f64::from(s) / 32768.0).powi(2)).sum();
            (power / c.len() as f64).sqrt()
        })
        .fold(0.0, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_null_sink_plays_is_recorded_as_the_system_stream_and_stored_identically() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = NullSink::start(dir.path()) else {
        println!(
            "SKIPPED: pulseaudio is not installed (Debian: pulseaudio pulseaudio-utils), so there \
             is no null sink to record system audio from; the file-source tests above still ran"
        );
        return;
    };
    // A 0.5-amplitude 1 kHz tone to play into the sink while the mic records 12 s of a tone.
    let meeting = dir.path().join("meeting.wav");
    write_meeting_tone(&meeting, 48_000);
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let base = gw.http_url();
    let spool = dir.path().join("spool");
    let session = "null-sink";

    let recorder = record_with_system_default(&sink, &base, session, &spool, 12);
    // Play once the monitor delivers (its first frame reached the gateway).
    system_frames_reach(&base, session, 1).await;
    let meeting = meeting.to_string_lossy();
    pulse(
        &sink,
        "paplay",
        &["--device=nullsink", "--latency-msec=20", &meeting],
    )
    .await;
    let output = tokio::time::timeout(Duration::from_secs(60), recorder.wait_with_output())
        .await
        .expect("recorder-cli ends with its 12 s mic tone")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{stdout}");

    let stored = stored_system_stream(&base, session, &spool).await;
    let rms = loudest_rms(&stored);
    assert!(
        (0.33..0.38).contains(&rms),
        "the tone played into the sink is in the system stream (RMS {rms:.3}, expected 0.354)"
    );
    let (_, body) = get(&base, &format!("/v1/sessions/{session}/state")).await;
    let state: Value = serde_json::from_slice(&body).unwrap();
    for stream in ["mic", "system"] {
        assert_eq!(state["streams"][stream]["missing_chunks"], 0, "{state}");
    }
    println!("null sink: loudest 100 ms of the system stream at RMS {rms:.4} (0.3536 played)");
    gw.shutdown().await.unwrap();
}

/// Issue 8, item 1: the output being recorded disappears mid-interview (a USB headset pulled
/// out, a Bluetooth device gone). The meeting-audio stream stops and says so by name; the mic
/// stream records on to the end, and what the system stream captured before is stored whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_disappears_stops_the_system_stream_with_its_name_and_the_mic_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = NullSink::start(dir.path()) else {
        println!("SKIPPED: pulseaudio is not installed (Debian: pulseaudio pulseaudio-utils)");
        return;
    };
    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let base = gw.http_url();
    let spool = dir.path().join("spool");
    let session = "output-gone";
    let recorder = record_with_system_default(&sink, &base, session, &spool, 8);
    system_frames_reach(&base, session, 2).await;
    pulse(&sink, "pactl", &["unload-module", "module-null-sink"]).await;

    let output = tokio::time::timeout(Duration::from_secs(60), recorder.wait_with_output())
        .await
        .expect("recorder-cli ends with its 8 s mic tone")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    let system_line = stdout
        .lines()
        .find(|l| l.starts_with("system audio:"))
        .unwrap_or_else(|| panic!("no system summary in {stdout}"));
    assert!(
        system_line.contains("stopped early: audio device `Monitor of Null Output`"),
        "the stop names the output: {system_line}"
    );
    let (_, body) = get(&base, &format!("/v1/sessions/{session}/state")).await;
    let state: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        state["streams"]["mic"]["last_seq"], 8,
        "the mic went on: {state}"
    );
    assert_eq!(state["streams"]["mic"]["missing_chunks"], 0);
    let kept = state["streams"]["system"]["last_seq"].as_u64().unwrap();
    assert!((2..8).contains(&kept), "{state}");
    assert!(
        system_line.starts_with(&format!("system audio: {kept} frames")),
        "the summary counts the frames made before the stop: {system_line}"
    );
    stored_system_stream(&base, session, &spool).await;
    gw.shutdown().await.unwrap();
}

/// Issue 8, item 1: another output becomes the default mid-interview (headphones plugged in):
/// the meeting-audio stream moves to it and goes on, so what plays there is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_default_output_is_followed_and_what_it_plays_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sink) = NullSink::start(dir.path()) else {
        println!("SKIPPED: pulseaudio is not installed (Debian: pulseaudio pulseaudio-utils)");
        return;
    };
    pulse(
        &sink,
        "pactl",
        &[
            "load-module",
            "module-null-sink",
            "sink_name=headphones",
            "rate=44100",
        ],
    )
    .await;
    let meeting = dir.path().join("meeting.wav");
    write_meeting_tone(&meeting, 44_100);

    let gw = start_gateway(&dir.path().join("gateway"), any_port()).await;
    let base = gw.http_url();
    let spool = dir.path().join("spool");
    let session = "output-switch";
    let recorder = record_with_system_default(&sink, &base, session, &spool, 10);
    system_frames_reach(&base, session, 2).await;
    pulse(&sink, "pactl", &["set-default-sink", "headphones"]).await;
    // Three seconds of tone into the new default; the capture checks for a switch every 250 ms.
    let meeting = meeting.to_string_lossy();
    pulse(
        &sink,
        "paplay",
        &["--device=headphones", "--latency-msec=20", &meeting],
    )
    .await;

    let output = tokio::time::timeout(Duration::from_secs(60), recorder.wait_with_output())
        .await
        .expect("recorder-cli ends with its 10 s mic tone")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "{stdout}");
    assert!(!stdout.contains("stopped early"), "{stdout}");
    let stored = stored_system_stream(&base, session, &spool).await;
    let rms = loudest_rms(&stored);
    assert!(
        (0.33..0.38).contains(&rms),
        "the tone played on the new default output is in the system stream (RMS {rms:.3})"
    );
    let (_, body) = get(&base, &format!("/v1/sessions/{session}/state")).await;
    let state: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(state["streams"]["system"]["missing_chunks"], 0, "{state}");
    assert!(
        state["streams"]["system"]["last_seq"].as_u64() >= Some(9),
        "the system stream went on to the end: {state}"
    );
    println!("switched output: loudest 100 ms of the system stream at RMS {rms:.4}");
    gw.shutdown().await.unwrap();
}
