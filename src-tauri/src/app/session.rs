//! What the window knows about the session in Setup before it records into it: how much is
//! recorded (the clock starts there, and Start reads as Resume), whether it is finalized
//! (recording into it asks first), its speakers as the gateway has them, and what is still
//! held on this computer.
//!
//! The gateway is asked (`GET …/state` and `GET …/result`, a few seconds at most); what it
//! cannot answer comes from this computer: the spools and this run's finalizes.

use std::path::Path;
use std::time::Duration;

use contract::protocol::StateResponse;
use recorder::endpoint::{CallError, GatewayEndpoint};
use recorder::engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ui_events::slim_state;

/// How long each question to the gateway may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub session_id: String,
    /// Seconds recorded so far (the mic's frames), on the gateway or held here.
    pub recorded: u64,
    /// When the session was finalized, if it was.
    pub finalized_at: Option<String>,
    /// Seconds (of every stream) held on this computer, not yet on the gateway.
    pub held: u64,
    /// The gateway's speakers state (clusters, bindings, timeline; no centroids), if any.
    pub state: Option<Value>,
    /// Why the gateway could not be asked; the view is then this computer's alone.
    pub gateway_error: Option<String>,
}

/// Looks the session up on the gateway (when there is one to ask) and in the spools.
pub async fn look_up(
    endpoint: Option<&GatewayEndpoint>,
    spool_root: &Path,
    session_id: &str,
) -> anyhow::Result<SessionView> {
    let local = engine::held_frames(spool_root, session_id)?;
    let mut view = SessionView {
        session_id: session_id.to_owned(),
        recorded: local.recorded,
        finalized_at: None,
        held: local.total(),
        state: None,
        gateway_error: None,
    };
    let Some(endpoint) = endpoint else {
        return Ok(view);
    };
    let (state, result) = tokio::join!(
        endpoint.get_session(session_id, "state", ASK_TIMEOUT),
        endpoint.get_session(session_id, "result", ASK_TIMEOUT),
    );
    match state.map(|body| serde_json::from_slice::<StateResponse>(&body)) {
        Ok(Ok(answer)) => {
            let stored = answer.ingest.as_ref().map_or(0, |i| i.status.last_seq);
            view.recorded = view.recorded.max(stored);
            let mut state = serde_json::to_value(&answer.state).unwrap_or(Value::Null);
            slim_state(&mut state);
            view.state = Some(state);
        }
        Ok(Err(e)) => view.gateway_error = Some(format!("its state is not readable: {e}")),
        // An unknown session: nothing stored yet.
        Err(CallError::Refused { status: 404, .. }) => {}
        Err(e) => view.gateway_error = Some(e.to_string()),
    }
    // Only a finalized session has a result; a gateway without the route (the seed's) says
    // 404 as well, and then the app's own memory of its finalizes is all there is.
    #[derive(Deserialize)]
    struct Finalized {
        finalized_at: String,
    }
    if let Ok(body) = result
        && let Ok(result) = serde_json::from_slice::<Finalized>(&body)
    {
        view.finalized_at = Some(result.finalized_at);
    }
    Ok(view)
}
