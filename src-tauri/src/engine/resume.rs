//! Continuing a session after the recorder was stopped or killed.
//!
//! The spool says where the stream stands (`next_seq`); the local copy must then hold exactly
//! the samples of frames `1..next_seq`, so that it stays the byte-for-byte twin of what the
//! gateway stores. A killed run leaves its copy a little longer (the partial frame that never
//! reached the spool); this cuts it back and reopens it for appending.

use std::path::Path;

use crate::framer::FRAME_SAMPLES;
use crate::local_copy::LocalCopy;

/// Samples copied per step when rewriting an old copy.
const STEP: usize = 16_000 * 60;

/// Opens the local copy at `path` for a stream that continues at `next_seq`. Returns the copy
/// and, if the old copy was shorter than the frames already sent, how many samples it lacked.
pub fn open_local_copy(path: &Path, next_seq: u64) -> anyhow::Result<(LocalCopy, u64)> {
    let keep = (next_seq.saturating_sub(1)) * FRAME_SAMPLES as u64;
    if keep == 0 || !path.exists() {
        let copy = LocalCopy::create(path)?;
        return Ok((copy, keep));
    }
    let old = path.with_extension("wav.resume");
    std::fs::rename(path, &old)?;
    let mut reader = hound::WavReader::open(&old)?;
    let mut copy = LocalCopy::create(path)?;
    let mut samples = reader.samples::<i16>();
    let mut copied = 0u64;
    let mut buf = Vec::with_capacity(STEP);
    while copied < keep {
        buf.clear();
        let want = STEP.min((keep - copied) as usize);
        for sample in samples.by_ref().take(want) {
            buf.push(sample?);
        }
        if buf.is_empty() {
            break;
        }
        copy.write(&buf)?;
        copied += buf.len() as u64;
    }
    copy.flush()?;
    drop(reader);
    std::fs::remove_file(&old)?;
    Ok((copy, keep - copied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_copy_keeps_exactly_the_spooled_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.wav");
        let samples: Vec<i16> = (0..(2 * FRAME_SAMPLES + 500)).map(|i| i as i16).collect();
        let mut copy = LocalCopy::create(&path).unwrap();
        copy.write(&samples).unwrap();
        copy.finish().unwrap();

        let (mut copy, lacking) = open_local_copy(&path, 3).unwrap();
        assert_eq!(lacking, 0);
        copy.write(&[7, 8]).unwrap();
        copy.finish().unwrap();
        let back: Vec<i16> = hound::WavReader::open(&path)
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(back.len(), 2 * FRAME_SAMPLES + 2);
        assert_eq!(&back[..2 * FRAME_SAMPLES], &samples[..2 * FRAME_SAMPLES]);
        assert_eq!(&back[2 * FRAME_SAMPLES..], &[7, 8]);
    }
}
