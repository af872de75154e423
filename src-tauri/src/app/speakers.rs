//! The interviewer's corrections: `PUT /v1/sessions/{id}/bindings` on the gateway.

use std::time::Duration;

use anyhow::Context as _;
use gateway::protocol::{BindingRequest, ErrorBody};
use recorder::endpoint::{API_KEY_HEADER, GatewayEndpoint};
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
    let mut request = reqwest::Client::new()
        .put(endpoint.session(session_id, "bindings"))
        .timeout(Duration::from_secs(10))
        .json(&BindingRequest {
            cluster_id: cluster_id.to_owned(),
            name: name.to_owned(),
        });
    if let Some(key) = endpoint.api_key() {
        request = request.header(API_KEY_HEADER, key);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {}", endpoint.base()))?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if !status.is_success() {
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.detail)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
        anyhow::bail!(
            "The gateway refused the name (HTTP {}): {detail}",
            status.as_u16()
        );
    }
    let mut answer: Value =
        serde_json::from_slice(&body).context("the gateway's answer is not JSON")?;
    if let Some(state) = answer.get_mut("state") {
        slim_state(state);
    }
    Ok(answer)
}
