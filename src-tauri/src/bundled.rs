//! The gateway the app bundles: the `gateway` library in this process, with a key made for
//! this launch.
//!
//! The bundled gateway listens on loopback, where any program of any local user — and any web
//! page, through the browser — can reach it. So each start draws a fresh random API key from the
//! operating system's CSPRNG and hands it only to the [`GatewayEndpoint`] it returns; the app's
//! uplink, resolver, bindings and finalize all go through that endpoint, so they carry the key
//! and nobody else has it. It is never written to disk or shown.

use gateway::server::{GatewayConfig, RunningGateway};

use crate::endpoint::GatewayEndpoint;

/// A running bundled gateway and the only endpoint that can use it.
pub struct BundledGateway {
    running: RunningGateway,
    endpoint: GatewayEndpoint,
}

impl BundledGateway {
    /// Starts a gateway with `config`, whose `api_key` is replaced by a fresh random one.
    pub async fn start(mut config: GatewayConfig) -> anyhow::Result<BundledGateway> {
        let key = gateway::server::generate_key();
        config.api_key = Some(key.clone());
        let running = gateway::server::start(config).await?;
        let endpoint = GatewayEndpoint::parse(&running.http_url(), Some(key))?;
        Ok(BundledGateway { running, endpoint })
    }

    /// Where the app streams and calls, with this launch's key.
    pub fn endpoint(&self) -> &GatewayEndpoint {
        &self.endpoint
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> String {
        self.running.http_url()
    }

    /// Whether `/resolve` can answer.
    pub fn inference_configured(&self) -> bool {
        self.running.inference_configured()
    }

    /// Stops it (see [`RunningGateway::shutdown`]).
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.running.shutdown().await
    }
}
