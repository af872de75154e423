//! The audio thread: runs the [`pipeline`](crate::pipeline) and routes what it produces — frames
//! to the uplink (which spools them) and the resolver, levels to the event stream.
//!
//! Everything leaves through unbounded channels, so the audio path never waits for the network.
//!
//! The local copy is written here, from the frames, rather than by the pipeline from the raw
//! sample blocks: each frame's real samples are written and the WAV header rewritten *before*
//! the frame is queued for the spool. So after a kill the copy covers exactly every frame that
//! can have reached the gateway (a block-driven copy flushes every 16000 samples counted from
//! wherever blocks happen to end, which can leave the last sent second out).

use std::ops::ControlFlow;
use std::path::PathBuf;

use crate::events::{ErrorOrigin, Event, EventSink};
use crate::local_copy::LocalCopy;
use crate::pipeline::{self, PipelineConfig, PipelineEvent, StopHandle};
use crate::resolve::ResolveFeed;
use crate::source::Capture;
use crate::spool::SpooledFrame;
use crate::stream::Stream;
use crate::uplink::FrameSender;

/// Where the audio thread sends its results.
pub struct Outputs {
    /// The stream this thread produces; its events carry the name.
    pub stream: Stream,
    pub local_copy: LocalCopy,
    pub frames: FrameSender,
    pub resolve: Option<ResolveFeed>,
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
    /// This run's local copy.
    pub local_copy: Option<PathBuf>,
    /// Why the audio stopped early, if it did.
    pub error: Option<String>,
}

/// Runs the pipeline to its end on the calling thread.
pub fn run(
    capture: Capture,
    config: PipelineConfig,
    stop: StopHandle,
    mut out: Outputs,
) -> AudioReport {
    let mut report = AudioReport::default();
    let mut samples = Vec::with_capacity(crate::framer::FRAME_SAMPLES);
    let result = pipeline::run(capture, &config, &stop, |event| {
        match event {
            PipelineEvent::Level(level) => out.events.emit(Event::Level {
                stream: out.stream,
                rms_dbfs: level.rms_dbfs,
                peak_dbfs: level.peak_dbfs,
            }),
            PipelineEvent::Frame(frame) => {
                // Counted as they come, so that a source that fails mid-way still reports
                // the frames it produced.
                report.last_seq = frame.seq;
                report.frames += 1;
                report.samples += frame.real_samples as u64;
                samples.clear();
                samples.extend(
                    frame.pcm[..frame.real_samples * 2]
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]])),
                );
                let written = out
                    .local_copy
                    .write(&samples)
                    .and_then(|()| out.local_copy.flush());
                if let Err(e) = written {
                    out.events
                        .stream_error(out.stream, ErrorOrigin::LocalCopy, e.to_string());
                }
                if let Some(feed) = &out.resolve {
                    feed.push(frame.seq, frame.pcm.clone());
                }
                let queued = out.frames.send(SpooledFrame {
                    seq: frame.seq,
                    timestamp_ms: frame.timestamp_ms,
                    pcm: frame.pcm,
                });
                if !queued {
                    out.events.stream_error(
                        out.stream,
                        ErrorOrigin::Uplink,
                        format!("the uplink has stopped; frame {} was not queued", frame.seq),
                    );
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    match result {
        Ok(summary) => {
            report.frames = summary.frames;
            report.samples = summary.samples;
        }
        Err(e) => {
            out.events
                .stream_error(out.stream, ErrorOrigin::Source, e.to_string());
            report.error = Some(e.to_string());
        }
    }
    match out.local_copy.finish() {
        Ok(path) => report.local_copy = Some(path),
        Err(e) => out
            .events
            .stream_error(out.stream, ErrorOrigin::LocalCopy, e.to_string()),
    }
    report
}
