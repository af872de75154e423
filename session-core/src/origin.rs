//! The browser-origin rule, shared by every host: a web page in a user's browser must not use
//! the gateway on its own.
//!
//! A page can make the browser open a WebSocket to any host (WebSockets are never subject to
//! CORS) and send a form or `fetch` POST with a "simple" content type (no preflight). Browsers
//! send an `Origin` header on every such request; native clients (the recorder, `curl`, the
//! tests) send none. So a WebSocket upgrade, and any request that is not `GET`/`HEAD`/
//! `OPTIONS`, is refused with 403 ([`foreign_origin`](crate::api_error::foreign_origin)) when
//! it carries an `Origin` the operator has not allowed (`GATEWAY_ALLOW_ORIGINS`,
//! comma-separated). Reads stay open: a page cannot read a cross-origin answer without CORS,
//! which no host grants.
//!
//! The server gateway also checks the `Host` of a loopback listener (DNS rebinding); that has
//! no meaning for a host that is not on the user's machine, so it stays in the server.

/// The origins allowed to open sockets and send state-changing requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// `scheme://host[:port]`, lower case, no trailing slash.
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub fn new<S: AsRef<str>>(allowed: &[S]) -> OriginPolicy {
        OriginPolicy {
            allowed: allowed
                .iter()
                .map(|o| normalize_origin(o.as_ref()))
                .filter(|o| !o.is_empty())
                .collect(),
        }
    }

    /// From a comma-separated list, as `GATEWAY_ALLOW_ORIGINS` gives it.
    pub fn from_list(list: &str) -> OriginPolicy {
        OriginPolicy::new(&list.split(',').collect::<Vec<_>>())
    }

    /// The (normalized) origin to refuse a request with, or `None` to let it through.
    /// `safe_method`: `GET`, `HEAD` or `OPTIONS`; `upgrade`: the request asks for a WebSocket;
    /// `origin`: its `Origin` header, `Some("")` when present but unreadable.
    pub fn refusal(
        &self,
        safe_method: bool,
        upgrade: bool,
        origin: Option<&str>,
    ) -> Option<String> {
        if safe_method && !upgrade {
            return None;
        }
        let origin = normalize_origin(origin?);
        (!self.allowed.contains(&origin)).then_some(origin)
    }
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_refused_on_upgrades_and_writes_unless_allowed() {
        let policy = OriginPolicy::from_list("https://App.example.com/, ,http://localhost:3000");
        let evil = Some("https://evil.example");
        assert_eq!(
            policy.refusal(false, false, evil),
            Some("https://evil.example".into()),
            "a write"
        );
        assert_eq!(
            policy.refusal(true, true, Some("HTTPS://Evil.example/")),
            Some("https://evil.example".into()),
            "a socket"
        );
        assert_eq!(policy.refusal(true, false, evil), None, "a read");
        assert_eq!(policy.refusal(false, false, None), None, "a native client");
        assert_eq!(
            policy.refusal(true, true, Some("https://app.example.com")),
            None
        );
        assert_eq!(
            policy.refusal(false, false, Some("http://localhost:3000/")),
            None
        );
        assert_eq!(
            policy.refusal(false, false, Some("")),
            Some(String::new()),
            "an unreadable origin is not an allowed one"
        );
        assert_eq!(
            OriginPolicy::from_list("").refusal(false, false, Some("null")),
            Some("null".into())
        );
    }
}
