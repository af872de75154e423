//! Real cpal capture on a machine without a sound card (notes/virtual-capture.md, option A).
//!
//! The test writes an ALSA config whose default PCM is the `file` plugin reading a raw
//! f32 stereo 48 kHz sine that the test generates, and points alsa-lib at it through
//! `ALSA_CONFIG_PATH`. Environment variables are process-wide and alsa-lib reads its config
//! once, so this file is its own test binary and sets the variable before any ALSA call.
//! If the virtual device cannot be set up or opened, the tests fail: they never skip.

mod common;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use recorder::pipeline::{self, PipelineConfig, PipelineEvent, StopHandle};
use recorder::source::{self, AudioFormat, InputSpec, OpenOptions, SourceError, SourceEvent};

const RATE: u32 = 48_000;
const FREQ: f64 = 440.0;
/// The file is 6 s long: the tests read at most ~2.5 s of it, so they never reach the end,
/// where the plugin starts repeating its last period.
const FILE_SECONDS: usize = 6;

/// The generated signal, exactly as stored in the raw file.
fn fed_signal() -> Vec<f32> {
    common::sine(RATE, 2, FREQ, 0.5, RATE as usize * FILE_SECONDS)
}

/// Writes the raw file and the ALSA config once per process and selects the config.
fn virtual_device() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("alsa-virtual-capture")
            .tempdir()
            .expect("create temp dir")
            .keep();
        let raw = dir.join("sine_f32_stereo_48k.raw");
        let bytes: Vec<u8> = fed_signal().iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(&raw, bytes).expect("write raw input");
        let conf = dir.join("asound.conf");
        std::fs::write(
            &conf,
            format!(
                "pcm.!default {{\n    type file\n    slave.pcm \"null\"\n    file \"/dev/null\"\n    infile \"{}\"\n    format \"raw\"\n}}\n",
                raw.display()
            ),
        )
        .expect("write ALSA config");
        assert!(
            std::path::Path::new("/usr/share/alsa/alsa.conf").exists(),
            "alsa-lib's base config is missing; install libasound2"
        );
        // SAFETY: set once, before any thread of this process touches ALSA or the
        // environment (OnceLock serializes the initialization).
        unsafe {
            std::env::set_var(
                "ALSA_CONFIG_PATH",
                format!("/usr/share/alsa/alsa.conf:{}", conf.display()),
            );
        }
        dir
    })
}

#[test]
fn default_device_captures_the_fed_signal_exactly() {
    virtual_device();
    let capture = source::open(&InputSpec::DefaultDevice, OpenOptions::default())
        .expect("open the virtual ALSA default device");
    assert_eq!(
        capture.format(),
        AudioFormat {
            rate: RATE,
            channels: 2
        },
        "the file plugin's default config should be F32 stereo 48 kHz"
    );
    let wanted = RATE as usize * 2 * 2; // 2 s, interleaved
    let mut captured = Vec::with_capacity(wanted + 8192);
    while captured.len() < wanted {
        match capture.recv_timeout(Duration::from_secs(5)) {
            Some(SourceEvent::Block(block)) => captured.extend(block.samples),
            Some(SourceEvent::End) => panic!("device ended"),
            Some(SourceEvent::Error(e)) => panic!("device error: {e}"),
            None => panic!("device delivered nothing for 5 s"),
        }
    }
    capture.stop();
    captured.truncate(wanted);

    // Bit-exact: capture through cpal neither drops, repeats nor alters samples.
    let fed = fed_signal();
    assert_eq!(&captured[..], &fed[..wanted]);

    // And through the converter the tone keeps its frequency.
    let out = common::convert(&captured, RATE, 2, 480);
    assert_eq!(out.len(), 32_000);
    let y = common::to_f64(&out);
    let freq = common::measure_freq(&y[2_000..30_000], 16_000.0);
    assert!((freq - FREQ).abs() <= 0.01, "captured {freq:.4} Hz");
}

#[test]
fn pipeline_from_the_device_yields_frames_of_the_fed_tone() {
    virtual_device();
    let capture = source::open(&"default".parse().unwrap(), OpenOptions::default())
        .expect("open the virtual ALSA default device");
    let stop = StopHandle::new();
    let mut frames = Vec::new();
    pipeline::run(capture, &PipelineConfig::default(), &stop, |event| {
        if let PipelineEvent::Frame(frame) = event {
            frames.push(frame);
            if frames.len() == 2 {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })
    .expect("pipeline run");
    assert!(frames.len() >= 2);
    assert_eq!(frames[0].seq, 1);
    assert_eq!(frames[1].timestamp_ms, frames[0].timestamp_ms + 1000);
    let pcm: Vec<u8> = frames[..2].iter().flat_map(|f| f.pcm.clone()).collect();
    let y = common::to_f64(&recorder::pcm::le_bytes_to_i16(&pcm));
    let freq = common::measure_freq(&y[2_000..30_000], 16_000.0);
    assert!((freq - FREQ).abs() <= 0.01, "framed {freq:.4} Hz");
}

#[test]
fn devices_are_listed_and_unknown_names_fail_clearly() {
    virtual_device();
    let devices = source::list_devices().expect("list devices");
    let default = devices
        .iter()
        .find(|d| d.name == "default")
        .unwrap_or_else(|| panic!("no `default` device in {devices:?}"));
    assert!(default.is_default);
    let config = default.default_config.as_ref().expect("default config");
    assert_eq!((config.channels, config.min_rate), (2, RATE));
    assert_eq!(config.sample_format, "f32");
    assert!(!default.configs.is_empty());

    let err = source::device::open(Some("No Such Microphone"))
        .err()
        .unwrap();
    match &err {
        SourceError::DeviceNotFound { name, available } => {
            assert_eq!(name, "No Such Microphone");
            assert!(available.iter().any(|n| n == "default"), "{available:?}");
        }
        other => panic!("expected DeviceNotFound, got {other:?}"),
    }
    assert!(err.to_string().contains("No Such Microphone"));
}
