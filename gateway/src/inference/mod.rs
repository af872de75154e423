//! Speaker resolution behind one interface: the built-in engine (the default), the proxy to an
//! external inference service, or off. Every engine answers a resolve body
//! (`{"session_id","audio","asr_text","state"}`) with the raw bytes of a resolve answer or an
//! [`InferenceError`], so the session rules and the error mapping do not care which one ran.

mod builtin;
mod http;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::core::caps::MAX_INFERENCE_ANSWER_BYTES;

pub use builtin::{
    BuiltinEngine, ENGINE_NAME, decode_audio, engine_cluster_entries, engine_clusters, to_f64,
};
pub use http::{DEFAULT_RESOLVE_PATH, DEFAULT_TIMEOUT_MS, HttpInference, InferenceConfig};

/// Which engine resolves speakers (`--inference`, `GATEWAY_INFERENCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InferenceMode {
    /// The external service when `INFERENCE_BASE_URL` is set, the built-in engine otherwise.
    #[default]
    Auto,
    /// The built-in engine, in this process.
    Builtin,
    /// The external service at `INFERENCE_BASE_URL`.
    Http,
    /// No speaker resolution: `/resolve` answers 503.
    Off,
}

/// Why a resolve could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error(
        "inference is not configured: set INFERENCE_BASE_URL (and INFERENCE_API_KEY if the service needs one)"
    )]
    NotConfigured,
    #[error("speaker resolution is off (--inference off / GATEWAY_INFERENCE=off)")]
    Off,
    #[error("the built-in speaker engine is unavailable: {0}")]
    Unavailable(String),
    #[error("inference request failed: {0}")]
    Transport(String),
    /// A 2xx answer over [`MAX_INFERENCE_ANSWER_BYTES`]: not read past the cap, not kept.
    #[error(
        "inference answer too large: more than {MAX_INFERENCE_ANSWER_BYTES} bytes (the gateway's cap on a resolve answer); nothing was changed"
    )]
    AnswerTooLarge,
    #[error("inference backend returned {status}")]
    Backend {
        status: u16,
        /// The backend's answer as text, as it sent it (cut at a bound): `/resolve` passes it
        /// on as a string in `backend_body`, as the seed does.
        body: String,
        /// Rate-limit headers of a 429, passed on so the caller knows when to retry.
        headers: Vec<(HeaderName, HeaderValue)>,
    },
}

/// The engine this gateway resolves speakers with.
#[derive(Clone)]
pub enum Inference {
    Builtin(Arc<BuiltinEngine>),
    Http(HttpInference),
    /// The built-in engine was chosen but its model could not be loaded: the reason.
    Unavailable(Arc<str>),
    /// `--inference http` without a URL.
    NotConfigured,
    Off,
}

impl Inference {
    /// Starts the chosen engine. A model that cannot be loaded is not fatal: the gateway still
    /// ingests audio, and says why speakers are not resolved.
    pub fn start(
        mode: InferenceMode,
        http: Option<InferenceConfig>,
        speaker_model: Option<PathBuf>,
    ) -> Inference {
        let builtin = || match BuiltinEngine::load(speaker_model.as_deref()) {
            Ok(engine) => Inference::Builtin(Arc::new(engine)),
            Err(err) => Inference::Unavailable(Arc::from(err.to_string())),
        };
        match (mode, http) {
            (InferenceMode::Auto, Some(config)) | (InferenceMode::Http, Some(config)) => {
                Inference::Http(HttpInference::new(config))
            }
            (InferenceMode::Http, None) => Inference::NotConfigured,
            (InferenceMode::Auto, None) | (InferenceMode::Builtin, _) => builtin(),
            (InferenceMode::Off, _) => Inference::Off,
        }
    }

    /// Whether `/resolve` can answer (the seed's `inference_configured`).
    pub fn is_configured(&self) -> bool {
        matches!(self, Inference::Builtin(_) | Inference::Http(_))
    }

    /// The built-in engine, when it runs.
    pub fn builtin(&self) -> Option<&Arc<BuiltinEngine>> {
        match self {
            Inference::Builtin(engine) => Some(engine),
            _ => None,
        }
    }

    /// Resolves one request body (see the module docs).
    pub async fn resolve(&self, body: &Value) -> Result<Bytes, InferenceError> {
        match self {
            Inference::Builtin(engine) => engine.resolve(body).await,
            Inference::Http(http) => http.resolve(body).await,
            Inference::Unavailable(reason) => Err(InferenceError::Unavailable(reason.to_string())),
            Inference::NotConfigured => Err(InferenceError::NotConfigured),
            Inference::Off => Err(InferenceError::Off),
        }
    }

    /// For the startup line: `builtin (GE2E …)`, `http`, `off`, or why it is unavailable.
    pub fn describe(&self) -> String {
        match self {
            Inference::Builtin(engine) => format!("builtin ({})", engine.model_name()),
            Inference::Http(_) => "http (external service)".into(),
            Inference::Unavailable(reason) => format!("builtin unavailable: {reason}"),
            Inference::NotConfigured => "not configured".into(),
            Inference::Off => "off".into(),
        }
    }

    /// The `inference` object of `/health`.
    pub fn health(&self) -> Value {
        match self {
            Inference::Builtin(engine) => {
                json!({"engine": "builtin", "available": true, "model": engine.model_name()})
            }
            Inference::Http(_) => json!({"engine": "http", "available": true}),
            Inference::Unavailable(reason) => {
                json!({"engine": "builtin", "available": false, "reason": reason.as_ref()})
            }
            Inference::NotConfigured => json!({"engine": "http", "available": false,
                "reason": InferenceError::NotConfigured.to_string()}),
            Inference::Off => json!({"engine": "off", "available": false}),
        }
    }
}
