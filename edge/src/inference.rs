//! The resolve proxy: POSTs the session's request to `INFERENCE_BASE_URL +
//! INFERENCE_RESOLVE_PATH` with `fetch`, within `INFERENCE_TIMEOUT_MS`, and maps every failure
//! to words the caller can act on (the server gateway's texts).

use std::time::Duration;

use futures_util::future::{Either, select};
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{
    AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect,
};

use crate::config::InferenceConfig;
use session_core::caps::MAX_INFERENCE_ANSWER_BYTES;

/// Most characters of a failing backend's body passed back to the caller.
const MAX_BACKEND_BODY: usize = 4096;

/// Why a resolve could not get an answer.
#[derive(Debug)]
pub enum InferenceError {
    NotConfigured,
    Transport(String),
    AnswerTooLarge,
    Backend {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
}

impl std::fmt::Display for InferenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InferenceError::NotConfigured => f.write_str(
                "inference is not configured: set INFERENCE_BASE_URL (and INFERENCE_API_KEY if the service needs one)",
            ),
            InferenceError::Transport(why) => write!(f, "inference request failed: {why}"),
            InferenceError::AnswerTooLarge => write!(
                f,
                "inference answer too large: more than {MAX_INFERENCE_ANSWER_BYTES} bytes (the gateway's cap on a resolve answer); nothing was changed"
            ),
            InferenceError::Backend { status, .. } => {
                write!(f, "inference backend returned {status}")
            }
        }
    }
}

/// POSTs `body`; a 2xx answer's raw bytes are returned unchanged.
pub async fn resolve(config: &InferenceConfig, body: &Value) -> Result<Vec<u8>, InferenceError> {
    let transport = |e: worker::Error| InferenceError::Transport(e.to_string());
    let headers = Headers::new();
    headers
        .set("content-type", "application/json")
        .map_err(transport)?;
    if let Some(key) = &config.api_key {
        headers.set("x-api-key", key).map_err(transport)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        // A redirect would send the session's audio and the service's key elsewhere.
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(JsValue::from_str(&body.to_string())));
    let request = Request::new_with_init(&config.url(), &init).map_err(transport)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sent = std::pin::pin!(fetch.send_with_signal(&signal));
    let timeout = Delay::from(Duration::from_millis(config.timeout_ms));
    let mut response = match select(sent, timeout).await {
        Either::Left((response, _)) => response.map_err(transport)?,
        Either::Right(_) => {
            controller.abort();
            return Err(InferenceError::Transport(format!(
                "timed out after {} ms",
                config.timeout_ms
            )));
        }
    };
    let status = response.status_code();
    let bytes = response.bytes().await.map_err(transport)?;
    if (200..300).contains(&status) {
        if bytes.len() > MAX_INFERENCE_ANSWER_BYTES {
            return Err(InferenceError::AnswerTooLarge);
        }
        return Ok(bytes);
    }
    let headers = response
        .headers()
        .entries()
        .filter(|(name, _)| name.starts_with("x-ratelimit-") || name == "retry-after")
        .collect();
    Err(InferenceError::Backend {
        status,
        body: String::from_utf8_lossy(&bytes)
            .chars()
            .take(MAX_BACKEND_BODY)
            .collect(),
        headers,
    })
}
