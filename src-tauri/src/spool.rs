//! The spool: frames on disk from the moment they are framed until the gateway ACKs them.
//!
//! One directory per session:
//!
//! ```text
//! <dir>/spool.json          {"session_id": "...", "next_seq": N}  (rewritten on every add)
//! <dir>/frames/0000000042.frame   one file per unacknowledged frame
//! <dir>/rejected/...        frames the gateway refused too often (sent again on the next open)
//! ```
//!
//! A frame file is a 16-byte header (`b"SPL1"`, 4 reserved zero bytes, `timestamp_ms` as u64 LE)
//! followed by exactly [`FRAME_BYTES`] of PCM. It is written to a `.tmp` name and renamed into
//! place, so a frame file either exists whole or not at all; leftover `.tmp` files (a crash
//! mid-write) are deleted on open. An ACK deletes the file.
//!
//! `next_seq` is kept in `spool.json` rather than derived from the file names because once every
//! frame is ACKed the directory is empty, and a resumed recorder must still not reuse a seq.
//!
//! Durability ([`Durability`]): with `Sync` (the default) every add fsyncs the frame file, the
//! metadata and the directory before it returns, so an added frame survives a power loss; with
//! `Flush` the data is only handed to the kernel, which survives a process kill (the case the
//! resume logic is for) but not a power loss. Removals are never synced: a frame that reappears
//! after a power loss is simply re-sent and ACKed as a duplicate.
//!
//! A frame the disk cannot take (full, read-only, failing) is not dropped: it is held in memory,
//! counts as pending, is sent and ACKed like the others, and every later add first tries to
//! write the held frames out. Only a process exit loses them, and [`Added::Held`] says so when
//! it happens. Opening a spool deletes a frame file only on proof that it is damaged (wrong
//! size or magic); a file that cannot be read (permissions, too many open files, an I/O error)
//! fails the open and stays where it is.
//!
//! The spool is a plain synchronous type with `&mut self` methods: one owner (the uplink task)
//! does every operation, each of which is a few small file-system calls.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use contract::protocol::FRAME_BYTES;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 4] = b"SPL1";
const HEADER_BYTES: usize = 16;
const FRAME_FILE_BYTES: u64 = (HEADER_BYTES + FRAME_BYTES) as u64;
const META_FILE: &str = "spool.json";
const FRAMES_DIR: &str = "frames";
const REJECTED_DIR: &str = "rejected";

/// How hard an add works to make its frame survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync the frame, the metadata and the directory: survives a power loss.
    #[default]
    Sync,
    /// Write only: survives a process kill, not a power loss. For tests and benchmarks.
    Flush,
}

/// A frame as the spool stores it and the uplink sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct SpooledFrame {
    /// Seq on the wire, from 1, unique within the session.
    pub seq: u64,
    /// Wall clock (Unix epoch ms) of the frame's first sample.
    pub timestamp_ms: u64,
    /// Exactly [`FRAME_BYTES`] of s16le PCM.
    pub pcm: Vec<u8>,
}

impl std::fmt::Debug for SpooledFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpooledFrame")
            .field("seq", &self.seq)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("pcm_bytes", &self.pcm.len())
            .finish()
    }
}

/// Why the spool could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("spool {path} belongs to session {found:?}, not {expected:?}")]
    WrongSession {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("spool metadata {path} is unreadable: {detail}")]
    BadMetadata { path: PathBuf, detail: String },
    #[error("frame {seq} has {len} bytes of PCM; a frame has exactly {FRAME_BYTES}")]
    BadFrameSize { seq: u64, len: usize },
    #[error("frame {seq} is out of order: the spool's next seq is {next_seq}")]
    SeqReused { seq: u64, next_seq: u64 },
    #[error("frame {seq} is not in the spool")]
    NotFound { seq: u64 },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    session_id: String,
    next_seq: u64,
}

/// A spool directory as it lies on disk, read without opening the spool (a running recording
/// or delivery may own it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    pub session_id: String,
    pub next_seq: u64,
    /// Frame files, the ones set aside under `rejected/` included (the next open sends them).
    pub frames: u64,
}

