//! Measures the desktop app while it records: RSS and CPU of the app process and of the
//! WebKit helper processes it starts, sampled from /proc every second for 20 s while the window
//! records a 440 Hz tone to its bundled gateway (live speaker resolution on, every 5 s, against
//! the test inference server). Prints figures; asserts nothing. Run it with scripts/app-usage.sh.

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
    use std::time::{Duration, Instant};

    use e2e::{INFERENCE_KEY, InferenceServer, TauriDriver};
    use fantoccini::{ClientBuilder, Locator};
    use serde_json::json;

    const SAMPLE_SECS: u64 = 20;

    pub async fn run() {
        e2e::require_display();
        let app = e2e::app_binary();
        let artifacts = e2e::artifacts_dir();
        let home = artifacts.join(format!("usage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let (config_dir, data_dir) = (home.join("config"), home.join("data"));
        std::fs::create_dir_all(&config_dir).unwrap();
        let inference = InferenceServer::start().await;
        let settings = json!({
            "input": "tone:440",
            "inference": {"base_url": inference.url, "api_key": INFERENCE_KEY, "timeout_ms": 5000},
            "session_id": format!("usage-{}", std::process::id()),
            "roster": [{"name": "Ada Lovelace"}],
            "resolve_every_secs": 5.0,
        });
        std::fs::write(config_dir.join("settings.json"), settings.to_string()).unwrap();
        let driver = TauriDriver::start(
            &[
                ("RECORDER_CONFIG_DIR", &config_dir),
                ("RECORDER_DATA_DIR", &data_dir),
            ],
            &artifacts,
        );
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("wry"));
        caps.insert(
            "tauri:options".into(),
            json!({"application": app.display().to_string()}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .expect("WebDriver session");
        let pid = find_pid(&app).expect("the app's process");
        let idle = sample_once(pid);
        client
            .wait()
            .for_element(Locator::Css("#chip-gateway.ok"))
            .await
            .expect("bundled gateway running");
        client
            .find(Locator::Css("#record-button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // Let the first frames and the first resolution go by before measuring.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let samples = sample(pid, SAMPLE_SECS).await;
        let acked = client
            .execute(
                "return document.getElementById('count-acked').textContent",
                vec![],
            )
            .await
            .unwrap();
        let _ = client.close().await;
        drop(driver);
        report(&idle, &samples, &acked.to_string());
        let _ = std::fs::remove_dir_all(&home);
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

    fn find_pid(app: &Path) -> Option<u32> {
        let want = std::fs::canonicalize(app).ok()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                if std::fs::read_link(format!("/proc/{pid}/exe")).ok() == Some(want.clone()) {
                    return Some(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
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

    fn report(idle: &Sample, samples: &[Sample], acked: &str) {
        let hz = clock_ticks();
        let (first, last) = (&samples[0], &samples[samples.len() - 1]);
        let secs = last.at.duration_since(first.at).as_secs_f64();
        let cpu = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / hz / secs * 100.0;
        let rss = |f: &dyn Fn(&Sample) -> u64| {
            let values: Vec<u64> = samples.iter().map(f).collect();
            let avg = values.iter().sum::<u64>() as f64 / values.len() as f64 / 1024.0;
            let max = *values.iter().max().unwrap() as f64 / 1024.0;
            (avg, max)
        };
        println!(
            "interview-recorder while recording a 440 Hz tone ({secs:.0} s sampled, 1 Hz, acked {acked} at the end)"
        );
        println!(
            "  before Start: app RSS {:.1} MiB",
            idle.app.rss_kb as f64 / 1024.0
        );
        let (avg, max) = rss(&|s| s.app.rss_kb);
        println!(
            "  app process (Rust: engine + bundled gateway + UI process): RSS avg {avg:.1} MiB, max {max:.1} MiB; CPU {:.1} % of one core",
            cpu(first.app.ticks, last.app.ticks)
        );
        let mut helper_total = (0u64, 0u64);
        let mut names: Vec<_> = last.helpers.iter().collect();
        names.sort_by_key(|(pid, _)| **pid);
        for (pid, (comm, p)) in names {
            let start = first
                .helpers
                .get(pid)
                .map(|(_, q)| q.ticks)
                .unwrap_or(p.ticks);
            println!(
                "  helper {comm} (pid {pid}): RSS {:.1} MiB; CPU {:.1} %",
                p.rss_kb as f64 / 1024.0,
                cpu(start, p.ticks)
            );
            helper_total.0 += p.rss_kb;
            helper_total.1 += p.ticks - start;
        }
        println!(
            "  total (app + helpers): RSS {:.1} MiB; CPU {:.1} % of one core",
            (last.app.rss_kb + helper_total.0) as f64 / 1024.0,
            ((last.app.ticks - first.app.ticks) + helper_total.1) as f64 / hz / secs * 100.0
        );
    }
}
