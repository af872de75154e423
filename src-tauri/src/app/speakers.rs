//! The interviewer's corrections: `PUT /v1/sessions/{id}/bindings` on the gateway.

use std::time::Duration;

use anyhow::Context as _;
use contract::protocol::BindingRequest;
use recorder::endpoint::{CallError, GatewayEndpoint};
use serde_json::Value;

use super::ui_events::slim_state;

/// Binds `cluster_id` to `name` and returns the session's new state (as `GET …/state` shapes
/// it, centroids left out).
pub async fn bind(
    endpoint: &GatewayEndpoint,
    session_id: &str,
    cluster_id: &str,
    name: &str,
) -> anyhow::Result<Value> {
    let name = name.trim();
    if name.is_empty() {
        anyhow::bail!("Type a name first.");
    }
    let request = BindingRequest {
        cluster_id: cluster_id.to_owned(),
        name: name.to_owned(),
    };
    let body = endpoint
        .call_session(
            reqwest::Method::PUT,
            session_id,
            "bindings",
            &request,
            Duration::from_secs(10),
        )
        .await
        .map_err(|e| match e {
            CallError::Refused { status, detail } => {
                anyhow::anyhow!("The gateway refused the name (HTTP {status}): {detail}")
            }
            unreachable => unreachable.into(),
        })?;
    let mut answer: Value =
        serde_json::from_slice(&body).context("the gateway's answer is not JSON")?;
    if let Some(state) = answer.get_mut("state") {
        slim_state(state);
    }
    Ok(answer)
}
