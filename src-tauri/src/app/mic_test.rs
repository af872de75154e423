//! "Test microphone": the chosen input's level on the meter while nothing records, so the
//! interviewer sees the microphone works (and is not muted) before pressing Start. Nothing is
//! converted, framed, stored or sent.
//!
//! The level is the engine's [`LevelMeter`] on the input's own samples, downmixed to mono: the
//! same dBFS the meter shows while recording, over windows of 800 input samples, of which
//! about twenty a second reach the page (the page paints at most ~11 a second anyway).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use recorder::level::LevelMeter;
use recorder::pcm::f32_to_i16;
use recorder::source::{self, InputSpec, OpenOptions, SourceEvent};
use serde_json::json;

use super::ui_events::UiEvents;

/// A running test: a thread reading the input until asked to stop.
pub struct MicTest {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl MicTest {
    /// Opens the input and starts sending its level as `level` messages of the `mic` stream.
    /// A device that cannot be opened is an error here; one lost later ends the test with a
    /// `mic_test` message that says why.
    pub fn start(spec: &InputSpec, events: UiEvents) -> anyhow::Result<MicTest> {
        let capture = source::open(spec, OpenOptions::default())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let format = capture.format();
        // Windows per page update: 800 samples are 50 ms at 16 kHz, 17 ms at 48 kHz.
        let every = (format.rate / 16_000).max(1) as usize;
        let thread = std::thread::Builder::new()
            .name("mic-test".into())
            .spawn(move || {
                let mut meter = LevelMeter::new();
                let mut windows = 0usize;
                let mut mono = Vec::new();
                let mut ended = None;
                while !stopping.load(Ordering::SeqCst) {
                    match capture.recv_timeout(Duration::from_millis(200)) {
                        Some(SourceEvent::Block(block)) => {
                            let channels = usize::from(block.channels.max(1));
                            mono.clear();
                            mono.extend(block.samples.chunks(channels).map(|frame| {
                                f32_to_i16(frame.iter().sum::<f32>() / channels as f32)
                            }));
                            meter.push(&mono, |level| {
                                windows += 1;
                                if windows.is_multiple_of(every) {
                                    events.send(json!({"type": "level", "stream": "mic",
                                        "rms_dbfs": level.rms_dbfs, "peak_dbfs": level.peak_dbfs}));
                                }
                            });
                        }
                        Some(SourceEvent::End) => {
                            ended = Some("the input ended".to_owned());
                            break;
                        }
                        Some(SourceEvent::Error(e)) => {
                            ended = Some(e.to_string());
                            break;
                        }
                        None => {}
                    }
                }
                capture.stop();
                events.send(json!({"type": "mic_test", "state": "stopped", "problem": ended}));
            })?;
        Ok(MicTest { stop, thread })
    }

    /// Stops the test and waits until the input is closed (so a recording can open it).
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}
