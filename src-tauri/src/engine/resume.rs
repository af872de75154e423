//! Keeping the local copy the byte-for-byte twin of what the gateway stores, across runs.
//!
//! Each run's pipeline writes its own file (`local.run.wav`); `local.wav` holds the earlier runs.
//! [`consolidate`] appends a run's file to `local.wav`:
//! - at the start of a run, for a run that was killed — cut to the frames that reached the
//!   spool (the pipeline writes audio to the copy before it hands out the frame, so the copy
//!   always covers them; the tail beyond is the partial frame that died with the process);
//! - at the start of a run after a clean stop, padded with the silence that completed the last
//!   frame on the wire, since the next run's frames follow that padding;
//! - at the end of a run, as is: the final padding is not audio and stays out of the copy.

use std::path::Path;

use crate::framer::FRAME_SAMPLES;
use crate::local_copy::LocalCopy;

/// Samples copied per step.
const STEP: usize = 16_000 * 60;

/// Makes `local` hold its old samples followed by `run`'s (then deletes `run`), with the total
/// cut or silence-padded to `total` samples when given.
pub fn consolidate(local: &Path, run: &Path, total: Option<u64>) -> anyhow::Result<u64> {
    if !run.exists() && total.is_none() {
        return sample_count(local);
    }
    let old = local.with_extension("wav.old");
    let had_old = local.exists();
    if had_old {
        std::fs::rename(local, &old)?;
    }
    let mut copy = LocalCopy::create(local)?;
    let mut written = 0u64;
    let limit = total.unwrap_or(u64::MAX);
    for input in [had_old.then_some(old.as_path()), Some(run)]
        .into_iter()
        .flatten()
    {
        if !input.exists() {
            continue;
        }
        let mut reader = hound::WavReader::open(input)?;
        let mut samples = reader.samples::<i16>();
        let mut buf = Vec::with_capacity(STEP);
        loop {
            buf.clear();
            let want = STEP.min((limit - written).min(STEP as u64) as usize);
            for sample in samples.by_ref().take(want) {
                buf.push(sample?);
            }
            if buf.is_empty() {
                break;
            }
            copy.write(&buf)?;
            written += buf.len() as u64;
        }
    }
    if let Some(total) = total {
        while written < total {
            let n = (total - written).min(STEP as u64) as usize;
            copy.write(&vec![0; n])?;
            written += n as u64;
        }
    }
    copy.finish()?;
    if had_old {
        std::fs::remove_file(&old)?;
    }
    if run.exists() {
        std::fs::remove_file(run)?;
    }
    Ok(written)
}

/// Samples in the WAV at `path` (0 if it does not exist).
fn sample_count(path: &Path) -> anyhow::Result<u64> {
    if !path.exists() {
        return Ok(0);
    }
    Ok(u64::from(hound::WavReader::open(path)?.len()))
}

/// Samples that frames `1..next_seq` hold.
pub fn frames_total(next_seq: u64) -> u64 {
    next_seq.saturating_sub(1) * FRAME_SAMPLES as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, samples: &[i16]) {
        let mut copy = LocalCopy::create(path).unwrap();
        copy.write(samples).unwrap();
        copy.finish().unwrap();
    }

    fn read(path: &Path) -> Vec<i16> {
        hound::WavReader::open(path)
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_killed_runs_tail_is_cut_and_a_clean_runs_padding_restored() {
        let dir = tempfile::tempdir().unwrap();
        let (local, run) = (dir.path().join("local.wav"), dir.path().join("run.wav"));
        let first: Vec<i16> = (0..(2 * FRAME_SAMPLES + 500)).map(|i| i as i16).collect();
        // Run 1 was killed after 2 frames reached the spool.
        write(&run, &first);
        assert_eq!(
            consolidate(&local, &run, Some(frames_total(3))).unwrap(),
            32_000
        );
        assert_eq!(read(&local), first[..2 * FRAME_SAMPLES]);
        assert!(!run.exists());
        // Run 2 stopped cleanly with a partial third frame: kept as is at the end of the run…
        write(&run, &[5; 700]);
        consolidate(&local, &run, None).unwrap();
        assert_eq!(read(&local).len(), 2 * FRAME_SAMPLES + 700);
        // …and padded to the frame boundary when run 3 starts.
        consolidate(&local, &run, Some(frames_total(4))).unwrap();
        let all = read(&local);
        assert_eq!(all.len(), 3 * FRAME_SAMPLES);
        assert_eq!(&all[2 * FRAME_SAMPLES..2 * FRAME_SAMPLES + 700], &[5; 700]);
        assert!(all[2 * FRAME_SAMPLES + 700..].iter().all(|&s| s == 0));
    }
}
