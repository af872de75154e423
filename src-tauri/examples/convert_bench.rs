//! Benchmark of the conversion path against ffmpeg, the tool it replaces.
//!
//! `cargo run --release -p recorder --example convert_bench [-- SECONDS]`
//!
//! Input: SECONDS (default 600) of 48 kHz stereo f32, a mix of tones and noise, generated
//! before timing starts. Ours: fed in 480-frame (10 ms) blocks, as a capture callback would,
//! through `Resampler` and `Framer` on one thread. ffmpeg: the same audio as a float WAV,
//! `ffmpeg -y -i in.wav -ar 16000 -ac 1 -c:a pcm_s16le out.wav`, timed as a process (so it also
//! pays for reading and writing files, which ours does not: noted in the output).
//! Quality: a 1 kHz tone (THD+N, timing), a 12 kHz tone (aliasing), and the agreement of the
//! two outputs on the long mix.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use recorder::framer::Framer;
use recorder::resample::Resampler;

const RATE: u32 = 48_000;
const BLOCK_FRAMES: usize = 480;

fn main() {
    let seconds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECONDS must be a whole number"))
        .unwrap_or(600);
    let dir = tempfile::tempdir().expect("temp dir");
    let ffmpeg = ffmpeg_available();

    println!("input: {seconds} s of 48 kHz stereo f32 (tones + noise), 480-frame blocks");
    let input = mixed_signal(seconds);

    // --- ours -----------------------------------------------------------------------------
    let started = Instant::now();
    let (ours, frames) = run_ours(&input, 2);
    let ours_elapsed = started.elapsed().as_secs_f64();
    let ours_rtf = seconds as f64 / ours_elapsed;
    println!(
        "ours:   {ours_elapsed:8.3} s  {ours_rtf:9.0}x real time  CPU at real time {:.4} % of one core  ({frames} frames, {} samples)",
        100.0 / ours_rtf,
        ours.len()
    );

    // --- ffmpeg ---------------------------------------------------------------------------
    let mut ffmpeg_mix = None;
    let mut ffmpeg_rtf = None;
    if ffmpeg {
        let in_wav = dir.path().join("in.wav");
        write_f32_wav(&in_wav, &input, 2);
        let out_wav = dir.path().join("out.wav");
        let started = Instant::now();
        run_ffmpeg(&in_wav, &out_wav);
        let elapsed = started.elapsed().as_secs_f64();
        let rtf = seconds as f64 / elapsed;
        println!(
            "ffmpeg: {elapsed:8.3} s  {rtf:9.0}x real time  CPU at real time {:.4} % of one core  (includes file I/O)",
            100.0 / rtf
        );
        println!("speed ratio ours/ffmpeg: {:.2}x", ours_rtf / rtf);
        ffmpeg_rtf = Some(rtf);
        ffmpeg_mix = Some(read_i16_wav(&out_wav));
    } else {
        println!("ffmpeg: not found on PATH; only our figures are shown");
    }
    drop(input);

    // --- quality --------------------------------------------------------------------------
    println!();
    println!("quality                         ours        ffmpeg");
    let tone = common::sine(RATE, 2, 1000.0, 0.9, RATE as usize * 10);
    let ours_tone = run_ours(&tone, 2).0;
    let ffmpeg_tone = ffmpeg.then(|| through_ffmpeg(dir.path(), "tone1k", &tone));
    let thd = |y: &[i16]| {
        let y = common::to_f64(y);
        let mid = &y[8_000..y.len() - 8_000];
        let freq = common::measure_freq(mid, 16_000.0);
        (
            freq,
            common::thd_n_db(mid, 16_000.0, freq),
            common::sine_lag_seconds(mid, 8_000, 16_000.0, 1000.0) * 1e6,
        )
    };
    let (of, ot, ol) = thd(&ours_tone);
    let theirs = ffmpeg_tone.as_deref().map(thd);
    row(
        "1 kHz measured freq (Hz)",
        format!("{of:.4}"),
        theirs.map(|t| format!("{:.4}", t.0)),
    );
    row(
        "1 kHz THD+N (dB)",
        format!("{ot:.2}"),
        theirs.map(|t| format!("{:.2}", t.1)),
    );
    row(
        "1 kHz lag (µs)",
        format!("{ol:.2}"),
        theirs.map(|t| format!("{:.2}", t.2)),
    );
    row(
        "output length, 10 s tone",
        ours_tone.len().to_string(),
        ffmpeg_tone.as_ref().map(|t| t.len().to_string()),
    );

    let alias = common::sine(RATE, 2, 12_000.0, 0.9, RATE as usize * 5);
    let ours_alias = run_ours(&alias, 2).0;
    let ffmpeg_alias = ffmpeg.then(|| through_ffmpeg(dir.path(), "tone12k", &alias));
    let alias_db = |y: &[i16]| {
        let mid = &y[1_600..y.len() - 1_600];
        let peak = mid.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        let rms =
            (mid.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / mid.len() as f64).sqrt();
        if peak == 0 {
            "0 LSB (all zero)".to_string()
        } else {
            let db = 20.0 * (rms / (0.9 * 32768.0 / 2f64.sqrt())).log10();
            format!("{peak} LSB / {db:.1} dB")
        }
    };
    row(
        "12 kHz leak peak / level",
        alias_db(&ours_alias),
        ffmpeg_alias.as_deref().map(alias_db),
    );

    if let Some(theirs) = &ffmpeg_mix {
        let n = ours.len().min(theirs.len());
        let (mut diff, mut sig) = (0.0_f64, 0.0_f64);
        for (a, b) in ours[..n].iter().zip(&theirs[..n]) {
            sig += f64::from(*a).powi(2);
            diff += (f64::from(*a) - f64::from(*b)).powi(2);
        }
        println!(
            "mix: ours vs ffmpeg agreement {:.1} dB SNR over {n} samples (lengths {} / {})",
            10.0 * (sig / diff.max(1.0)).log10(),
            ours.len(),
            theirs.len()
        );
    }
    if let Some(rtf) = ffmpeg_rtf {
        println!(
            "summary: ours {ours_rtf:.0}x, ffmpeg {rtf:.0}x, ratio {:.2}",
            ours_rtf / rtf
        );
    }
}

