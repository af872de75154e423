//! What the gateway does for a session, in one place for both the socket and the HTTP routes:
//! each operation finds the session's actor and runs the core's rule inside it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::actor::{Registry, ServerSession, SessionHandle};
use crate::attribution::{AttributionQueue, IngestRate, Stretch, next_stretch};
use crate::core::clock::EpochMs;
use crate::core::ingest::CaptureOrigin;
use crate::core::message::ValidChunk;
use crate::core::seq_set::SeqSet;
use crate::core::session::SessionError;
use crate::core::session_id::SessionId;
use crate::core::speakers::{AttributionUpdate, ClusterSplit, ResolveInput};
use crate::core::stream::Stream;
use crate::inference::{Inference, InferenceError};
use crate::protocol::{
    Ack, AckStatus, FRAME_BYTES, FinalizeResponse, IngestStatus, Ready, SAMPLE_RATE, SessionState,
    StateResponse, TimelineTurn,
};
use crate::storage::{Database, Objects};

pub mod history;

/// Current wall-clock time for the core.
pub fn now_ms() -> EpochMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as EpochMs)
}

/// The outcome of a resolve request.
pub enum Resolved {
    /// A fresh inference answer, exactly as the service sent it.
    Fresh(Bytes),
    /// The stored answer of an earlier request with the same idempotency key.
    Replay(String),
}

/// Why a resolve failed: the session refused, or inference did.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

/// All sessions of this gateway.
#[derive(Clone)]
pub struct Sessions {
    registry: Arc<Registry>,
    /// For what spans sessions (the list, retention) and a delete's rows; a session's own
    /// writes go through its actor.
    database: Database,
    objects: Objects,
    inference: Inference,
    /// Sessions with audio not yet attributed (built-in engine only).
    attribution: Option<AttributionQueue>,
}

impl Sessions {
    /// The sessions of a gateway; with the built-in engine, also starts the task that
    /// attributes their stored audio (see [`crate::attribution`]).
    pub fn new(
        database: Database,
        objects: Objects,
        inference: Inference,
        idle_after: Duration,
        max_sessions_per_client: usize,
    ) -> Sessions {
        let queue = inference.builtin().map(|_| AttributionQueue::new());
        let sessions = Sessions {
            registry: Registry::new(
                database.clone(),
                objects.clone(),
                idle_after,
                max_sessions_per_client,
            ),
            database,
            objects,
            inference,
            attribution: queue.as_ref().map(|(queue, _)| queue.clone()),
        };
        if let Some((_, woken)) = queue {
            tokio::spawn(sessions.clone().attribute_queued(woken));
        }
        sessions
    }

    pub fn inference(&self) -> &Inference {
        &self.inference
    }

    /// The handle a socket holds for its life; while it lives the session counts as having
    /// an open socket (a delete is refused, see [`Sessions::delete`]).
    pub fn handle(
        &self,
        id: &SessionId,
        client: Option<IpAddr>,
    ) -> Result<SessionHandle, SessionError> {
        self.registry.socket_session(id, client)
    }

    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    pub fn inference_configured(&self) -> bool {
        self.inference.is_configured()
    }

    /// Lets every session actor stop once its work is done (see [`Registry::close`]).
    pub fn close(&self) {
        if let Some(queue) = &self.attribution {
            queue.close();
        }
        self.registry.close();
    }

    pub fn live_sessions(&self) -> usize {
        self.registry.live_sessions()
    }

    pub async fn ready(
        &self,
        handle: &SessionHandle,
        stream: Stream,
    ) -> Result<Ready, SessionError> {
        handle
            .run(move |s| Box::pin(async move { s.ready(stream, now_ms()).await }))
            .await
    }

    pub async fn status(
        &self,
        handle: &SessionHandle,
        stream: Stream,
    ) -> Result<IngestStatus, SessionError> {
        handle
            .run(move |s| Box::pin(async move { s.status(stream, now_ms()).await }))
            .await
    }

