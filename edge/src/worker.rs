//! The Worker: routes each request, checks the browser origin, the key and the body, answers `/health` itself and
//! hands everything else to the session's Durable Object (named by the session's safe id, so
//! ids that share storage share one object, which refuses the second, as the server does).
//!
//! The object is reached only through here: the internal request it gets carries the checked
//! id, the operation and whether a socket still has to prove the key, never the client's
//! headers for those.

use serde_json::json;
use wasm_bindgen::JsValue;
use worker::{Env, Headers, Method, Request, RequestInit, Response, Url};

use crate::auth::{self, KeyCheck};
use crate::config::{self, InferenceConfig, SESSIONS_BINDING};
use crate::error::{ApiError, MAX_BODY_BYTES};
use crate::route::{Operation, Route, route};
use session_core::session_id::SessionId;

/// Query parameters of the internal request to a session's object.
pub const ID_PARAM: &str = "id";
pub const STREAM_PARAM: &str = "stream";
/// Present when a socket's upgrade did not carry the key: its first message must.
pub const MUST_AUTHENTICATE_PARAM: &str = "must_authenticate";

pub async fn handle(request: Request, env: Env) -> worker::Result<Response> {
    match serve(request, &env).await {
        Ok(response) => Ok(response),
        Err(err) => err.into_response(),
    }
}

async fn serve(mut request: Request, env: &Env) -> Result<Response, ApiError> {
    let url = request.url()?;
    let path = url.path().to_owned();
    let method = request.method();
    // A browser page's socket or write first, as the server gateway checks it.
    let safe = matches!(method, Method::Get | Method::Head | Method::Options);
    let upgrade = request.headers().has("upgrade")?;
    let origin = request.headers().get("origin")?;
    if let Some(origin) = config::origins(env).refusal(safe, upgrade, origin.as_deref()) {
        return Err(ApiError::ForeignOrigin(origin));
    }
    let key = config::api_key(env);
    let check = if path == "/health" {
        KeyCheck::Passed
    } else {
        auth::check(key.as_deref(), request.headers(), &path)
    };
    if check == KeyCheck::Refused {
        return Err(ApiError::Unauthorized);
    }
    let (operation, id) = match route(&method, &path)? {
        Route::Health => return health(env),
        Route::List => return crate::history::list(env, &url).await,
        Route::Session(operation, id) => (operation, id),
    };
    let stream = url
        .query_pairs()
        .find(|(name, _)| name == STREAM_PARAM)
        .map(|(_, value)| value.into_owned());
    let body = match operation {
        Operation::Resolve | Operation::Finalize | Operation::Bindings => {
            Some(json_body(&mut request).await?)
        }
        Operation::Socket => {
            if let Some(name) = &stream {
                session_core::stream::Stream::parse(name)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            }
            let upgrade = request.headers().get("upgrade")?;
            if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
                return Err(ApiError::UpgradeRequired);
            }
            None
        }
        Operation::State
        | Operation::Audio
        | Operation::Result
        | Operation::Delete
        | Operation::Summary => None,
    };
    let must_authenticate = check == KeyCheck::SocketMustAuthenticate;
    let inner = internal_request(&request, operation, &id, stream, must_authenticate, body)?;
    let stub = env
        .durable_object(SESSIONS_BINDING)?
        .get_by_name(id.safe())?;
    Ok(stub.fetch_with_request(inner).await?)
}

/// The body of a JSON request: at most [`MAX_BODY_BYTES`] (413), and, when not empty, sent as
/// `application/json` (415), as the server gateway requires.
async fn json_body(request: &mut Request) -> Result<Vec<u8>, ApiError> {
    let declared = request
        .headers()
        .get("content-length")?
        .and_then(|n| n.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::TooLarge);
    }
    let json = request
        .headers()
        .get("content-type")?
        .is_some_and(|v| is_json(&v));
    let bytes = request.bytes().await?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge);
    }
    if !bytes.is_empty() && !json {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(bytes)
}

/// `application/json`, with or without parameters, in any case.
fn is_json(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The request the session's object gets: `https://session/<operation>?id=...`, the client's
/// headers (a socket's upgrade needs them), and the checked body.
fn internal_request(
    request: &Request,
    operation: Operation,
    id: &SessionId,
    stream: Option<String>,
    must_authenticate: bool,
    body: Option<Vec<u8>>,
) -> Result<Request, ApiError> {
    let mut url = Url::parse("https://session/")
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .join(operation.as_str())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair(ID_PARAM, id.as_str());
        if let Some(stream) = &stream {
            query.append_pair(STREAM_PARAM, stream);
        }
        if must_authenticate {
            query.append_pair(MUST_AUTHENTICATE_PARAM, "1");
        }
    }
    let headers = Headers::new();
    for (name, value) in request.headers().entries() {
        headers.set(&name, &value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(request.method()).with_headers(headers);
    if let Some(body) = body {
        let method = if operation == Operation::Bindings {
            Method::Put
        } else {
            Method::Post
        };
        init.with_method(method)
            .with_body(Some(js_sys_bytes(&body)));
    }
    Ok(Request::new_with_init(url.as_str(), &init)?)
}

fn js_sys_bytes(bytes: &[u8]) -> JsValue {
    let array = worker::js_sys::Uint8Array::new_with_length(bytes.len() as u32);
    array.copy_from(bytes);
    array.into()
}

fn health(env: &Env) -> Result<Response, ApiError> {
    Ok(Response::from_json(&json!({
        "status": "ok",
        "app": "interview-gateway",
        "version": env!("CARGO_PKG_VERSION"),
        "host": "edge",
        "storage": "r2",
        "inference_configured": InferenceConfig::from_env(env).is_some(),
    }))?)
}
