//! The WAV source reads every bit depth hound writes, and feeds the pipeline correctly.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use recorder::source::{self, AudioFormat, OpenOptions, Pacing, SourceEvent};

/// A sine written at `bits` (int) or 32-bit float, returned as the f32 values expected back.
fn write_wav(
    path: &Path,
    rate: u32,
    channels: u16,
    bits: u16,
    float: bool,
    frames: usize,
) -> Vec<f32> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    let mut expected = Vec::new();
    for n in 0..frames {
        for ch in 0..channels {
            // Different content per channel so interleaving errors show.
            let x = 0.6
                * (2.0 * std::f64::consts::PI * (300.0 + 200.0 * f64::from(ch)) * n as f64
                    / f64::from(rate))
                .sin();
            if float {
                writer.write_sample(x as f32).unwrap();
                expected.push(x as f32);
            } else {
                let scale = f64::from(1_u32 << (bits - 1));
                let q = (x * scale).round() as i32;
                match bits {
                    8 => writer.write_sample(q as i8).unwrap(),
                    16 => writer.write_sample(q as i16).unwrap(),
                    _ => writer.write_sample(q).unwrap(),
                }
                expected.push((f64::from(q) / scale) as f32);
            }
        }
    }
    writer.finalize().unwrap();
    expected
}

fn collect(path: &Path, pacing: Pacing) -> (AudioFormat, Vec<f32>) {
    let capture = source::open(
        &path.to_str().unwrap().parse().unwrap(),
        OpenOptions {
            pacing,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let format = capture.format();
    let mut samples = Vec::new();
    loop {
        match capture.recv_timeout(Duration::from_secs(5)) {
            Some(SourceEvent::Block(block)) => {
                assert_eq!((block.rate, block.channels), (format.rate, format.channels));
                assert_eq!(block.samples.len() % usize::from(format.channels), 0);
                samples.extend(block.samples);
            }
            Some(SourceEvent::End) => break,
            Some(SourceEvent::Error(e)) => panic!("source failed: {e}"),
            None => panic!("WAV source stalled"),
        }
    }
    (format, samples)
}

#[test]
fn every_bit_depth_and_layout_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (8_000, 1, 8, false),
        (22_050, 2, 16, false),
        (44_100, 1, 24, false),
        (48_000, 2, 32, false),
        (96_000, 6, 32, true),
        (16_000, 1, 16, false),
    ];
    for (rate, channels, bits, float) in cases {
        let path = dir
            .path()
            .join(format!("t_{rate}_{channels}_{bits}_{float}.wav"));
        let frames = rate as usize / 3 + 17;
        let expected = write_wav(&path, rate, channels, bits, float, frames);
        let (format, samples) = collect(&path, Pacing::AsFastAsPossible);
        assert_eq!(format, AudioFormat { rate, channels });
        assert_eq!(samples.len(), expected.len(), "{path:?}");
        assert_eq!(samples, expected, "{path:?}");
    }
}

#[test]
fn real_time_pacing_takes_the_file_duration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paced.wav");
    write_wav(&path, 48_000, 2, 16, false, 14_400); // 0.3 s
    let started = Instant::now();
    let (_, samples) = collect(&path, Pacing::RealTime);
    let elapsed = started.elapsed();
    assert_eq!(samples.len(), 28_800);
    // The last 10 ms block is due at 0.29 s; it must not arrive much earlier.
    assert!(elapsed >= Duration::from_millis(285), "{elapsed:?}");
}

#[test]
fn missing_and_corrupt_files_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.wav");
    let err = source::wav::open(&missing, Pacing::AsFastAsPossible)
        .err()
        .unwrap();
    assert!(err.to_string().contains("nope.wav"), "{err}");
    let corrupt = dir.path().join("bad.wav");
    std::fs::write(&corrupt, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk").unwrap();
    let err = source::wav::open(&corrupt, Pacing::AsFastAsPossible)
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("WAV file"), "{err}");
}