    pub async fn chunk(
        &self,
        handle: &SessionHandle,
        stream: Stream,
        chunk: ValidChunk,
    ) -> Result<Ack, SessionError> {
        let ack = handle
            .run(move |s| Box::pin(async move { s.chunk(stream, chunk, now_ms()).await }))
            .await?;
        if let (Some(queue), AckStatus::Stored) = (&self.attribution, ack.status) {
            queue.stored(handle.id());
        }
        Ok(ack)
    }

    /// Reads start no actor (see [`Registry::read`]): an unknown id answers the empty state.
    pub async fn state(&self, id: &SessionId) -> Result<StateResponse, SessionError> {
        self.registry
            .read(id, |s| Box::pin(async move { Ok(s.state()) }))
            .await
    }

    /// Resolve: replay if this idempotency key was answered, else ask inference with the
    /// session's state and keep its answer. Resolves of one session run one at a time, so each
    /// starts from the state the previous one left; frames keep flowing meanwhile.
    pub async fn resolve(
        &self,
        id: &SessionId,
        input: ResolveInput,
        idempotency_key: Option<String>,
        client: Option<IpAddr>,
    ) -> Result<Resolved, ResolveError> {
        let handle = self.registry.session(id, client)?;
        let _one_at_a_time = handle.resolve_lock.lock().await;
        if let Some(key) = idempotency_key.clone() {
            let stored = handle
                .run(move |s| Box::pin(async move { s.replay(&key).await }))
                .await?;
            if let Some(answer) = stored {
                return Ok(Resolved::Replay(answer));
            }
        }
        let input = Arc::new(input);
        let for_body = Arc::clone(&input);
        let body = handle
            .run(move |s| Box::pin(async move { s.inference_body(&for_body) }))
            .await?;
        let answer = self.inference.resolve(&body).await?;
        let stored = answer.clone();
        handle
            .run(move |s| {
                Box::pin(async move {
                    s.apply_answer(&input, &stored, idempotency_key.as_deref(), now_ms())
                        .await
                })
            })
            .await?;
        Ok(Resolved::Fresh(answer))
    }

    pub async fn bind(
        &self,
        id: &SessionId,
        cluster_id: String,
        name: String,
        client: Option<IpAddr>,
    ) -> Result<StateResponse, SessionError> {
        self.registry
            .session(id, client)?
            .run(move |s| Box::pin(async move { s.bind(&cluster_id, &name, now_ms()).await }))
            .await
    }

    pub async fn finalize(
        &self,
        id: &SessionId,
        metadata: Map<String, Value>,
        client: Option<IpAddr>,
    ) -> Result<FinalizeResponse, SessionError> {
        // The result covers every stored second: attribute what is left first. A failure here
        // is logged, not fatal: the audio is safe and the timeline can catch up later.
        loop {
            match self.attribute(id, true).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(err) => {
                    tracing::warn!(session = %id.escaped(), error = %err, "attribution before finalize failed");
                    break;
                }
            }
        }
        self.registry
            .session(id, client)?
            .run(move |s| Box::pin(async move { s.finalize(metadata, now_ms()).await }))
            .await
    }

    /// The stored seqs of a stream that has audio, and where it sits on the capture clock.
    pub async fn stored_audio(
        &self,
        id: &SessionId,
        stream: Stream,
    ) -> Result<Option<(SeqSet, Option<CaptureOrigin>)>, SessionError> {
        self.registry
            .read(id, move |s| {
                Box::pin(async move {
                    Ok(s.stored_seqs(stream)
                        .cloned()
                        .map(|seqs| (seqs, s.origin(stream))))
                })
            })
            .await
    }
}

