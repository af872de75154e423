//! `gateway bench`: a load generator that measures a real gateway process.
//!
//! It starts `gateway serve` as a child on a free loopback port with a fresh data directory,
//! opens N concurrent sessions, streams pre-encoded frames, and prints ACKed frames/s, MB/s of
//! PCM, ACK latency percentiles and the child's peak RSS. Two modes: `max` keeps a window of
//! frames in flight per session (saturation); `realtime` sends one frame per second per session.

mod socket;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::{Args, ValueEnum};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::protocol::{AckStatus, FRAME_BYTES, ServerMessage};
use crate::storage::{Durability, FrameStore};
use socket::BenchSocket;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pace {
    /// As fast as ACKs come back, `--window` frames in flight per session.
    Max,
    /// One frame per second per session, like a live recorder.
    Realtime,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Concurrent sessions (one WebSocket each).
    #[arg(long, default_value_t = 16)]
    pub sessions: usize,
    /// Frames each session sends.
    #[arg(long, default_value_t = 500)]
    pub frames: u64,
    #[arg(long, value_enum, default_value_t = Pace::Max)]
    pub pace: Pace,
    /// Frames in flight per session in `max` pace.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
    /// Data directory for the child gateway (default: a fresh temporary one, removed after).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// What the child gateway's ACK promises (`--durability` of `serve`).
    #[arg(long, value_enum, default_value_t = Durability::Process)]
    pub durability: Durability,
    /// How the child gateway stores frames (`--frame-store` of `serve`).
    #[arg(long, value_enum, default_value_t = FrameStore::Log)]
    pub frame_store: FrameStore,
    /// Run the load twice, frames in the log and then one file per frame (the previous
    /// design), each against a fresh gateway and data directory, and print both.
    #[arg(long, conflicts_with = "target")]
    pub compare: bool,
    /// Run the load once per count in this list (e.g. `1,2,4,8,16`), the child gateway pinned
    /// to that many CPUs (Linux), and print how throughput grows with cores.
    #[arg(long, value_delimiter = ',', conflicts_with = "target")]
    pub cores: Vec<usize>,
    /// Load an already running gateway at this address (HOST:PORT) instead of starting one,
    /// e.g. to profile it; its CPU and memory are then not reported.
    #[arg(long)]
    pub target: Option<String>,
    /// Send the seconds of this 16 kHz mono 16-bit WAV (each session starting at a different
    /// second, wrapping around) instead of a tone: with speech in the frames the built-in
    /// speaker engine has work to do, as it does with real recordings.
    #[arg(long)]
    pub audio: Option<PathBuf>,
    /// Print a line every this many seconds while the load runs (0: none): ACKs so far, the
    /// child's resident memory and open file descriptors, and the ACK latency p99 of the
    /// interval. For soak runs, where those must stay flat.
    #[arg(long, default_value_t = 0)]
    pub report_every: u64,
}

/// What the sessions share with the periodic report.
#[derive(Default)]
struct Progress {
    acks: std::sync::atomic::AtomicU64,
    /// ACK latencies (µs) since the last report.
    recent_us: std::sync::Mutex<Vec<u64>>,
}

/// What one session measured.
struct SessionRun {
    latencies_us: Vec<u64>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    crate::limits::raise_open_files();
    let scratch = args.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    if args.target.is_none() {
        disk_bandwidth(&scratch)?;
    }
    let stores = if args.compare {
        vec![FrameStore::Log, FrameStore::Files]
    } else {
        vec![args.frame_store]
    };
    // `None`: every CPU the child may use.
    let core_counts: Vec<Option<usize>> = if args.cores.is_empty() {
        vec![None]
    } else {
        args.cores.iter().map(|&n| Some(n.max(1))).collect()
    };
    let mut runs = Vec::new();
    for &cores in &core_counts {
        for &store in &stores {
            let measured = load(&args, store, cores).await?;
            measured.print();
            runs.push(measured);
        }
    }
    if runs.len() > 1 {
        println!(
            "\ncores  frame store   frames/s   speedup   ack p50 / p99 / max ms     cpu us/frame   peak rss MiB"
        );
        for run in &runs {
            // Against the same store on the fewest cores measured.
            let base = runs.iter().find(|r| r.store == run.store).expect("itself");
            println!("{}", run.summary(base));
        }
    }
    Ok(())
}

