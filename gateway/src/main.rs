//! The `gateway` binary: `serve` runs the headless server; `bench` measures one.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use gateway::bench::BenchArgs;
use gateway::config::ServeArgs;

#[derive(Parser)]
#[command(name = "gateway", version, about = "Interview recorder gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Bench(args) => gateway::bench::run(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    gateway::limits::raise_open_files();
    let gateway = gateway::server::start(args.into_config()?).await?;
    for warning in gateway.warnings() {
        eprintln!("warning: {warning}");
    }
    // The handlers are in place before the startup line tells anyone to connect: a SIGTERM
    // right after it must stop the gateway gracefully, not kill it.
    let stop = stop_signal();
    println!("{}", gateway.startup_line());
    stop.await;
    eprintln!("gateway stopping");
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
