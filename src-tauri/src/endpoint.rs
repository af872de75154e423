//! Where the gateway is: its HTTP base URL, the API key, and the URLs derived from them.
//!
//! The user gives one base URL (`http://host:port` or `https://…`, possibly with a path prefix);
//! the WebSocket URL swaps the scheme to `ws`/`wss`. Session ids are arbitrary strings, so every
//! URL puts them in as one percent-encoded path segment, never by string concatenation.

use std::time::Duration;

use bytes::Bytes;
use contract::protocol::ErrorBody;
use reqwest::{Method, Url};
use serde::Serialize;

use crate::stream::Stream;

/// Header carrying the gateway API key, on HTTP requests and on the WebSocket upgrade.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Why a gateway URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("gateway URL {0:?} is not a URL: {1}")]
    Parse(String, String),
    #[error("gateway URL {0:?} must start with http://, https://, ws:// or wss://")]
    Scheme(String),
}

/// Why a call to a session route got no success answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach the gateway at {base}")]
    Unreachable {
        base: String,
        #[source]
        source: reqwest::Error,
    },
    /// The gateway answered with a non-2xx status; `detail` is its `{"detail"}` text.
    #[error("HTTP {status}: {detail}")]
    Refused { status: u16, detail: String },
}

/// The recorder's HTTP client for gateway calls. It follows no redirects: a redirect would
/// carry the API key and the session's audio to an address nobody configured, so a 3xx is
/// an answer like any other non-2xx.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client without redirects builds")
}

/// A gateway and the credentials to talk to it.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayEndpoint {
    /// HTTP(S) base, without a trailing slash in its path.
    base: Url,
    api_key: Option<String>,
}

impl std::fmt::Debug for GatewayEndpoint {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayEndpoint")
            .field("base", &self.base.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl GatewayEndpoint {
    /// Parses a base URL; `ws://`/`wss://` are accepted and mean the same host over HTTP(S).
    pub fn parse(base: &str, api_key: Option<String>) -> Result<Self, EndpointError> {
        let mut url =
            Url::parse(base).map_err(|e| EndpointError::Parse(base.into(), e.to_string()))?;
        let scheme = match url.scheme() {
            "http" | "ws" => "http",
            "https" | "wss" => "https",
            _ => return Err(EndpointError::Scheme(base.into())),
        };
        url.set_scheme(scheme)
            .map_err(|()| EndpointError::Scheme(base.into()))?;
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        url.set_query(None);
        url.set_fragment(None);
        Ok(GatewayEndpoint {
            base: url,
            api_key: api_key.filter(|k| !k.is_empty()),
        })
    }

    /// The HTTP base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Sends `body` as JSON to `/v1/sessions/{id}/{action}` with the API key and returns the
    /// body of a 2xx answer; any other answer is [`CallError::Refused`] with the gateway's words.
    pub async fn call_session(
        &self,
        method: Method,
        session_id: &str,
        action: &str,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let request = http_client()
            .request(method, self.session(session_id, action))
            .timeout(timeout)
            .json(body);
        self.send(request).await
    }

    /// `GET /v1/sessions/{id}/{action}` with the API key: the body of a 2xx answer, or
    /// [`CallError::Refused`] with the gateway's words.
    pub async fn get_session(
        &self,
        session_id: &str,
        action: &str,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let request = http_client()
            .get(self.session(session_id, action))
            .timeout(timeout);
        self.send(request).await
    }

    /// `GET /v1/sessions?limit=…&after=…`: one page of the gateway's session list.
    pub async fn list_sessions(
        &self,
        limit: usize,
        after: Option<&str>,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let mut url = self.url(&["v1", "sessions"]);
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        if let Some(cursor) = after {
            url.query_pairs_mut().append_pair("after", cursor);
        }
        self.send(http_client().get(url).timeout(timeout)).await
    }

    /// `DELETE /v1/sessions/{id}`: the session's objects, state and events.
    pub async fn delete_session(
        &self,
        session_id: &str,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let url = self.url(&["v1", "sessions", session_id]);
        self.send(http_client().delete(url).timeout(timeout)).await
    }

    /// `GET /v1/sessions/{id}/{action}` answered 2xx, its body not read yet: for a download
    /// (`audio.wav`) that is streamed to a file instead of held in memory. `connect_timeout`
    /// bounds only the wait for the answer's head.
    pub async fn open_session(
        &self,
        session_id: &str,
        action: &str,
        connect_timeout: Duration,
    ) -> Result<reqwest::Response, CallError> {
        let request = http_client().get(self.session(session_id, action));
        self.open_request(request, connect_timeout).await
    }

    /// `GET /v1/sessions/{id}/audio.wav` of one stream (`?stream=system` for the meeting
    /// audio; the mic's is the seed's URL unchanged), opened as [`open_session`](Self::open_session)
    /// does.
    pub async fn open_audio(
        &self,
        session_id: &str,
        stream: Stream,
        connect_timeout: Duration,
    ) -> Result<reqwest::Response, CallError> {
        self.open_audio_range(session_id, stream, None, connect_timeout)
            .await
    }

    /// [`open_audio`](Self::open_audio) asking for only the bytes `range` names (an HTTP
    /// `Range` value, sent as it is). A gateway that honours ranges answers 206 with those
    /// bytes and their `Content-Range`; one that does not answers 200 with the whole file:
    /// the caller tells them apart by the status.
    pub async fn open_audio_range(
        &self,
        session_id: &str,
        stream: Stream,
        range: Option<&str>,
        connect_timeout: Duration,
    ) -> Result<reqwest::Response, CallError> {
        let mut url = self.session(session_id, "audio.wav");
        if stream != Stream::Mic {
            url.query_pairs_mut().append_pair("stream", stream.as_str());
        }
        let mut request = http_client().get(url);
        if let Some(range) = range {
            request = request.header(reqwest::header::RANGE, range);
        }
        self.open_request(request, connect_timeout).await
    }

    /// Sends `request` with the API key; a 2xx answer with its body not read yet.
    async fn open_request(
        &self,
        request: reqwest::RequestBuilder,
        connect_timeout: Duration,
    ) -> Result<reqwest::Response, CallError> {
        let response = tokio::time::timeout(connect_timeout, self.answer(request))
            .await
            .map_err(|_| CallError::Refused {
                status: 504,
                detail: format!("no answer within {} s", connect_timeout.as_secs()),
            })??;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        Err(CallError::Refused {
            status,
            detail: refusal_detail(&body),
        })
    }

    /// Sends a session call with the API key and returns the answer, whatever its status.
    async fn answer(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CallError> {
        if let Some(key) = self.api_key() {
            request = request.header(API_KEY_HEADER, key);
        }
        request
            .send()
            .await
            .map_err(|source| CallError::Unreachable {
                base: self.base().to_string(),
                source,
            })
    }

    /// Sends a session call with the API key and maps the answer.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Bytes, CallError> {
        let response = self.answer(request).await?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|source| CallError::Unreachable {
                base: self.base().to_string(),
                source,
            })?;
        if status.is_success() {
            return Ok(body);
        }
        Err(CallError::Refused {
            status: status.as_u16(),
            detail: refusal_detail(&body),
        })
    }

    /// The API key, if one is configured.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    /// `ws(s)://…/v1/audio/ws/{session_id}`.
    pub fn audio_ws(&self, session_id: &str) -> Url {
        let mut url = self.url(&["v1", "audio", "ws", session_id]);
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme).expect("http(s) → ws(s) is allowed");
        url
    }