/// What one load against one gateway measured.
struct Measured {
    store: FrameStore,
    /// CPUs the child was pinned to (`None`: all).
    cores: Option<usize>,
    elapsed: f64,
    /// ACK latencies, µs, ascending.
    latencies: Vec<u64>,
    /// The child's CPU seconds, peak and final RSS (KiB), when it is our child.
    process: Option<(f64, u64, u64)>,
}

/// Starts a gateway storing frames as `store` (unless `--target`), runs the sessions, stops it.
async fn load(
    args: &BenchArgs,
    store: FrameStore,
    cores: Option<usize>,
) -> anyhow::Result<Measured> {
    let name = match cores {
        Some(n) => format!("{}-{n}cores", store.as_str()),
        None => store.as_str().to_owned(),
    };
    let temp = std::env::temp_dir().join(format!("gateway-bench-{}-{name}", std::process::id()));
    let data_dir = match &args.data_dir {
        Some(dir) => dir.join(&name),
        None => temp.clone(),
    };
    let (mut child, addr) = match &args.target {
        Some(addr) => (None, addr.clone()),
        None => {
            let (child, addr) = start_child(&data_dir, args.durability, store, cores).await?;
            (Some(child), addr)
        }
    };
    let pid = child.as_ref().and_then(Child::id);
    println!(
        "\nbench: {} sessions x {} frames, pace {:?}, window {}, durability {}, frames in {}, {}, gateway {addr}",
        args.sessions,
        args.frames,
        args.pace,
        args.window,
        args.durability.as_str(),
        store.as_str(),
        cores.map_or("all cores".to_owned(), |n| format!("{n} core(s)")),
    );

    let contents: std::sync::Arc<Vec<String>> = std::sync::Arc::new(
        match &args.audio {
            Some(path) => wav_frames(path)?,
            None => vec![test_pcm()],
        }
        .iter()
        .map(|pcm| base64::engine::general_purpose::STANDARD.encode(pcm))
        .collect(),
    );
    let started = Instant::now();
    let progress = std::sync::Arc::new(Progress::default());
    let reporter = (args.report_every > 0).then(|| {
        tokio::spawn(report(
            std::sync::Arc::clone(&progress),
            pid,
            Duration::from_secs(args.report_every),
        ))
    });
    let mut tasks = Vec::with_capacity(args.sessions);
    for index in 0..args.sessions {
        let addr = addr.clone();
        let contents = contents.clone();
        let progress = std::sync::Arc::clone(&progress);
        let args = args.clone();
        // Realtime sessions start spread over one second, as recorders would.
        let offset = match args.pace {
            Pace::Realtime => {
                Duration::from_micros(1_000_000 * index as u64 / args.sessions as u64)
            }
            Pace::Max => Duration::ZERO,
        };
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            run_session(
                &addr,
                &format!("bench-{index}"),
                &contents,
                index,
                &args,
                &progress,
            )
            .await
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??.latencies_us);
    }
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let process = pid.map(|pid| {
        (
            cpu_seconds(pid),
            rss_kib(pid, "VmHWM"),
            rss_kib(pid, "VmRSS"),
        )
    });
    if let Some(child) = &mut child {
        stop_child(child).await;
    }
    if args.data_dir.is_none() && args.target.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    latencies.sort_unstable();
    Ok(Measured {
        store,
        cores,
        elapsed,
        latencies,
        process,
    })
}

impl Measured {
    fn frames(&self) -> f64 {
        self.latencies.len() as f64
    }

    /// The `p` quantile of the ACK latency, ms.
    fn ms(&self, p: f64) -> f64 {
        let last = self.latencies.len().saturating_sub(1);
        self.latencies
            .get((last as f64 * p) as usize)
            .map_or(0.0, |&us| us as f64 / 1000.0)
    }

    fn print(&self) {
        let frames = self.frames();
        println!("frames acked      {}", self.latencies.len());
        println!("elapsed           {:.2} s", self.elapsed);
        println!("throughput        {:.0} frames/s", frames / self.elapsed);
        println!(
            "pcm               {:.1} MB/s",
            frames * FRAME_BYTES as f64 / self.elapsed / 1e6
        );
        println!(
            "ack latency ms    p50 {:.2}  p99 {:.2}  max {:.2}",
            self.ms(0.50),
            self.ms(0.99),
            self.ms(1.0)
        );
        if let Some((cpu_secs, peak, after)) = self.process {
            println!(
                "gateway cpu       {cpu_secs:.2} s = {:.0} us per frame",
                cpu_secs * 1e6 / frames
            );
            println!(
                "gateway rss MiB   peak {:.1}  after the run {:.1}",
                peak as f64 / 1024.0,
                after as f64 / 1024.0
            );
        }
    }

