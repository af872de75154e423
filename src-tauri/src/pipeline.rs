//! Wires a source to the gateway's frames: source → [`Resampler`] → [`Framer`], with the
//! [`LocalCopy`] and the [`LevelMeter`] fed from the same normalized stream.
//!
//! It runs on the caller's thread (give it one of its own) and hands every frame and level to
//! a callback; the uplink decides what to do with frames (spool, send). The callback runs on
//! the audio path, so it must be quick: push into a channel, do not await a network.
//!
//! Whatever ends the run — the source's end, [`StopHandle::stop`], the callback returning
//! `Break`, or a source error — the converter and framer are flushed, so audio captured before
//! the end still comes out as frames (the last one padded with silence) and lands in the local
//! copy. On a source error that happens first and the error is returned after.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::framer::{Frame, Framer};
use crate::level::{Level, LevelMeter};
use crate::local_copy::{LocalCopy, LocalCopyError};
use crate::resample::{ResampleError, Resampler};
use crate::source::{AudioFormat, Capture, SourceError, SourceEvent};

/// How often the loop wakes without audio to check the stop flag and the stall timeout.
const POLL: Duration = Duration::from_millis(50);

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Where to write the normalized WAV; `None` for no local copy.
    pub local_copy: Option<PathBuf>,
    /// A source that delivers nothing for this long is treated as failed (a device that
    /// vanished without an error callback).
    pub stall_timeout: Duration,
    /// Wall clock (epoch ms) of the stream's first sample; `None` takes it from the first
    /// block's capture time.
    pub start_ms: Option<u64>,
    /// Seq of the first frame (greater than 1 when resuming a session).
    pub first_seq: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            local_copy: None,
            stall_timeout: Duration::from_secs(5),
            start_ms: None,
            first_seq: 1,
        }
    }
}

/// What the pipeline hands to its consumer.
#[derive(Debug)]
pub enum PipelineEvent {
    /// A complete frame (or, at the end, the padded last one).
    Frame(Frame),
    /// The level of the last 50 ms.
    Level(Level),
}

/// Why the run ended, when it ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// A finite source delivered everything.
    SourceEnded,
    /// [`StopHandle::stop`] was called or the callback returned `Break`.
    Stopped,
}

