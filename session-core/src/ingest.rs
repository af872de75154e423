//! Ingest bookkeeping: which frames a session holds and the counters the contract reports.
//!
//! Counters are derived from the set of stored seqs, so they cannot drift apart:
//! `last_seq` is the highest stored seq, `received_chunks` the number stored, and
//! `missing_chunks = last_seq - received_chunks` (every stored seq is ≤ `last_seq`). A late frame
//! that fills a hole therefore lowers `missing_chunks`; the seed would have dropped it as a
//! duplicate.

use crate::clock::{EpochMs, rfc3339};
use crate::seq_set::SeqSet;
use crate::session_id::SessionId;
use contract::protocol::{Ack, AckStatus, FRAME_BYTES, IngestStatus};

/// What is persisted about a session's ingest besides its stored seqs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestRecord {
    pub duplicate_chunks: u64,
    pub started_at: EpochMs,
    pub updated_at: EpochMs,
}

/// One stream's ingest: the stored frames and the duplicate count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestState {
    stored: SeqSet,
    record: IngestRecord,
    /// The lowest stored seq and its capture time: where the stream sits on the clock that
    /// aligns a session's streams. `None` before any frame (and for frames stored before
    /// capture times were kept).
    origin: Option<CaptureOrigin>,
}

/// A frame's seq and the capture time of its first sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureOrigin {
    pub seq: u64,
    pub captured_at: EpochMs,
}

impl CaptureOrigin {
    /// When the stream's seq 1 began (frames are one second apart), in epoch ms.
    pub fn start_ms(&self) -> i64 {
        self.captured_at as i64 - (self.seq as i64 - 1) * 1000
    }
}

/// What to do with a valid chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkPlan {
    /// Not stored yet: write its object, then record it.
    Store,
    /// That seq is already stored: acknowledge without writing.
    Duplicate,
}

impl IngestState {
    pub fn new(now: EpochMs) -> IngestState {
        IngestState {
            stored: SeqSet::new(),
            record: IngestRecord {
                duplicate_chunks: 0,
                started_at: now,
                updated_at: now,
            },
            origin: None,
        }
    }

    /// Rebuilds the state from storage.
    pub fn restore(
        record: IngestRecord,
        stored: impl IntoIterator<Item = u64>,
        origin: Option<CaptureOrigin>,
    ) -> IngestState {
        IngestState {
            stored: stored.into_iter().collect(),
            record,
            origin,
        }
    }

    pub fn plan(&self, seq: u64) -> ChunkPlan {
        if self.stored.contains(seq) {
            ChunkPlan::Duplicate
        } else {
            ChunkPlan::Store
        }
    }

    /// The state after storing `seq` captured at `captured_at`, to be persisted before it
    /// replaces this one.
    pub fn with_stored(&self, seq: u64, captured_at: EpochMs, now: EpochMs) -> IngestState {
        let mut next = self.clone();
        next.stored.insert(seq);
        next.record.updated_at = now;
        if next.origin.is_none_or(|origin| seq < origin.seq) {
            next.origin = Some(CaptureOrigin { seq, captured_at });
        }
        next
    }

    pub fn origin(&self) -> Option<CaptureOrigin> {
        self.origin
    }

    /// The state after a duplicate, to be persisted before it replaces this one.
    pub fn with_duplicate(&self, now: EpochMs) -> IngestState {
        let mut next = self.clone();
        next.record.duplicate_chunks += 1;
        next.record.updated_at = now;
        next
    }

    pub fn record(&self) -> IngestRecord {
        self.record
    }

    pub fn stored(&self) -> &SeqSet {
        &self.stored
    }

    pub fn last_seq(&self) -> u64 {
        self.stored.max()
    }

    pub fn received_chunks(&self) -> u64 {
        self.stored.len()
    }

    pub fn missing_chunks(&self) -> u64 {
        self.last_seq() - self.received_chunks()
    }

    /// The STATUS object. A session's `meeting_id` is its id.
    pub fn status(&self, id: &SessionId) -> IngestStatus {
        IngestStatus {
            session_id: id.to_string(),
            meeting_id: id.to_string(),
            last_seq: self.last_seq(),
            received_chunks: self.received_chunks(),
            duplicate_chunks: self.record.duplicate_chunks,
            missing_chunks: self.missing_chunks(),
            bytes_stored: self.received_chunks() * FRAME_BYTES as u64,
            started_at: rfc3339(self.record.started_at),
            updated_at: rfc3339(self.record.updated_at),
        }
    }

    /// The ACK for `seq` as this state stands; `key` is the object key for a stored frame.
    pub fn ack(&self, seq: u64, key: Option<String>) -> Ack {
        Ack {
            seq,
            status: if key.is_some() {
                AckStatus::Stored
            } else {
                AckStatus::Duplicate
            },
            key,
            last_seq: self.last_seq(),
            missing_count: self.missing_chunks(),
            duplicate_count: self.record.duplicate_chunks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(state: IngestState, seq: u64) -> IngestState {
        assert_eq!(state.plan(seq), ChunkPlan::Store, "seq {seq}");
        state.with_stored(seq, 1_000 * seq, 10)
    }

    #[test]
    fn a_jump_adds_the_gap_to_missing() {
        let state = [1, 2, 5].into_iter().fold(IngestState::new(1), store);
        assert_eq!(state.last_seq(), 5);
        assert_eq!(state.received_chunks(), 3);
        assert_eq!(state.missing_chunks(), 2);
    }

    #[test]
    fn a_late_gap_filler_is_stored_and_lowers_missing() {
        let state = [1, 4, 3].into_iter().fold(IngestState::new(1), store);
        assert_eq!(state.missing_chunks(), 1);
        assert_eq!(state.last_seq(), 4);
        let state = store(state, 2);
        assert_eq!(state.missing_chunks(), 0);
        assert_eq!(
            state.status(&SessionId::parse("s").unwrap()).bytes_stored,
            128_000
        );
    }

    #[test]
    fn only_a_really_stored_seq_is_a_duplicate() {
        let state = [1, 3].into_iter().fold(IngestState::new(1), store);
        assert_eq!(state.plan(3), ChunkPlan::Duplicate);
        assert_eq!(state.plan(2), ChunkPlan::Store);
        let state = state.with_duplicate(20);
        let ack = state.ack(3, None);
        assert_eq!(ack.status, AckStatus::Duplicate);
        assert_eq!(ack.duplicate_count, 1);
        assert_eq!(ack.missing_count, 1);
        assert_eq!(state.record().updated_at, 20);
    }

    #[test]
    fn the_lowest_stored_frame_places_the_stream_on_the_clock() {
        let state = IngestState::new(1).with_stored(3, 10_500, 1);
        assert_eq!(state.origin().unwrap().start_ms(), 8_500);
        let state = state.with_stored(5, 99_999, 2).with_stored(2, 9_400, 3);
        assert_eq!(
            state.origin(),
            Some(CaptureOrigin {
                seq: 2,
                captured_at: 9_400
            })
        );
        assert_eq!(state.origin().unwrap().start_ms(), 8_400);
    }

    #[test]
    fn first_frame_past_one_counts_the_frames_before_it_as_missing() {
        let state = store(IngestState::new(1), 4);
        assert_eq!(state.missing_chunks(), 3);
    }
}
