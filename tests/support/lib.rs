//! Helpers of the app's WebDriver test, each a one-liner to use:
//! - [`app_binary`]: the built `interview-recorder`, found next to the test executable;
//! - [`TauriDriver`]: `tauri-driver` (and its `WebKitWebDriver`) in its own process group,
//!   killed as a group on drop;
//! - [`InferenceServer`]: a small HTTP server honouring the inference service's resolve
//!   contract, on a free port;
//! - [`require_display`]: fails loudly when the test cannot show a window;
//! - [`page`]: driving the page (connect, wait for what it shows, click, screenshots);
//! - [`bus`]: the desktop's notification server and tray host on the session bus;
//! - [`frames`]: a session's audio put on a gateway over its ingest socket;
//! - [`pulse`]: a sound server of the test's own, with a microphone the test can unplug.

#![cfg(unix)]

pub mod bus;
pub mod frames;
pub mod page;
pub mod pulse;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// `<target>/debug`, the directory the test executable's `deps/` lives in.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // <target>/<profile>/deps/webdriver-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Where screenshots and driver logs go: `<target>/e2e-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    let dir = profile_dir()
        .parent()
        .expect("<target>/<profile> has a parent")
        .join("e2e-artifacts");
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir
}

/// The app binary, built by `cargo build -p recorder --bin interview-recorder`.
pub fn app_binary() -> PathBuf {
    let name = format!("interview-recorder{}", std::env::consts::EXE_SUFFIX);
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "\n\nThe app binary {} does not exist.\nBuild it first (scripts/e2e.sh does all of this):\n    \
         cargo build -p recorder --bin interview-recorder\nthen run this test under a display:\n    \
         xvfb-run -a -s \"-screen 0 1280x900x24\" cargo test -p e2e --test webdriver\n",
        path.display()
    );
    path
}

/// Fails (never skips) when there is no display for the window.
pub fn require_display() {
    let display = std::env::var("DISPLAY").unwrap_or_default();
    assert!(
        !display.is_empty(),
        "\n\nThe WebDriver test of the app needs an X display and none is set (DISPLAY is empty).\n\
         Run it under Xvfb, as scripts/e2e.sh and .ci/run do:\n    \
         xvfb-run -a -s \"-screen 0 1280x900x24\" cargo test -p e2e --test webdriver\n"
    );
}

/// Finds a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// `N` distinct free TCP ports on 127.0.0.1 (free when asked; a child binds them right away).
/// All are held until the last is found, so the kernel cannot hand out one twice.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<_> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local address").port())
}

/// `tauri-driver` serving WebDriver on `port`, with `WebKitWebDriver` behind it on
/// `native_port`. Both run in a process group of their own; dropping this kills the group,
/// because killing tauri-driver alone leaves WebKitWebDriver (and the app) running.
pub struct TauriDriver {
    child: Child,
    pub port: u16,
}

