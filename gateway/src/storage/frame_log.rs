//! The frame log: frames appended to shared segment files, many per write.
//!
//! Creating one file per one-second frame made ingest hostage to the file system (every frame
//! a create, a write, a rename and, for `power`, two fsyncs), so local frames are appended to a
//! log instead. One thread owns the writing: it takes every append that is waiting (from any
//! session), writes them with one `pwrite` and, for [`Durability::Power`], one `fdatasync`,
//! and only then answers each caller with where its record lies. So a busy gateway pays one
//! sync for hundreds of frames and a lone frame is written at once.
//!
//! The log is a folder of segments, `<number, 8 digits>.log`, each at most
//! [`SEGMENT_BYTES`] long; only the newest (the active segment) is ever written. A record is
//! a 16-byte header (magic, CRC-32 of key and payload, key length, payload length), the key,
//! then the payload, so a record read back proves it is the one asked for and intact. Where
//! each key's latest record lies is kept by the caller (the objects index in the database);
//! records nobody points at any more are dead space, and a segment whose records are all dead
//! is removed (see [`FrameLog::reclaimable`]).

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

use crate::core::ports::StorageError;
use crate::storage::Durability;

/// A segment is closed and a new one begun once it would grow past this.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// Most bytes written (and synced) in one go; bounds the wait of a batch's first caller.
const MAX_BATCH_BYTES: usize = 8 << 20;
const MAGIC: &[u8; 4] = b"IRF1";
const HEADER_BYTES: usize = 16;
/// Open read handles kept. Reads go to recent segments (the engine reads back what was just
/// stored) or walk one session's segments in order (`audio.wav`), so a few suffice; past this
/// the oldest segment's handle is closed, so a long-running gateway holds a flat number of
/// descriptors however many segments it writes.
const MAX_READERS: usize = 16;

/// Where a key's record lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub segment: u64,
    /// Of the record's header.
    pub offset: u64,
    /// Of the payload.
    pub len: u64,
}

/// An appended record. While it lives, its segment is not reclaimed: drop it once the
/// record's location is committed to the index, so a segment whose records are written but
/// not yet indexed never looks dead.
pub struct Appended {
    pub location: Location,
    _pending: Pending,
}

struct Pending {
    state: Arc<Mutex<LogState>>,
    segment: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut state = self.state.lock().expect("log state");
        if let Some(count) = state.pending.get_mut(&self.segment) {
            *count -= 1;
            if *count == 0 {
                state.pending.remove(&self.segment);
            }
        }
    }
}

#[derive(Default)]
struct LogState {
    /// The segment appends go to (created at the first append after a start).
    active: u64,
    /// Segments on disk, the active one included once created.
    segments: BTreeSet<u64>,
    /// Records appended but not yet released by their caller, by segment.
    pending: HashMap<u64, usize>,
}

struct Append {
    key: String,
    payload: Vec<u8>,
    reply: oneshot::Sender<Result<Appended, StorageError>>,
}

/// Handle to the log; cheap to clone.
#[derive(Clone)]
pub struct FrameLog {
    dir: Arc<PathBuf>,
    appends: mpsc::Sender<Append>,
    state: Arc<Mutex<LogState>>,
    readers: Arc<Mutex<HashMap<u64, Arc<File>>>>,
}

impl FrameLog {
    /// Opens (creating if needed) the log in `dir` and starts its writer thread. Appends after
    /// a start go to a new segment, so a torn tail left by a crash is never written after.
    pub fn open(dir: &Path, durability: Durability) -> Result<FrameLog, StorageError> {
        FrameLog::open_sized(dir, durability, SEGMENT_BYTES)
    }