    /// The socket of one of the session's streams: the mic's is [`audio_ws`](Self::audio_ws)
    /// unchanged (what seed gateways know), any other adds `?stream=<name>`.
    pub fn stream_ws(&self, session_id: &str, stream: Stream) -> Url {
        let mut url = self.audio_ws(session_id);
        if stream != Stream::Mic {
            url.query_pairs_mut().append_pair("stream", stream.as_str());
        }
        url
    }

    /// `…/v1/sessions/{session_id}/{action}` (`resolve`, `finalize`, `audio.wav`, `state`,
    /// `result`).
    pub fn session(&self, session_id: &str, action: &str) -> Url {
        self.url(&["v1", "sessions", session_id, action])
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http(s) URLs have a path")
            .pop_if_empty()
            .extend(segments);
        url
    }
}

/// The gateway's `{"detail"}` words, or the raw body when it sent something else.
fn refusal_detail(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.detail)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_become_one_encoded_path_segment() {
        let gw = GatewayEndpoint::parse("http://127.0.0.1:8787/", None).unwrap();
        assert_eq!(
            gw.audio_ws("a b/..%2F").as_str(),
            "ws://127.0.0.1:8787/v1/audio/ws/a%20b%2F..%252F"
        );
        assert_eq!(
            gw.session("s-1", "resolve").as_str(),
            "http://127.0.0.1:8787/v1/sessions/s-1/resolve"
        );
    }

    #[test]
    fn the_mic_socket_is_unchanged_and_system_audio_names_its_stream() {
        let gw = GatewayEndpoint::parse("http://127.0.0.1:8787", None).unwrap();
        assert_eq!(
            gw.stream_ws("s 1", Stream::Mic).as_str(),
            "ws://127.0.0.1:8787/v1/audio/ws/s%201"
        );
        assert_eq!(
            gw.stream_ws("s 1", Stream::System).as_str(),
            "ws://127.0.0.1:8787/v1/audio/ws/s%201?stream=system"
        );
    }

    #[test]
    fn https_and_path_prefixes_carry_over() {
        let gw = GatewayEndpoint::parse("wss://gw.example.com/rec/", Some("k".into())).unwrap();
        assert_eq!(
            gw.audio_ws("x").as_str(),
            "wss://gw.example.com/rec/v1/audio/ws/x"
        );
        assert_eq!(
            gw.session("x", "finalize").as_str(),
            "https://gw.example.com/rec/v1/sessions/x/finalize"
        );
        assert_eq!(gw.api_key(), Some("k"));
        assert!(!format!("{gw:?}").contains("\"k\""));
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(matches!(
            GatewayEndpoint::parse("ftp://x", None),
            Err(EndpointError::Scheme(_))
        ));
        assert!(GatewayEndpoint::parse("not a url", None).is_err());
    }
}