impl TauriDriver {
    /// Starts the driver with `envs` added to its environment (the app inherits them) and
    /// waits until it accepts connections. Logs (the app's included) go to
    /// `log_dir/<name>.tauri-driver.{out,err}.log`.
    pub fn start(name: &str, envs: &[(&str, &Path)], log_dir: &Path) -> TauriDriver {
        use std::os::unix::process::CommandExt as _;
        let driver = which("tauri-driver").unwrap_or_else(|| {
            panic!(
                "\n\ntauri-driver is not installed. Install it (scripts/e2e.sh does):\n    \
                 cargo install tauri-driver --locked --version 2.1.0\n"
            )
        });
        assert!(
            which("WebKitWebDriver").is_some(),
            "\n\nWebKitWebDriver is missing. Install it: apt-get install webkit2gtk-driver\n"
        );
        let [port, native_port] = free_ports();
        let log = |stream: &str| {
            std::fs::File::create(log_dir.join(format!("{name}.tauri-driver.{stream}.log")))
                .expect("create a driver log file")
        };
        let mut command = Command::new(driver);
        command
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .stdin(Stdio::null())
            .stdout(log("out"))
            .stderr(log("err"))
            .process_group(0);
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command.spawn().expect("start tauri-driver");
        let driver = TauriDriver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tauri-driver did not listen on port {port} within 20 s; see {}",
                log_dir
                    .join(format!("{name}.tauri-driver.err.log"))
                    .display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The processes of `app` that the driver started (its process group), by pid.
    pub fn app_pids(&self, app: &Path) -> Vec<i32> {
        self.group_pids()
            .into_iter()
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == app)
            })
            .collect()
    }

    /// Every live process of the driver's process group (the driver, WebKitWebDriver, the
    /// app), by pid; zombies left out.
    fn group_pids(&self) -> Vec<i32> {
        let group = self.child.id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                // /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces.
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    return false;
                };
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or("", |(_, rest)| rest)
                    .split_whitespace()
                    .collect();
                fields.first() != Some(&"Z") && fields.get(2) == Some(&group.as_str())
            })
            .collect()
    }

    fn signal_group(&self, signal: &str) {
        // The pgid is the child's pid (process_group(0)); `--` keeps procps kill from reading
        // the negative pid as an option.
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for TauriDriver {
    fn drop(&mut self) {
        self.signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the group (WebKitWebDriver, the app) goes now.
        self.signal_group("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The next test's app must not meet this one still dying: the single-instance plugin
        // would turn the new launch away as a second instance, and its WebDriver session never
        // opens. A killed process leaves once the kernel has torn it down; wait for that.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.group_pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One `POST /speaker/resolve` the inference server answered.
#[derive(Debug, Clone)]
pub struct ResolveCall {
    pub api_key: Option<String>,
    pub session_id: String,
    pub audio_bytes: usize,
}

/// A stand-in for the speaker-inference service: answers `POST /speaker/resolve` as its
/// contract says. Every request is put in one cluster, `spk_0`; the first roster name is
/// suggested with decision `confirm` until the interviewer binds a name, after which the
/// bound name comes back with `auto`. The state it receives is carried forward (bindings and
/// bound names included), as the real service does.
pub struct InferenceServer {
    pub url: String,
    pub calls: Arc<Mutex<Vec<ResolveCall>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub const INFERENCE_KEY: &str = "e2e-inference-key";

impl InferenceServer {
    pub async fn start() -> InferenceServer {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/speaker/resolve", post(resolve))
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the inference server");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("inference server");
        });
        InferenceServer {
            url,
            calls,
            stop: Some(stop),
        }
    }

    pub fn calls(&self) -> Vec<ResolveCall> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for InferenceServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn detail(status: StatusCode, text: &str) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "detail": text })))
}

async fn resolve(
    State(calls): State<Arc<Mutex<Vec<ResolveCall>>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if api_key.as_deref() != Some(INFERENCE_KEY) {
        return Err(detail(StatusCode::UNAUTHORIZED, "invalid api key"));
    }
    let session_id = body["session_id"].as_str().unwrap_or_default().to_owned();
    let audio = &body["audio"];
    let content = audio["content_b64"].as_str().unwrap_or_default();
    if content.is_empty() || audio["format"].as_str().is_none() {
        return Err(detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "audio.content_b64 and audio.format are required",
        ));
    }
    calls.lock().unwrap().push(ResolveCall {
        api_key,
        session_id: session_id.clone(),
        audio_bytes: content.len() / 4 * 3,
    });

    let state = &body["state"];
    let cluster_id = "spk_0";
    let bindings = state["bindings"].as_object().cloned().unwrap_or_default();
    let previous = state["clusters"]
        .as_array()
        .and_then(|clusters| clusters.iter().find(|c| c["cluster_id"] == cluster_id))
        .cloned();
    let sample_count = previous
        .as_ref()
        .and_then(|c| c["sample_count"].as_u64())
        .unwrap_or(0)
        + 1;
    let mut cluster = json!({
        "cluster_id": cluster_id,
        "centroid": [0.12, -0.03, 0.4, 0.25],
        "sample_count": sample_count,
    });
    if let Some(bound) = previous.as_ref().and_then(|c| c.get("bound_name")) {
        cluster["bound_name"] = bound.clone();
    }
    let roster_name = state["roster"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r["name"].as_str())
        .map(str::to_owned);
    let (speaker_name, decision, score) = match bindings.get(cluster_id).and_then(Value::as_str) {
        Some(bound) => (Some(bound.to_owned()), "auto", 0.93),
        None => match roster_name {
            Some(name) => (Some(name), "confirm", 0.71),
            None => (None, "unknown", 0.42),
        },
    };
    let mut updated_state = json!({
        "clusters": [cluster],
        "bindings": bindings,
        "config": state["config"].as_object().cloned().unwrap_or_default(),
    });
    if let Some(roster) = state.get("roster").filter(|r| !r.is_null()) {
        updated_state["roster"] = roster.clone();
    }
    let mut answer = json!({
        "session_id": session_id,
        "cluster_id": cluster_id,
        "decision": decision,
        "evidence": {
            "sv_score": score,
            "threshold_low": 0.55,
            "threshold_high": 0.8,
            "segment_count": sample_count,
        },
        "updated_state": updated_state,
    });
    if let Some(name) = speaker_name {
        answer["speaker_name"] = json!(name);
    }
    Ok(Json(answer))
}