    /// As [`FrameLog::open`], closing segments at `segment_bytes` (small in tests).
    fn open_sized(
        dir: &Path,
        durability: Durability,
        segment_bytes: u64,
    ) -> Result<FrameLog, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError(format!("cannot create the frame log directory: {e}")))?;
        let mut segments = BTreeSet::new();
        let listing = std::fs::read_dir(dir)
            .map_err(|e| StorageError(format!("cannot list the frame log: {e}")))?;
        for entry in listing {
            let entry =
                entry.map_err(|e| StorageError(format!("cannot list the frame log: {e}")))?;
            if let Some(number) = segment_number(&entry.file_name().to_string_lossy()) {
                segments.insert(number);
            }
        }
        let state = Arc::new(Mutex::new(LogState {
            active: segments.last().map_or(1, |last| last + 1),
            segments,
            pending: HashMap::new(),
        }));
        let (appends, queue) = mpsc::channel();
        let writer = Writer {
            dir: dir.to_owned(),
            durability,
            segment_bytes,
            state: Arc::clone(&state),
            file: None,
            end: 0,
        };
        std::thread::Builder::new()
            .name("gateway-log".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| StorageError(format!("cannot start the frame log writer: {e}")))?;
        Ok(FrameLog {
            dir: Arc::new(dir.to_owned()),
            appends,
            state,
            readers: Arc::default(),
        })
    }

    /// Appends `payload` under `key` and answers once it is written (and, for `power`, synced).
    pub async fn append(&self, key: &str, payload: Vec<u8>) -> Result<Appended, StorageError> {
        let (reply, replied) = oneshot::channel();
        let append = Append {
            key: key.to_owned(),
            payload,
            reply,
        };
        self.appends
            .send(append)
            .map_err(|_| StorageError("the frame log is closed".into()))?;
        replied
            .await
            .map_err(|_| StorageError("the frame log writer stopped".into()))?
    }

    /// The payload of `key`'s record at `at`; `None` when the segment is gone or the record
    /// there is not `key`'s, is cut short or fails its checksum (the caller treats the frame
    /// as missing, and a resend writes it again). Blocking: call off the async threads.
    pub fn read(&self, key: &str, at: Location) -> Result<Option<Vec<u8>>, StorageError> {
        match self.reader(at.segment)? {
            Some(file) => read_record(&file, key, at),
            None => Ok(None),
        }
    }

    /// Segments that may be removed if the index points into none of them: closed (not the
    /// active one) and with no record appended but not yet indexed. No append can go to them
    /// any more, so what the index says about them after this call stays true.
    pub fn reclaimable(&self) -> Vec<u64> {
        let state = self.state.lock().expect("log state");
        state
            .segments
            .iter()
            .copied()
            .filter(|s| *s < state.active && !state.pending.contains_key(s))
            .collect()
    }

    /// Deletes a segment that [`FrameLog::reclaimable`] named and the index no longer uses.
    pub fn remove(&self, segment: u64) -> Result<(), StorageError> {
        self.readers.lock().expect("log readers").remove(&segment);
        match std::fs::remove_file(self.dir.join(segment_name(segment))) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::error!(segment, error = %err, "cannot remove a frame log segment");
                return Err(StorageError("cannot remove a frame log segment".into()));
            }
        }
        self.state
            .lock()
            .expect("log state")
            .segments
            .remove(&segment);
        Ok(())
    }

    fn reader(&self, segment: u64) -> Result<Option<Arc<File>>, StorageError> {
        let mut readers = self.readers.lock().expect("log readers");
        if let Some(file) = readers.get(&segment) {
            return Ok(Some(Arc::clone(file)));
        }
        let file = match File::open(self.dir.join(segment_name(segment))) {
            Ok(file) => Arc::new(file),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                tracing::error!(segment, error = %err, "cannot open a frame log segment");
                return Err(StorageError("cannot open a frame log segment".into()));
            }
        };
        if readers.len() >= MAX_READERS
            && let Some(&oldest) = readers.keys().min()
        {
            readers.remove(&oldest);
        }
        readers.insert(segment, Arc::clone(&file));
        Ok(Some(file))
    }
}

/// The writing thread's own state.
struct Writer {
    dir: PathBuf,
    durability: Durability,
    segment_bytes: u64,
    state: Arc<Mutex<LogState>>,
    /// The active segment, once created, and where its good bytes end.
    file: Option<File>,
    end: u64,
}

