//! The audio thread: source → resample → local copy + level → framer → uplink and resolver.
//!
//! A plain OS thread, because the source hands out blocks through a blocking channel and the
//! work per block is pure computation. Everything it hands on goes through unbounded channels
//! (the uplink spools, the resolver keeps a window), so it never waits for the network.
//!
//! Order matters for crash safety: samples go to the local copy *before* the framer, and the
//! copy rewrites its header every 16000 samples counted from a frame boundary, so every frame
//! that reached the spool is also in the local copy's flushed part. A resumed recorder can
//! therefore cut the old copy to exactly the frames it sent (see `resume.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::events::{ErrorOrigin, Event, EventSink};
use crate::framer::{FRAME_SAMPLES, Frame, Framer};
use crate::level::LevelMeter;
use crate::local_copy::LocalCopy;
use crate::resample::Resampler;
use crate::resolve::ResolveFeed;
use crate::source::{Capture, SourceEvent};
use crate::spool::SpooledFrame;
use crate::uplink::FrameSender;

/// How long the source may stay silent before it counts as dead.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the audio thread sends its results.
pub struct Outputs {
    pub frames: FrameSender,
    pub resolve: Option<ResolveFeed>,
    pub local_copy: LocalCopy,
    pub events: EventSink,
}

/// What the audio thread did.
#[derive(Debug, Default, Clone)]
pub struct AudioReport {
    /// Frames produced in this run.
    pub frames: u64,
    /// Real (unpadded) samples produced in this run.
    pub samples: u64,
    /// Seq of the last frame produced, 0 if none.
    pub last_seq: u64,
    /// The finished local copy.
    pub local_copy: Option<std::path::PathBuf>,
    /// Why the source stopped early, if it did.
    pub error: Option<String>,
}

/// Runs until the source ends, fails, `stop` is set, or `max_samples` have been produced.
pub fn run(
    capture: Capture,
    first_seq: u64,
    max_samples: Option<u64>,
    stop: Arc<AtomicBool>,
    mut out: Outputs,
) -> AudioReport {
    let format = capture.format();
    let mut report = AudioReport::default();
    let mut resampler = match Resampler::new(format.rate, format.channels) {
        Ok(r) => r,
        Err(e) => {
            report.error = Some(e.to_string());
            out.events.error(ErrorOrigin::Source, e.to_string());
            return report;
        }
    };
    let mut framer: Option<Framer> = None;
    let mut level = LevelMeter::new();
    let mut converted = Vec::with_capacity(FRAME_SAMPLES);
    let mut state = Stage {
        report,
        first_seq,
        max_samples,
        level: &mut level,
        out: &mut out,
    };
    loop {
        if stop.load(Ordering::SeqCst) || state.full() {
            break;
        }
        match capture.recv_timeout(SOURCE_TIMEOUT) {
            SourceEvent::Block(block) => {
                let framer = framer.get_or_insert_with(|| {
                    // Frame `first_seq` starts with this block, so the stream's sample 0 — the
                    // framer's reference — lies `first_seq - 1` seconds earlier.
                    let start_ms = epoch_ms(block.captured_at)
                        .saturating_sub((first_seq - 1).saturating_mul(1000));
                    Framer::resume(start_ms, first_seq)
                });
                converted.clear();
                if let Err(e) = resampler.push(&block.samples, &mut converted) {
                    state.fail(e.to_string());
                    break;
                }
                state.take(&converted, framer);
            }
            SourceEvent::End => break,
            SourceEvent::Error(e) => {
                state.fail(e.to_string());
                break;
            }
        }
    }
    capture.stop();
    if let Some(framer) = framer.as_mut() {
        converted.clear();
        if !state.full() {
            match resampler.finish(&mut converted) {
                Ok(()) => state.take(&converted, framer),
                Err(e) => state.fail(e.to_string()),
            }
        }
        if let Some(frame) = framer.finish() {
            state.send(frame);
        }
    }
    let Stage { mut report, .. } = state;
    match out.local_copy.finish() {
        Ok(path) => report.local_copy = Some(path),
        Err(e) => out.events.error(ErrorOrigin::LocalCopy, e.to_string()),
    }
    report
}

/// The part of the audio thread after conversion.
struct Stage<'a> {
    report: AudioReport,
    first_seq: u64,
    max_samples: Option<u64>,
    level: &'a mut LevelMeter,
    out: &'a mut Outputs,
}

impl Stage<'_> {
    fn full(&self) -> bool {
        self.max_samples.is_some_and(|m| self.report.samples >= m)
    }

    fn fail(&mut self, message: String) {
        self.out.events.error(ErrorOrigin::Source, message.clone());
        self.report.error = Some(message);
    }

    /// Takes converted samples (cut at `max_samples`) through copy, meter and framer.
    fn take(&mut self, samples: &[i16], framer: &mut Framer) {
        let room = self
            .max_samples
            .map_or(usize::MAX, |m| (m - self.report.samples) as usize);
        let samples = &samples[..samples.len().min(room)];
        if samples.is_empty() {
            return;
        }
        if let Err(e) = self.out.local_copy.write(samples) {
            self.out.events.error(ErrorOrigin::LocalCopy, e.to_string());
        }
        let events = &self.out.events;
        self.level.push(samples, |l| {
            events.emit(Event::Level {
                rms_dbfs: l.rms_dbfs,
                peak_dbfs: l.peak_dbfs,
            })
        });
        self.report.samples += samples.len() as u64;
        let mut frames = Vec::new();
        framer.push(samples, |f| frames.push(f));
        for frame in frames {
            self.send(frame);
        }
    }

    fn send(&mut self, frame: Frame) {
        debug_assert!(frame.seq >= self.first_seq);
        self.report.frames += 1;
        self.report.last_seq = frame.seq;
        if let Some(feed) = &self.out.resolve {
            feed.push(frame.seq, frame.pcm.clone());
        }
        let sent = self.out.frames.send(SpooledFrame {
            seq: frame.seq,
            timestamp_ms: frame.timestamp_ms,
            pcm: frame.pcm,
        });
        if !sent {
            self.out.events.error(
                ErrorOrigin::Uplink,
                format!("the uplink has stopped; frame {} was not queued", frame.seq),
            );
        }
    }
}

fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
