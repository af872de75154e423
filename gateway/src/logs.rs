//! Where the binary's log lines go and how they look: `--log-format text` (the default, for a
//! terminal) or `json` (one JSON object per line, for a log shipper). Either way they go to
//! stderr through `tracing`, filtered by `RUST_LOG` (default `info`); stdout keeps only the
//! startup line.

use tracing_subscriber::EnvFilter;

/// How log lines are written (`--log-format`, `GATEWAY_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp` (RFC 3339, UTC), `level`, `target`, `message`
    /// and the event's fields at the top level (e.g. `method`, `path`, `status`, `ms`).
    Json,
}

/// Installs the process's log subscriber; call once, before anything logs.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// Tells the operator something at startup or shutdown: in the log's own format when it is
/// JSON (so every stderr line parses), as a plain `warning: ...` line otherwise.
pub fn say(format: LogFormat, warning: bool, text: &str) {
    match (format, warning) {
        (LogFormat::Json, true) => tracing::warn!("{text}"),
        (LogFormat::Json, false) => tracing::info!("{text}"),
        (LogFormat::Text, true) => eprintln!("warning: {text}"),
        (LogFormat::Text, false) => eprintln!("{text}"),
    }
}
