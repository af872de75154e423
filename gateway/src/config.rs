//! `gateway serve` settings: every one is a flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::inference::{DEFAULT_RESOLVE_PATH, DEFAULT_TIMEOUT_MS, InferenceConfig, InferenceMode};
use crate::server::GatewayConfig;
use crate::storage::{Durability, FrameStore};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the startup line says which).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Directory for the SQLite database and, by default, the objects. Default: the directory
    /// systemd made for the service (`StateDirectory=`, given as $STATE_DIRECTORY), else
    /// `gateway-data` in the current directory. Made absolute at startup.
    #[arg(long, env = "GATEWAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where frames and results go: a directory, or s3://BUCKET (uses AWS_ENDPOINT, AWS_REGION,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Default: `<data dir>/objects`.
    #[arg(long, env = "GATEWAY_OBJECTS")]
    pub objects: Option<String>,
    /// Require this key (x-api-key or Authorization: Bearer) on every route but /health.
    #[arg(long, env = "GATEWAY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Read the API key from this file (so it does not show in `ps` or the environment).
    #[arg(long, env = "GATEWAY_API_KEY_FILE", conflicts_with = "api_key")]
    pub api_key_file: Option<PathBuf>,
    /// Web origins allowed to open the socket and send writes (comma-separated, e.g.
    /// `https://app.example.com`); requests from any other web page are refused with 403.
    #[arg(
        long = "allow-origin",
        env = "GATEWAY_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,
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
    /// Read the inference service's key from this file.
    #[arg(
        long,
        env = "INFERENCE_API_KEY_FILE",
        conflicts_with = "inference_api_key"
    )]
    pub inference_api_key_file: Option<PathBuf>,
    /// Inference request timeout in milliseconds.
    #[arg(long, env = "INFERENCE_TIMEOUT_MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub inference_timeout_ms: u64,
    /// Path of the resolve endpoint on the inference service.
    #[arg(long, env = "INFERENCE_RESOLVE_PATH", default_value = DEFAULT_RESOLVE_PATH)]
    pub inference_resolve_path: String,
    /// What an ACK promises: power (frame and counters on stable storage, fsynced, before the
    /// ACK) or process (they survive the gateway being killed, not a power cut).
    #[arg(long, env = "GATEWAY_DURABILITY", value_enum, default_value_t = Durability::Process)]
    pub durability: Durability,
    /// How a local objects directory stores frames: log (appended to a few large segment
    /// files, many frames per write and sync) or files (one file per frame, the older design).
    /// Either way every frame reads back at its key; a bucket always has one object per key.
    #[arg(long, env = "GATEWAY_FRAME_STORE", value_enum, default_value_t = FrameStore::Log)]
    pub frame_store: FrameStore,
    /// Seconds an unused session stays in memory.
    #[arg(long, env = "GATEWAY_IDLE_SECS", default_value_t = 60)]
    pub idle_secs: u64,
    /// Delete sessions (objects, state, events) whose latest update is older than this many
    /// days, at startup and then hourly. Off unless set.
    #[arg(long, env = "GATEWAY_RETENTION_DAYS", value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub retention_days: Option<u64>,
    /// Most connections (HTTP and sockets) one client address may hold open at once; a further
    /// one is answered 429 and closed. 0: no cap.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS_PER_CLIENT", default_value_t = crate::core::caps::MAX_CONNECTIONS_PER_CLIENT)]
    pub max_connections_per_client: usize,
    /// Most sessions one client address may keep live at once (started by its sockets or its
    /// resolve, binding or finalize calls); one more is answered 429 (a socket: an error and
    /// close code 1013). An idle session leaves memory after --idle-secs. 0: no cap.
    #[arg(long, env = "GATEWAY_MAX_SESSIONS_PER_CLIENT", default_value_t = crate::core::caps::MAX_LIVE_SESSIONS_PER_CLIENT)]
    pub max_sessions_per_client: usize,
}

impl ServeArgs {
    /// The settings as the server takes them; fails when a key file cannot be read.
    pub fn into_config(self) -> anyhow::Result<GatewayConfig> {
        let api_key = secret(
            self.api_key,
            self.api_key_file.as_deref(),
            "GATEWAY_API_KEY_FILE",
        )?;
        let inference_api_key = secret(
            self.inference_api_key,
            self.inference_api_key_file.as_deref(),
            "INFERENCE_API_KEY_FILE",
        )?;
        let inference = self
            .inference_base_url
            .filter(|url| !url.trim().is_empty())
            .map(|base_url| InferenceConfig {
                base_url,
                api_key: inference_api_key,
                timeout: Duration::from_millis(self.inference_timeout_ms),
                resolve_path: self.inference_resolve_path,
            });
        let data_dir = data_dir(self.data_dir, std::env::var_os(STATE_DIRECTORY_ENV))?;
        Ok(GatewayConfig {
            listen: self.listen,
            data_dir,
            objects: self.objects.filter(|o| !o.is_empty()),
            api_key,
            allow_origins: self.allow_origins,
            inference,
            inference_mode: self.inference,
            speaker_model: self.speaker_model,
            idle_timeout: Duration::from_secs(self.idle_secs.max(1)),
            durability: self.durability,
            frame_store: self.frame_store,
            retention: self
                .retention_days
                .map(|days| Duration::from_secs(days * 24 * 3600)),
            max_connections_per_client: self.max_connections_per_client,
            max_sessions_per_client: self.max_sessions_per_client,
        })
    }
}