/// Totals of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSummary {
    /// Why it ended.
    pub reason: EndReason,
    /// Format the source delivered.
    pub input_format: AudioFormat,
    /// Source frames consumed.
    pub input_frames: u64,
    /// Real (non-padding) 16 kHz samples produced, which is also the local copy's length.
    pub samples: u64,
    /// Frames emitted.
    pub frames: u64,
    /// Seq the next frame would have had.
    pub next_seq: u64,
    /// Wall clock (epoch ms) of the first sample, if any audio arrived.
    pub start_ms: Option<u64>,
    /// The finished local copy, if one was written.
    pub local_copy: Option<PathBuf>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The source failed; frames captured before the failure were still delivered.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The converter failed.
    #[error(transparent)]
    Resample(#[from] ResampleError),
    /// The local copy could not be written.
    #[error(transparent)]
    LocalCopy(#[from] LocalCopyError),
    /// A block arrived in a different format than the source declared.
    #[error("source changed format mid-stream: expected {expected:?}, got {got:?}")]
    FormatChanged {
        /// Declared at start.
        expected: AudioFormat,
        /// Seen in a block.
        got: AudioFormat,
    },
}

/// Asks a running pipeline to finish, from any thread.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A handle not yet stopped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests the end of the run; it finishes within about 50 ms.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Runs `capture` through conversion and framing until it ends, is stopped, or fails.
pub fn run(
    capture: Capture,
    config: &PipelineConfig,
    stop: &StopHandle,
    mut on_event: impl FnMut(PipelineEvent) -> ControlFlow<()>,
) -> Result<PipelineSummary, PipelineError> {
    let format = capture.format();
    let mut stages = Stages::new(format, config)?;
    let mut last_audio = Instant::now();
    let mut failure = None;
    let reason = loop {
        if stop.is_stopped() {
            break EndReason::Stopped;
        }
        match capture.recv_timeout(POLL) {
            Some(SourceEvent::Block(block)) => {
                last_audio = Instant::now();
                let got = AudioFormat {
                    rate: block.rate,
                    channels: block.channels,
                };
                if got != format {
                    failure = Some(PipelineError::FormatChanged {
                        expected: format,
                        got,
                    });
                    break EndReason::Stopped;
                }
                if stages.framer.is_none() {
                    let start_ms = config
                        .start_ms
                        .unwrap_or_else(|| epoch_ms(block.captured_at));
                    stages.framer = Some(Framer::resume(start_ms, config.first_seq));
                    stages.start_ms = Some(start_ms);
                }
                match stages.push(&block.samples, &mut on_event) {
                    Ok(ControlFlow::Continue(())) => {}
                    Ok(ControlFlow::Break(())) => break EndReason::Stopped,
                    Err(e) => {
                        failure = Some(e);
                        break EndReason::Stopped;
                    }
                }
            }
            Some(SourceEvent::End) => break EndReason::SourceEnded,
            Some(SourceEvent::Error(e)) => {
                failure = Some(e.into());
                break EndReason::Stopped;
            }
            None if last_audio.elapsed() >= config.stall_timeout => {
                failure = Some(
                    SourceError::Stalled {
                        seconds: last_audio.elapsed().as_secs_f64(),
                    }
                    .into(),
                );
                break EndReason::Stopped;
            }
            None => {}
        }
    };
    // Stop capturing before flushing so a device is released promptly.
    capture.stop();
    let summary = stages.finish(reason, &mut on_event);
    match failure {
        Some(error) => {
            // The flush result is secondary to the error that ended the run.
            let _ = summary;
            Err(error)
        }
        None => summary,
    }
}

/// The per-run state between source and consumer.
struct Stages {
    format: AudioFormat,
    resampler: Resampler,
    /// Created at the first block, when the start time is known.
    framer: Option<Framer>,
    start_ms: Option<u64>,
    level: LevelMeter,
    local_copy: Option<LocalCopy>,
    first_seq: u64,
    frames: u64,
    /// Output buffer reused across blocks.
    out: Vec<i16>,
}

impl Stages {
    fn new(format: AudioFormat, config: &PipelineConfig) -> Result<Self, PipelineError> {
        let local_copy = match &config.local_copy {
            Some(path) => Some(LocalCopy::create(path)?),
            None => None,
        };
        Ok(Self {
            format,
            resampler: Resampler::new(format.rate, format.channels)?,
            framer: None,
            start_ms: None,
            level: LevelMeter::new(),
            local_copy,
            first_seq: config.first_seq.max(1),
            frames: 0,
            out: Vec::new(),
        })
    }

    fn push(
        &mut self,
        samples: &[f32],
        on_event: &mut impl FnMut(PipelineEvent) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, PipelineError> {
        self.out.clear();
        self.resampler.push(samples, &mut self.out)?;
        self.deliver(on_event)
    }

    /// Sends `self.out` to the local copy, the level meter and the framer, in that order, so a
    /// frame is never handed out before its audio is in the local copy.
    fn deliver(
        &mut self,
        on_event: &mut impl FnMut(PipelineEvent) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, PipelineError> {
        if let Some(copy) = &mut self.local_copy {
            copy.write(&self.out)?;
        }
        let mut flow = ControlFlow::Continue(());
        self.level.push(&self.out, |level| {
            if on_event(PipelineEvent::Level(level)).is_break() {
                flow = ControlFlow::Break(());
            }
        });
        let mut frames = 0;
        if let Some(framer) = &mut self.framer {
            framer.push(&self.out, |frame| {
                frames += 1;
                if on_event(PipelineEvent::Frame(frame)).is_break() {
                    flow = ControlFlow::Break(());
                }
            });
        }
        self.frames += frames;
        Ok(flow)
    }

    fn finish(
        mut self,
        reason: EndReason,
        on_event: &mut impl FnMut(PipelineEvent) -> ControlFlow<()>,
    ) -> Result<PipelineSummary, PipelineError> {
        self.out.clear();
        self.resampler.finish(&mut self.out)?;
        // The consumer may have asked to stop; the tail is delivered regardless, since it is
        // audio that was captured.
        let _ = self.deliver(on_event)?;
        let mut next_seq = self.first_seq;
        if let Some(framer) = &mut self.framer {
            if let Some(last) = framer.finish() {
                self.frames += 1;
                let _ = on_event(PipelineEvent::Frame(last));
            }
            next_seq = framer.next_seq();
        }
        let local_copy = match self.local_copy {
            Some(copy) => Some(copy.finish()?),
            None => None,
        };
        Ok(PipelineSummary {
            reason,
            input_format: self.format,
            input_frames: self.resampler.input_frames(),
            samples: self.resampler.output_samples(),
            frames: self.frames,
            next_seq,
            start_ms: self.start_ms,
            local_copy,
        })
    }
}

fn epoch_ms(time: std::time::SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
