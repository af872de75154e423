//! The proxy to an external speaker-inference service: one shared HTTP client, the configured
//! timeout, and every failure mapped to words the caller can act on.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName};
use serde_json::Value;

use super::InferenceError;
use crate::core::caps::MAX_INFERENCE_ANSWER_BYTES;

/// Where the inference service is and how to call it.
#[derive(Debug, Clone)]
pub struct InferenceConfig {
    pub base_url: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub resolve_path: String,
}

/// Default of `INFERENCE_TIMEOUT_MS`.
pub const DEFAULT_TIMEOUT_MS: u64 = 15_000;
/// Default of `INFERENCE_RESOLVE_PATH`.
pub const DEFAULT_RESOLVE_PATH: &str = "/speaker/resolve";
/// Most bytes of a failing backend's body passed back to the caller.
const MAX_BACKEND_BODY: usize = 4096;

/// The shared client and where it sends resolves.
#[derive(Clone)]
pub struct HttpInference {
    client: reqwest::Client,
    config: InferenceConfig,
}

impl HttpInference {
    pub fn new(config: InferenceConfig) -> HttpInference {
        // A redirect would send the session's audio and the service's key to another address.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client without redirects builds");
        HttpInference { client, config }
    }

    /// POSTs `body` to the resolve endpoint; a 2xx answer's raw bytes are returned unchanged.
    pub async fn resolve(&self, body: &Value) -> Result<Bytes, InferenceError> {
        let config = &self.config;
        let url = format!(
            "{}/{}",
            config.base_url.trim_end_matches('/'),
            config.resolve_path.trim_start_matches('/')
        );
        let mut request = self.client.post(url).timeout(config.timeout).json(body);
        if let Some(key) = &config.api_key {
            request = request.header("x-api-key", key);
        }
        let mut response = request.send().await.map_err(|e| transport(e, config))?;
        let status = response.status();
        let headers = rate_limit_headers(response.headers());
        if status.is_success() {
            // A `Content-Length` over the cap is refused unread; a chunked answer says nothing
            // in advance and is refused as soon as the bytes read pass it.
            if response
                .content_length()
                .is_some_and(|len| len > MAX_INFERENCE_ANSWER_BYTES as u64)
            {
                return Err(InferenceError::AnswerTooLarge);
            }
            let (bytes, more) = read_at_most(&mut response, MAX_INFERENCE_ANSWER_BYTES)
                .await
                .map_err(|e| transport(e, config))?;
            if more {
                return Err(InferenceError::AnswerTooLarge);
            }
            return Ok(Bytes::from(bytes));
        }
        // A failure's text is cut below anyway: read no more than its first characters take.
        let (bytes, _) = read_at_most(&mut response, MAX_BACKEND_BODY * 4)
            .await
            .map_err(|e| transport(e, config))?;
        let body = String::from_utf8_lossy(&bytes)
            .chars()
            .take(MAX_BACKEND_BODY)
            .collect();
        Err(InferenceError::Backend {
            status: status.as_u16(),
            body,
            headers,
        })
    }
}

/// The first `limit` bytes of `response`'s body, and whether it had more (the rest is not
/// read, so a huge answer never sits in memory).
async fn read_at_most(
    response: &mut reqwest::Response,
    limit: usize,
) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

fn transport(err: reqwest::Error, config: &InferenceConfig) -> InferenceError {
    if err.is_timeout() {
        return InferenceError::Transport(format!(
            "timed out after {} ms",
            config.timeout.as_millis()
        ));
    }
    // The URL may carry credentials; leave it out.
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    InferenceError::Transport(text)
}

fn rate_limit_headers(headers: &HeaderMap) -> Vec<(HeaderName, reqwest::header::HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name.starts_with("x-ratelimit-") || name == "retry-after"
        })
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}