/// Continuous attribution (built-in engine): see [`crate::attribution`].
impl Sessions {
    async fn attribute_queued(
        self,
        mut woken: tokio::sync::mpsc::UnboundedReceiver<Option<SessionId>>,
    ) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut rate = self
            .attribution
            .as_ref()
            .map(|queue| IngestRate::new(queue, cores));
        while let Some(Some(id)) = woken.recv().await {
            // Ingest first: while frames arrive faster than the machine comfortably stores
            // them, attribution waits (see `IngestRate`).
            if let Some(rate) = &mut rate {
                rate.wait_until_unsaturated().await;
            }
            if let Some(queue) = &self.attribution {
                queue.taken(&id);
            }
            match self.attribute(&id, false).await {
                // The rest of a backlog waits behind the other sessions' turns.
                Ok(true) => self.attribution.iter().for_each(|q| q.notify(&id)),
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(session = %id.escaped(), error = %err, "attribution failed")
                }
            }
        }
    }

    /// Attributes one stretch of each stream's stored audio after its cursor (all of it when
    /// `finished`, else whole blocks); answers whether more is waiting. Each stream is diarized
    /// on its own, against its own voices. Does nothing without the built-in engine.
    pub async fn attribute(&self, id: &SessionId, finished: bool) -> Result<bool, ResolveError> {
        let mut more = false;
        for stream in Stream::ALL {
            more |= self.attribute_stream(id, stream, finished).await?;
        }
        Ok(more)
    }

    async fn attribute_stream(
        &self,
        id: &SessionId,
        stream: Stream,
        finished: bool,
    ) -> Result<bool, ResolveError> {
        let Some(engine) = self.inference.builtin().cloned() else {
            return Ok(false);
        };
        // The gateway's own work: never refused by a client's cap.
        let handle = self.registry.session(id, None)?;
        let _one_at_a_time = handle.resolve_lock.lock().await;
        let snapshot = handle
            .run(move |s| Box::pin(async move { Ok(StreamSnapshot::of(s, stream)) }))
            .await?;
        let StreamSnapshot {
            through_ms,
            stored,
            state,
            shift_ms,
            far,
        } = snapshot;
        let Some(stretch) = stored.and_then(|seqs| next_stretch(through_ms, &seqs, finished))
        else {
            return Ok(false);
        };
        let start_ms = (stretch.first_seq as i64 - 1) * 1000 + stretch.skip_ms as i64;
        let end_ms = stretch.last_seq as i64 * 1000;
        // The mic waits for the meeting audio of the same moments: its echo is removed first.
        if let Some(far) = &far {
            if !finished && far.end_ms() < end_ms {
                return Ok(false);
            }
        }
        // A region crossing the end of a cut stretch is kept for the next pass.
        let finished = finished && !stretch.more;
        let mut samples = self.read_stretch(id, stream, stretch).await?;
        if let Some(far) = far {
            let far_samples = self
                .read_span(
                    id,
                    Stream::System,
                    &far.seqs,
                    start_ms - far.shift_ms,
                    samples.len(),
                )
                .await?;
            let report = speakers::echo::EchoGate::new().apply(&mut samples, &far_samples);
            if report.gated + report.cancelled > 0 {
                tracing::debug!(session = %id.escaped(), ?report, "meeting audio removed from the mic");
            }
        }
        let offset_ms = through_ms;
        let (clusters, attribution) = engine
            .compute(move |engine| {
                let mut clusters = crate::inference::engine_clusters(&state, stream);
                let attribution = engine.attribute(&samples, offset_ms, &mut clusters, finished);
                (clusters, attribution)
            })
            .await?;
        let attribution = attribution
            .map_err(|e| ResolveError::Inference(InferenceError::Unavailable(e.to_string())))?;
        let on_timeline = |ms: u64| (ms as i64 + shift_ms).max(0) as u64;
        let update = AttributionUpdate {
            stream,
            clusters: crate::inference::engine_cluster_entries(&clusters),
            split: attribution
                .split
                .into_iter()
                .map(|split| ClusterSplit {
                    kept: split.kept,
                    new: split.new,
                    moved: (split.moved.iter())
                        .map(|&(start, end)| (on_timeline(start), on_timeline(end)))
                        .collect(),
                })
                .collect(),
            merged: attribution.merged,
            turns: attribution
                .turns
                .into_iter()
                .map(|t| TimelineTurn {
                    start_ms: on_timeline(t.start_ms),
                    end_ms: on_timeline(t.end_ms),
                    cluster_id: t.cluster,
                    stream: stream.to_string(),
                })
                .collect(),
            through_ms: offset_ms + speakers::samples_to_ms(attribution.consumed),
        };
        handle
            .run(move |s| Box::pin(async move { s.apply_attribution(&update, now_ms()).await }))
            .await?;
        Ok(stretch.more)
    }

    /// `len` samples of `stream` from its sample `from` (which may be before its start); what
    /// was never stored or cannot be read is silence.
    async fn read_span(
        &self,
        id: &SessionId,
        stream: Stream,
        seqs: &SeqSet,
        from_ms: i64,
        len: usize,
    ) -> Result<Vec<f32>, SessionError> {
        const PER_MS: i64 = SAMPLE_RATE as i64 / 1000;
        const PER_FRAME: i64 = FRAME_BYTES as i64 / 2;
        let mut out = vec![0f32; len];
        let from = from_ms * PER_MS;
        let end = from + len as i64;
        if end <= 0 {
            return Ok(out);
        }
        for index in from.max(0) / PER_FRAME..=(end - 1) / PER_FRAME {
            let seq = index as u64 + 1;
            if !seqs.contains(seq) {
                continue;
            }
            let Some(bytes) = self.objects.get(&id.stream_chunk_key(stream, seq)).await? else {
                continue;
            };
            if bytes.len() != FRAME_BYTES {
                continue;
            }
            let frame = speakers::pcm_s16le_to_f32(&bytes);
            let frame_start = index * PER_FRAME;
            for (i, sample) in frame.iter().enumerate() {
                let at = frame_start + i as i64 - from;
                if (0..len as i64).contains(&at) {
                    out[at as usize] = *sample;
                }
            }
        }
        Ok(out)
    }

    /// The samples of a stretch of `stream`; a frame that cannot be read counts as silence.
    async fn read_stretch(
        &self,
        id: &SessionId,
        stream: Stream,
        stretch: Stretch,
    ) -> Result<Vec<f32>, SessionError> {
        let mut pcm =
            Vec::with_capacity((stretch.last_seq - stretch.first_seq + 1) as usize * FRAME_BYTES);
        for seq in stretch.first_seq..=stretch.last_seq {
            match self.objects.get(&id.stream_chunk_key(stream, seq)).await? {
                Some(bytes) if bytes.len() == FRAME_BYTES => pcm.extend_from_slice(&bytes),
                _ => pcm.resize(pcm.len() + FRAME_BYTES, 0),
            }
        }
        let skip = (stretch.skip_ms as usize * FRAME_BYTES / 1000).min(pcm.len()) & !1;
        Ok(speakers::pcm_s16le_to_f32(&pcm[skip..]))
    }
}