impl Writer {
    /// Runs until every [`FrameLog`] handle is dropped.
    fn run(mut self, queue: mpsc::Receiver<Append>) {
        while let Ok(first) = queue.recv() {
            let mut bytes = record_len(&first);
            let mut batch = vec![first];
            while bytes < MAX_BATCH_BYTES {
                match queue.try_recv() {
                    Ok(append) => {
                        bytes += record_len(&append);
                        batch.push(append);
                    }
                    Err(_) => break,
                }
            }
            match self.write(&batch, bytes) {
                Ok(locations) => {
                    for (append, location) in batch.into_iter().zip(locations) {
                        let appended = Appended {
                            location,
                            _pending: Pending {
                                state: Arc::clone(&self.state),
                                segment: location.segment,
                            },
                        };
                        // A caller that went away leaves a record nobody indexes: dead space.
                        let _ = append.reply.send(Ok(appended));
                    }
                }
                Err(err) => {
                    for append in batch {
                        let _ = append.reply.send(Err(err.clone()));
                    }
                }
            }
        }
    }

    /// Writes the batch as one run of records at the end of the active segment and answers
    /// where each lies. Counted as pending before anyone can see it (see [`Pending`]).
    fn write(&mut self, batch: &[Append], bytes: usize) -> Result<Vec<Location>, StorageError> {
        if self.file.is_none() || self.end + bytes as u64 > self.segment_bytes && self.end > 0 {
            self.roll()?;
        }
        let segment = self.state.lock().expect("log state").active;
        // Each record's header and key go into one small buffer; the payloads are written from
        // where they lie (one `pwritev`), not copied into a batch buffer first: that copy was a
        // sixth of this thread's time.
        let mut heads = Vec::with_capacity(batch.len() * 64);
        let mut head_ends = Vec::with_capacity(batch.len());
        let mut locations = Vec::with_capacity(batch.len());
        let mut offset = self.end;
        for append in batch {
            encode_head(&mut heads, &append.key, &append.payload);
            locations.push(Location {
                segment,
                offset,
                len: append.payload.len() as u64,
            });
            head_ends.push(heads.len());
            offset += record_len(append) as u64;
        }
        let mut slices = Vec::with_capacity(batch.len() * 2);
        let mut start = 0;
        for (append, &end) in batch.iter().zip(&head_ends) {
            slices.push(IoSlice::new(&heads[start..end]));
            slices.push(IoSlice::new(&append.payload));
            start = end;
        }
        *self
            .state
            .lock()
            .expect("log state")
            .pending
            .entry(segment)
            .or_default() += batch.len();
        let file = self.file.as_ref().expect("rolled above");
        let written =
            positional::write_all_vectored_at(file, &mut slices, self.end).and_then(|()| {
                if self.durability == Durability::Power {
                    file.sync_data()
                } else {
                    Ok(())
                }
            });
        match written {
            Ok(()) => {
                self.end = offset;
                Ok(locations)
            }
            Err(err) => {
                self.release(segment, batch.len());
                tracing::error!(segment, error = %err, "frame log write failed");
                // Cut what may have landed, so the next batch starts at a known end; if even
                // that fails, the next batch begins a new segment.
                if file.set_len(self.end).is_err() {
                    self.file = None;
                }
                Err(StorageError("frame log could not write the frame".into()))
            }
        }
    }

    /// Begins a new active segment (the first after a start, or when the current one is full).
    fn roll(&mut self) -> Result<(), StorageError> {
        let mut state = self.state.lock().expect("log state");
        let number = if self.file.is_some() || state.segments.contains(&state.active) {
            state.active + 1
        } else {
            state.active
        };
        let path = self.dir.join(segment_name(number));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                tracing::error!(segment = number, error = %e, "cannot create a frame log segment");
                StorageError("cannot create a frame log segment".into())
            })?;
        if self.durability == Durability::Power {
            // The new name must outlive a power cut too, not only the bytes behind it.
            positional::sync_dir(&self.dir).map_err(|e| {
                tracing::error!(error = %e, "cannot sync the frame log directory");
                StorageError("cannot sync the frame log directory".into())
            })?;
        }
        state.active = number;
        state.segments.insert(number);
        self.file = Some(file);
        self.end = 0;
        Ok(())
    }

    fn release(&self, segment: u64, count: usize) {
        let mut state = self.state.lock().expect("log state");
        if let Some(pending) = state.pending.get_mut(&segment) {
            *pending -= count;
            if *pending == 0 {
                state.pending.remove(&segment);
            }
        }
    }
}

/// Reads `key`'s record from a log folder without a [`FrameLog`] (tools and tests that look at
/// a gateway's data from outside it).
pub fn read_from(dir: &Path, key: &str, at: Location) -> Result<Option<Vec<u8>>, StorageError> {
    match File::open(dir.join(segment_name(at.segment))) {
        Ok(file) => read_record(&file, key, at),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(StorageError(format!(
            "cannot open a frame log segment: {err}"
        ))),
    }
}

