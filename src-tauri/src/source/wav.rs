//! A WAV file as a source: any rate, channel count and bit depth hound reads (8/16/24/32-bit
//! integer, 32-bit float), delivered in 10 ms blocks.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Instant, SystemTime};

use super::{
    AudioBlock, AudioFormat, Capture, Pacing, SourceError, SourceEvent, block_frames, offset_time,
    pace,
};
use crate::pcm::int_to_f32;

/// Opens `path` and starts delivering its audio.
///
/// The header is read before this returns, so a missing or malformed file is reported here
/// rather than as the first event.
pub fn open(path: &Path, pacing: Pacing) -> Result<Capture, SourceError> {
    let wav_error = |source| SourceError::Wav {
        path: path.to_path_buf(),
        source,
    };
    let reader = hound::WavReader::open(path).map_err(wav_error)?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(wav_error(hound::Error::FormatError(
            "zero channels or zero sample rate",
        )));
    }
    let format = AudioFormat {
        rate: spec.sample_rate,
        channels: spec.channels,
    };
    let (tx, rx) = mpsc::sync_channel(16);
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread_path = path.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("wav-source".into())
        .spawn(move || {
            let outcome = stream(reader, format, pacing, &tx, &thread_stop);
            let last = match outcome {
                Ok(()) => SourceEvent::End,
                Err(source) => SourceEvent::Error(SourceError::Wav {
                    path: thread_path,
                    source,
                }),
            };
            if !thread_stop.load(Ordering::SeqCst) {
                let _ = tx.send(last);
            }
        })
        .map_err(|e| wav_error(hound::Error::IoError(e)))?;
    Ok(Capture::new(
        format,
        path.display().to_string(),
        rx,
        stop,
        None,
        thread,
    ))
}

/// Reads the whole file into `f32` samples (for tests and tools that want it at once).
pub fn read_all(path: &Path) -> Result<(AudioFormat, Vec<f32>), SourceError> {
    let wav_error = |source| SourceError::Wav {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = hound::WavReader::open(path).map_err(wav_error)?;
    let spec = reader.spec();
    let format = AudioFormat {
        rate: spec.sample_rate,
        channels: spec.channels,
    };
    let samples: Result<Vec<f32>, _> = decoded(&mut reader).collect();
    Ok((format, samples.map_err(wav_error)?))
}

fn stream(
    mut reader: hound::WavReader<BufReader<File>>,
    format: AudioFormat,
    pacing: Pacing,
    tx: &mpsc::SyncSender<SourceEvent>,
    stop: &AtomicBool,
) -> Result<(), hound::Error> {
    let block_len = block_frames(format.rate) * usize::from(format.channels);
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let mut frames_done = 0_u64;
    let mut samples = decoded(&mut reader);
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut block = Vec::with_capacity(block_len);
        for sample in samples.by_ref().take(block_len) {
            block.push(sample?);
        }
        // A truncated file may end mid-frame; drop the incomplete frame rather than shift
        // channels.
        block.truncate(block.len() - block.len() % usize::from(format.channels));
        if block.is_empty() {
            return Ok(());
        }
        if pacing == Pacing::RealTime {
            pace(started, frames_done, format.rate);
        }
        let frames = (block.len() / usize::from(format.channels)) as u64;
        let event = SourceEvent::Block(AudioBlock {
            samples: block,
            channels: format.channels,
            rate: format.rate,
            captured_at: offset_time(started_wall, frames_done, format.rate),
        });
        frames_done += frames;
        if tx.send(event).is_err() {
            return Ok(());
        }
    }
}

/// The file's samples as `f32`, whatever their stored format.
fn decoded<'r>(
    reader: &'r mut hound::WavReader<BufReader<File>>,
) -> Box<dyn Iterator<Item = Result<f32, hound::Error>> + 'r> {
    let spec = reader.spec();
    match spec.sample_format {
        hound::SampleFormat::Float => Box::new(reader.samples::<f32>()),
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample;
            Box::new(
                reader
                    .samples::<i32>()
                    .map(move |s| s.map(|s| int_to_f32(s, bits))),
            )
        }
    }
}
