//! The Worker's bindings and settings. Binding names are fixed here; what they point at (the
//! bucket, the Durable Object class) is named once, in `wrangler.toml`.

use session_core::origin::OriginPolicy;
use worker::Env;

/// The Durable Object namespace of sessions (`[[durable_objects.bindings]]`).
pub const SESSIONS_BINDING: &str = "SESSIONS";
/// The R2 bucket of frames and results (`[[r2_buckets]]`).
pub const BUCKET_BINDING: &str = "BUCKET";
/// The Durable Object namespace of the session directory (`[[durable_objects.bindings]]`):
/// the one object that knows which sessions exist, for `GET /v1/sessions` (`directory.rs`).
pub const DIRECTORY_BINDING: &str = "DIRECTORY";
/// The name of the directory's one object in its namespace.
pub const DIRECTORY_NAME: &str = "sessions";

/// Default of `INFERENCE_TIMEOUT_MS`, as in the seed.
pub const DEFAULT_INFERENCE_TIMEOUT_MS: u64 = 15_000;
/// Default of `INFERENCE_RESOLVE_PATH`, as in the seed.
pub const DEFAULT_RESOLVE_PATH: &str = "/speaker/resolve";

/// A setting given as a plain variable (`[vars]`, `--var`) or a secret (`wrangler secret
/// put`); empty counts as unset.
pub fn setting(env: &Env, name: &str) -> Option<String> {
    let value = env
        .secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()?;
    (!value.is_empty()).then_some(value)
}

/// `GATEWAY_API_KEY`: when set, every route but `/health` needs it.
pub fn api_key(env: &Env) -> Option<String> {
    setting(env, "GATEWAY_API_KEY")
}

/// `GATEWAY_ALLOW_ORIGINS` (comma-separated): the web origins allowed to open sockets and send
/// writes; a browser page from any other is refused (403), as by the server gateway.
pub fn origins(env: &Env) -> OriginPolicy {
    OriginPolicy::from_list(&setting(env, "GATEWAY_ALLOW_ORIGINS").unwrap_or_default())
}

/// Where resolves are sent, or `None` when `INFERENCE_BASE_URL` is unset (503, as the seed).
#[derive(Debug, Clone)]
pub struct InferenceConfig {
    pub base_url: String,
    pub api_key: Option<String>,
    pub timeout_ms: u64,
    pub resolve_path: String,
}

impl InferenceConfig {
    pub fn from_env(env: &Env) -> Option<InferenceConfig> {
        Some(InferenceConfig {
            base_url: setting(env, "INFERENCE_BASE_URL")?,
            api_key: setting(env, "INFERENCE_API_KEY"),
            timeout_ms: setting(env, "INFERENCE_TIMEOUT_MS")
                .and_then(|ms| ms.trim().parse().ok())
                .filter(|ms| *ms > 0)
                .unwrap_or(DEFAULT_INFERENCE_TIMEOUT_MS),
            resolve_path: setting(env, "INFERENCE_RESOLVE_PATH")
                .unwrap_or_else(|| DEFAULT_RESOLVE_PATH.to_owned()),
        })
    }

    /// The resolve endpoint: base URL and path joined with exactly one `/`.
    pub fn url(&self) -> String {
        format!(
            "{}/{}",
            self.base_url.trim_end_matches('/'),
            self.resolve_path.trim_start_matches('/')
        )
    }
}
