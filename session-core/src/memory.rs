//! In-memory storage ports for the core's own tests, with switches that make writes fail.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::clock::EpochMs;
use crate::ingest::{CaptureOrigin, IngestRecord};
use crate::ports::{ObjectStorage, SessionStorage, StorageError, StoredSession, StoredStream};
use crate::session_id::SessionId;
use crate::speakers::SpeakerRecord;
use crate::stream::Stream;
use contract::protocol::SpeakerEvent;

#[derive(Default)]
pub struct MemoryStorage {
    pub sessions: RefCell<HashMap<String, StoredSession>>,
    pub events: RefCell<HashMap<String, Vec<SpeakerEvent>>>,
    pub replays: RefCell<HashMap<(String, String), String>>,
    pub fail_writes: Cell<bool>,
}

#[derive(Default)]
pub struct MemoryObjects {
    pub objects: RefCell<HashMap<String, Vec<u8>>>,
    pub fail_writes: Cell<bool>,
}

impl MemoryStorage {
    fn write(
        &self,
        id: &SessionId,
        f: impl FnOnce(&mut StoredSession),
    ) -> Result<(), StorageError> {
        if self.fail_writes.get() {
            return Err(StorageError("disk full".into()));
        }
        let mut sessions = self.sessions.borrow_mut();
        let stored = sessions.entry(id.safe().to_owned()).or_default();
        stored.session_id.get_or_insert_with(|| id.to_string());
        f(stored);
        Ok(())
    }
}

fn stored_stream<'a>(
    session: &'a mut StoredSession,
    stream: Stream,
    ingest: &IngestRecord,
) -> &'a mut StoredStream {
    session
        .streams
        .entry(stream)
        .or_insert_with(|| StoredStream {
            record: *ingest,
            seqs: Vec::new(),
            origin: None,
        })
}

impl SessionStorage for &MemoryStorage {
    async fn load(&self, id: &SessionId) -> Result<StoredSession, StorageError> {
        Ok(self
            .sessions
            .borrow()
            .get(id.safe())
            .cloned()
            .unwrap_or_default())
    }

    async fn save_ingest(
        &self,
        id: &SessionId,
        stream: Stream,
        ingest: &IngestRecord,
    ) -> Result<(), StorageError> {
        self.write(id, |s| stored_stream(s, stream, ingest).record = *ingest)
    }

    async fn save_chunk(
        &self,
        id: &SessionId,
        stream: Stream,
        seq: u64,
        captured_at: EpochMs,
        ingest: &IngestRecord,
    ) -> Result<(), StorageError> {
        self.write(id, |s| {
            let stored = stored_stream(s, stream, ingest);
            stored.record = *ingest;
            if !stored.seqs.contains(&seq) {
                stored.seqs.push(seq);
                stored.seqs.sort_unstable();
            }
            if stored.origin.is_none_or(|o| seq < o.seq) {
                stored.origin = Some(CaptureOrigin { seq, captured_at });
            }
        })
    }

    async fn save_speakers(
        &self,
        id: &SessionId,
        speakers: &SpeakerRecord,
        event: Option<&SpeakerEvent>,
        replay: Option<(&str, &str)>,
    ) -> Result<(), StorageError> {
        self.write(id, |s| s.speakers = speakers.clone())?;
        if let Some(event) = event {
            self.events
                .borrow_mut()
                .entry(id.safe().to_owned())
                .or_default()
                .push(event.clone());
        }
        if let Some((key, answer)) = replay {
            self.replays
                .borrow_mut()
                .insert((id.safe().to_owned(), key.to_owned()), answer.to_owned());
        }
        Ok(())
    }

    async fn replay(&self, id: &SessionId, key: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .replays
            .borrow()
            .get(&(id.safe().to_owned(), key.to_owned()))
            .cloned())
    }

    async fn events(&self, id: &SessionId) -> Result<Vec<SpeakerEvent>, StorageError> {
        Ok(self
            .events
            .borrow()
            .get(id.safe())
            .cloned()
            .unwrap_or_default())
    }

    async fn save_finalized(&self, id: &SessionId, at: EpochMs) -> Result<(), StorageError> {
        self.write(id, |s| s.finalized_at = Some(at))
    }
}

impl ObjectStorage for &MemoryObjects {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        if self.fail_writes.get() {
            return Err(StorageError("bucket unreachable".into()));
        }
        self.objects.borrow_mut().insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.objects.borrow().get(key).cloned())
    }
}
