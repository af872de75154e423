//! The `gateway` binary: `serve` runs the headless server; `bench` measures one.

use clap::{Parser, Subcommand};

use gateway::bench::BenchArgs;
use gateway::config::ServeArgs;
use gateway::logs::{self, LogFormat};

#[derive(Parser)]
#[command(name = "gateway", version, about = "Interview recorder gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on stderr look: text, or json (one object per line, for log shippers).
    #[arg(long, global = true, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
// Parsed once at startup; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the gateway server until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Start a gateway as a child process, load it with concurrent sessions, print figures.
    Bench(BenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logs::init(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(args, cli.log_format).await,
        Command::Bench(args) => gateway::bench::run(args).await,
    }
}

async fn serve(args: ServeArgs, log_format: LogFormat) -> anyhow::Result<()> {
    gateway::limits::raise_open_files();
    let gateway = gateway::server::start(args.into_config()?).await?;
    for warning in gateway.warnings() {
        logs::say(log_format, true, warning);
    }
    // The handlers are in place before the startup line tells anyone to connect: a SIGTERM
    // right after it must stop the gateway gracefully, not kill it.
    let stop = stop_signal();
    println!("{}", gateway.startup_line());
    if log_format == LogFormat::Json {
        // The startup line is stdout's contract; the log gets it too, as a JSON line.
        tracing::info!("{}", gateway.startup_line());
    }
    stop.await;
    logs::say(log_format, false, "gateway stopping");
    gateway.shutdown().await?;
    Ok(())
}

/// Installs the SIGINT/SIGTERM handlers now and returns a future that ends on either.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
