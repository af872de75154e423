//! Audio sources: where interleaved `f32` blocks come from.
//!
//! Every source runs on its own thread (or cpal's) and delivers [`SourceEvent`]s through a std
//! channel: audio never passes through an async runtime, so a busy network task cannot delay a
//! capture callback. A running source is a [`Capture`]; dropping it stops the source.
//!
//! - [`device`]: a cpal input device (default or by name) at its default config;
//! - [`system`]: what an output device plays (monitor, loopback or tap, per OS);
//! - [`wav`]: a WAV file, paced in real time or as fast as the consumer takes it;
//! - [`tone`]: a generated sine, for demos and tests;
//! - [`spec`]: the `--input` / `--system` string that picks one of them.

pub mod device;
pub mod spec;
pub mod system;
pub mod tone;
pub mod wav;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

pub use device::{DeviceInfo, SupportedConfig, list_devices};
pub use spec::InputSpec;

/// Rate and channel layout of the blocks a source delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    /// Frames per second.
    pub rate: u32,
    /// Interleaved channels per frame.
    pub channels: u16,
}

/// A run of interleaved frames, as captured.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioBlock {
    /// Interleaved samples, full scale `[-1.0, 1.0)`; always a whole number of frames.
    pub samples: Vec<f32>,
    /// Channels per frame (same as the source's [`AudioFormat`]).
    pub channels: u16,
    /// Frames per second (same as the source's [`AudioFormat`]).
    pub rate: u32,
    /// Wall clock at which the block's first frame was captured (or, for files and tones,
    /// would have been if played in real time from the start). Only the first block's value is
    /// used to stamp frames; later times follow from sample counts.
    pub captured_at: SystemTime,
}

impl AudioBlock {
    /// Frames in the block.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }
}

/// What a source sends: audio, the end of a finite source, or the error that stopped it.
#[derive(Debug)]
pub enum SourceEvent {
    /// Captured audio.
    Block(AudioBlock),
    /// A finite source (file, timed tone) has delivered everything.
    End,
    /// The source failed and will send nothing more.
    Error(SourceError),
}

/// Why a source could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The `--input` string is not one of the accepted forms.
    #[error("invalid input `{spec}`: {reason}")]
    InvalidSpec {
        /// The string as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The system has no default input device (no microphone, or audio not configured).
    #[error("no default audio input device is available")]
    NoDefaultDevice,
    /// No input device has the requested name.
    #[error("no audio input device named `{name}`; available: {}", available.join(", "))]
    DeviceNotFound {
        /// Requested name.
        name: String,
        /// Names that do exist, to help the user pick one.
        available: Vec<String>,
    },
    /// The system has no default output device, so there is no system audio to record.
    #[error("no default audio output device is available to record system audio from")]
    NoDefaultOutput,
    /// No output device has the requested name.
    #[error("no audio output named `{name}` to record system audio from; available: {}", available.join(", "))]
    OutputNotFound {
        /// Requested name.
        name: String,
        /// Outputs that do exist.
        available: Vec<String>,
    },
    /// This OS (version) offers no way to record system audio.
    #[error("{0}")]
    SystemAudioUnsupported(String),
    /// The device offers a sample format this engine does not convert.
    #[error("device `{device}` delivers {format} samples, which are not supported")]
    UnsupportedSampleFormat {
        /// Device name.
        device: String,
        /// cpal's name of the format.
        format: String,
    },
    /// The audio backend refused an operation on the device, or reported a stream failure
    /// (for example the device was unplugged).
    #[error("audio device `{device}`: {message}")]
    Device {
        /// Device name.
        device: String,
        /// The backend's explanation.
        message: String,
    },
    /// The device did not finish opening in time.
    #[error("audio device `{device}` did not open within {seconds} s")]
    OpenTimeout {
        /// Device name (or `default`).
        device: String,
        /// How long we waited.
        seconds: u64,
    },
    /// The source stopped delivering audio without saying why.
    #[error("audio source stopped delivering audio for {seconds:.1} s")]
    Stalled {
        /// How long nothing arrived.
        seconds: f64,
    },
    /// The source's thread ended without an end or error signal (a panic).
    #[error("audio source thread ended unexpectedly")]
    Disconnected,
    /// A WAV file could not be opened or decoded.
    #[error("WAV file {path}: {source}")]
    Wav {
        /// The file.
        path: std::path::PathBuf,
        /// What hound reported.
        #[source]
        source: hound::Error,
    },
    /// A tone parameter is out of range.
    #[error("invalid tone: {0}")]
    InvalidTone(String),
}

