//! The headless server: configuration, the router, start and graceful shutdown.

mod accept;
mod auth;
mod browser;
mod error;
mod extract;
mod history;
mod log;
mod metrics;
mod open_sockets;
mod ready;
mod retention;
mod routes;
mod socket_auth;
mod wav;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::inference::{Inference, InferenceConfig, InferenceMode};
use crate::sessions::Sessions;
use crate::storage::{Database, Durability, FrameStore, Objects};
use metrics::Metrics;
use open_sockets::{AllClosed, OpenSockets, open_sockets};
use ready::Readiness;

/// How long shutdown waits for open sockets to send their close frames.
const SOCKET_CLOSE_DEADLINE: Duration = Duration::from_secs(5);

pub use accept::HEADER_READ_TIMEOUT;
pub use auth::generate_key;
pub use error::ApiError;
pub use extract::BODY_READ_TIMEOUT;
pub use socket_auth::AUTH_DEADLINE;

/// Everything the gateway needs to run; the CLI fills it from flags and env.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// SQLite lives here, and objects too unless `objects` says otherwise.
    pub data_dir: PathBuf,
    /// A directory or `s3://bucket`; `None` is `<data_dir>/objects`.
    pub objects: Option<String>,
    pub api_key: Option<String>,
    /// Web origins (`https://app.example.com`) allowed to open sockets and send writes; a
    /// request from any other page is refused (README, Security).
    pub allow_origins: Vec<String>,
    /// The external inference service, when one is configured.
    pub inference: Option<InferenceConfig>,
    /// Which engine resolves speakers; `Auto` is the service above when set, else built-in.
    pub inference_mode: InferenceMode,
    /// A GE2E-compatible safetensors file to use instead of the shipped speaker model.
    pub speaker_model: Option<PathBuf>,
    /// How long an unused session actor lives before it is dropped from memory.
    pub idle_timeout: Duration,
    /// What an ACK promises: see [`Durability`].
    pub durability: Durability,
    /// How a local objects directory stores frames.
    pub frame_store: FrameStore,
    /// Delete sessions whose latest update is older than this, at startup and then every
    /// hour; `None` keeps them (the bundled gateway never sets it).
    pub retention: Option<Duration>,
    /// Open connections one client address may hold (0: no cap); see `accept.rs`.
    pub max_connections_per_client: usize,
    /// Live sessions one client address may have started (0: no cap); see `actor.rs`.
    pub max_sessions_per_client: usize,
}

impl GatewayConfig {
    /// What is insecure about this configuration: a non-loopback listener without a key.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.listen.ip().is_loopback() && self.api_key.is_none() {
            warnings.push(format!(
                "listening on {} without an API key: anyone who can reach this address can stream into, read and finalize any session; set GATEWAY_API_KEY (or GATEWAY_API_KEY_FILE)",
                self.listen
            ));
        }
        warnings
    }

    /// Loopback on a free port, local objects under `data_dir`, no key, the built-in engine.
    pub fn local(data_dir: impl Into<PathBuf>) -> GatewayConfig {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            objects: None,
            api_key: None,
            allow_origins: Vec::new(),
            inference: None,
            inference_mode: InferenceMode::Auto,
            speaker_model: None,
            idle_timeout: Duration::from_secs(60),
            durability: Durability::Process,
            frame_store: FrameStore::Log,
            retention: None,
            max_connections_per_client: crate::core::caps::MAX_CONNECTIONS_PER_CLIENT,
            max_sessions_per_client: crate::core::caps::MAX_LIVE_SESSIONS_PER_CLIENT,
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub sessions: Sessions,
    pub api_key: Option<Arc<str>>,
    /// Flips to true when the server stops; open sockets close themselves.
    pub stopping: watch::Receiver<bool>,
    /// Held by every open socket, so shutdown can wait for their close frames to leave.
    pub sockets: OpenSockets,
    /// What a request from a web page may do.
    pub browser: Arc<browser::BrowserPolicy>,
    /// The counters `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// What `/ready` touches.
    pub readiness: Arc<Readiness>,
}

/// A gateway serving in this process.
pub struct RunningGateway {
    addr: SocketAddr,
    storage: String,
    /// The engine, as the startup line names it.
    inference: String,
    inference_configured: bool,
    /// Insecure settings the operator should hear about at startup.
    warnings: Vec<String>,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    sessions: Sessions,
    sockets_closed: AllClosed,
}