/// Reads the spool in `dir` without opening it; `None` if it has no metadata.
pub fn peek(dir: &Path) -> Result<Option<Peeked>, SpoolError> {
    let meta_path = dir.join(META_FILE);
    let meta = match fs::read(&meta_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&meta_path)(e)),
    };
    let meta: Meta = serde_json::from_slice(&meta).map_err(|e| SpoolError::Io {
        path: meta_path.clone(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })?;
    let mut frames = 0;
    for sub in [FRAMES_DIR, REJECTED_DIR] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        frames += entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "frame"))
            .count() as u64;
    }
    Ok(Some(Peeked {
        session_id: meta.session_id,
        next_seq: meta.next_seq,
        frames,
    }))
}

/// What opening a spool found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Unacknowledged frames left by an earlier run.
    pub frames: u64,
    /// Half-written or damaged files that were discarded (a crash mid-write leaves at most one).
    pub discarded: u64,
    /// Frames moved back from `rejected/` to be sent again (counted in `frames` too).
    pub reinstated: u64,
}

/// Where [`Spool::add`] put a frame.
#[derive(Debug)]
pub enum Added {
    /// On disk, as durable as the spool's [`Durability`].
    OnDisk,
    /// In memory only, because writing it failed; it is pending like the rest and written out
    /// by a later add once the disk takes it.
    Held(SpoolError),
}

/// The on-disk store of one session's unacknowledged frames.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    frames_dir: PathBuf,
    session_id: String,
    durability: Durability,
    /// Seq the next added frame must have at least; never decreases, persisted in `spool.json`.
    next_seq: u64,
    /// Unacknowledged frames: seq → timestamp_ms. The PCM stays on disk until it is sent.
    pending: BTreeMap<u64, u64>,
    /// Pending frames the disk refused, with their PCM (see [`Added::Held`]).
    held: BTreeMap<u64, SpooledFrame>,
    recovery: Recovery,
}

impl Spool {
    /// Opens (creating it if needed) the spool of `session_id` in `dir`, recovering whatever an
    /// earlier run left there. A spool written for another session is refused.
    pub fn open(
        dir: impl AsRef<Path>,
        session_id: &str,
        durability: Durability,
    ) -> Result<Spool, SpoolError> {
        let dir = dir.as_ref().to_owned();
        let frames_dir = dir.join(FRAMES_DIR);
        fs::create_dir_all(&frames_dir).map_err(io_err(&frames_dir))?;

        let meta_path = dir.join(META_FILE);
        let mut next_seq = 1;
        match fs::read(&meta_path) {
            Ok(bytes) => {
                let meta: Meta =
                    serde_json::from_slice(&bytes).map_err(|e| SpoolError::BadMetadata {
                        path: meta_path.clone(),
                        detail: e.to_string(),
                    })?;
                if meta.session_id != session_id {
                    return Err(SpoolError::WrongSession {
                        path: dir,
                        found: meta.session_id,
                        expected: session_id.to_owned(),
                    });
                }
                next_seq = meta.next_seq.max(1);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&meta_path)(e)),
        }

