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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// vanished without an error callback). `None`: silence from the source is normal (WASAPI
    /// loopback delivers nothing while nothing plays).
    pub stall_timeout: Option<Duration>,
    /// Wall clock (epoch ms) of the stream's sample 0 (the first sample of frame 1); `None`
    /// takes it from the first block's capture time, which then stamps frame `first_seq`.
    pub start_ms: Option<u64>,
    /// Seq of the first frame (greater than 1 when resuming a session).
    pub first_seq: u64,
    /// When a block's capture time lies more than [`GAP_TOLERANCE`] after the time its
    /// position in the stream implies, insert that much silence first, so later audio keeps
    /// its place on the wall clock (frames are stamped from sample counts). For sources that
    /// may pause (system audio); off for microphones, whose stream must stay sample-exact.
    pub fill_gaps: bool,
}

/// How far a block may arrive behind its position before [`PipelineConfig::fill_gaps`] treats
/// the difference as a gap. Well above callback jitter, well below what a listener notices.
pub const GAP_TOLERANCE: Duration = Duration::from_millis(250);

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            local_copy: None,
            stall_timeout: Some(Duration::from_secs(5)),
            start_ms: None,
            first_seq: 1,
            fill_gaps: false,
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
                    // Frame `first_seq` starts with this block's first sample.
                    let start_ms = config.start_ms.unwrap_or_else(|| {
                        epoch_ms(block.captured_at)
                            .saturating_sub(stages.first_seq.saturating_sub(1) * 1000)
                    });
                    stages.framer = Some(Framer::resume(start_ms, stages.first_seq));
                    stages.start_ms = Some(start_ms);
                    stages.first_capture = Some(block.captured_at);
                }
                let gap = if config.fill_gaps {
                    stages.gap_before(block.captured_at)
                } else {
                    0
                };
                if gap > 0 {
                    let silence = vec![0.0; gap * usize::from(format.channels)];
                    match stages.push(&silence, &mut on_event) {
                        Ok(ControlFlow::Continue(())) => {}
                        Ok(ControlFlow::Break(())) => break EndReason::Stopped,
                        Err(e) => {
                            failure = Some(e);
                            break EndReason::Stopped;
                        }
                    }
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
            None if config
                .stall_timeout
                .is_some_and(|limit| last_audio.elapsed() >= limit) =>
            {
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
    /// Capture time of the first block: position 0 of the source's clock, for gap filling.
    first_capture: Option<SystemTime>,
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
            first_capture: None,
            level: LevelMeter::new(),
            local_copy,
            first_seq: config.first_seq.max(1),
            frames: 0,
            out: Vec::new(),
        })
    }

    /// Source frames of silence that belong before a block captured at `captured_at`: how far
    /// it lies behind the position the frames so far give it, if that exceeds
    /// [`GAP_TOLERANCE`].
    fn gap_before(&self, captured_at: SystemTime) -> usize {
        let Some(first) = self.first_capture else {
            return 0;
        };
        let rate = f64::from(self.format.rate);
        let expected = first + Duration::from_secs_f64(self.resampler.input_frames() as f64 / rate);
        match captured_at.duration_since(expected) {
            Ok(late) if late > GAP_TOLERANCE => (late.as_secs_f64() * rate).round() as usize,
            _ => 0,
        }
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

fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::SystemTime;

    use super::*;
    use crate::source::AudioBlock;

    /// A 16 kHz mono source that delivers `blocks` (value, frames, captured at start + ms)
    /// and then ends.
    fn scripted(start: SystemTime, blocks: &[(i16, usize, u64)]) -> Capture {
        let (tx, rx) = mpsc::channel();
        for &(value, frames, at_ms) in blocks {
            tx.send(SourceEvent::Block(AudioBlock {
                samples: vec![crate::pcm::i16_to_f32(value); frames],
                channels: 1,
                rate: 16_000,
                captured_at: start + Duration::from_millis(at_ms),
            }))
            .unwrap();
        }
        tx.send(SourceEvent::End).unwrap();
        Capture::new(
            AudioFormat {
                rate: 16_000,
                channels: 1,
            },
            "scripted".into(),
            rx,
            Arc::new(AtomicBool::new(false)),
            None,
            std::thread::spawn(|| {}),
        )
    }

    fn frames_of(capture: Capture, config: &PipelineConfig) -> Vec<Frame> {
        let mut frames = Vec::new();
        run(capture, config, &StopHandle::new(), |event| {
            if let PipelineEvent::Frame(frame) = event {
                frames.push(frame);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        frames
    }

    fn samples(frames: &[Frame]) -> Vec<i16> {
        frames
            .iter()
            .flat_map(|f| crate::pcm::le_bytes_to_i16(&f.pcm))
            .collect()
    }

    #[test]
    fn a_resumed_streams_first_frame_carries_the_capture_time_of_its_first_sample() {
        let start = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let config = PipelineConfig {
            first_seq: 5,
            ..PipelineConfig::default()
        };
        let frames = frames_of(scripted(start, &[(100, 32_000, 0)]), &config);
        let stamps: Vec<(u64, u64)> = frames.iter().map(|f| (f.seq, f.timestamp_ms)).collect();
        assert_eq!(stamps, [(5, 1_700_000_000_250), (6, 1_700_000_001_250)]);
    }

    #[test]
    fn a_gap_in_a_pausing_source_becomes_silence_that_keeps_later_audio_in_its_place() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        // Half a second of audio, nothing for a second, then half a second more.
        let blocks = [(1000, 8_000, 0), (2000, 8_000, 1_500)];
        let config = PipelineConfig {
            fill_gaps: true,
            ..PipelineConfig::default()
        };
        let got = samples(&frames_of(scripted(start, &blocks), &config));
        assert_eq!(got.len(), 2 * 16_000);
        assert!(got[..8_000].iter().all(|&s| s == 1000));
        assert!(got[8_000..24_000].iter().all(|&s| s == 0));
        assert!(got[24_000..].iter().all(|&s| s == 2000));
    }

    #[test]
    fn jitter_below_the_tolerance_and_sources_without_gap_filling_stay_sample_exact() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        // The second block is 200 ms late: jitter for a pausing source, ignored by a mic.
        let late = [(1000, 8_000, 0), (2000, 8_000, 700)];
        for fill_gaps in [true, false] {
            let config = PipelineConfig {
                fill_gaps,
                ..PipelineConfig::default()
            };
            let got = samples(&frames_of(scripted(start, &late), &config));
            assert_eq!(got.len(), 16_000, "fill_gaps {fill_gaps}");
            assert!(got[..8_000].iter().all(|&s| s == 1000));
            assert!(got[8_000..].iter().all(|&s| s == 2000));
        }
        let gap = [(1000, 8_000, 0), (2000, 8_000, 1_500)];
        let got = samples(&frames_of(
            scripted(start, &gap),
            &PipelineConfig::default(),
        ));
        assert_eq!(got.len(), 16_000);
    }
}