impl RunningGateway {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT`
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Whether `/resolve` can answer (an engine runs and is available).
    pub fn inference_configured(&self) -> bool {
        self.inference_configured
    }

    /// The line the binary prints when it is ready.
    pub fn startup_line(&self) -> String {
        format!(
            "gateway listening on http://{} | storage: {} | inference: {}",
            self.addr, self.storage, self.inference
        )
    }

    /// What is insecure about this configuration, one sentence each (printed at startup).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Stops accepting, closes open sockets after the message each is handling, waits for
    /// in-flight requests, and returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        let served = self
            .task
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        // Open sockets close themselves on the stop signal; wait for their close frames to
        // leave. The deadline keeps a peer that stopped reading from holding the stop.
        if tokio::time::timeout(SOCKET_CLOSE_DEADLINE, self.sockets_closed.wait())
            .await
            .is_err()
        {
            tracing::warn!("sockets still closing at the shutdown deadline");
        }
        self.sessions.close();
        served
    }
}

/// Opens storage, binds the address and starts serving.
pub async fn start(config: GatewayConfig) -> anyhow::Result<RunningGateway> {
    let database = Database::open(&config.data_dir, config.durability)?;
    let objects = match &config.objects {
        Some(spec) => Objects::from_spec(spec, config.durability, config.frame_store, &database)?,
        None => Objects::local(
            &config.data_dir.join("objects"),
            config.durability,
            config.frame_store,
            &database,
        )?,
    };
    // Segments left without a live frame (deleted sessions, a crash between a frame's write
    // and its index row) go before the first write.
    objects.reclaim().await?;
    let readiness = Readiness::new(
        database.clone(),
        config.data_dir.join(crate::storage::database::FILE_NAME),
        objects.clone(),
    );
    let storage = format!(
        "{} (durability: {})",
        objects.description(),
        config.durability.as_str()
    );
    let inference = Inference::start(
        config.inference_mode,
        config.inference.clone(),
        config.speaker_model.clone(),
    );
    let inference_line = inference.describe();
    let inference_configured = inference.is_configured();
    let sessions = Sessions::new(
        database,
        objects,
        inference,
        config.idle_timeout,
        config.max_sessions_per_client,
    );
    let (stop, stopping) = watch::channel(false);
    if let Some(max_age) = config.retention {
        // The first sweep is over before anyone can connect; the next ones run meanwhile.
        retention::sweep(&sessions, max_age).await;
        tokio::spawn(retention::every(
            sessions.clone(),
            max_age,
            stopping.clone(),
        ));
    }
    let (sockets, sockets_closed) = open_sockets();
    let state = AppState {
        sessions: sessions.clone(),
        api_key: config.api_key.as_deref().map(Arc::from),
        stopping: stopping.clone(),
        sockets,
        browser: Arc::new(browser::BrowserPolicy::new(
            config.listen.ip().is_loopback(),
            &config.allow_origins,
        )),
        metrics: Arc::default(),
        readiness: Arc::new(readiness),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = router(state);
    let task = tokio::spawn(accept::serve(
        listener,
        app,
        stopping,
        config.max_connections_per_client,
    ));
    let warnings = config.warnings();
    Ok(RunningGateway {
        addr,
        storage,
        inference: inference_line,
        inference_configured,
        warnings,
        stop,
        task,
        sessions,
        sockets_closed,
    })
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(routes::health))
        .route("/ready", get(ready::ready))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/audio/ws/{session_id}", get(ws::upgrade))
        .route("/v1/sessions", get(history::list))
        .route(
            "/v1/sessions/{session_id}",
            axum::routing::delete(history::delete),
        )
        .route("/v1/sessions/{session_id}/result", get(history::result))
        .route("/v1/sessions/{session_id}/resolve", post(routes::resolve))
        .route("/v1/sessions/{session_id}/state", get(routes::state))
        .route("/v1/sessions/{session_id}/finalize", post(routes::finalize))
        .route("/v1/sessions/{session_id}/bindings", put(routes::bind))
        .route("/v1/sessions/{session_id}/audio.wav", get(wav::audio))
        .route("/speaker/resolve", post(routes::speaker_service))
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        // Before the key: a page's request is refused the same with or without one.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            browser::refuse_browsers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_storage_errors,
        ))
        .layer(axum::middleware::from_fn(log::log_request))
        .layer(axum::extract::DefaultBodyLimit::max(
            extract::MAX_BODY_BYTES,
        ))
        .with_state(state)
}
