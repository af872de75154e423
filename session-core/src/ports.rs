//! The two small storage interfaces the session core is driven through.
//!
//! A host supplies both: the headless server backs them with SQLite and `object_store`; a
//! Cloudflare host would back them with Durable Object storage and R2. The methods are plain
//! `async fn`s without a `Send` bound so that single-threaded hosts (WebAssembly) fit too; a
//! multi-threaded host still gets `Send` futures from its concrete types.
#![allow(async_fn_in_trait)]

use std::collections::BTreeMap;

use crate::clock::EpochMs;
use crate::ingest::{CaptureOrigin, IngestRecord};
use crate::session_id::SessionId;
use crate::speakers::SpeakerRecord;
use crate::stream::Stream;
use contract::protocol::SpeakerEvent;

/// A storage failure, in words safe to show a client (no paths, no credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StorageError(pub String);

/// Everything stored about one session, as loaded when its actor starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredSession {
    /// The client's id that created the session (its safe name is the storage key).
    pub session_id: Option<String>,
    /// Each stream a socket ever opened.
    pub streams: BTreeMap<Stream, StoredStream>,
    pub speakers: SpeakerRecord,
    pub finalized_at: Option<EpochMs>,
}

/// What is stored about one stream of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStream {
    pub record: IngestRecord,
    /// Stored seqs, ascending.
    pub seqs: Vec<u64>,
    /// The lowest stored seq that has a capture time, with it.
    pub origin: Option<CaptureOrigin>,
}

/// Durable per-session state. Every method commits before it returns: an answer built after
/// it may promise durability.
pub trait SessionStorage {
    async fn load(&self, id: &SessionId) -> Result<StoredSession, StorageError>;
    /// Saves a stream's ingest counters (a new stream, or a duplicate counted).
    async fn save_ingest(
        &self,
        id: &SessionId,
        stream: Stream,
        ingest: &IngestRecord,
    ) -> Result<(), StorageError>;
    /// Records frame `seq` of `stream` as stored (captured at `captured_at`) together with the
    /// stream's new counters, atomically.
    async fn save_chunk(
        &self,
        id: &SessionId,
        stream: Stream,
        seq: u64,
        captured_at: EpochMs,
        ingest: &IngestRecord,
    ) -> Result<(), StorageError>;
    /// Saves the speaker state with its new event (none for an attribution of stored audio)
    /// and, for an idempotent resolve, the answer to replay (key, JSON text), atomically. A
    /// host keeps at most [`MAX_REPLAYS_PER_SESSION`](crate::caps::MAX_REPLAYS_PER_SESSION)
    /// replays a session, dropping the oldest.
    async fn save_speakers(
        &self,
        id: &SessionId,
        speakers: &SpeakerRecord,
        event: Option<&SpeakerEvent>,
        replay: Option<(&str, &str)>,
    ) -> Result<(), StorageError>;
    /// The answer stored for an idempotency key, if any.
    async fn replay(&self, id: &SessionId, key: &str) -> Result<Option<String>, StorageError>;
    /// The event log, oldest first.
    async fn events(&self, id: &SessionId) -> Result<Vec<SpeakerEvent>, StorageError>;
    async fn save_finalized(&self, id: &SessionId, at: EpochMs) -> Result<(), StorageError>;
}

/// Where frames and results are written (a directory, S3, R2).
pub trait ObjectStorage {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError>;
    /// The object's bytes, or `None` if there is no such object.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
}