    /// One row of the comparison table; the speedup is against `base`.
    fn summary(&self, base: &Measured) -> String {
        let (cpu, peak) = self.process.map_or((0.0, 0.0), |(cpu, peak, _)| {
            (cpu * 1e6 / self.frames(), peak as f64 / 1024.0)
        });
        let rate = |m: &Measured| m.frames() / m.elapsed;
        format!(
            "{:>5}  {:<12} {:>9.0}   {:>6.2}x   {:>7.2} / {:>7.2} / {:>7.2}   {:>12.0}   {:>12.1}",
            self.cores.map_or("all".to_owned(), |n| n.to_string()),
            self.store.as_str(),
            rate(self),
            rate(self) / rate(base),
            self.ms(0.5),
            self.ms(0.99),
            self.ms(1.0),
            cpu,
            peak
        )
    }
}

/// The physical limit first: this disk's synced sequential write bandwidth where the data
/// directories go, in large (100 frames) and frame-sized writes, each followed by a sync.
fn disk_bandwidth(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("gateway-bench-disk-{}", std::process::id()));
    let measure = |block: usize, blocks: usize| -> anyhow::Result<f64> {
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot measure the disk in {}", dir.display()))?;
        let data = vec![0x5a_u8; block];
        let started = Instant::now();
        for _ in 0..blocks {
            file.write_all(&data)?;
            file.sync_data()?;
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok((block * blocks) as f64 / seconds / 1e6)
    };
    let large = measure(100 * FRAME_BYTES, 32);
    let small = measure(FRAME_BYTES, 200);
    let _ = std::fs::remove_file(&path);
    let (large, small) = (large?, small?);
    let frames = |mb_s: f64| mb_s * 1e6 / FRAME_BYTES as f64;
    println!(
        "disk: synced sequential writes {large:.0} MB/s in {} KB writes ({:.0} frames/s), \
         {small:.0} MB/s in {} KB writes ({:.0} frames/s)",
        100 * FRAME_BYTES / 1000,
        frames(large),
        FRAME_BYTES / 1000,
        frames(small)
    );
    Ok(())
}

