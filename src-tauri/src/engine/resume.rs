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
//!
//! The run is appended to `local.wav` in place, so a long interview's copy is never rewritten
//! whole. Both files are our own 16 kHz mono 16-bit WAVs with the 44-byte header and the data
//! last, and their length is read from the file's size, not the header: a killed writer leaves
//! a header up to a second stale, never the data. A crash mid-way is safe: before appending,
//! `local.wav.journal` records how many samples `local.wav` held; on the next call a journal
//! with the run still present means the append was cut short, so `local.wav` is cut back and
//! the append redone; a journal without the run means it finished and only the clean-up was
//! left. (Versions before this one rewrote the file through `local.wav.old`; a leftover of
//! theirs is recovered too.)

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::framer::FRAME_SAMPLES;
use crate::local_copy::LocalCopy;

/// Bytes of the header of the WAVs we write (RIFF, `fmt ` of 16 bytes, `data`).
const HEADER_BYTES: u64 = 44;
/// Bytes copied per step.
const STEP_BYTES: usize = 1 << 20;

/// Makes `local` hold its old samples followed by `run`'s (then deletes `run`), with the total
/// cut or silence-padded to `total` samples when given. Returns the samples `local` holds.
pub fn consolidate(local: &Path, run: &Path, total: Option<u64>) -> anyhow::Result<u64> {
    recover(local, run)?;
    if !local.exists() {
        if !run.exists() && total.is_none() {
            return Ok(0);
        }
        LocalCopy::create(local)?.finish()?;
    }
    let base = samples_in(local)?;
    let journal = journal_path(local);
    write_journal(&journal, base)?;

    let mut file = OpenOptions::new().read(true).write(true).open(local)?;
    let limit = total.unwrap_or(u64::MAX);
    // Anything past `base` whole samples (an odd byte) goes; so does audio past `total`.
    let mut samples = base.min(limit);
    file.set_len(HEADER_BYTES + samples * 2)?;
    file.seek(SeekFrom::End(0))?;
    if run.exists() && samples < limit {
        samples += append_data(&mut file, run, limit - samples)?;
    }
    if let Some(total) = total {
        let zeros = vec![0u8; STEP_BYTES];
        while samples < total {
            let n = ((total - samples) * 2).min(STEP_BYTES as u64) as usize;
            file.write_all(&zeros[..n])?;
            samples += n as u64 / 2;
        }
    }
    write_sizes(&mut file, samples)?;
    file.sync_all()?;
    if run.exists() {
        fs::remove_file(run)?;
    }
    fs::remove_file(&journal)?;
    sync_parent(local)?;
    Ok(samples)
}

/// Samples that frames `1..next_seq` hold.
pub fn frames_total(next_seq: u64) -> u64 {
    next_seq.saturating_sub(1) * FRAME_SAMPLES as u64
}

/// Undoes what a crash in an earlier [`consolidate`] left half done.
fn recover(local: &Path, run: &Path) -> anyhow::Result<()> {
    let old = local.with_extension("wav.old");
    if old.exists() {
        // The older rewrite moved `local.wav` aside as `.old` and was writing a new one: the
        // `.old` is the whole earlier copy, the new one at best a partial duplicate of it.
        fs::rename(&old, local).context("cannot recover local.wav.old")?;
    }
    let journal = journal_path(local);
    if !journal.exists() {
        return Ok(());
    }
    if run.exists() && local.exists() {
        let base = read_journal(&journal)?;
        let file = OpenOptions::new().write(true).open(local)?;
        file.set_len(HEADER_BYTES + base * 2)?;
        file.sync_all()?;
    }
    fs::remove_file(&journal)?;
    Ok(())
}

/// Appends the audio of the WAV at `run` (at most `limit` samples) to `file`; returns the
/// samples appended.
fn append_data(file: &mut File, run: &Path, limit: u64) -> anyhow::Result<u64> {
    let available = samples_in(run)?.min(limit);
    let mut input = File::open(run)?;
    input.seek(SeekFrom::Start(HEADER_BYTES))?;
    let mut buf = vec![0u8; STEP_BYTES];
    let mut left = available * 2;
    while left > 0 {
        let n = left.min(STEP_BYTES as u64) as usize;
        input.read_exact(&mut buf[..n])?;
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(available)
}

/// Whole samples after the header of one of our WAVs, from the file's size (a file cut inside
/// its header holds none).
fn samples_in(path: &Path) -> anyhow::Result<u64> {
    let len = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len >= HEADER_BYTES {
        let mut header = [0u8; HEADER_BYTES as usize];
        File::open(path)?.read_exact(&mut header)?;
        anyhow::ensure!(
            &header[..4] == b"RIFF" && &header[8..16] == b"WAVEfmt " && &header[36..40] == b"data",
            "{} is not a local copy written by the recorder",
            path.display()
        );
    }
    Ok(len.saturating_sub(HEADER_BYTES) / 2)
}

/// Rewrites the RIFF and `data` sizes of a WAV holding `samples`.
fn write_sizes(file: &mut File, samples: u64) -> anyhow::Result<()> {
    let data = u32::try_from(samples * 2).context("the local copy outgrew a WAV's 4 GiB")?;
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&(data + 36).to_le_bytes())?;
    file.seek(SeekFrom::Start(40))?;
    file.write_all(&data.to_le_bytes())?;
    Ok(())
}