/// The payload of `key`'s record at `at` in `file`, `None` when it is not there intact.
fn read_record(file: &File, key: &str, at: Location) -> Result<Option<Vec<u8>>, StorageError> {
    let mut record = vec![0; HEADER_BYTES + key.len() + at.len as usize];
    match positional::read_exact_at(file, &mut record, at.offset) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::warn!(key, segment = at.segment, "frame log record cut short");
            return Ok(None);
        }
        Err(err) => {
            tracing::error!(key, segment = at.segment, error = %err, "frame log read failed");
            return Err(StorageError(format!("frame log could not read {key}")));
        }
    }
    let payload = parse_record(&record, key);
    if payload.is_none() {
        tracing::warn!(key, segment = at.segment, "frame log record damaged");
    }
    Ok(payload.map(<[u8]>::to_vec))
}

fn record_len(append: &Append) -> usize {
    HEADER_BYTES + append.key.len() + append.payload.len()
}

/// A record's header and key; its payload follows them in the file.
fn encode_head(buffer: &mut Vec<u8>, key: &str, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(key.as_bytes());
    crc.update(payload);
    buffer.extend_from_slice(MAGIC);
    buffer.extend_from_slice(&crc.finalize().to_le_bytes());
    buffer.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buffer.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buffer.extend_from_slice(key.as_bytes());
}

/// The payload of `record` if it is an intact record of `key`.
fn parse_record<'a>(record: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let (header, rest) = record.split_at_checked(HEADER_BYTES)?;
    let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    if &header[..4] != MAGIC || word(8) as usize != key.len() {
        return None;
    }
    let (stored_key, payload) = rest.split_at_checked(key.len())?;
    if stored_key != key.as_bytes() || word(12) as usize != payload.len() {
        return None;
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(stored_key);
    crc.update(payload);
    (crc.finalize() == word(4)).then_some(payload)
}

/// Reads and writes at an offset, without a shared cursor, on every platform.
mod positional {
    use std::fs::File;
    use std::io::{self, IoSlice};

