//! The browser is not a client: the rules that keep a web page in the user's browser from
//! using a gateway on their machine.
//!
//! A page can make the browser send requests to `http://127.0.0.1:8787` without any help from
//! the gateway: a WebSocket (never subject to CORS), a form or `fetch` POST with a "simple"
//! content type (no preflight), and — by pointing its own DNS name at 127.0.0.1 (DNS
//! rebinding) — even same-origin reads. Native clients (the recorder, `curl`, the tests) send
//! neither an `Origin` header nor a foreign `Host`, so the rules below cost them nothing:
//!
//! - **Host** (loopback listeners only): the `Host` must be a loopback name (`localhost`,
//!   `127.0.0.1`, `[::1]`, any loopback address, any port). A rebinding page's requests carry
//!   its own DNS name: 421 Misdirected Request.
//! - **Origin**: a WebSocket upgrade, and any request that is not `GET`/`HEAD`/`OPTIONS`, is
//!   refused with 403 when it carries an `Origin` the operator has not allowed. Browsers send
//!   `Origin` on every such request, cross-site or not. The rule is shared with the edge host
//!   (`session_core::origin`).
//! - **Content type** (in [`super::extract::Body`]): a non-empty body must be
//!   `application/json` (415), which a page can only send cross-origin after a CORS preflight
//!   the gateway never grants.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::core::origin::OriginPolicy;
use crate::server::AppState;
use crate::server::error::ApiError;

/// What the gateway lets a browser do.
#[derive(Debug, Clone, Default)]
pub struct BrowserPolicy {
    /// True when the listener is a loopback address: only loopback `Host` names are served.
    pub loopback_only: bool,
    /// Origins allowed to open sockets and send state-changing requests.
    pub origins: OriginPolicy,
}

impl BrowserPolicy {
    pub fn new(loopback_only: bool, allowed_origins: &[String]) -> BrowserPolicy {
        BrowserPolicy {
            loopback_only,
            origins: OriginPolicy::new(allowed_origins),
        }
    }

    /// Refuses a request a browser page could have sent on its own; `None` lets it through.
    pub fn refusal(&self, method: &Method, headers: &HeaderMap) -> Option<ApiError> {
        if self.loopback_only {
            if let Some(host) = headers.get(header::HOST) {
                let allowed = host.to_str().is_ok_and(is_loopback_host);
                if !allowed {
                    return Some(ApiError::MisdirectedHost);
                }
            }
        }
        let upgrade = headers.contains_key(header::UPGRADE);
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let origin = headers
            .get(header::ORIGIN)
            .map(|o| o.to_str().unwrap_or_default());
        self.origins
            .refusal(safe, upgrade, origin)
            .map(ApiError::ForeignOrigin)
    }
}

/// Middleware: applies [`BrowserPolicy::refusal`] before the key check and the handlers.
pub async fn refuse_browsers(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match app.browser.refusal(request.method(), request.headers()) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    }
}

/// `localhost`, or a loopback address literal, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]` or `[::1]:8787`
        Some(rest) => match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || is_port(after) => inside,
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if is_port(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        },
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `:` followed by one to five digits.
fn is_port(text: &str) -> bool {
    text.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_or_without_a_port_are_loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:8787",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:8787",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:8787",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8787",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:8787",
            "[::2]:8787",
            "[::1]x",
            "localhost:http",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn origins_are_refused_on_upgrades_and_writes_unless_allowed() {
        let policy = BrowserPolicy::new(true, &["https://App.example.com/".to_owned()]);
        let with = |pairs: &[(header::HeaderName, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(name.clone(), value.parse().unwrap());
            }
            headers
        };
        let page = with(&[(header::ORIGIN, "https://evil.example")]);
        assert!(policy.refusal(&Method::POST, &page).is_some());
        assert!(policy.refusal(&Method::PUT, &page).is_some());
        assert!(policy.refusal(&Method::GET, &page).is_none());
        let socket = with(&[
            (header::ORIGIN, "https://evil.example"),
            (header::UPGRADE, "websocket"),
        ]);
        assert!(policy.refusal(&Method::GET, &socket).is_some());
        let allowed = with(&[
            (header::ORIGIN, "https://app.example.com"),
            (header::UPGRADE, "websocket"),
        ]);
        assert!(policy.refusal(&Method::GET, &allowed).is_none());
        assert!(policy.refusal(&Method::POST, &HeaderMap::new()).is_none());
        let rebound = with(&[(header::HOST, "evil.example:8787")]);
        assert!(policy.refusal(&Method::GET, &rebound).is_some());
        assert!(
            BrowserPolicy::new(false, &[])
                .refusal(&Method::GET, &rebound)
                .is_none()
        );
    }
}