/// What attributing one stream needs from its session, taken in one actor call.
struct StreamSnapshot {
    /// The stream's attribution cursor (ms from its start).
    through_ms: u64,
    stored: Option<SeqSet>,
    state: SessionState,
    /// Where the stream's start sits on the mic's clock (ms; 0 for the mic itself).
    shift_ms: i64,
    /// For the mic, the meeting audio that may echo into it.
    far: Option<FarEnd>,
}

/// The meeting audio, as the mic's echo gate reads it.
struct FarEnd {
    seqs: SeqSet,
    /// Its start on the mic's clock (ms).
    shift_ms: i64,
}

impl FarEnd {
    /// Where its stored audio ends, on the mic's clock (ms).
    fn end_ms(&self) -> i64 {
        self.shift_ms + self.seqs.max() as i64 * 1000
    }
}

impl StreamSnapshot {
    fn of(session: &ServerSession, stream: Stream) -> StreamSnapshot {
        // The timeline runs on the mic's clock: another stream's turns move by the difference
        // of the two streams' capture starts (0 when either is unknown).
        let shift = |other: Stream| match (session.origin(other), session.origin(Stream::Mic)) {
            (Some(own), Some(mic)) => own.start_ms() - mic.start_ms(),
            _ => 0,
        };
        let far = match stream {
            Stream::Mic => session.stored_seqs(Stream::System).map(|seqs| FarEnd {
                seqs: seqs.clone(),
                shift_ms: shift(Stream::System),
            }),
            Stream::System => None,
        };
        let speakers = session.speakers();
        StreamSnapshot {
            through_ms: speakers.attributed_through_ms(stream),
            stored: session.stored_seqs(stream).cloned(),
            state: speakers.state.clone(),
            shift_ms: if stream == Stream::Mic {
                0
            } else {
                shift(stream)
            },
            far,
        }
    }
}