/// How fast a finite source (file, tone) delivers its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// As a microphone would: one second of audio per second of wall clock.
    #[default]
    RealTime,
    /// As fast as the consumer takes blocks (the channel is bounded, so memory stays small).
    AsFastAsPossible,
}

/// A running source. Read its events with [`recv_timeout`](Capture::recv_timeout); drop it (or
/// call [`stop`](Capture::stop)) to stop capturing.
pub struct Capture {
    format: AudioFormat,
    description: String,
    /// `Option` only so that stopping can drop it first: a producer blocked on a full bounded
    /// channel is released by the receiver's disappearance, not by the stop flag.
    events: Option<Receiver<SourceEvent>>,
    /// Checked by file and tone threads between blocks.
    stop_flag: Arc<AtomicBool>,
    /// Dropping it wakes the thread that owns a cpal stream.
    stop_tx: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    pub(crate) fn new(
        format: AudioFormat,
        description: String,
        events: Receiver<SourceEvent>,
        stop_flag: Arc<AtomicBool>,
        stop_tx: Option<Sender<()>>,
        thread: JoinHandle<()>,
    ) -> Self {
        Self {
            format,
            description,
            events: Some(events),
            stop_flag,
            stop_tx,
            thread: Some(thread),
        }
    }

    /// Rate and channels of every block this source delivers.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Human-readable name of the source (device name, file path, tone).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Waits up to `timeout` for the next event; `None` if nothing arrived in that time.
    ///
    /// Never blocks longer than `timeout`, so a caller can notice a device that went silent
    /// without an error (see the pipeline's stall timeout) instead of hanging on it.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<SourceEvent> {
        let events = self.events.as_ref()?;
        match events.recv_timeout(timeout) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                Some(SourceEvent::Error(SourceError::Disconnected))
            }
        }
    }

    /// Stops the source and waits for its thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop_flag.store(true, Ordering::SeqCst);
        self.events = None;
        self.stop_tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Options for [`open`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Pacing of files and tones (devices are always real time).
    pub pacing: Pacing,
    /// Length of a tone; `None` plays until stopped.
    pub tone_duration: Option<Duration>,
}

/// Starts the source an [`InputSpec`] names.
pub fn open(spec: &InputSpec, options: OpenOptions) -> Result<Capture, SourceError> {
    match spec {
        InputSpec::DefaultDevice => device::open(None),
        InputSpec::Device(name) => device::open(Some(name)),
        InputSpec::Wav(path) => wav::open(path, options.pacing),
        InputSpec::Tone { freq } => tone::open(
            tone::ToneConfig {
                freq: *freq,
                duration: options.tone_duration,
                ..tone::ToneConfig::default()
            },
            options.pacing,
        ),
    }
}

/// Starts the system-audio source an [`InputSpec`] names: `default` and device names mean an
/// output's audio ([`system`]); files and tones are the same as for [`open`].
pub fn open_system(spec: &InputSpec, options: OpenOptions) -> Result<Capture, SourceError> {
    match spec {
        InputSpec::DefaultDevice => system::open(None),
        InputSpec::Device(name) => system::open(Some(name)),
        InputSpec::Wav(_) | InputSpec::Tone { .. } => open(spec, options),
    }
}

/// Frames per block for file and tone sources: 10 ms, like a typical capture callback.
pub(crate) fn block_frames(rate: u32) -> usize {
    (rate as usize / 100).max(1)
}

/// Sleeps until `start + frames / rate` of wall clock, the moment a real-time source would
/// deliver its next block. Scheduling against the start (not the previous block) keeps
/// rounding and wake-up jitter from accumulating into drift.
pub(crate) fn pace(start: std::time::Instant, frames_done: u64, rate: u32) {
    let due = start + Duration::from_secs_f64(frames_done as f64 / f64::from(rate));
    let now = std::time::Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Wall clock `frames / rate` seconds after `start`.
pub(crate) fn offset_time(start: SystemTime, frames: u64, rate: u32) -> SystemTime {
    start + Duration::from_secs_f64(frames as f64 / f64::from(rate))
}
