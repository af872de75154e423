//! How far a session's streams already go on the gateway, asked before a recording starts.
//!
//! A spool numbers its frames from its own `next_seq`. A session id that the gateway already
//! holds frames for — the same interview recorded on a second laptop, after a reinstall, or an
//! existing id typed in — would otherwise reuse seqs 1, 2, … for new audio: the gateway refuses
//! those as conflicts and the new recording never lands. Asking first lets the recording
//! continue after the gateway's `last_seq` of each stream.

use std::time::Duration;

use contract::protocol::StateResponse;

use crate::endpoint::{CallError, GatewayEndpoint};
use crate::stream::Stream;

/// How long the question may take before the recording starts without the answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// The gateway's `last_seq` of each stream of a session (0: nothing stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredSeqs {
    pub mic: u64,
    pub system: u64,
}

impl StoredSeqs {
    pub fn of(&self, stream: Stream) -> u64 {
        match stream {
            Stream::Mic => self.mic,
            Stream::System => self.system,
        }
    }
}

/// Asks `GET /v1/sessions/{id}/state`; a session the gateway does not know (404) has nothing
/// stored.
pub async fn stored_seqs(
    endpoint: &GatewayEndpoint,
    session_id: &str,
) -> Result<StoredSeqs, CallError> {
    let body = match endpoint.get_session(session_id, "state", ASK_TIMEOUT).await {
        Ok(body) => body,
        Err(CallError::Refused { status: 404, .. }) => return Ok(StoredSeqs::default()),
        Err(e) => return Err(e),
    };
    let state: StateResponse = serde_json::from_slice(&body).map_err(|e| CallError::Refused {
        status: 200,
        detail: format!("the gateway's state is not the contract's shape: {e}"),
    })?;
    let last = |name: &str| state.streams.get(name).map_or(0, |s| s.status.last_seq);
    Ok(StoredSeqs {
        mic: state.ingest.as_ref().map_or(0, |s| s.status.last_seq),
        system: last("system"),
    })
}