        let mut recovery = Recovery::default();
        // Frames set aside by an earlier run are given another chance: what the gateway
        // refused then (a bug since fixed, a conflict since resolved) may be taken now.
        let rejected = dir.join(REJECTED_DIR);
        if rejected.is_dir() {
            for entry in fs::read_dir(&rejected).map_err(io_err(&rejected))? {
                let from = entry.map_err(io_err(&rejected))?.path();
                let Some(name) = from.file_name() else {
                    continue;
                };
                if from.extension().is_some_and(|e| e == "frame") {
                    let to = frames_dir.join(name);
                    fs::rename(&from, &to).map_err(io_err(&from))?;
                    recovery.reinstated += 1;
                }
            }
        }
        let mut pending = BTreeMap::new();
        for entry in fs::read_dir(&frames_dir).map_err(io_err(&frames_dir))? {
            let entry = entry.map_err(io_err(&frames_dir))?;
            let path = entry.path();
            let parsed = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".frame"))
                .and_then(|n| n.parse::<u64>().ok());
            let is_leftover = path.extension().is_some_and(|e| e == "tmp");
            let header = match parsed {
                Some(seq) if seq > 0 => match read_header(&path) {
                    Ok(timestamp_ms) => Some((seq, timestamp_ms)),
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => None,
                    // Not proof of damage: the frame may be whole. Refuse to open rather
                    // than delete audio that could be sent once the cause is fixed.
                    Err(e) => return Err(io_err(&path)(e)),
                },
                // A half-written frame of a crash; other files are not ours to delete.
                _ if is_leftover => None,
                _ => continue,
            };
            match header {
                Some((seq, timestamp_ms)) => {
                    pending.insert(seq, timestamp_ms);
                    // A frame on disk whose seq the metadata does not cover yet: the metadata
                    // write of its add was lost, the frame was not.
                    next_seq = next_seq.max(seq + 1);
                }
                None => {
                    fs::remove_file(&path).map_err(io_err(&path))?;
                    recovery.discarded += 1;
                }
            }
        }
        recovery.frames = pending.len() as u64;

        let spool = Spool {
            dir,
            frames_dir,
            session_id: session_id.to_owned(),
            durability,
            next_seq,
            pending,
            held: BTreeMap::new(),
            recovery,
        };
        spool.write_meta()?;
        Ok(spool)
    }

    /// Directory of this session's spool.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Session the spool belongs to.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Smallest seq the next frame may have: one past every frame ever added to this spool.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Makes the next frame's seq at least `last_seq + 1`, for a session whose frames up to
    /// `last_seq` are already on the gateway from elsewhere (another device, an earlier
    /// install): reusing their seqs would collide with audio this spool never held. Returns
    /// whether the numbering moved; frames already spooled are kept as they are.
    pub fn continue_after(&mut self, last_seq: u64) -> Result<bool, SpoolError> {
        if last_seq < self.next_seq {
            return Ok(false);
        }
        self.next_seq = last_seq + 1;
        self.write_meta()?;
        if self.durability == Durability::Sync {
            sync_dir(&self.dir)?;
        }
        Ok(true)
    }

    /// What [`Spool::open`] recovered.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Frames not yet acknowledged.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether every added frame has been acknowledged (or rejected).
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether `seq` is waiting for an ACK.
    pub fn contains(&self, seq: u64) -> bool {
        self.pending.contains_key(&seq)
    }

    /// Unacknowledged seqs in ascending order.
    pub fn pending(&self) -> impl Iterator<Item = u64> + '_ {
        self.pending.keys().copied()
    }

    /// The smallest unacknowledged seq greater than `seq`.
    pub fn pending_after(&self, seq: u64) -> Option<u64> {
        self.pending
            .range(seq.saturating_add(1)..)
            .next()
            .map(|(s, _)| *s)
    }

    /// Stores a frame before it is sent. Its seq must be at least [`Spool::next_seq`]. Frames
    /// held in memory are written out first, in seq order.
    ///
    /// `Err` only for a frame that is not one ([`SpoolError::BadFrameSize`],
    /// [`SpoolError::SeqReused`]); a disk that refuses the frame gives [`Added::Held`].
    pub fn add(&mut self, frame: &SpooledFrame) -> Result<Added, SpoolError> {
        if frame.pcm.len() != FRAME_BYTES {
            return Err(SpoolError::BadFrameSize {
                seq: frame.seq,
                len: frame.pcm.len(),
            });
        }
        if frame.seq < self.next_seq {
            return Err(SpoolError::SeqReused {
                seq: frame.seq,
                next_seq: self.next_seq,
            });
        }
        self.next_seq = frame.seq + 1;
        self.pending.insert(frame.seq, frame.timestamp_ms);
        self.held.insert(frame.seq, frame.clone());
        let mut outcome = Added::OnDisk;
        while let Some((&seq, _)) = self.held.first_key_value() {
            if let Err(e) = self.write_frame(&self.held[&seq]) {
                if seq == frame.seq || self.held.contains_key(&frame.seq) {
                    outcome = Added::Held(e);
                }
                break;
            }
            self.held.remove(&seq);
        }
        Ok(outcome)
    }

    /// Frames pending in memory only, because the disk refused them.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Writes one frame's file and the metadata that covers it.
    fn write_frame(&self, frame: &SpooledFrame) -> Result<(), SpoolError> {
        let mut bytes = Vec::with_capacity(HEADER_BYTES + FRAME_BYTES);
        bytes.extend_from_slice(&frame_file_header(frame.timestamp_ms));
        bytes.extend_from_slice(&frame.pcm);
        let path = self.frame_path(frame.seq);
        self.write_atomically(&path, &bytes)?;
        self.write_meta()?;
        if self.durability == Durability::Sync {
            sync_dir(&self.frames_dir)?;
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Reads an unacknowledged frame back, to send it.
    pub fn read(&self, seq: u64) -> Result<SpooledFrame, SpoolError> {
        if !self.pending.contains_key(&seq) {
            return Err(SpoolError::NotFound { seq });
        }
        if let Some(frame) = self.held.get(&seq) {
            return Ok(frame.clone());
        }
        let path = self.frame_path(seq);
        let mut bytes = Vec::with_capacity(HEADER_BYTES + FRAME_BYTES);
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io_err(&path))?;
        if bytes.len() != HEADER_BYTES + FRAME_BYTES || &bytes[..4] != MAGIC {
            return Err(SpoolError::Io {
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, "damaged frame file"),
            });
        }
        let timestamp_ms = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        bytes.drain(..HEADER_BYTES);
        Ok(SpooledFrame {
            seq,
            timestamp_ms,
            pcm: bytes,
        })
    }

    /// Forgets an acknowledged frame. Returns whether it was pending (an ACK for a frame sent
    /// twice arrives twice; the second finds nothing to remove).
    pub fn remove(&mut self, seq: u64) -> Result<bool, SpoolError> {
        if self.pending.remove(&seq).is_none() {
            return Ok(false);
        }
        if self.held.remove(&seq).is_some() {
            return Ok(true);
        }
        let path = self.frame_path(seq);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Takes a frame the gateway keeps refusing out of the send queue, keeping its file under
    /// `rejected/` for whoever investigates.
    pub fn reject(&mut self, seq: u64) -> Result<(), SpoolError> {
        if self.pending.remove(&seq).is_none() {
            return Err(SpoolError::NotFound { seq });
        }
        let rejected = self.dir.join(REJECTED_DIR);
        fs::create_dir_all(&rejected).map_err(io_err(&rejected))?;
        let to = rejected.join(frame_file_name(seq));
        if let Some(frame) = self.held.remove(&seq) {
            let mut bytes = frame_file_header(frame.timestamp_ms).to_vec();
            bytes.extend_from_slice(&frame.pcm);
            return fs::write(&to, bytes).map_err(io_err(&to));
        }
        let from = self.frame_path(seq);
        fs::rename(&from, &to).map_err(io_err(&from))
    }

    fn frame_path(&self, seq: u64) -> PathBuf {
        self.frames_dir.join(frame_file_name(seq))
    }

    fn write_meta(&self) -> Result<(), SpoolError> {
        let meta = Meta {
            session_id: self.session_id.clone(),
            next_seq: self.next_seq,
        };
        let bytes = serde_json::to_vec(&meta).expect("metadata serializes");
        let path = self.dir.join(META_FILE);
        self.write_atomically(&path, &bytes)
    }

    /// Writes `bytes` to a temporary name and renames it over `path`.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
        let tmp = path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        if self.durability == Durability::Sync {
            file.sync_all().map_err(io_err(&tmp))?;
        }
        drop(file);
        fs::rename(&tmp, path).map_err(io_err(path))
    }
}