fn journal_path(local: &Path) -> PathBuf {
    local.with_extension("wav.journal")
}

fn write_journal(journal: &Path, base: u64) -> anyhow::Result<()> {
    let tmp = journal.with_extension("journal.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(base.to_string().as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, journal)?;
    sync_parent(journal)
}

fn read_journal(journal: &Path) -> anyhow::Result<u64> {
    let text = fs::read_to_string(journal)?;
    text.trim()
        .parse()
        .with_context(|| format!("{} is damaged: {text:?}", journal.display()))
}

/// Makes a rename or removal in the file's directory durable (a no-op where directories
/// cannot be opened, as on Windows).
fn sync_parent(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
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

    fn ramp(len: usize, from: i16) -> Vec<i16> {
        (0..len).map(|i| from.wrapping_add(i as i16)).collect()
    }

    #[test]
    fn a_killed_runs_tail_is_cut_and_a_clean_runs_padding_restored() {
        let dir = tempfile::tempdir().unwrap();
        let (local, run) = (dir.path().join("local.wav"), dir.path().join("run.wav"));
        let first = ramp(2 * FRAME_SAMPLES + 500, 0);
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

    /// Issue 9, item 5: the run is appended to the same file; earlier audio is not copied.
    #[cfg(unix)]
    #[test]
    fn item5_a_run_is_appended_in_place_without_rewriting_the_earlier_audio() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (local, run) = (dir.path().join("local.wav"), dir.path().join("run.wav"));
        write(&local, &ramp(3000, 0));
        let inode = fs::metadata(&local).unwrap().ino();
        write(&run, &ramp(1000, 3000));
        assert_eq!(consolidate(&local, &run, None).unwrap(), 4000);
        assert_eq!(
            fs::metadata(&local).unwrap().ino(),
            inode,
            "the same file grew"
        );
        assert_eq!(read(&local), ramp(4000, 0));
        assert!(!journal_path(&local).exists());
    }

    /// Issue 9, item 5: a crash in the middle of the append (journal written, part of the run
    /// appended, header stale) is undone and redone: no sample twice, none lost.
    #[test]
    fn item5_an_append_cut_short_by_a_crash_is_redone_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let (local, run) = (dir.path().join("local.wav"), dir.path().join("run.wav"));
        write(&local, &ramp(3000, 0));
        write(&run, &ramp(1000, 3000));
        write_journal(&journal_path(&local), 3000).unwrap();
        let mut file = OpenOptions::new().append(true).open(&local).unwrap();
        file.write_all(&[7u8; 777]).unwrap();
        drop(file);

        assert_eq!(consolidate(&local, &run, None).unwrap(), 4000);
        assert_eq!(read(&local), ramp(4000, 0));
        assert!(!run.exists() && !journal_path(&local).exists());
    }

    /// Issue 9, item 5: a crash after the run was appended and removed, before the journal
    /// went: the appended audio stays, even with the header never updated.
    #[test]
    fn item5_a_crash_after_the_append_keeps_the_appended_audio() {
        let dir = tempfile::tempdir().unwrap();
        let (local, run) = (dir.path().join("local.wav"), dir.path().join("run.wav"));
        write(&local, &ramp(3000, 0));
        write_journal(&journal_path(&local), 3000).unwrap();
        let mut file = OpenOptions::new().append(true).open(&local).unwrap();
        let appended: Vec<u8> = ramp(1000, 3000)
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        file.write_all(&appended).unwrap();
        drop(file);

        assert_eq!(consolidate(&local, &run, Some(4000)).unwrap(), 4000);
        assert_eq!(read(&local), ramp(4000, 0));
    }

    /// A killed writer's header lags its data by up to a second: the data counts.
    #[test]
    fn a_killed_runs_samples_past_its_stale_header_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (local, run) = (dir.path().join("local.wav"), dir.path().join("run.wav"));
        write(&run, &ramp(500, 0));
        let mut file = OpenOptions::new().append(true).open(&run).unwrap();
        let more: Vec<u8> = ramp(1500, 500)
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        file.write_all(&more).unwrap();
        drop(file);
        assert_eq!(consolidate(&local, &run, None).unwrap(), 2000);
        assert_eq!(read(&local), ramp(2000, 0));
    }

    /// The rewrite of earlier versions crashed between moving `local.wav` aside and finishing
    /// the new one: the moved-aside copy is the true one.
    #[test]
    fn a_leftover_of_the_old_rewrite_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let (local, run) = (dir.path().join("local.wav"), dir.path().join("run.wav"));
        write(&local.with_extension("wav.old"), &ramp(3000, 0));
        write(&local, &ramp(1200, 0));
        write(&run, &ramp(1000, 3000));
        assert_eq!(consolidate(&local, &run, None).unwrap(), 4000);
        assert_eq!(read(&local), ramp(4000, 0));
        assert!(!local.with_extension("wav.old").exists());
    }
}