    #[cfg(unix)]
    pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }

    /// Most buffers one `pwritev` takes: Linux's and macOS's `IOV_MAX`.
    #[cfg(unix)]
    const MAX_SLICES: usize = 1024;

    /// Writes every slice, in order, from `offset` on: one `pwritev` per 1,024 slices unless the
    /// kernel writes less.
    #[cfg(unix)]
    pub fn write_all_vectored_at(
        file: &File,
        mut slices: &mut [IoSlice<'_>],
        mut offset: u64,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        while !slices.is_empty() {
            let count = slices.len().min(MAX_SLICES);
            // SAFETY: on unix an `IoSlice` has the layout of an `iovec` (std guarantees it), and
            // the slices borrow buffers that outlive the call.
            let written = unsafe {
                libc::pwritev(
                    file.as_raw_fd(),
                    slices.as_ptr().cast(),
                    count as libc::c_int,
                    offset as libc::off_t,
                )
            };
            match written {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n if n < 0 => {
                    let err = io::Error::last_os_error();
                    if err.kind() != io::ErrorKind::Interrupted {
                        return Err(err);
                    }
                }
                n => {
                    IoSlice::advance_slices(&mut slices, n as usize);
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }

    /// Makes the folder's entries (a new segment's name) durable. NTFS journals its
    /// metadata itself and has no such call.
    pub fn sync_dir(dir: &std::path::Path) -> io::Result<()> {
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }

    #[cfg(windows)]
    pub fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match file.seek_read(buf, offset)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }

    /// Windows has no positional gather write for a file opened without overlapped I/O: the
    /// slices are joined and written as one buffer.
    #[cfg(windows)]
    pub fn write_all_vectored_at(
        file: &File,
        slices: &mut [IoSlice<'_>],
        offset: u64,
    ) -> io::Result<()> {
        let mut joined = Vec::with_capacity(slices.iter().map(|slice| slice.len()).sum());
        for slice in slices.iter() {
            joined.extend_from_slice(slice);
        }
        write_all_at(file, &joined, offset)
    }

    #[cfg(windows)]
    fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match file.seek_write(buf, offset)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

fn segment_name(number: u64) -> String {
    format!("{number:08}.log")
}

fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &Path) -> FrameLog {
        FrameLog::open(dir, Durability::Process).unwrap()
    }

    #[tokio::test]
    async fn appended_records_read_back_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first = log(dir.path());
        let a = first.append("k/a.pcm", vec![1; 100]).await.unwrap();
        let b = first.append("k/b.pcm", vec![2; 7]).await.unwrap();
        assert_eq!(a.location.segment, b.location.segment);
        assert_eq!(
            b.location.offset,
            a.location.offset + (HEADER_BYTES + 7 + 100) as u64
        );
        let (a, b) = (a.location, b.location);
        drop(first);

        let second = log(dir.path());
        assert_eq!(second.read("k/a.pcm", a).unwrap(), Some(vec![1; 100]));
        assert_eq!(second.read("k/b.pcm", b).unwrap(), Some(vec![2; 7]));
        // Another key's location, or a location past the end, is not this key's frame.
        assert_eq!(second.read("k/b.pcm", a).unwrap(), None);
        let past = Location {
            offset: 10_000,
            ..b
        };
        assert_eq!(second.read("k/b.pcm", past).unwrap(), None);
        // A new start writes a new segment.
        let c = second.append("k/c.pcm", vec![3]).await.unwrap().location;
        assert_eq!(c.segment, a.segment + 1);
        assert_eq!(c.offset, 0);
    }

    #[tokio::test]
    async fn a_damaged_record_reads_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let frames = log(dir.path());
        let at = frames
            .append("k/a.pcm", vec![9; 64])
            .await
            .unwrap()
            .location;
        let path = dir.path().join(segment_name(at.segment));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(frames.read("k/a.pcm", at).unwrap(), None);
    }

    #[tokio::test]
    async fn only_closed_segments_without_unindexed_records_are_reclaimable() {
        let dir = tempfile::tempdir().unwrap();
        // Segments of 100 bytes: each 64-byte frame fills one.
        let frames = FrameLog::open_sized(dir.path(), Durability::Process, 100).unwrap();
        let first = frames.append("k/a.pcm", vec![1; 64]).await.unwrap();
        assert!(
            frames.reclaimable().is_empty(),
            "the active segment is never"
        );
        let second = frames.append("k/b.pcm", vec![2; 64]).await.unwrap();
        assert_eq!(second.location.segment, first.location.segment + 1);
        assert!(
            frames.reclaimable().is_empty(),
            "a record not yet indexed holds its segment"
        );
        let segment = first.location.segment;
        drop(first);
        assert_eq!(frames.reclaimable(), vec![segment]);
        frames.remove(segment).unwrap();
        assert!(!dir.path().join(segment_name(segment)).exists());
        assert!(frames.reclaimable().is_empty());
        assert_eq!(
            frames
                .read(
                    "k/a.pcm",
                    Location {
                        segment,
                        offset: 0,
                        len: 64
                    }
                )
                .unwrap(),
            None
        );
        assert_eq!(
            frames.read("k/b.pcm", second.location).unwrap(),
            Some(vec![2; 64])
        );
    }

    #[test]
    fn a_gather_write_of_more_slices_than_one_call_takes_lands_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create_new(dir.path().join("gather")).unwrap();
        // 2,500 slices of 1..=7 bytes: three calls on unix, each byte says where it belongs.
        let parts: Vec<Vec<u8>> = (0..2_500u32)
            .map(|i| vec![(i % 251) as u8; 1 + (i % 7) as usize])
            .collect();
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|part| IoSlice::new(part)).collect();
        positional::write_all_vectored_at(&file, &mut slices, 5).unwrap();
        let written = std::fs::read(dir.path().join("gather")).unwrap();
        assert_eq!(
            &written[..5],
            &[0; 5],
            "the bytes before the offset stay a hole"
        );
        assert_eq!(written[5..], parts.concat());
    }

    #[test]
    fn segment_names_round_trip_and_other_files_are_ignored() {
        assert_eq!(segment_number(&segment_name(42)), Some(42));
        assert_eq!(segment_number("00000042.log.tmp"), None);
        assert_eq!(segment_number("42.log"), None);
    }
}