fn row(name: &str, ours: String, theirs: Option<String>) {
    println!(
        "{name:<28} {ours:>12}  {:>12}",
        theirs.unwrap_or_else(|| "-".into())
    );
}

/// Converter + framer over `input` in 10 ms blocks; returns the stream and the frame count.
fn run_ours(input: &[f32], channels: u16) -> (Vec<i16>, u64) {
    let mut resampler = Resampler::new(RATE, channels).expect("resampler");
    let mut framer = Framer::new(0);
    let mut stream = Vec::with_capacity(input.len() / 6 + 16_000);
    let mut out = Vec::with_capacity(4096);
    let mut frames = 0_u64;
    for block in input.chunks(BLOCK_FRAMES * usize::from(channels)) {
        out.clear();
        resampler.push(block, &mut out).expect("push");
        framer.push(&out, |_| frames += 1);
        stream.extend_from_slice(&out);
    }
    out.clear();
    resampler.finish(&mut out).expect("finish");
    framer.push(&out, |_| frames += 1);
    frames += u64::from(framer.finish().is_some());
    stream.extend_from_slice(&out);
    (stream, frames)
}

/// Speech-band tones, a low hum and white noise (which extends above 8 kHz, so the
/// anti-aliasing filter has real work), different on the two channels.
fn mixed_signal(seconds: usize) -> Vec<f32> {
    let frames = RATE as usize * seconds;
    let mut out = Vec::with_capacity(frames * 2);
    let mut noise_state = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = move || {
        noise_state ^= noise_state << 13;
        noise_state ^= noise_state >> 7;
        noise_state ^= noise_state << 17;
        (noise_state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let tau = std::f32::consts::TAU;
    let step = 1.0 / RATE as f32;
    let (mut p1, mut p2, mut p3, mut p4) = (0.0_f32, 0.0_f32, 0.0_f32, 0.0_f32);
    for _ in 0..frames {
        let left = 0.3 * p1.sin() + 0.15 * p2.sin() + 0.05 * noise();
        let right = 0.3 * p3.sin() + 0.1 * p4.sin() + 0.05 * noise();
        out.push(left);
        out.push(right);
        p1 = (p1 + tau * 220.0 * step) % tau;
        p2 = (p2 + tau * 1_234.5 * step) % tau;
        p3 = (p3 + tau * 3_150.0 * step) % tau;
        p4 = (p4 + tau * 60.0 * step) % tau;
    }
    out
}

fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run_ffmpeg(input: &Path, output: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(["-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le"])
        .arg(output)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed: {status}");
}

fn through_ffmpeg(dir: &Path, name: &str, input: &[f32]) -> Vec<i16> {
    let in_wav = dir.join(format!("{name}.in.wav"));
    let out_wav = dir.join(format!("{name}.out.wav"));
    write_f32_wav(&in_wav, input, 2);
    run_ffmpeg(&in_wav, &out_wav);
    read_i16_wav(&out_wav)
}

fn write_f32_wav(path: &Path, samples: &[f32], channels: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: RATE,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create WAV");
    for &s in samples {
        writer.write_sample(s).expect("write WAV");
    }
    writer.finalize().expect("finish WAV");
}

fn read_i16_wav(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).expect("open ffmpeg output");
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    reader
        .samples::<i16>()
        .map(|s| s.expect("read sample"))
        .collect()
}
