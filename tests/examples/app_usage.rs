//! Measures the desktop app while it records: RSS and CPU of the app process and of the
//! WebKit helper processes it starts, sampled from /proc every second: 8 s idle, then 20 s while
//! the window records a 440 Hz tone to its bundled gateway (live speaker resolution every 5 s
//! against the test inference server). Start is clicked with `xdotool`, not WebDriver: an
//! automation session alone costs the web process about 30 % of a core. Prints figures; asserts
//! nothing. Run it with scripts/app-usage.sh.

#[cfg(unix)]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    usage::run().await;
}

#[cfg(not(unix))]
fn main() {
    eprintln!("app_usage reads /proc: Linux only");
}

#[cfg(unix)]
mod usage {
    use std::collections::HashMap;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use e2e::{INFERENCE_KEY, InferenceServer};
    use serde_json::json;

    const SAMPLE_SECS: u64 = 20;
    /// Where the Start button is on the screen: the window opens at (0, 0) with no window
    /// manager under Xvfb, 1200×860, and the button sits at the top of the recording card.
    const START_BUTTON: (u32, u32) = (500, 123);

    pub async fn run() {
        e2e::require_display();
        let app = e2e::app_binary();
        let artifacts = e2e::artifacts_dir();
        let home = artifacts.join(format!("usage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let (config_dir, data_dir) = (home.join("config"), home.join("data"));
        std::fs::create_dir_all(&config_dir).unwrap();
        let inference = InferenceServer::start().await;
        let session = format!("usage-{}", std::process::id());
        let settings = json!({
            "input": "tone:440",
            "inference": {"base_url": inference.url, "api_key": INFERENCE_KEY, "timeout_ms": 5000},
            "session_id": session,
            "roster": [{"name": "Ada Lovelace"}],
            "resolve_every_secs": 5.0,
        });
        std::fs::write(config_dir.join("settings.json"), settings.to_string()).unwrap();

        let log = std::fs::File::create(artifacts.join("app-usage.app.log")).unwrap();
        let mut child = Command::new(&app)
            .env("RECORDER_CONFIG_DIR", &config_dir)
            .env("RECORDER_DATA_DIR", &data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the app");
        let pid = child.id();
        let window = Command::new("timeout")
            .args([
                "30",
                "xdotool",
                "search",
                "--sync",
                "--onlyvisible",
                "--name",
            ])
            .arg("^Interview Recorder$")
            .output()
            .expect("xdotool (apt-get install xdotool)");
        assert!(window.status.success(), "the app window did not appear");
        // The page loads and the bundled gateway is up well within this.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let idle = sample(pid, 8).await;

        let (x, y) = START_BUTTON;
        let clicked = Command::new("xdotool")
            .args(["mousemove", &x.to_string(), &y.to_string(), "click", "1"])
            .status()
            .expect("xdotool");
        assert!(clicked.success(), "xdotool could not click Start");
        let chunks = data_dir.join(format!("gateway/objects/sessions/{session}/chunks"));
        let deadline = Instant::now() + Duration::from_secs(15);
        while stored(&chunks) == 0 {
            assert!(
                Instant::now() < deadline,
                "no frame reached the bundled gateway 15 s after clicking Start at {x},{y};                  see {}",
                artifacts.join("app-usage.app.log").display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Let the first resolution go by before measuring.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let samples = sample(pid, SAMPLE_SECS).await;
        let frames = stored(&chunks);
        let _ = child.kill();
        let _ = child.wait();
        report(&idle, &samples, frames, inference.calls().len());
        let _ = std::fs::remove_dir_all(&home);
    }

    /// Frames the bundled gateway has stored so far.
    fn stored(chunks: &Path) -> usize {
        std::fs::read_dir(chunks).map_or(0, |d| d.count())
    }

    /// CPU ticks and RSS of one process.
    #[derive(Clone, Copy, Default)]
    struct Proc {
        ticks: u64,
        rss_kb: u64,
    }

    /// The app (pid) and each of its descendants at one instant.
    struct Sample {
        at: Instant,
        app: Proc,
        helpers: HashMap<u32, (String, Proc)>,
    }

    /// (ppid, comm, Proc) of a process.
    fn read(pid: u32) -> Option<(u32, String, Proc)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // After "(comm) ": state=0, ppid=1, ..., utime=11, stime=12.
        let ppid = fields.get(1)?.parse().ok()?;
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Some((ppid, comm, Proc { ticks, rss_kb }))
    }

    fn sample_once(pid: u32) -> Sample {
        let mut all = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                if let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>()
                    && let Some(info) = read(p)
                {
                    all.insert(p, info);
                }
            }
        }
        let app = all.get(&pid).map(|(_, _, p)| *p).unwrap_or_default();
        let mut helpers = HashMap::new();
        for (&p, (_, comm, proc_)) in &all {
            let mut cur = p;
            // Walk up the parents: a descendant of the app is one of its helpers.
            while let Some((ppid, _, _)) = all.get(&cur) {
                if *ppid == pid {
                    helpers.insert(p, (comm.clone(), *proc_));
                    break;
                }
                if *ppid <= 1 {
                    break;
                }
                cur = *ppid;
            }
        }
        Sample {
            at: Instant::now(),
            app,
            helpers,
        }
    }

    async fn sample(pid: u32, secs: u64) -> Vec<Sample> {
        let mut out = vec![sample_once(pid)];
        for _ in 0..secs {
            tokio::time::sleep(Duration::from_secs(1)).await;
            out.push(sample_once(pid));
        }
        out
    }

    fn clock_ticks() -> f64 {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    }

    fn report(idle: &[Sample], samples: &[Sample], frames: usize, resolutions: usize) {
        println!(
            "interview-recorder, window under Xvfb (software rendering), bundled gateway, resolution every 5 s"
        );
        summarize("idle, before Start (8 s)", idle);
        summarize(
            &format!(
                "recording a 440 Hz tone ({SAMPLE_SECS} s sampled; {frames} frames stored, \
                 {resolutions} resolutions by the end)"
            ),
            samples,
        );
    }

    fn summarize(label: &str, samples: &[Sample]) {
        let hz = clock_ticks();
        let (first, last) = (&samples[0], &samples[samples.len() - 1]);
        let secs = last.at.duration_since(first.at).as_secs_f64();
        let cpu = |ticks: u64| ticks as f64 / hz / secs * 100.0;
        let mib = |kb: u64| kb as f64 / 1024.0;
        let app_max = samples.iter().map(|s| s.app.rss_kb).max().unwrap_or(0);
        println!("{label}:");
        println!(
            "  app process (engine + bundled gateway + UI process): RSS {:.1} MiB (max {:.1}), CPU {:.1} % of one core",
            mib(last.app.rss_kb),
            mib(app_max),
            cpu(last.app.ticks.saturating_sub(first.app.ticks))
        );
        let (mut rss_total, mut ticks_total) = (last.app.rss_kb, last.app.ticks - first.app.ticks);
        let mut helpers: Vec<_> = last.helpers.iter().collect();
        helpers.sort_by_key(|(pid, _)| **pid);
        for (pid, (comm, p)) in helpers {
            let start = first.helpers.get(pid).map_or(p.ticks, |(_, q)| q.ticks);
            let ticks = p.ticks.saturating_sub(start);
            println!(
                "  {comm} (pid {pid}): RSS {:.1} MiB, CPU {:.1} %",
                mib(p.rss_kb),
                cpu(ticks)
            );
            rss_total += p.rss_kb;
            ticks_total += ticks;
        }
        println!(
            "  total: RSS {:.1} MiB, CPU {:.1} % of one core",
            mib(rss_total),
            cpu(ticks_total)
        );
    }
}
