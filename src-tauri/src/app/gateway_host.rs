//! Which gateway the app streams to, and the lifecycle of the bundled one.
//!
//! With the default setting the app runs the `gateway` library in-process on 127.0.0.1 (a free
//! port) with a random key for this launch that only the app knows (see [`BundledGateway`]),
//! its data in the app's data directory, and stops it on exit. Its inference service is a
//! setting: when that changes the bundled gateway restarts with the new config (never while
//! recording; the caller checks). A remote gateway is only a URL and a key; the app asks its
//! `/health` so the window can say whether it is reachable.

use std::path::PathBuf;
use std::time::Duration;

use gateway::server::GatewayConfig;
use gateway::storage::Durability;
use recorder::bundled::BundledGateway;
use recorder::endpoint::GatewayEndpoint;
use serde::Serialize;

use super::logs;
use super::settings::{GatewayMode, Settings};

/// What the window shows about the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayStatus {
    pub mode: GatewayMode,
    /// Base URL the recorder streams to, once known.
    pub url: Option<String>,
    /// Bundled: serving. Remote: `/health` answered.
    pub running: bool,
    /// Whether `/resolve` has an inference service behind it (`None`: unknown).
    pub inference_configured: Option<bool>,
    /// The bundled gateway's data directory (`result.json` lands under `objects/`).
    pub data_dir: Option<String>,
    /// Why it is not running or not reachable, in words.
    pub error: Option<String>,
}

/// Owns the bundled gateway while it runs.
pub struct GatewayHost {
    data_dir: PathBuf,
    bundled: Option<Bundled>,
    remote: Option<GatewayEndpoint>,
    status: GatewayStatus,
}

struct Bundled {
    running: BundledGateway,
    /// The inference settings it was started with, to know when a restart is due.
    inference_key: Option<(String, String, u64)>,
}

impl GatewayHost {
    pub fn new(data_dir: PathBuf) -> GatewayHost {
        GatewayHost {
            data_dir,
            bundled: None,
            remote: None,
            status: GatewayStatus {
                mode: GatewayMode::Bundled,
                url: None,
                running: false,
                inference_configured: None,
                data_dir: None,
                error: None,
            },
        }
    }

    pub fn status(&self) -> GatewayStatus {
        self.status.clone()
    }

    /// Makes the running gateway match the settings: starts, restarts or stops the bundled one,
    /// or checks the remote one.
    pub async fn apply(&mut self, settings: &Settings) -> GatewayStatus {
        logs::hide_secret(&settings.gateway.remote_api_key);
        logs::hide_secret(&settings.inference.api_key);
        match settings.gateway.mode {
            GatewayMode::Bundled => {
                self.remote = None;
                let inference = &settings.inference;
                let key = (!inference.base_url.is_empty()).then(|| {
                    (
                        inference.base_url.clone(),
                        inference.api_key.clone(),
                        inference.timeout_ms,
                    )
                });
                let current = self.bundled.as_ref().map(|b| &b.inference_key);
                if current != Some(&key) {
                    self.stop_bundled().await;
                    self.start_bundled(settings, key).await;
                }
            }
            GatewayMode::Remote => {
                self.stop_bundled().await;
                self.check_remote(settings).await;
            }
        }
        self.status.clone()
    }

    /// Where recordings, bindings and finalize go.
    pub fn endpoint(&self) -> anyhow::Result<GatewayEndpoint> {
        if let Some(remote) = &self.remote {
            return Ok(remote.clone());
        }
        let bundled = self.bundled.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "The bundled gateway is not running{}",
                self.status
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
        })?;
        Ok(bundled.running.endpoint().clone())
    }

    /// Where the bundled gateway keeps an object, if it is the one in use.
    pub fn local_object_path(&self, key: &str) -> Option<PathBuf> {
        self.bundled
            .as_ref()
            .map(|_| self.data_dir.join("objects").join(key))
    }

    /// Stops the bundled gateway (on exit, or when switching to a remote one).
    pub async fn stop_bundled(&mut self) {
        if let Some(bundled) = self.bundled.take() {
            let _ = bundled.running.shutdown().await;
            self.status.running = false;
            log::info!("bundled gateway stopped");
        }
    }

    async fn start_bundled(&mut self, settings: &Settings, key: Option<(String, String, u64)>) {
        let mut config = GatewayConfig::local(&self.data_dir);
        // Without a service URL the bundled gateway resolves speakers with its built-in engine.
        config.inference = settings.inference_config();
        let config_has_service = config.inference.is_some();
        // One session writes one frame a second here, and the recorder deletes its spooled
        // copy on the ACK: the ACK must survive the laptop's battery dying.
        config.durability = Durability::Power;
        self.status = GatewayStatus {
            mode: GatewayMode::Bundled,
            url: None,
            running: false,
            inference_configured: None,
            data_dir: Some(super::paths::shown(&self.data_dir)),
            error: None,
        };
        match BundledGateway::start(config).await {
            Ok(running) => {
                if let Some(key) = running.endpoint().api_key() {
                    logs::hide_secret(key);
                }
                log::info!(
                    "bundled gateway started on {} (data in the app's data folder, speakers \
                     named by {})",
                    running.http_url(),
                    if config_has_service {
                        "the inference service in the settings"
                    } else {
                        "the built-in engine"
                    }
                );
                self.status.url = Some(running.http_url());
                self.status.running = true;
                self.status.inference_configured = Some(running.inference_configured());
                self.bundled = Some(Bundled {
                    running,
                    inference_key: key,
                });
            }
            Err(e) => {
                log::error!("the bundled gateway did not start: {e:#}");
                self.status.error = Some(format!("the bundled gateway did not start: {e:#}"));
            }
        }
    }

    async fn check_remote(&mut self, settings: &Settings) {
        self.status = GatewayStatus {
            mode: GatewayMode::Remote,
            url: Some(settings.gateway.remote_url.clone()),
            running: false,
            inference_configured: None,
            data_dir: None,
            error: None,
        };
        let endpoint = match settings.remote_endpoint() {
            Ok(endpoint) => endpoint,
            Err(e) => {
                self.remote = None;
                self.status.error = Some(e.to_string());
                return;
            }
        };
        match health(&endpoint).await {
            Ok(inference) => {
                self.status.running = true;
                self.status.inference_configured = inference;
            }
            Err(e) => self.status.error = Some(e),
        }
        // Kept even when unreachable: the recorder spools and retries until it comes back.
        self.remote = Some(endpoint);
    }
}

/// `GET /health` of a gateway: whether inference is configured, if it says.
async fn health(endpoint: &GatewayEndpoint) -> Result<Option<bool>, String> {
    let mut url = endpoint.base().clone();
    url.path_segments_mut()
        .map_err(|_| "the gateway URL cannot have a path".to_owned())?
        .pop_if_empty()
        .push("health");
    let answer = recorder::endpoint::http_client()
        .get(url)
        .timeout(Duration::from_secs(4))
        .send()
        .await
        .map_err(|e| format!("the gateway at {} does not answer: {e}", endpoint.base()))?;
    if !answer.status().is_success() {
        return Err(format!(
            "the gateway at {} answered HTTP {}",
            endpoint.base(),
            answer.status().as_u16()
        ));
    }
    let body: serde_json::Value = answer
        .json()
        .await
        .map_err(|e| format!("the gateway's /health answer is not JSON: {e}"))?;
    Ok(body.get("inference_configured").and_then(|v| v.as_bool()))
}
