//! What the gateway does for a session, in one place for both the socket and the HTTP routes:
//! each operation finds the session's actor and runs the core's rule inside it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::actor::{Registry, SessionHandle};
use crate::core::clock::EpochMs;
use crate::core::message::ValidChunk;
use crate::core::seq_set::SeqSet;
use crate::core::session::SessionError;
use crate::core::session_id::SessionId;
use crate::core::speakers::ResolveInput;
use crate::inference::{Inference, InferenceError};
use crate::protocol::{Ack, FinalizeResponse, IngestStatus, Ready, StateResponse};
use crate::storage::{Database, Objects};

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
    objects: Objects,
    inference: Inference,
}

impl Sessions {
    pub fn new(
        database: Database,
        objects: Objects,
        inference: Inference,
        idle_after: Duration,
    ) -> Sessions {
        Sessions {
            registry: Registry::new(database, objects.clone(), idle_after),
            objects,
            inference,
        }
    }

    pub fn handle(&self, id: &SessionId) -> SessionHandle {
        self.registry.session(id)
    }

    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    pub fn inference_configured(&self) -> bool {
        self.inference.is_configured()
    }

    /// Lets every session actor stop once its work is done (see [`Registry::close`]).
    pub fn close(&self) {
        self.registry.close();
    }

    pub fn live_sessions(&self) -> usize {
        self.registry.live_sessions()
    }

    pub async fn ready(&self, handle: &SessionHandle) -> Result<Ready, SessionError> {
        handle
            .run(|s| Box::pin(async move { s.ready(now_ms()).await }))
            .await
    }

    pub async fn status(&self, handle: &SessionHandle) -> Result<IngestStatus, SessionError> {
        handle
            .run(|s| Box::pin(async move { s.status(now_ms()).await }))
            .await
    }

    pub async fn chunk(
        &self,
        handle: &SessionHandle,
        chunk: ValidChunk,
    ) -> Result<Ack, SessionError> {
        handle
            .run(|s| Box::pin(async move { s.chunk(chunk, now_ms()).await }))
            .await
    }

    pub async fn state(&self, id: &SessionId) -> Result<StateResponse, SessionError> {
        self.handle(id)
            .run(|s| Box::pin(async move { Ok(s.state()) }))
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
    ) -> Result<Resolved, ResolveError> {
        let handle = self.handle(id);
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
            .run(move |s| Box::pin(async move { Ok(s.inference_body(&for_body)) }))
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
    ) -> Result<StateResponse, SessionError> {
        self.handle(id)
            .run(move |s| Box::pin(async move { s.bind(&cluster_id, &name, now_ms()).await }))
            .await
    }

    pub async fn finalize(
        &self,
        id: &SessionId,
        metadata: Map<String, Value>,
    ) -> Result<FinalizeResponse, SessionError> {
        self.handle(id)
            .run(move |s| Box::pin(async move { s.finalize(metadata, now_ms()).await }))
            .await
    }

    /// The stored seqs of a session that has audio.
    pub async fn stored_seqs(&self, id: &SessionId) -> Result<Option<SeqSet>, SessionError> {
        self.handle(id)
            .run(|s| Box::pin(async move { Ok(s.stored_seqs().cloned()) }))
            .await
    }
}
