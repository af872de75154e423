//! One session's rules, driven through the storage ports: the part every host shares.
//!
//! A host must give each session to exactly one [`Session`] at a time and call it one request
//! at a time (the server's actor does). Every method that changes the session persists the new
//! state *before* it replaces the in-memory one and before it returns an answer, so an answer
//! always describes durable state and a failed write changes nothing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::clock::{EpochMs, rfc3339};
use crate::ingest::{CaptureOrigin, ChunkPlan, IngestState};
use crate::message::ValidChunk;
use crate::ports::{ObjectStorage, SessionStorage, StorageError};
use crate::seq_set::SeqSet;
use crate::session_id::SessionId;
use crate::speakers::{AnswerError, AttributionUpdate, EventLogFull, ResolveInput, SpeakerRecord};
use crate::stream::Stream;
use contract::protocol::{
    Ack, CHANNELS, FORMAT, FinalResult, FinalizeResponse, IngestStatus, Ready, SAMPLE_RATE,
    StateResponse, StatusMessage,
};

/// Why a session refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error(
        "session id '{requested}' is stored under the same name as session '{existing}'; choose another id"
    )]
    IdCollision { requested: String, existing: String },
    #[error("meeting_id mismatch: expected '{expected}', got '{got}'")]
    MeetingMismatch { expected: String, got: String },
    #[error("cluster not found: {0}")]
    UnknownCluster(String),
    #[error(
        "seq {seq} of the {stream} stream is already stored with different audio; nothing was overwritten. Continue after last_seq {last_seq}"
    )]
    SeqConflict {
        stream: Stream,
        seq: u64,
        last_seq: u64,
    },
    #[error(
        "too many live sessions from this address: at most {cap} may be open at once; finish one, or wait a minute after one goes quiet"
    )]
    LiveSessionCap { cap: usize },
    #[error(transparent)]
    EventLogFull(#[from] EventLogFull),
    #[error(transparent)]
    Answer(#[from] AnswerError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A live session: its ingest and speaker state, and the storage it persists to.
pub struct Session<S, O> {
    id: SessionId,
    storage: S,
    objects: O,
    /// Each stream a socket has spoken to.
    streams: BTreeMap<Stream, IngestState>,
    speakers: SpeakerRecord,
    /// Whether `result.json` has been written: every later change rewrites it (see
    /// [`Session::refresh_result`]), so it never lags the session.
    finalized: bool,
}

impl<S: SessionStorage, O: ObjectStorage> Session<S, O> {
    /// Loads the session (an unknown one starts empty and writes nothing yet).
    pub async fn open(id: SessionId, storage: S, objects: O) -> Result<Self, StorageError> {
        let stored = storage.load(&id).await?;
        let id = match stored.session_id {
            // Requests for a colliding id are refused by `check_id`; the session keeps its own.
            Some(existing) if existing != id.as_str() => {
                SessionId::parse(&existing).map_err(|e| StorageError(e.to_string()))?
            }
            _ => id,
        };
        Ok(Session {
            id,
            storage,
            objects,
            streams: stored
                .streams
                .into_iter()
                .map(|(stream, s)| (stream, IngestState::restore(s.record, s.seqs, s.origin)))
                .collect(),
            speakers: stored.speakers,
            finalized: stored.finalized_at.is_some(),
        })
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The storage the session persists to (a host reads its own bookkeeping there).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// When the session started: the earliest start of its streams (`None` before any
    /// stream). It orders the session list, and never changes once a stream exists.
    pub fn started_at(&self) -> Option<EpochMs> {
        self.streams.values().map(|s| s.record().started_at).min()
    }

    /// Refuses a request whose id differs from this session's but shares its storage name
    /// (`a/b` and `a_b`): serving it would mix two sessions' frames.
    pub fn check_id(&self, requested: &SessionId) -> Result<(), SessionError> {
        if requested.as_str() == self.id.as_str() {
            Ok(())
        } else {
            Err(SessionError::IdCollision {
                requested: requested.to_string(),
                existing: self.id.to_string(),
            })
        }
    }

    /// The STATUS object of `stream`; the first call starts (and persists) the stream.
    pub async fn status(
        &mut self,
        stream: Stream,
        now: EpochMs,
    ) -> Result<IngestStatus, SessionError> {
        if !self.streams.contains_key(&stream) {
            let ingest = IngestState::new(now);
            self.storage
                .save_ingest(&self.id, stream, &ingest.record())
                .await?;
            self.streams.insert(stream, ingest);
        }
        Ok(self.streams[&stream].status(&self.id))
    }

    /// The answer to `hello` on a socket of `stream`.
    pub async fn ready(&mut self, stream: Stream, now: EpochMs) -> Result<Ready, SessionError> {
        Ok(Ready {
            session_id: self.id.to_string(),
            target_sample_rate: SAMPLE_RATE,
            target_channels: CHANNELS,
            target_format: FORMAT.to_owned(),
            ingest: self.status(stream, now).await?.into(),
        })
    }

    /// Stores a frame of `stream` (or counts a true duplicate) and returns its ACK once that is
    /// durable. A seq already stored with other bytes is a conflict: nothing is overwritten and
    /// the client keeps its copy. One whose object is missing or short is written again.
    pub async fn chunk(
        &mut self,
        stream: Stream,
        chunk: ValidChunk,
        now: EpochMs,
    ) -> Result<Ack, SessionError> {
        if chunk.meeting_id != self.id.as_str() {
            return Err(SessionError::MeetingMismatch {
                expected: self.id.to_string(),
                got: chunk.meeting_id,
            });
        }
        let ingest = match self.streams.get(&stream) {
            Some(ingest) => ingest.clone(),
            None => IngestState::new(now),
        };
        let seq = chunk.seq;
        let key = self.id.stream_chunk_key(stream, seq);
        if ingest.plan(seq) == ChunkPlan::Duplicate {
            match self.objects.get(&key).await? {
                Some(stored) if stored.len() == chunk.pcm.len() => {
                    if stored != chunk.pcm {
                        return Err(SessionError::SeqConflict {
                            stream,
                            seq,
                            last_seq: ingest.last_seq(),
                        });
                    }
                    let next = ingest.with_duplicate(now);
                    self.storage
                        .save_ingest(&self.id, stream, &next.record())
                        .await?;
                    let ack = next.ack(seq, None);
                    self.streams.insert(stream, next);
                    self.refresh_result().await?;
                    return Ok(ack);
                }
                // Recorded, but its object is gone or cut short: this copy repairs it.
                _ => tracing::warn!(
                    session = %self.id.escaped(), %stream, seq,
                    "rewriting a missing or short frame object"
                ),
            }
        }
        // Object first: a crash between the two writes leaves an unrecorded object that the
        // client's re-send simply overwrites with the same bytes.
        self.objects.put(&key, chunk.pcm).await?;
        let next = ingest.with_stored(seq, chunk.captured_at, now);
        self.storage
            .save_chunk(&self.id, stream, seq, chunk.captured_at, &next.record())
            .await?;
        let ack = next.ack(seq, Some(key));
        self.streams.insert(stream, next);
        // A resend after a failure here finds the frame stored and refreshes again.
        self.refresh_result().await?;
        Ok(ack)
    }

    /// The answer of `GET state`.
    pub fn state(&self) -> StateResponse {
        StateResponse {
            session_id: self.id.to_string(),
            state: self.speakers.state.clone(),
            event_count: self.speakers.event_count,
            updated_at: self.speakers.updated_at.map(rfc3339),
            ingest: self.ingest_status(Stream::Mic).map(Into::into),
            streams: self.stream_statuses(),
        }
    }

    /// The stored answer of an earlier resolve with this idempotency key.
    pub async fn replay(&self, key: &str) -> Result<Option<String>, SessionError> {
        Ok(self.storage.replay(&self.id, key).await?)
    }

    /// The body to POST to the inference service for this request; refused before inference
    /// is asked when the event log is full (its answer could not be kept).
    pub fn inference_body(&self, input: &ResolveInput) -> Result<Value, SessionError> {
        self.speakers.check_event_room()?;
        Ok(self.speakers.inference_body(&self.id, input))
    }

    /// Takes a successful inference answer: new state, one event, and the replay for `idempotency_key`.
    pub async fn apply_answer(
        &mut self,
        input: &ResolveInput,
        answer: &[u8],
        idempotency_key: Option<&str>,
        now: EpochMs,
    ) -> Result<(), SessionError> {
        // Checked again: a binding may have taken the last room while inference answered.
        self.speakers.check_event_room()?;
        let (next, event) = self.speakers.with_answer(input, answer, now)?;
        let replay = idempotency_key.map(|key| (key, std::str::from_utf8(answer).unwrap_or("")));
        self.storage
            .save_speakers(&self.id, &next, Some(&event), replay)
            .await?;
        self.speakers = next;
        self.refresh_result().await?;
        Ok(())
    }

    /// The interviewer names a cluster.
    pub async fn bind(
        &mut self,
        cluster_id: &str,
        name: &str,
        now: EpochMs,
    ) -> Result<StateResponse, SessionError> {
        self.speakers.check_event_room()?;
        let (next, event) = self
            .speakers
            .with_binding(cluster_id, name, now)
            .ok_or_else(|| SessionError::UnknownCluster(cluster_id.to_owned()))?;
        self.storage
            .save_speakers(&self.id, &next, Some(&event), None)
            .await?;
        self.speakers = next;
        self.refresh_result().await?;
        Ok(self.state())
    }

    /// Merges what the built-in engine attributed from stored audio (see
    /// [`SpeakerRecord::with_attribution`]).
    pub async fn apply_attribution(
        &mut self,
        update: &AttributionUpdate,
        now: EpochMs,
    ) -> Result<(), SessionError> {
        let next = self.speakers.with_attribution(update, now);
        self.storage
            .save_speakers(&self.id, &next, None, None)
            .await?;
        self.speakers = next;
        self.refresh_result().await?;
        Ok(())
    }

    /// The speaker record (state, timeline, attribution cursor).
    pub fn speakers(&self) -> &SpeakerRecord {
        &self.speakers
    }

    /// Writes `result.json` with the current snapshot (again, if called again).
    pub async fn finalize(
        &mut self,
        metadata: Map<String, Value>,
        now: EpochMs,
    ) -> Result<FinalizeResponse, SessionError> {
        let result = self.final_result(rfc3339(now), metadata).await?;
        let key = self.id.result_key();
        let bytes = serde_json::to_vec_pretty(&result).expect("a result always serializes");
        self.objects.put(&key, bytes).await?;
        self.storage.save_finalized(&self.id, now).await?;
        self.finalized = true;
        Ok(FinalizeResponse {
            session_id: self.id.to_string(),
            result_key: key,
            event_count: result.events.len() as u64,
            finalized_at: result.finalized_at,
        })
    }

    /// The `result.json` document of the session as it is now.
    async fn final_result(
        &self,
        finalized_at: String,
        metadata: Map<String, Value>,
    ) -> Result<FinalResult, SessionError> {
        Ok(FinalResult {
            session_id: self.id.to_string(),
            finalized_at,
            state: self.speakers.state.clone(),
            events: self.storage.events(&self.id).await?,
            ingest: self.ingest_status(Stream::Mic).map(Into::into),
            streams: self.stream_statuses(),
            metadata,
        })
    }

    /// After finalize, rewrites `result.json` with the session as it is now (a resolve that
    /// finished after finalize, a renamed speaker, more audio), keeping the finalize time and
    /// metadata the client gave.
    async fn refresh_result(&self) -> Result<(), SessionError> {
        if !self.finalized {
            return Ok(());
        }
        let key = self.id.result_key();
        let Some(bytes) = self.objects.get(&key).await? else {
            return Ok(());
        };
        let written: FinalResult = serde_json::from_slice(&bytes).map_err(|e| {
            StorageError(format!("the stored result.json cannot be read back: {e}"))
        })?;
        let result = self
            .final_result(written.finalized_at, written.metadata)
            .await?;
        let bytes = serde_json::to_vec_pretty(&result).expect("a result always serializes");
        Ok(self.objects.put(&key, bytes).await?)
    }

    /// The stored seqs of `stream`, for assembling its audio; `None` if it never received any.
    pub fn stored_seqs(&self, stream: Stream) -> Option<&SeqSet> {
        self.streams
            .get(&stream)
            .map(IngestState::stored)
            .filter(|s| !s.is_empty())
    }

    /// Where `stream` sits on the capture clock (see [`IngestState::origin`]).
    pub fn origin(&self, stream: Stream) -> Option<CaptureOrigin> {
        self.streams.get(&stream).and_then(IngestState::origin)
    }

    fn ingest_status(&self, stream: Stream) -> Option<IngestStatus> {
        self.streams.get(&stream).map(|i| i.status(&self.id))
    }

    /// Every stream's STATUS by name, or none while the mic is the only stream.
    fn stream_statuses(&self) -> BTreeMap<String, StatusMessage> {
        if self.streams.keys().all(|s| *s == Stream::Mic) {
            return BTreeMap::new();
        }
        self.streams
            .iter()
            .map(|(stream, ingest)| (stream.to_string(), ingest.status(&self.id).into()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryObjects, MemoryStorage};
    use crate::speakers::parse_resolve;
    use contract::protocol::{AckStatus, FRAME_BYTES};

    fn frame(id: &str, seq: u64) -> ValidChunk {
        ValidChunk {
            meeting_id: id.into(),
            seq,
            captured_at: 1_700_000_000_000 + seq * 1000,
            pcm: vec![seq as u8; FRAME_BYTES],
        }
    }

    fn id(raw: &str) -> SessionId {
        SessionId::parse(raw).unwrap()
    }

    #[tokio::test]
    async fn a_stored_frame_is_written_recorded_and_acked() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        let ack = session
            .chunk(Stream::Mic, frame("s", 2), 100)
            .await
            .unwrap();
        assert_eq!(ack.status, AckStatus::Stored);
        assert_eq!((ack.last_seq, ack.missing_count), (2, 1));
        assert_eq!(
            objects.objects.borrow()["sessions/s/chunks/00000002.pcm"],
            vec![2u8; FRAME_BYTES]
        );
        let stored = db.sessions.borrow()["s"].clone();
        assert_eq!(stored.streams[&Stream::Mic].seqs, vec![2]);
    }

    /// The session list's order: a session starts with its first stream, and a later stream,
    /// more frames or a reload do not move it.
    #[tokio::test]
    async fn a_session_starts_with_its_first_stream_and_stays_there() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        assert_eq!(session.started_at(), None);
        session.status(Stream::System, 500).await.unwrap();
        session
            .chunk(Stream::Mic, frame("s", 1), 700)
            .await
            .unwrap();
        session
            .chunk(Stream::System, frame("s", 1), 900)
            .await
            .unwrap();
        assert_eq!(session.started_at(), Some(500));
        let reopened = Session::open(id("s"), &db, &objects).await.unwrap();
        assert_eq!(reopened.started_at(), Some(500));
    }

    #[tokio::test]
    async fn a_failed_write_changes_nothing_and_a_retry_succeeds() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        session.chunk(Stream::Mic, frame("s", 1), 1).await.unwrap();

        objects.fail_writes.set(true);
        let err = session
            .chunk(Stream::Mic, frame("s", 2), 2)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "storage error: bucket unreachable");
        objects.fail_writes.set(false);

        db.fail_writes.set(true);
        assert!(session.chunk(Stream::Mic, frame("s", 2), 3).await.is_err());
        assert!(
            session.chunk(Stream::Mic, frame("s", 1), 3).await.is_err(),
            "a duplicate's count is a write too"
        );
        db.fail_writes.set(false);

        let status = session.status(Stream::Mic, 4).await.unwrap();
        assert_eq!(
            (
                status.last_seq,
                status.received_chunks,
                status.duplicate_chunks
            ),
            (1, 1, 0)
        );
        let ack = session.chunk(Stream::Mic, frame("s", 2), 5).await.unwrap();
        assert_eq!((ack.status, ack.last_seq), (AckStatus::Stored, 2));
    }

    #[tokio::test]
    async fn a_reopened_session_knows_its_frames() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        for seq in [1, 2, 4] {
            session
                .chunk(Stream::Mic, frame("s", seq), 1)
                .await
                .unwrap();
        }
        let mut reopened = Session::open(id("s"), &db, &objects).await.unwrap();
        let ack = reopened.chunk(Stream::Mic, frame("s", 2), 2).await.unwrap();
        assert_eq!(ack.status, AckStatus::Duplicate);
        assert_eq!(
            (ack.last_seq, ack.missing_count, ack.duplicate_count),
            (4, 1, 1)
        );
    }

    /// Session `s` with mic frames `seqs` stored.
    async fn with_mic_frames<'a>(
        db: &'a MemoryStorage,
        objects: &'a MemoryObjects,
        seqs: &[u64],
    ) -> Session<&'a MemoryStorage, &'a MemoryObjects> {
        let mut session = Session::open(id("s"), db, objects).await.unwrap();
        for &seq in seqs {
            session
                .chunk(Stream::Mic, frame("s", seq), 1)
                .await
                .unwrap();
        }
        session
    }

    #[tokio::test]
    async fn a_reused_seq_with_other_audio_is_a_conflict_and_overwrites_nothing() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = with_mic_frames(&db, &objects, &[1, 2]).await;
        let mut other = frame("s", 1);
        other.pcm[100] ^= 1;
        let err = session.chunk(Stream::Mic, other, 2).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "seq 1 of the mic stream is already stored with different audio; nothing was overwritten. Continue after last_seq 2"
        );
        assert_eq!(
            objects.objects.borrow()["sessions/s/chunks/00000001.pcm"],
            frame("s", 1).pcm
        );
        let status = session.status(Stream::Mic, 3).await.unwrap();
        assert_eq!((status.received_chunks, status.duplicate_chunks), (2, 0));
        // The same bytes again are a true duplicate.
        let ack = session.chunk(Stream::Mic, frame("s", 1), 4).await.unwrap();
        assert_eq!((ack.status, ack.duplicate_count), (AckStatus::Duplicate, 1));
    }

    #[tokio::test]
    async fn a_recorded_frame_whose_object_is_missing_or_short_is_rewritten_by_a_resend() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = with_mic_frames(&db, &objects, &[1, 2]).await;
        objects
            .objects
            .borrow_mut()
            .remove("sessions/s/chunks/00000001.pcm");
        objects
            .objects
            .borrow_mut()
            .insert("sessions/s/chunks/00000002.pcm".into(), vec![2; 10]);
        for seq in [1, 2] {
            let ack = session
                .chunk(Stream::Mic, frame("s", seq), 2)
                .await
                .unwrap();
            assert_eq!(ack.status, AckStatus::Stored, "seq {seq}");
            assert_eq!(
                objects.objects.borrow()[ack.key.as_deref().unwrap()],
                frame("s", seq).pcm
            );
        }
        let status = session.status(Stream::Mic, 3).await.unwrap();
        assert_eq!((status.received_chunks, status.duplicate_chunks), (2, 0));
    }

    #[tokio::test]
    async fn the_system_stream_has_its_own_seqs_keys_and_counters() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        session.chunk(Stream::Mic, frame("s", 1), 1).await.unwrap();
        assert!(
            session.state().streams.is_empty(),
            "mic only: the seed's state"
        );
        let mut system = frame("s", 1);
        system.pcm = vec![9; FRAME_BYTES];
        let ack = session.chunk(Stream::System, system, 2).await.unwrap();
        assert_eq!(
            ack.status,
            AckStatus::Stored,
            "seq 1 again, on its own stream"
        );
        assert_eq!(
            ack.key.as_deref(),
            Some("sessions/s/streams/system/chunks/00000001.pcm")
        );
        session
            .chunk(Stream::System, frame("s", 3), 3)
            .await
            .unwrap();
        let state = session.state();
        assert_eq!(state.ingest.unwrap().status.last_seq, 1);
        assert_eq!(state.streams["mic"].status.last_seq, 1);
        assert_eq!(state.streams["system"].status.last_seq, 3);
        assert_eq!(state.streams["system"].status.missing_chunks, 1);

        let reopened = Session::open(id("s"), &db, &objects).await.unwrap();
        assert_eq!(reopened.stored_seqs(Stream::System).unwrap().len(), 2);
        assert_eq!(
            reopened.origin(Stream::System).unwrap().start_ms(),
            1_700_000_001_000
        );
    }

    #[tokio::test]
    async fn frames_for_another_meeting_are_refused() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        let err = session
            .chunk(Stream::Mic, frame("t", 1), 1)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "meeting_id mismatch: expected 's', got 't'"
        );
        assert!(objects.objects.borrow().is_empty());
    }

    #[tokio::test]
    async fn ids_sharing_a_safe_name_do_not_share_a_session() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut first = Session::open(id("a/b"), &db, &objects).await.unwrap();
        first.status(Stream::Mic, 1).await.unwrap();
        let second = Session::open(id("a_b"), &db, &objects).await.unwrap();
        assert_eq!(second.id().as_str(), "a/b");
        assert!(matches!(
            second.check_id(&id("a_b")),
            Err(SessionError::IdCollision { .. })
        ));
        assert!(second.check_id(&id("a/b")).is_ok());
    }

    #[tokio::test]
    async fn a_bad_answer_or_failed_write_leaves_speakers_unchanged() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        let input =
            parse_resolve(br#"{"audio":{"content_b64":"AA==","format":"pcm_s16le"}}"#).unwrap();
        let before = session.state();
        assert!(session.apply_answer(&input, b"{}", None, 1).await.is_err());
        let answer = br#"{"session_id":"s","cluster_id":"c","decision":"unknown","evidence":{},
                          "updated_state":{"clusters":[{"cluster_id":"c"}],"bindings":{},"config":{}}}"#;
        db.fail_writes.set(true);
        assert!(
            session
                .apply_answer(&input, answer, Some("k"), 1)
                .await
                .is_err()
        );
        assert_eq!(session.state(), before);
        assert_eq!(session.replay("k").await.unwrap(), None);
        db.fail_writes.set(false);
        session
            .apply_answer(&input, answer, Some("k"), 2)
            .await
            .unwrap();
        assert_eq!(session.state().event_count, 1);
        assert_eq!(
            session.replay("k").await.unwrap().as_deref().map(str::len),
            Some(answer.len())
        );
    }

    #[tokio::test]
    async fn item9_a_session_with_a_full_event_log_refuses_resolves_and_bindings_but_finalizes() {
        use crate::caps::MAX_EVENTS_PER_SESSION;
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        let input =
            parse_resolve(br#"{"audio":{"content_b64":"AA==","format":"pcm_s16le"}}"#).unwrap();
        let answer = br#"{"session_id":"s","cluster_id":"c","decision":"unknown","evidence":{},
                          "updated_state":{"clusters":[{"cluster_id":"c"}],"bindings":{},"config":{}}}"#;
        session.apply_answer(&input, answer, None, 1).await.unwrap();
        db.sessions
            .borrow_mut()
            .get_mut("s")
            .unwrap()
            .speakers
            .event_count = MAX_EVENTS_PER_SESSION;
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        let before = session.state();
        let full = |e: SessionError| matches!(e, SessionError::EventLogFull(_));
        assert!(
            full(session.inference_body(&input).unwrap_err()),
            "inference is not asked"
        );
        assert!(full(
            session
                .apply_answer(&input, answer, Some("k"), 2)
                .await
                .unwrap_err()
        ));
        assert!(full(session.bind("c", "Ada", 2).await.unwrap_err()));
        assert_eq!(session.state(), before);
        assert_eq!(session.replay("k").await.unwrap(), None);
        let done = session.finalize(Map::new(), 3).await.unwrap();
        assert_eq!(done.event_count, 1, "the stored events");
    }

    /// Issue 9, item 6: a change after finalize rewrites `result.json`, keeping the finalize
    /// time and metadata.
    #[tokio::test]
    async fn item6_a_resolve_a_binding_or_a_frame_after_finalize_rewrites_the_result() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        session.chunk(Stream::Mic, frame("s", 1), 1).await.unwrap();
        let mut metadata = Map::new();
        metadata.insert("title".into(), Value::from("Panel"));
        session.finalize(metadata, 1_000).await.unwrap();
        let result = |objects: &MemoryObjects| -> FinalResult {
            serde_json::from_slice(&objects.objects.borrow()["sessions/s/result.json"]).unwrap()
        };
        assert!(result(&objects).state.clusters.is_empty());

        let input =
            parse_resolve(br#"{"audio":{"content_b64":"AA==","format":"pcm_s16le"}}"#).unwrap();
        let answer = br#"{"session_id":"s","cluster_id":"c","decision":"unknown","evidence":{},
                          "updated_state":{"clusters":[{"cluster_id":"c"}],"bindings":{},"config":{}}}"#;
        session
            .apply_answer(&input, answer, None, 2_000)
            .await
            .unwrap();
        let after_resolve = result(&objects);
        assert_eq!(after_resolve.state.clusters.len(), 1);
        assert_eq!(after_resolve.events.len(), 1);
        assert_eq!(after_resolve.finalized_at, "1970-01-01T00:00:01.000Z");
        assert_eq!(after_resolve.metadata["title"], "Panel");

        session.bind("c", "Ada", 3_000).await.unwrap();
        assert_eq!(result(&objects).state.bindings["c"], "Ada");
        // Reopened (a restart): still finalized, so a new frame refreshes the counts.
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        session
            .chunk(Stream::Mic, frame("s", 2), 4_000)
            .await
            .unwrap();
        let counts = result(&objects).ingest.unwrap().status;
        assert_eq!((counts.received_chunks, counts.last_seq), (2, 2));
    }

    #[tokio::test]
    async fn finalize_writes_the_snapshot_with_its_events() {
        let (db, objects) = (MemoryStorage::default(), MemoryObjects::default());
        let mut session = Session::open(id("s"), &db, &objects).await.unwrap();
        session.chunk(Stream::Mic, frame("s", 1), 1).await.unwrap();
        let done = session.finalize(Map::new(), 1_000).await.unwrap();
        assert_eq!(done.result_key, "sessions/s/result.json");
        let result: FinalResult =
            serde_json::from_slice(&objects.objects.borrow()["sessions/s/result.json"]).unwrap();
        assert_eq!(result.ingest.unwrap().status.received_chunks, 1);
        assert_eq!(result.finalized_at, "1970-01-01T00:00:01.000Z");
        assert_eq!(db.sessions.borrow()["s"].finalized_at, Some(1_000));
    }
}
