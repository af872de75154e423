//! `gateway serve` settings: every one is a flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::inference::{DEFAULT_RESOLVE_PATH, DEFAULT_TIMEOUT_MS, InferenceConfig, InferenceMode};
use crate::server::GatewayConfig;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the startup line says which).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Directory for the SQLite database and, by default, the objects.
    #[arg(long, env = "GATEWAY_DATA_DIR", default_value = "gateway-data")]
    pub data_dir: PathBuf,
    /// Where frames and results go: a directory, or s3://BUCKET (uses AWS_ENDPOINT, AWS_REGION,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Default: `<data dir>/objects`.
    #[arg(long, env = "GATEWAY_OBJECTS")]
    pub objects: Option<String>,
    /// Require this key (x-api-key or Authorization: Bearer) on every route but /health.
    #[arg(long, env = "GATEWAY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Which engine resolves speakers: auto (the service at INFERENCE_BASE_URL when set, else
    /// builtin), builtin (in this process, offline), http (the external service), off.
    #[arg(long, env = "GATEWAY_INFERENCE", value_enum, default_value_t = InferenceMode::Auto)]
    pub inference: InferenceMode,
    /// A GE2E-compatible safetensors file to use instead of the shipped speaker model.
    #[arg(long, env = "GATEWAY_SPEAKER_MODEL")]
    pub speaker_model: Option<PathBuf>,
    /// Base URL of an external speaker-inference service (used by --inference auto|http).
    #[arg(long, env = "INFERENCE_BASE_URL")]
    pub inference_base_url: Option<String>,
    /// Sent to the inference service as x-api-key.
    #[arg(long, env = "INFERENCE_API_KEY", hide_env_values = true)]
    pub inference_api_key: Option<String>,
    /// Inference request timeout in milliseconds.
    #[arg(long, env = "INFERENCE_TIMEOUT_MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub inference_timeout_ms: u64,
    /// Path of the resolve endpoint on the inference service.
    #[arg(long, env = "INFERENCE_RESOLVE_PATH", default_value = DEFAULT_RESOLVE_PATH)]
    pub inference_resolve_path: String,
    /// Seconds an unused session stays in memory.
    #[arg(long, env = "GATEWAY_IDLE_SECS", default_value_t = 60)]
    pub idle_secs: u64,
}

impl ServeArgs {
    pub fn into_config(self) -> GatewayConfig {
        let inference = self
            .inference_base_url
            .filter(|url| !url.trim().is_empty())
            .map(|base_url| InferenceConfig {
                base_url,
                api_key: self.inference_api_key.filter(|k| !k.is_empty()),
                timeout: Duration::from_millis(self.inference_timeout_ms),
                resolve_path: self.inference_resolve_path,
            });
        GatewayConfig {
            listen: self.listen,
            data_dir: self.data_dir,
            objects: self.objects.filter(|o| !o.is_empty()),
            api_key: self.api_key.filter(|k| !k.is_empty()),
            inference,
            inference_mode: self.inference,
            speaker_model: self.speaker_model,
            idle_timeout: Duration::from_secs(self.idle_secs.max(1)),
        }
    }
}
