//! A generated sine: a source with a known signal, for demos, the CLI and tests.

use std::f64::consts::PI;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use super::{
    AudioBlock, AudioFormat, Capture, Pacing, SourceError, SourceEvent, block_frames, offset_time,
    pace,
};

/// Parameters of a generated tone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneConfig {
    /// Frequency, Hz; must be positive and below half the rate.
    pub freq: f64,
    /// Peak amplitude, full scale = 1.0.
    pub amplitude: f64,
    /// Sample rate of the generated stream.
    pub rate: u32,
    /// Channels (the same signal on each).
    pub channels: u16,
    /// Length; `None` runs until stopped.
    pub duration: Option<Duration>,
}

impl Default for ToneConfig {
    /// 440 Hz at half scale, 48 kHz stereo: what a typical microphone delivers, so a demo with
    /// a tone exercises the same resampling path as a real device.
    fn default() -> Self {
        Self {
            freq: 440.0,
            amplitude: 0.5,
            rate: 48_000,
            channels: 2,
            duration: None,
        }
    }
}

/// Starts a tone source.
pub fn open(config: ToneConfig, pacing: Pacing) -> Result<Capture, SourceError> {
    if config.rate == 0 || config.channels == 0 {
        return Err(SourceError::InvalidTone(
            "rate and channels must be positive".into(),
        ));
    }
    if !(config.freq > 0.0 && config.freq < f64::from(config.rate) / 2.0) {
        return Err(SourceError::InvalidTone(format!(
            "{} Hz is not between 0 and half the sample rate ({} Hz)",
            config.freq,
            config.rate / 2
        )));
    }
    let format = AudioFormat {
        rate: config.rate,
        channels: config.channels,
    };
    let total_frames = config
        .duration
        .map(|d| (d.as_secs_f64() * f64::from(config.rate)).round() as u64);
    let (tx, rx) = mpsc::sync_channel(16);
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("tone-source".into())
        .spawn(move || generate(config, total_frames, pacing, &tx, &thread_stop))
        .map_err(|e| SourceError::InvalidTone(format!("cannot start thread: {e}")))?;
    Ok(Capture::new(
        format,
        format!("tone:{} Hz", config.freq),
        rx,
        stop,
        None,
        thread,
    ))
}

fn generate(
    config: ToneConfig,
    total_frames: Option<u64>,
    pacing: Pacing,
    tx: &mpsc::SyncSender<SourceEvent>,
    stop: &AtomicBool,
) {
    let block = block_frames(config.rate) as u64;
    let channels = usize::from(config.channels);
    let step = 2.0 * PI * config.freq / f64::from(config.rate);
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let mut done = 0_u64;
    while !stop.load(Ordering::SeqCst) {
        let frames = match total_frames {
            Some(total) if done >= total => {
                let _ = tx.send(SourceEvent::End);
                return;
            }
            Some(total) => block.min(total - done),
            None => block,
        };
        if pacing == Pacing::RealTime {
            pace(started, done, config.rate);
        }
        let mut samples = Vec::with_capacity(frames as usize * channels);
        for n in done..done + frames {
            // The phase is computed from the absolute frame index, so it never drifts.
            let value = (config.amplitude * (step * n as f64).sin()) as f32;
            samples.extend(std::iter::repeat_n(value, channels));
        }
        let block = AudioBlock {
            samples,
            channels: config.channels,
            rate: config.rate,
            captured_at: offset_time(started_wall, done, config.rate),
        };
        done += frames;
        if tx.send(SourceEvent::Block(block)).is_err() {
            return;
        }
    }
}
