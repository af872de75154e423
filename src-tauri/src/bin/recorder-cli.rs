//! `recorder-cli`: the recorder engine from a terminal, no display needed.
//!
//! `devices` lists inputs (and the outputs whose audio `--system` can record); `stream` records
//! from a device, a WAV file or a tone to a gateway — and, with `--system`, the meeting audio as
//! the session's second stream — with live counters on one line; `finalize` asks the gateway to
//! write the session's result.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use contract::protocol::RosterEntry;
use recorder::endpoint::GatewayEndpoint;
use recorder::engine::{self, Recorder, RecorderConfig, ResolveSettings};
use recorder::events::{ConnectionState, ErrorOrigin, Event, UplinkCounters};
use recorder::source::{self, InputSpec, Pacing};
use recorder::stream::Stream;
use tokio::sync::broadcast::error::RecvError;

#[derive(Parser)]
#[command(
    name = "recorder-cli",
    version,
    about = "Record audio and stream it to the gateway",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Shown under every `--help`.
const EXIT_CODES: &str = "Exit codes:
  0    done: every frame reached the gateway (or the command succeeded)
  1    an error (the message says which)
  3    stream/send: frames are still held in the spool (the gateway did not take them in time);
       `recorder-cli send` delivers them later
  4    stream: an input (the microphone, a file, or the meeting audio) failed mid-recording;
       what it gave before reached the gateway (the message says which input and why)
  130  stream: stopped by a second Ctrl-C before the spool drained; the frames stay in the
       spool for `recorder-cli send`";

/// An input failed mid-recording (a microphone unplugged, a file cut short).
const INPUT_LOST: u8 = 4;
/// A second Ctrl-C: stop at once, leaving what is unsent in the spool.
const INTERRUPTED: u8 = 130;

