//! The local copy: the normalized 16 kHz mono 16-bit stream, written to a WAV file as it goes.
//!
//! It holds exactly what the source delivered after conversion — the silence that pads the
//! last frame for the wire is not written — so its length is the recording's true length.
//! The header is rewritten every second of audio ([`FLUSH_EVERY_SAMPLES`]): if the app
//! crashes, the file is a valid WAV up to the last flush instead of a file whose header says
//! it is empty.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::pcm::TARGET_RATE;

/// Samples between header rewrites: one second, the same granularity as a frame.
pub const FLUSH_EVERY_SAMPLES: u64 = TARGET_RATE as u64;

/// Why the local copy could not be written.
#[derive(Debug, thiserror::Error)]
#[error("local copy {path}: {source}")]
pub struct LocalCopyError {
    /// File being written.
    pub path: PathBuf,
    /// What hound or the file system reported.
    #[source]
    pub source: hound::Error,
}

/// A WAV writer for the normalized stream.
pub struct LocalCopy {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
    /// Samples written since the last header rewrite.
    unflushed: u64,
    /// Samples written in total.
    written: u64,
}

impl LocalCopy {
    /// Creates (or truncates) the WAV at `path`, 16 kHz mono 16-bit.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, LocalCopyError> {
        let path = path.as_ref().to_path_buf();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: TARGET_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec).map_err(|source| LocalCopyError {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            path,
            writer,
            unflushed: 0,
            written: 0,
        })
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples written so far.
    pub fn samples_written(&self) -> u64 {
        self.written
    }

    /// Appends samples, rewriting the header after each second of audio.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), LocalCopyError> {
        let mut writer = self.writer.get_i16_writer(samples.len() as u32);
        for &sample in samples {
            writer.write_sample(sample);
        }
        writer.flush().map_err(|e| self.error(e))?;
        self.written += samples.len() as u64;
        self.unflushed += samples.len() as u64;
        if self.unflushed >= FLUSH_EVERY_SAMPLES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes buffered samples and a header that covers them.
    pub fn flush(&mut self) -> Result<(), LocalCopyError> {
        self.writer.flush().map_err(|e| self.error(e))?;
        self.unflushed = 0;
        Ok(())
    }

    /// Finishes the file (final header) and returns its path.
    pub fn finish(self) -> Result<PathBuf, LocalCopyError> {
        let path = self.path;
        self.writer.finalize().map_err(|source| LocalCopyError {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    fn error(&self, source: hound::Error) -> LocalCopyError {
        LocalCopyError {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(path: &Path) -> Vec<i16> {
        let mut reader = hound::WavReader::open(path).unwrap();
        let spec = reader.spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (16_000, 1, 16)
        );
        reader.samples::<i16>().map(Result::unwrap).collect()
    }

    #[test]
    fn finished_copy_holds_every_sample() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.wav");
        let samples: Vec<i16> = (0..40_000).map(|n| (n % 1000) as i16 - 500).collect();
        let mut copy = LocalCopy::create(&path).unwrap();
        for chunk in samples.chunks(333) {
            copy.write(chunk).unwrap();
        }
        assert_eq!(copy.samples_written(), 40_000);
        copy.finish().unwrap();
        assert_eq!(read_back(&path), samples);
    }

    #[test]
    fn unfinished_copy_is_readable_up_to_the_last_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.wav");
        let samples: Vec<i16> = (0..20_000).map(|n| (n % 700) as i16).collect();
        let mut copy = LocalCopy::create(&path).unwrap();
        copy.write(&samples).unwrap();
        // Simulate a crash: the writer is leaked, never finalized or dropped.
        std::mem::forget(copy);
        assert_eq!(read_back(&path), samples);
    }
}