fn frame_file_name(seq: u64) -> String {
    format!("{seq:010}.frame")
}

/// Reads a frame file's timestamp after checking its size and magic.
/// The 16 bytes before a frame file's PCM.
fn frame_file_header(timestamp_ms: u64) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..4].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&timestamp_ms.to_le_bytes());
    header
}

fn read_header(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    if file.metadata()?.len() != FRAME_FILE_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "wrong size"));
    }
    let mut header = [0u8; HEADER_BYTES];
    file.read_exact(&mut header).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => io::Error::new(io::ErrorKind::InvalidData, "cut short"),
        _ => e,
    })?;
    if &header[..4] != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad magic"));
    }
    Ok(u64::from_le_bytes(
        header[8..16].try_into().expect("8 bytes"),
    ))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), SpoolError> {
    // Windows cannot open a directory as a file; NTFS journals the rename itself.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> SpooledFrame {
        let pcm = (0..FRAME_BYTES)
            .map(|i| (i as u64 * 7 + seq) as u8)
            .collect();
        SpooledFrame {
            seq,
            timestamp_ms: 1_700_000_000_000 + seq * 1000,
            pcm,
        }
    }

    #[test]
    fn frames_survive_a_reopen_in_seq_order_with_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), "s1", Durability::Flush).unwrap();
        assert_eq!(spool.next_seq(), 1);
        for seq in 1..=5 {
            spool.add(&frame(seq)).unwrap();
        }
        assert!(spool.remove(2).unwrap());
        assert!(!spool.remove(2).unwrap(), "a second ACK finds nothing");
        drop(spool);

        let spool = Spool::open(dir.path(), "s1", Durability::Flush).unwrap();
        assert_eq!(spool.pending().collect::<Vec<_>>(), vec![1, 3, 4, 5]);
        assert_eq!(spool.next_seq(), 6);
        assert_eq!(spool.recovery().frames, 4);
        for seq in [1, 3, 4, 5] {
            assert_eq!(spool.read(seq).unwrap(), frame(seq));
        }
    }

    #[test]
    fn next_seq_survives_an_empty_spool() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), "s1", Durability::Sync).unwrap();
        for seq in 1..=3 {
            spool.add(&frame(seq)).unwrap();
        }
        for seq in 1..=3 {
            spool.remove(seq).unwrap();
        }
        assert!(spool.is_empty());
        drop(spool);
        let mut spool = Spool::open(dir.path(), "s1", Durability::Sync).unwrap();
        assert_eq!(spool.next_seq(), 4);
        assert!(matches!(
            spool.add(&frame(2)),
            Err(SpoolError::SeqReused {
                seq: 2,
                next_seq: 4
            })
        ));
        spool.add(&frame(4)).unwrap();
    }

    #[test]
    fn continuing_after_the_gateways_frames_moves_the_numbering_forward_only_and_survives_a_reopen()
    {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), "s1", Durability::Sync).unwrap();
        spool.add(&frame(1)).unwrap();
        assert!(
            !spool.continue_after(0).unwrap(),
            "nothing on the gateway yet"
        );
        assert!(spool.continue_after(40).unwrap());
        assert_eq!(spool.next_seq(), 41);
        assert!(
            !spool.continue_after(12).unwrap(),
            "the numbering never goes back"
        );
        assert_eq!(spool.next_seq(), 41);
        drop(spool);
        let spool = Spool::open(dir.path(), "s1", Durability::Sync).unwrap();
        assert_eq!(spool.next_seq(), 41);
        assert_eq!(
            spool.pending().collect::<Vec<_>>(),
            vec![1],
            "frame 1 is still held"
        );
    }

    /// Issue 9, item 6: a full or failing disk does not lose frames while the process runs.
    #[test]
    fn item6_frames_the_disk_refuses_are_held_in_memory_sent_and_written_out_when_it_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), "s1", Durability::Sync).unwrap();
        assert!(matches!(spool.add(&frame(1)).unwrap(), Added::OnDisk));
        // The frames directory becomes unwritable (here: a file where it was).
        let frames = dir.path().join(FRAMES_DIR);
        let away = dir.path().join("frames.away");
        fs::rename(&frames, &away).unwrap();
        fs::write(&frames, b"not a directory").unwrap();
        for seq in 2..=3 {
            assert!(matches!(spool.add(&frame(seq)).unwrap(), Added::Held(_)));
        }
        assert_eq!(spool.pending().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!((spool.len(), spool.held()), (3, 2));
        assert_eq!(
            spool.read(2).unwrap(),
            frame(2),
            "a held frame is sent like the others"
        );
        assert!(spool.remove(2).unwrap(), "and its ACK clears it");
        assert_eq!(spool.held(), 1);

        fs::remove_file(&frames).unwrap();
        fs::rename(&away, &frames).unwrap();
        assert!(matches!(spool.add(&frame(4)).unwrap(), Added::OnDisk));
        assert_eq!(spool.held(), 0, "the held frame went to disk first");
        drop(spool);
        let spool = Spool::open(dir.path(), "s1", Durability::Sync).unwrap();
        assert_eq!(spool.pending().collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(spool.read(3).unwrap(), frame(3));
        assert_eq!(spool.next_seq(), 5);
    }

    /// Issue 9, item 6: an error reading a frame file is not proof that it is damaged.
    #[cfg(unix)]
    #[test]
    fn item6_a_frame_file_that_cannot_be_read_fails_the_open_and_is_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), "s1", Durability::Flush).unwrap();
        spool.add(&frame(1)).unwrap();
        drop(spool);
        // A link to itself cannot be opened (ELOOP), like a file the process may not read.
        let unreadable = dir.path().join(FRAMES_DIR).join(frame_file_name(7));
        std::os::unix::fs::symlink(&unreadable, &unreadable).unwrap();
        let notes = dir.path().join(FRAMES_DIR).join("notes.txt");
        fs::write(&notes, b"someone's file").unwrap();

        let error = Spool::open(dir.path(), "s1", Durability::Flush).unwrap_err();
        assert!(error.to_string().contains(&frame_file_name(7)), "{error}");
        assert!(
            fs::symlink_metadata(&unreadable).is_ok(),
            "nothing was deleted"
        );
        fs::remove_file(&unreadable).unwrap();
        let spool = Spool::open(dir.path(), "s1", Durability::Flush).unwrap();
        assert_eq!(spool.pending().collect::<Vec<_>>(), vec![1]);
        assert_eq!(spool.recovery().discarded, 0);
        assert!(notes.exists(), "files that are not frames are left alone");
    }

    #[test]
    fn a_half_written_frame_is_discarded_and_a_lost_metadata_write_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), "s1", Durability::Flush).unwrap();
        spool.add(&frame(1)).unwrap();
        spool.add(&frame(2)).unwrap();
        drop(spool);
        // A crash between the frame's rename and the metadata rename, and a torn tmp file.
        fs::write(
            dir.path().join("spool.json"),
            br#"{"session_id":"s1","next_seq":2}"#,
        )
        .unwrap();
        fs::write(dir.path().join("frames/0000000003.tmp"), b"torn").unwrap();
        fs::write(dir.path().join("frames/0000000004.frame"), b"short").unwrap();

        let spool = Spool::open(dir.path(), "s1", Durability::Flush).unwrap();
        assert_eq!(spool.pending().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(spool.next_seq(), 3);
        assert_eq!(spool.recovery().discarded, 2);
        assert_eq!(fs::read_dir(dir.path().join("frames")).unwrap().count(), 2);
    }

    #[test]
    fn another_sessions_spool_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Spool::open(dir.path(), "alpha", Durability::Flush).unwrap();
        let err = Spool::open(dir.path(), "beta", Durability::Flush).unwrap_err();
        assert!(matches!(err, SpoolError::WrongSession { .. }), "{err}");
    }

    #[test]
    fn a_frame_must_be_exactly_one_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), "s", Durability::Flush).unwrap();
        let mut short = frame(1);
        short.pcm.pop();
        assert!(matches!(
            spool.add(&short),
            Err(SpoolError::BadFrameSize { seq: 1, len }) if len == FRAME_BYTES - 1
        ));
        assert_eq!(spool.next_seq(), 1);
    }

    #[test]
    fn pending_after_walks_the_gaps_and_a_rejected_frame_is_set_aside_until_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), "s", Durability::Flush).unwrap();
        for seq in [1, 2, 5, 9] {
            spool.add(&frame(seq)).unwrap();
        }
        assert_eq!(spool.pending_after(0), Some(1));
        assert_eq!(spool.pending_after(2), Some(5));
        assert_eq!(spool.pending_after(9), None);
        spool.reject(5).unwrap();
        assert_eq!(spool.pending_after(2), Some(9));
        assert!(dir.path().join("rejected/0000000005.frame").exists());
        drop(spool);
        // Issue 9, item 3: what was set aside is sent again on the next start.
        let spool = Spool::open(dir.path(), "s", Durability::Flush).unwrap();
        assert_eq!(spool.pending().collect::<Vec<_>>(), vec![1, 2, 5, 9]);
        assert_eq!(spool.recovery().reinstated, 1);
        assert_eq!(spool.read(5).unwrap(), frame(5));
        assert!(!dir.path().join("rejected/0000000005.frame").exists());
    }
}
