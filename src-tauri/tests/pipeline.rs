//! The pipeline end to end on file and tone sources: frames, local copy and levels agree.

mod common;

use std::ops::ControlFlow;
use std::time::Duration;

use recorder::framer::{FRAME_BYTES, FRAME_SAMPLES, Frame};
use recorder::pcm::le_bytes_to_i16;
use recorder::pipeline::{self, EndReason, PipelineConfig, PipelineEvent, StopHandle};
use recorder::source::{self, OpenOptions, Pacing, tone};

fn write_stereo_wav(path: &std::path::Path, rate: u32, frames: usize) -> Vec<f32> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let samples = common::sine(rate, 2, 1000.0, 0.5, frames);
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for &s in &samples {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();
    samples
}

#[test]
fn wav_through_pipeline_gives_frames_equal_to_converter_output_and_local_copy() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    let copy = dir.path().join("copy.wav");
    let rate = 44_100;
    let frames_in = rate as usize * 5 / 2; // 2.5 s
    let samples = write_stereo_wav(&input, rate, frames_in);
    let expected = common::convert(&samples, rate, 2, 4096);
    assert_eq!(expected.len(), 40_000);

    let capture = source::wav::open(&input, Pacing::AsFastAsPossible).unwrap();
    let config = PipelineConfig {
        local_copy: Some(copy.clone()),
        start_ms: Some(1_000_000),
        ..PipelineConfig::default()
    };
    let mut frames: Vec<Frame> = Vec::new();
    let mut levels = 0;
    let summary = pipeline::run(capture, &config, &StopHandle::new(), |event| {
        match event {
            PipelineEvent::Frame(f) => frames.push(f),
            PipelineEvent::Level(l) => {
                levels += 1;
                assert!(l.rms_dbfs > -10.0 && l.rms_dbfs < -8.0, "{l:?}");
            }
        }
        ControlFlow::Continue(())
    })
    .unwrap();

    assert_eq!(summary.reason, EndReason::SourceEnded);
    assert_eq!(summary.input_frames, frames_in as u64);
    assert_eq!(summary.samples, 40_000);
    assert_eq!(summary.frames, 3);
    assert_eq!(summary.next_seq, 4);
    assert_eq!(levels, 40_000 / 800);

    assert_eq!(frames.len(), 3);
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame.seq, i as u64 + 1);
        assert_eq!(frame.timestamp_ms, 1_000_000 + 1000 * i as u64);
        assert_eq!(frame.pcm.len(), FRAME_BYTES);
    }
    assert_eq!(frames[2].real_samples, 8_000);
    let joined: Vec<u8> = frames.iter().flat_map(|f| f.pcm.clone()).collect();
    let joined = le_bytes_to_i16(&joined);
    assert_eq!(&joined[..40_000], &expected[..]);
    assert!(joined[40_000..].iter().all(|&s| s == 0));

    let mut reader = hound::WavReader::open(&copy).unwrap();
    let local: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(local, expected, "local copy holds exactly the real samples");
}

#[test]
fn stop_handle_ends_an_endless_tone_and_flushes_the_last_frame() {
    let capture = tone::open(
        tone::ToneConfig {
            freq: 440.0,
            ..tone::ToneConfig::default()
        },
        Pacing::AsFastAsPossible,
    )
    .unwrap();
    let stop = StopHandle::new();
    let mut frames = Vec::new();
    let summary = pipeline::run(capture, &PipelineConfig::default(), &stop, |event| {
        if let PipelineEvent::Frame(f) = event {
            frames.push(f);
            if frames.len() == 2 {
                stop.stop();
            }
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(summary.reason, EndReason::Stopped);
    assert!(frames.len() >= 2);
    assert_eq!(summary.frames, frames.len() as u64);
    let real: u64 = frames.iter().map(|f| f.real_samples as u64).sum();
    assert_eq!(real, summary.samples);
    assert!(frames[..frames.len() - 1].iter().all(Frame::is_complete));
    // The tone starts from its capture time; frames are 1000 ms apart regardless of speed.
    let start = summary.start_ms.unwrap();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.timestamp_ms, start + 1000 * i as u64);
    }
    // Its frequency survives the trip.
    let pcm: Vec<u8> = frames[..2].iter().flat_map(|f| f.pcm.clone()).collect();
    let y = common::to_f64(&le_bytes_to_i16(&pcm));
    let freq = common::measure_freq(&y[4_000..2 * FRAME_SAMPLES - 4_000], 16_000.0);
    assert!((freq - 440.0).abs() < 0.01, "{freq}");
}

#[test]
fn timed_tone_ends_with_exact_length() {
    let capture = source::open(
        &"tone:1000".parse().unwrap(),
        OpenOptions {
            pacing: Pacing::AsFastAsPossible,
            tone_duration: Some(Duration::from_millis(2_345)),
        },
    )
    .unwrap();
    let summary = pipeline::run(
        capture,
        &PipelineConfig::default(),
        &StopHandle::new(),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(summary.reason, EndReason::SourceEnded);
    assert_eq!(summary.input_frames, 112_560);
    assert_eq!(summary.samples, 37_520);
    assert_eq!(summary.frames, 3);
}