#[derive(Subcommand)]
enum Command {
    /// List audio input devices and their configurations, and the outputs `--system` can record.
    Devices,
    /// Record from an input and stream it to the gateway until it ends or Ctrl-C.
    #[command(after_help = EXIT_CODES)]
    Stream(StreamArgs),
    /// Send the audio a recording of the session left in its spools (the gateway was
    /// unreachable), without recording. Exit code 3 when frames are still held at the end.
    #[command(after_help = EXIT_CODES)]
    Send {
        /// Gateway base URL, e.g. http://127.0.0.1:8787.
        #[arg(long, env = "RECORDER_GATEWAY")]
        gateway: String,
        /// Session id whose spool to send.
        #[arg(long)]
        session: String,
        #[command(flatten)]
        key: KeyArgs,
        /// Root of the session spools.
        #[arg(long, env = "RECORDER_SPOOL_DIR", default_value = "recorder-spool")]
        spool_dir: PathBuf,
        /// Seconds each stream may take to deliver what it holds.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Write the session's result.json on the gateway.
    #[command(after_help = EXIT_CODES)]
    Finalize {
        /// Gateway base URL, e.g. http://127.0.0.1:8787.
        #[arg(long, env = "RECORDER_GATEWAY")]
        gateway: String,
        /// Session id to finalize.
        #[arg(long)]
        session: String,
        #[command(flatten)]
        key: KeyArgs,
    },
}

/// The gateway's API key, given directly or as a file (so it does not show in `ps`).
#[derive(clap::Args)]
struct KeyArgs {
    /// The gateway's API key (prefer --api-key-file: a key on the command line shows in `ps`).
    #[arg(long, env = "RECORDER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Read the API key from this file.
    #[arg(long, env = "RECORDER_API_KEY_FILE", conflicts_with = "api_key")]
    api_key_file: Option<PathBuf>,
}

impl KeyArgs {
    fn key(self) -> anyhow::Result<Option<String>> {
        contract::secret::secret(
            self.api_key,
            self.api_key_file.as_deref(),
            "RECORDER_API_KEY_FILE",
        )
    }
}

#[derive(clap::Args)]
struct StreamArgs {
    /// Gateway base URL, e.g. http://127.0.0.1:8787.
    #[arg(long, env = "RECORDER_GATEWAY")]
    gateway: String,
    /// Session id (1..128 characters).
    #[arg(long)]
    session: String,
    /// `default`, a device name, a .wav file (or `file:PATH`), or `tone:FREQ`.
    #[arg(long, default_value = "default")]
    input: String,
    /// Also record the system (meeting) audio as the session's `system` stream: `default` (what
    /// the default output plays), an output's name, a .wav file (or `file:PATH`), or
    /// `tone:FREQ`. Off unless given.
    #[arg(long, conflicts_with = "no_system")]
    system: Option<String>,
    /// Record the microphone alone (the default).
    #[arg(long)]
    no_system: bool,
    /// Tone length; for devices and files, stop after this many seconds of wall clock.
    #[arg(long)]
    duration: Option<f64>,
    /// Pace files and tones like a live microphone (the default).
    #[arg(long, conflicts_with = "fast")]
    realtime: bool,
    /// Read files and tones as fast as possible.
    #[arg(long)]
    fast: bool,
    #[command(flatten)]
    key: KeyArgs,
    /// Seconds between speaker resolutions; 0 turns resolution off.
    #[arg(long, default_value_t = 5.0)]
    resolve_every: f64,
    /// Seconds of audio per resolution (at most 30).
    #[arg(long, default_value_t = 10.0)]
    resolve_window: f64,
    /// Expected speakers, comma-separated.
    #[arg(long, value_delimiter = ',')]
    roster: Vec<String>,
    /// Root of the session spools (unsent frames and the local WAV copy).
    #[arg(long, env = "RECORDER_SPOOL_DIR", default_value = "recorder-spool")]
    spool_dir: PathBuf,
    /// Seconds to wait for the gateway to ACK everything after the audio ends.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Devices => devices(),
            Command::Stream(args) => stream(args).await,
            Command::Send {
                gateway,
                session,
                key,
                spool_dir,
                timeout,
            } => {
                let endpoint = GatewayEndpoint::parse(&gateway, key.key()?)?;
                let timeout = seconds(timeout, "--timeout")?;
                let delivered =
                    engine::deliver_held(&endpoint, &spool_dir, &session, timeout).await?;
                let mut all = true;
                for d in &delivered {
                    println!(
                        "{}: {} frames held, {} delivered (stored {}, duplicate {}), {} still held",
                        d.stream,
                        d.held,
                        d.counters.acked,
                        d.counters.stored,
                        d.counters.duplicate,
                        d.counters.pending
                    );
                    all &= d.drained;
                }
                Ok(if all {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                })
            }
            Command::Finalize {
                gateway,
                session,
                key,
            } => {
                let endpoint = GatewayEndpoint::parse(&gateway, key.key()?)?;
                let answer = engine::finalize(&endpoint, &session).await?;
                println!(
                    "finalized {}: {} ({} events) at {}",
                    answer.session_id, answer.result_key, answer.event_count, answer.finalized_at
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

fn devices() -> anyhow::Result<ExitCode> {
    let outputs = source::system::list_outputs();
    let devices = source::list_devices()?;
    if devices.is_empty() {
        println!("no input devices");
    }
    for d in devices {
        println!(
            "{}{}",
            d.name,
            if d.is_default { "  (default)" } else { "" }
        );
        for c in d.configs {
            println!(
                "    {} ch, {}–{} Hz, {}",
                c.channels, c.min_rate, c.max_rate, c.sample_format
            );
        }
    }
    match outputs {
        Ok(outputs) => {
            println!("system audio (--system NAME) of the outputs:");
            for name in outputs {
                println!("    {name}");
            }
        }
        Err(e) => println!("system audio: not available ({e})"),
    }
    Ok(ExitCode::SUCCESS)
}

fn seconds(value: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{what} must be a number of seconds ≥ 0"))
}

async fn stream(args: StreamArgs) -> anyhow::Result<ExitCode> {
    let endpoint = GatewayEndpoint::parse(&args.gateway, args.key.key()?)?;
    let input: InputSpec = args.input.parse()?;
    let mut config = RecorderConfig::new(endpoint, &args.session, input, &args.spool_dir);
    config.system = match (&args.system, args.no_system) {
        (Some(spec), false) => Some(spec.parse::<InputSpec>()?),
        _ => None,
    };
    config.pacing = if args.fast {
        Pacing::AsFastAsPossible
    } else {
        Pacing::RealTime
    };
    config.duration = args
        .duration
        .map(|d| seconds(d, "--duration"))
        .transpose()?;
    config.resolve = (args.resolve_every > 0.0)
        .then(|| -> anyhow::Result<ResolveSettings> {
            Ok(ResolveSettings {
                every: seconds(args.resolve_every, "--resolve-every")?,
                window: seconds(args.resolve_window, "--resolve-window")?,
                roster: args
                    .roster
                    .iter()
                    .map(|n| n.trim())
                    .filter(|n| !n.is_empty())
                    .map(|name| RosterEntry {
                        name: name.to_owned(),
                        email: None,
                    })
                    .collect(),
                asr_text: None,
            })
        })
        .transpose()?;
    let drain = seconds(args.drain_timeout, "--drain-timeout")?;

    let mut handle = Recorder::start_checked(config).await?;
    let mut events = handle.subscribe();
    eprintln!(
        "recording session {:?} to {}; spool {}{}",
        args.session,
        args.gateway,
        handle.session_dir().display(),
        if handle.first_seq() > 1 {
            format!("; resuming at seq {}", handle.first_seq())
        } else {
            String::new()
        }
    );
    let mut line = Line::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = handle.audio_finished() => break,
            _ = tokio::signal::ctrl_c() => { line.note("stopping…"); break; }
            _ = ticker.tick() => line.draw(),
            event = events.recv() => match event {
                Ok(event) => line.on_event(event),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
        }
    }
    // Keep drawing while the spool drains; a second Ctrl-C stops waiting (the frames are on
    // disk in the spool either way).
    let stop = handle.stop(drain);
    tokio::pin!(stop);
    let summary = loop {
        tokio::select! {
            summary = &mut stop => break summary,
            _ = tokio::signal::ctrl_c() => {
                line.note(&format!(
                    "stopped before the gateway took everything: {} frames stay in the spool \
                     (recorder-cli send --session {} delivers them)",
                    line.counters.pending, args.session
                ));
                return Ok(ExitCode::from(INTERRUPTED));
            }
            _ = ticker.tick() => line.draw(),
            event = events.recv() => if let Ok(event) = event { line.on_event(event) },
        }
    };
    line.counters = summary.uplink.clone();
    if let Some(system) = &summary.system {
        line.system = Some(system.uplink.clone());
    }
    line.draw_now();
    if line.terminal {
        eprintln!();
    }
    let u = &summary.uplink;
    println!(
        "session {}: {} frames ({:.1} s of audio), last seq {}; sent {} (resent {}), acked {} \
         (stored {}, duplicate {}), errors {}, rejected {}, reconnects {}; gateway missing {}; \
         ack latency avg {} ms, p99 {} ms; local copy {}",
        summary.session_id,
        summary.frames,
        summary.samples as f64 / 16_000.0,
        summary.last_seq,
        u.sent,
        u.resent,
        u.acked,
        u.stored,
        u.duplicate,
        u.errors,
        u.rejected,
        u.reconnects,
        u.gateway_missing,
        fmt_ms(u.latency.avg_ms),
        fmt_ms(u.latency.p99_ms),
        summary.local_copy.as_deref().unwrap_or("-"),
    );
    if let Some(system) = &summary.system {
        let u = &system.uplink;
        println!(
            "system audio: {} frames ({:.1} s of audio), last seq {}; sent {} (resent {}), acked \
             {} (stored {}, duplicate {}), errors {}, rejected {}, reconnects {}; gateway missing \
             {}; local copy {}{}",
            system.frames,
            system.samples as f64 / 16_000.0,
            system.last_seq,
            u.sent,
            u.resent,
            u.acked,
            u.stored,
            u.duplicate,
            u.errors,
            u.rejected,
            u.reconnects,
            u.gateway_missing,
            system.local_copy.as_deref().unwrap_or("-"),
            system
                .error
                .as_deref()
                .map_or(String::new(), |e| format!("; stopped early: {e}")),
        );
    }
    if let Some(lost) = &line.input_lost {
        eprintln!("recording incomplete: {lost}");
    }
    if summary.drained {
        // A script must see that the recording ended early even though all of it arrived.
        Ok(match line.input_lost {
            Some(_) => ExitCode::from(INPUT_LOST),
            None => ExitCode::SUCCESS,
        })
    } else {
        let pending = u.pending + summary.system.as_ref().map_or(0, |s| s.uplink.pending);
        eprintln!(
            "{pending} frames are still held in {}; run the same command again to send them",
            handle_dir(&args.spool_dir, &args.session)
        );
        Ok(ExitCode::from(3))
    }
}

fn handle_dir(root: &std::path::Path, session: &str) -> String {
    engine::session_dir(root, session)
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

fn fmt_ms(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.1}"))
}

/// The one-line live display.
/// The live counters: one line redrawn in place on a terminal; elsewhere (a log file, a
/// pipe) plain lines, one every [`PLAIN_EVERY`], without terminal control codes.
struct Line {
    /// The mic's.
    counters: UplinkCounters,
    /// The system stream's, once it reported.
    system: Option<UplinkCounters>,
    state: String,
    level: Option<f32>,
    terminal: bool,
    /// When the last plain line was printed.
    printed: Option<std::time::Instant>,
    /// The first input that failed mid-recording, in words.
    input_lost: Option<String>,
}

/// How often the counters are printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

impl Line {
    fn new() -> Line {
        Line {
            counters: UplinkCounters::default(),
            system: None,
            state: String::new(),
            level: None,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            printed: None,
            input_lost: None,
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Level {
                stream: Stream::Mic,
                rms_dbfs,
                ..
            } => self.level = Some(rms_dbfs),
            Event::Level { .. } => {}
            Event::Uplink {
                stream: Stream::Mic,
                counters,
            } => self.counters = counters,
            Event::Uplink { counters, .. } => self.system = Some(counters),
            Event::Connection {
                stream,
                state,
                holding,
                detail,
            } => {
                let which = match stream {
                    Stream::Mic => "",
                    Stream::System => "system audio: ",
                };
                let text = match state {
                    ConnectionState::Connecting => "connecting".into(),
                    ConnectionState::Connected => "connected".into(),
                    ConnectionState::Reconnecting { retry_in_ms, .. } => format!(
                        "gateway unreachable, holding {holding} frames, retry in {:.1} s",
                        retry_in_ms as f64 / 1000.0
                    ),
                    ConnectionState::Offline => format!("offline, holding {holding} frames"),
                };
                if stream == Stream::Mic {
                    self.state = text;
                }
                if let (Some(detail), ConnectionState::Reconnecting { attempt: 1, .. }) =
                    (&detail, state)
                {
                    self.note(&format!("{which}connection problem: {detail}"));
                }
            }
            Event::Speaker(answer) => self.note(&format!(
                "speaker {}: {} ({:?})",
                answer.cluster_id,
                answer.speaker_name.as_deref().unwrap_or("?"),
                answer.decision
            )),
            Event::ResolveUnavailable { detail } => {
                self.note(&format!("speaker resolution unavailable: {detail}"))
            }
            Event::Error {
                origin,
                message,
                stream,
            } => {
                let which = stream.map_or(String::new(), |s| format!("{s} "));
                if origin == ErrorOrigin::Source && self.input_lost.is_none() {
                    self.input_lost = Some(format!("{which}input lost: {message}"));
                }
                self.note(&format!("{which}{origin:?} error: {message}"))
            }
            Event::Finished(_) => {}
        }
    }

    /// Prints a message on its own line, above the live line.
    fn note(&mut self, message: &str) {
        if self.terminal {
            eprint!("\r\x1b[K{message}\n");
            self.draw();
        } else {
            eprintln!("{message}");
        }
    }

    /// Redraws the line on a terminal; elsewhere prints it if [`PLAIN_EVERY`] has passed.
    fn draw(&mut self) {
        if !self.terminal {
            if self.printed.is_some_and(|at| at.elapsed() < PLAIN_EVERY) {
                return;
            }
            self.printed = Some(std::time::Instant::now());
        }
        let text = self.text();
        if self.terminal {
            eprint!("\r\x1b[K{text}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{text}");
        }
    }

    /// Forces a plain line out now (the final counters).
    fn draw_now(&mut self) {
        self.printed = None;
        self.draw();
    }

    fn text(&self) -> String {
        let c = &self.counters;
        let level = self.level.map_or("   -".into(), |l| format!("{l:4.0}"));
        let system = self.system.as_ref().map_or(String::new(), |s| {
            format!(
                " | system acked {} pending {} missing {}",
                s.acked, s.pending, s.gateway_missing
            )
        });
        format!(
            "{level} dBFS | sent {} acked {} pending {} dup {} err {} | missing {} | ack {} ms{system} | {}",
            c.sent,
            c.acked,
            c.pending,
            c.duplicate,
            c.errors,
            c.gateway_missing,
            fmt_ms(c.latency.last_ms),
            self.state
        )
    }
}