pub use contract::secret::secret;

/// Set by systemd for a unit with `StateDirectory=` (`/var/lib/<name>`, owned by the service's
/// user; several directories are separated by `:`).
pub const STATE_DIRECTORY_ENV: &str = "STATE_DIRECTORY";

/// The default data directory of a gateway started by hand: beside where it was started.
pub const DEFAULT_DATA_DIR: &str = "gateway-data";

/// Where the data goes: the given directory, else systemd's state directory for the service,
/// else [`DEFAULT_DATA_DIR`]; always absolute, so the startup line and the logs say exactly
/// where, and nothing depends on the working directory after startup. The bundled gateway
/// does not come through here (the app passes its own data directory).
pub fn data_dir(
    given: Option<PathBuf>,
    state_directory: Option<std::ffi::OsString>,
) -> anyhow::Result<PathBuf> {
    let chosen = given
        .filter(|dir| !dir.as_os_str().is_empty())
        .or_else(|| {
            let dirs = state_directory?.into_string().ok()?;
            let first = dirs.split(':').next()?.trim();
            (!first.is_empty()).then(|| PathBuf::from(first))
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    std::path::absolute(&chosen).map_err(|e| {
        anyhow::anyhow!(
            "cannot resolve the data directory {}: {e}",
            chosen.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<GatewayConfig> {
        let mut argv = vec!["gateway"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.serve.into_config()
    }

    #[test]
    fn keys_come_from_files_without_their_newline() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "s3cret\n").unwrap();
        let config = parse(&[
            "--api-key-file",
            key.to_str().unwrap(),
            "--inference-base-url",
            "http://127.0.0.1:9",
            "--inference-api-key-file",
            key.to_str().unwrap(),
        ])
        .unwrap();
        assert_eq!(config.api_key.as_deref(), Some("s3cret"));
        assert_eq!(config.inference.unwrap().api_key.as_deref(), Some("s3cret"));

        std::fs::write(&key, "\n").unwrap();
        let err = parse(&["--api-key-file", key.to_str().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("GATEWAY_API_KEY_FILE"), "{err}");
        let missing = dir.path().join("missing");
        let err = parse(&["--api-key-file", missing.to_str().unwrap()]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read GATEWAY_API_KEY_FILE"),
            "{err}"
        );
        assert!(parse(&["--api-key", "a", "--api-key-file", "b"]).is_err());
    }

    #[test]
    fn the_data_directory_is_absolute_and_defaults_to_systemds_state_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            data_dir(None, None).unwrap(),
            cwd.join(DEFAULT_DATA_DIR),
            "run by hand: beside where it was started, made absolute"
        );
        assert_eq!(
            data_dir(None, Some("/var/lib/interview-gateway".into())).unwrap(),
            PathBuf::from("/var/lib/interview-gateway")
        );
        assert_eq!(
            data_dir(None, Some("/var/lib/a:/var/lib/b".into())).unwrap(),
            PathBuf::from("/var/lib/a"),
            "the first of several state directories"
        );
        assert_eq!(
            data_dir(
                Some(PathBuf::from("here")),
                Some("/var/lib/interview-gateway".into())
            )
            .unwrap(),
            cwd.join("here"),
            "a given directory wins over systemd's"
        );
        assert_eq!(
            data_dir(None, Some("".into())).unwrap(),
            cwd.join(DEFAULT_DATA_DIR)
        );
        assert!(parse(&["--data-dir", "x"]).unwrap().data_dir.is_absolute());
    }

    #[test]
    fn allowed_origins_are_a_comma_separated_list() {
        let config = parse(&["--allow-origin", "https://a.example,https://b.example"]).unwrap();
        assert_eq!(
            config.allow_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn retention_is_off_by_default_and_counted_in_whole_days() {
        assert_eq!(parse(&[]).unwrap().retention, None);
        let config = parse(&["--retention-days", "2"]).unwrap();
        assert_eq!(config.retention, Some(Duration::from_secs(2 * 86_400)));
        assert!(parse(&["--retention-days", "0"]).is_err());
    }

    #[test]
    fn a_public_listener_without_a_key_is_warned_about() {
        let open = parse(&["--listen", "0.0.0.0:8787"]).unwrap();
        assert!(
            open.warnings()[0].contains("without an API key"),
            "{:?}",
            open.warnings()
        );
        let keyed = parse(&["--listen", "0.0.0.0:8787", "--api-key", "k"]).unwrap();
        assert!(keyed.warnings().is_empty());
        assert!(parse(&[]).unwrap().warnings().is_empty());
    }
}