async fn run_session(
    addr: &str,
    session: &str,
    contents: &[String],
    index: usize,
    args: &BenchArgs,
    progress: &Progress,
) -> anyhow::Result<SessionRun> {
    let mut socket = BenchSocket::connect(addr, &format!("/v1/audio/ws/{session}")).await?;
    socket.send_text(&[br#"{"type":"hello"}"#]).await?;
    let ready = socket.recv_text().await.context("no answer to hello")?;
    if !ready.contains(r#""type":"ready""#) {
        bail!("expected ready, got {ready}");
    }
    let total = args.frames;
    let window = match args.pace {
        Pace::Max => args.window.max(1),
        Pace::Realtime => 1,
    };
    let mut sent_at = vec![Instant::now(); total as usize + 1];
    let mut latencies_us = Vec::with_capacity(total as usize);
    let mut next = 1u64;
    let mut in_flight = 0usize;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while (latencies_us.len() as u64) < total {
        while in_flight < window && next <= total {
            if args.pace == Pace::Realtime {
                tick.tick().await;
            }
            let content = &contents[(next as usize - 1 + index) % contents.len()];
            let head = format!(
                r#"{{"type":"chunk","meeting_id":"{session}","seq":{next},"timestamp_ms":{},"sample_rate":16000,"channels":1,"format":"pcm_s16le","content_b64":""#,
                crate::sessions::now_ms()
            );
            sent_at[next as usize] = Instant::now();
            socket
                .send_text(&[head.as_bytes(), content.as_bytes(), br#""}"#])
                .await?;
            next += 1;
            in_flight += 1;
        }
        let text = socket.recv_text().await?;
        match serde_json::from_str::<ServerMessage>(&text)? {
            ServerMessage::Ack(ack) if ack.status == AckStatus::Stored => {
                let latency = sent_at[ack.seq as usize].elapsed().as_micros() as u64;
                latencies_us.push(latency);
                progress
                    .acks
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if args.report_every > 0 {
                    progress
                        .recent_us
                        .lock()
                        .expect("progress lock")
                        .push(latency);
                }
                in_flight -= 1;
            }
            other => bail!("unexpected answer: {other:?}"),
        }
    }
    socket.close().await;
    Ok(SessionRun { latencies_us })
}

fn wav_frames(path: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut reader = hound::WavReader::open(path)
        .with_context(|| format!("cannot read {} as a WAV", path.display()))?;
    let spec = reader.spec();
    if (spec.sample_rate, spec.channels, spec.bits_per_sample) != (16_000, 1, 16) {
        bail!(
            "{} is {} Hz, {} channel(s), {} bits: --audio needs 16 kHz mono 16-bit",
            path.display(),
            spec.sample_rate,
            spec.channels,
            spec.bits_per_sample
        );
    }
    let bytes: Vec<u8> = reader
        .samples::<i16>()
        .map(|s| s.map(i16::to_le_bytes))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let frames: Vec<Vec<u8>> = bytes
        .chunks_exact(FRAME_BYTES)
        .map(<[u8]>::to_vec)
        .collect();
    if frames.is_empty() {
        bail!("{} holds less than one second of audio", path.display());
    }
    Ok(frames)
}

/// One second of a 440 Hz tone: realistic bytes, not zeros a filesystem might treat specially.
fn test_pcm() -> Vec<u8> {
    (0..FRAME_BYTES / 2)
        .flat_map(|i| {
            let t = i as f64 / 16_000.0;
            (((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16).to_le_bytes()
        })
        .collect()
}

async fn start_child(
    data_dir: &std::path::Path,
    durability: Durability,
    store: FrameStore,
    cores: Option<usize>,
) -> anyhow::Result<(Child, String)> {
    let exe = std::env::current_exe().context("cannot find the gateway binary")?;
    let mut command = Command::new(exe);
    if let Some(cores) = cores {
        pin_to_cores(&mut command, cores)?;
    }
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--durability"])
        .arg(durability.as_str())
        .args(["--frame-store", store.as_str()])
        // Thousands of simulated recorders share one address here.
        .args(["--max-connections-per-client", "0"])
        .args(["--max-sessions-per-client", "0"])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GATEWAY_OBJECTS")
        .env_remove("GATEWAY_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the gateway")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            return Ok((child, addr));
        }
    }
    bail!("the gateway exited before it was ready")
}

/// Makes the child run on CPUs `0..cores` only; its runtime sizes itself to them.
#[cfg(target_os = "linux")]
fn pin_to_cores(command: &mut Command, cores: usize) -> anyhow::Result<()> {
    let available = std::thread::available_parallelism().map_or(1, usize::from);
    if cores > available {
        bail!("--cores {cores}: this machine lets the bench use {available}");
    }
    // SAFETY: between fork and exec the closure only calls sched_setaffinity(2) on a cpu_set_t
    // it built on its own stack: no allocation, no locks.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for cpu in 0..cores {
                libc::CPU_SET(cpu, &mut set);
            }
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn pin_to_cores(_: &mut Command, _: usize) -> anyhow::Result<()> {
    bail!("--cores needs Linux")
}

async fn stop_child(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SIGTERM: let it shut down the way an operator's would.
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}

/// User + system CPU time the process has used, in seconds (Linux; 0 elsewhere).
/// Prints one line per `every`: elapsed time, ACKs so far, the child's RSS and open file
/// descriptors (when it is our child), and the p99 ACK latency of the interval.
async fn report(progress: std::sync::Arc<Progress>, pid: Option<u32>, every: Duration) {
    let started = Instant::now();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        let mut recent = std::mem::take(&mut *progress.recent_us.lock().expect("progress lock"));
        recent.sort_unstable();
        let p99 = recent
            .get((recent.len() * 99 / 100).min(recent.len().saturating_sub(1)))
            .map_or(0.0, |&us| us as f64 / 1000.0);
        let process = pid.map_or_else(String::new, |pid| {
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
            format!(
                "  rss {:.1} MiB  fds {fds}",
                rss_kib(pid, "VmRSS") as f64 / 1024.0
            )
        });
        println!(
            "t {:>6.0} s  acks {:>9}{process}  ack p99 {p99:.2} ms",
            started.elapsed().as_secs_f64(),
            progress.acks.load(std::sync::atomic::Ordering::Relaxed),
        );
    }
}

fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // The kernel's USER_HZ is 100 on every Linux we run on.
    ticks as f64 / 100.0
}

/// A field of /proc/PID/status in KiB (Linux); 0 elsewhere.
fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .trim_start_matches(':')
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}
