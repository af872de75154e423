//! The app as a desktop app (issue 11, items 7 and 9), through the real window under Xvfb,
//! driven through WebDriver like `webdriver.rs`:
//!
//! - A second launch on the same data directory exits at once and brings the first window to
//!   the front, which hears of it (single-instance plugin over the D-Bus session bus:
//!   `scripts/e2e.sh` runs the tests under `dbus-run-session`).
//! - Every view passes an axe-core audit with zero violations, in the light theme and in the
//!   dark one (`prefers-color-scheme`, which WebKitGTK takes from the GTK theme: the dark run
//!   sets `GTK_THEME=Adwaita:dark`), with content in it: a few seconds recorded (a voice, the
//!   timeline, the counters) and their row in the Sessions view. A screenshot of each view in
//!   each theme goes to the artifacts, and to `docs/` when `UPDATE_SCREENSHOT` is set.
//!   axe-core is not vendored: `scripts/e2e.sh` fetches a pinned version from the npm
//!   registry once, into the cache, and names its `axe.min.js` in `AXE_CORE_JS`.
//!
//! - The tray and notifications, seen from the desktop's side of the session bus (the test
//!   plays a status-notifier host and a notification server, `support/bus.rs`): the tray's
//!   menu shows the recording, its Hide window hides the window, a gateway outage and the
//!   tray's Stop while hidden raise "Gateway unreachable" and "Recording stopped".
//! - A microphone unplugged while the window is hidden: the app records from the system's
//!   default input, a microphone of a PulseAudio server the test runs (`support/pulse.rs`),
//!   and the test pulls it out as PulseAudio does a USB microphone's; the desktop gets
//!   "Microphone lost" once, naming the device, then "Recording stopped", and the window,
//!   shown again, says the same in words.
//! - The global hotkey of the settings: a bad one and one taken by another app are refused
//!   in words and not saved; a new one applies without a restart (pressed with xdotool, the
//!   old one does nothing); and the log file in the app's log directory holds the app's start,
//!   the bundled gateway's start and lines, the session and the hotkey, flushed as they
//!   happen (read after a `kill -9`), with no folder of this computer in it.
//!
//! Needs what `webdriver.rs` needs, plus a session bus, xdotool, PulseAudio (with pactl and
//! the ALSA plugin) and `AXE_CORE_JS`; without them it FAILS and says what to do.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::TauriDriver;
use e2e::bus::{MenuItem, NotificationServer, TrayHost};
use e2e::page::{click, connect, finish, replace_text, save_screenshot, tempdir, wait_for_read};
use e2e::pulse::SoundServer;
use fantoccini::Client;
use serde_json::{Value, json};

/// What the tests read of the page, in one script.
const READ: &str = r#"
const text = (id) => { const el = document.getElementById(id); return el ? el.textContent.trim() : null; };
return {
  gateway: text('chip-gateway'),
  recordState: text('record-state'),
  acked: Number(text('count-acked')),
  speakers: document.querySelectorAll('#speakers-body tr').length,
  sessions: document.querySelectorAll('#sessions-body tr').length,
  secondLaunches: Number(document.body.dataset.secondLaunches || 0),
  announced: text('announcer'),
  visibility: document.visibilityState,
  dark: matchMedia('(prefers-color-scheme: dark)').matches,
  error: document.getElementById('banner-error').hidden ? null : text('banner-error-text'),
};
"#;

/// The app's settings for a test: the tone as input, the bundled gateway, a session id.
fn settings_home(artifacts: &Path, name: &str, session: &str) -> PathBuf {
    let home = tempdir(artifacts, name);
    std::fs::create_dir_all(home.join("config")).unwrap();
    let settings = json!({
        "input": "tone:440",
        "record_system": false,
        "gateway": {"mode": "bundled", "remote_url": "", "remote_api_key": ""},
        "session_id": session,
        "resolve_every_secs": 2.0,
    });
    std::fs::write(home.join("config/settings.json"), settings.to_string()).unwrap();
    home
}

/// The environment that points the app at a test's own folders.
fn app_env(home: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("RECORDER_CONFIG_DIR", home.join("config")),
        ("RECORDER_DATA_DIR", home.join("data")),
        ("RECORDER_EXPORT_DIR", home.join("exports")),
        ("RECORDER_INPUT", PathBuf::from("tone:440")),
    ]
}

fn as_refs<'a>(env: &'a [(&'static str, PathBuf)]) -> Vec<(&'static str, &'a Path)> {
    env.iter().map(|(k, v)| (*k, v.as_path())).collect()
}

async fn bundled_gateway(client: &Client) -> anyhow::Result<Value> {
    wait_for_read(client, READ, "the bundled gateway", 30, |page| {
        page["gateway"]
            .as_str()
            .is_some_and(|t| t.starts_with("Bundled gateway ·"))
    })
    .await
}

// ---------- single instance ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_launch_exits_and_brings_the_first_window_to_the_front() {
    e2e::require_display();
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "\n\nThis test needs a D-Bus session bus (the single-instance plugin meets the first \
         instance there). scripts/e2e.sh runs the tests under dbus-run-session.\n"
    );
    let app = e2e::app_binary();
    let artifacts = e2e::artifacts_dir();
    let home = settings_home(&artifacts, "instance", "e2e-instance");
    let env = app_env(&home);
    let driver = TauriDriver::start("instance", &as_refs(&env), &artifacts);
    let client = connect(&driver, &app).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        second_launch(&client, &app, &env, &artifacts),
    )
    .await;
    finish(
        client,
        driver,
        outcome,
        &artifacts.join("instance-failure.png"),
    )
    .await;
    let _ = std::fs::remove_dir_all(&home);
}

async fn second_launch(
    client: &Client,
    app: &Path,
    env: &[(&'static str, PathBuf)],
    artifacts: &Path,
) -> anyhow::Result<()> {
    let page = bundled_gateway(client).await?;
    anyhow::ensure!(page["secondLaunches"] == 0, "before: {page:#}");
    // The same app on the same data directory, started as a user would start it again.
    let log = std::fs::File::create(artifacts.join("instance.second-launch.log"))?;
    let mut second = Command::new(app)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            anyhow::bail!("the second launch was still running after 30 s: it opened a second app");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    anyhow::ensure!(status.success(), "the second launch exited with {status}");
    let page = wait_for_read(
        client,
        READ,
        "the first window to hear of the second launch",
        20,
        |page| page["secondLaunches"] == 1,
    )
    .await?;
    anyhow::ensure!(
        page["visibility"] == "visible"
            && page["announced"]
                .as_str()
                .is_some_and(|t| t.contains("already open"))
            && page["error"].is_null(),
        "the first window after the second launch: {page:#}"
    );
    println!("second launch turned away: {page}");
    Ok(())
}

// ---------- accessibility ----------

/// Runs axe-core's default rules (WCAG 2.0/2.1 A and AA, and its best practices) on the page
/// and answers the violations, each with the nodes it found and why.
const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] })
  .then((r) => done({ violations: r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({ target: n.target.join(' '), why: n.failureSummary })),
  })) }))
  .catch((e) => done({ error: String(e) }));
"#;

/// axe-core's source, from the file `AXE_CORE_JS` names.
fn axe_source() -> String {
    let path = std::env::var_os("AXE_CORE_JS").unwrap_or_else(|| {
        panic!(
            "\n\nAXE_CORE_JS is not set: it names axe-core's axe.min.js, which scripts/e2e.sh \
             fetches from the npm registry (npm pack axe-core@<pinned>) and sets.\n"
        )
    });
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("AXE_CORE_JS={}: {e}", Path::new(&path).display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_passes_the_accessibility_audit_in_light_and_dark() {
    e2e::require_display();
    let axe = axe_source();
    let app = e2e::app_binary();
    let artifacts = e2e::artifacts_dir();
    for theme in ["light", "dark"] {
        let home = settings_home(&artifacts, &format!("a11y-{theme}"), "e2e-a11y");
        let mut env = app_env(&home);
        // The window shows its folders under HOME as `~/…`: the pictures show no machine's
        // paths.
        env.push(("HOME", home.clone()));
        // WebKitGTK's prefers-color-scheme follows the GTK theme.
        env.push((
            "GTK_THEME",
            PathBuf::from(if theme == "dark" {
                "Adwaita:dark"
            } else {
                "Adwaita"
            }),
        ));
        let driver = TauriDriver::start(&format!("a11y-{theme}"), &as_refs(&env), &artifacts);
        let client = connect(&driver, &app).await;
        let outcome = tokio::time::timeout(
            Duration::from_secs(180),
            audit_views(&client, &axe, theme, &artifacts),
        )
        .await;
        finish(
            client,
            driver,
            outcome,
            &artifacts.join(format!("a11y-{theme}-failure.png")),
        )
        .await;
        let _ = std::fs::remove_dir_all(&home);
    }
}

async fn audit_views(
    client: &Client,
    axe: &str,
    theme: &str,
    artifacts: &Path,
) -> anyhow::Result<()> {
    let page = bundled_gateway(client).await?;
    anyhow::ensure!(
        page["dark"] == (theme == "dark"),
        "the window is not in the {theme} theme (prefers-color-scheme: dark is {})",
        page["dark"]
    );
    // Content to audit: a few recorded seconds, with the built-in engine's voice and the
    // timeline, then paused.
    start(client).await?;
    wait_for_read(client, READ, "a voice and 4 acked seconds", 60, |page| {
        page["acked"].as_u64().is_some_and(|n| n >= 4) && page["speakers"].as_u64() >= Some(1)
    })
    .await?;
    click(client, "#record-button").await?;
    wait_for_read(client, READ, "the pause", 30, |page| {
        page["recordState"]
            .as_str()
            .is_some_and(|s| s.starts_with("Paused"))
    })
    .await?;
    // The folded connection settings are audited open.
    click(client, "#connection > summary").await?;
    audit(client, axe, &format!("the Record view ({theme})")).await?;
    view_screenshot(client, artifacts, &format!("record-{theme}.png")).await?;

    click(client, "#tab-sessions").await?;
    wait_for_read(client, READ, "the session listed", 30, |page| {
        page["sessions"].as_u64() >= Some(1)
    })
    .await?;
    audit(client, axe, &format!("the Sessions view ({theme})")).await?;
    view_screenshot(client, artifacts, &format!("sessions-{theme}.png")).await?;
    Ok(())
}

/// Clicks Start until the page records: a click that lands while the page still lays itself
/// out after loading is lost without an error (seen on a loaded machine), so one retry.
async fn start(client: &Client) -> anyhow::Result<()> {
    let recording = |page: &Value| {
        page["recordState"]
            .as_str()
            .is_some_and(|s| s.starts_with("Recording"))
    };
    click(client, "#record-button").await?;
    if wait_for_read(client, READ, "recording", 10, recording)
        .await
        .is_err()
    {
        click(client, "#record-button").await?;
        wait_for_read(client, READ, "recording", 20, recording).await?;
    }
    Ok(())
}

/// Loads axe-core into the page (once) and fails with a readable list of any violation.
async fn audit(client: &Client, axe: &str, what: &str) -> anyhow::Result<()> {
    let loaded = client
        .execute(
            &format!(
                "if (typeof window.axe === 'undefined') {{ {axe}\n }} return typeof window.axe;"
            ),
            vec![],
        )
        .await?;
    anyhow::ensure!(loaded == "object", "axe-core did not load: {loaded}");
    let result = client.execute_async(AXE_RUN, vec![]).await?;
    anyhow::ensure!(
        result["error"].is_null(),
        "axe-core failed on {what}: {}",
        result["error"]
    );
    let violations = result["violations"].as_array().cloned().unwrap_or_default();
    if !violations.is_empty() {
        let list: Vec<String> = violations
            .iter()
            .map(|v| {
                let nodes: Vec<String> = v["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| format!("    {}: {}", n["target"], n["why"]))
                    .collect();
                format!(
                    "  {} ({}): {}\n{}",
                    v["id"],
                    v["impact"],
                    v["help"],
                    nodes.join("\n")
                )
            })
            .collect();
        anyhow::bail!(
            "{} accessibility violations on {what}:\n{}",
            violations.len(),
            list.join("\n")
        );
    }
    println!("axe-core: no violations on {what}");
    Ok(())
}

/// A view's picture: in the artifacts, and in `docs/` when `UPDATE_SCREENSHOT` is set.
async fn view_screenshot(client: &Client, artifacts: &Path, name: &str) -> anyhow::Result<()> {
    let shot = artifacts.join(name);
    anyhow::ensure!(
        save_screenshot(client, &shot).await,
        "no screenshot of {name}"
    );
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::copy(&shot, docs.join(name))?;
    }
    Ok(())
}

// ---------- before and while recording: the microphone test, the keys, plain words ----------

/// What the third test reads: the meter, the test button, the speakers panel's words.
const READ_RECORD: &str = r#"
const text = (id) => { const el = document.getElementById(id); return el ? el.textContent.trim() : null; };
const meter = document.getElementById('meter');
const result = document.getElementById('finalize-result');
return {
  gateway: text('chip-gateway'),
  recordState: text('record-state'),
  acked: Number(text('count-acked')),
  level: Number(meter.getAttribute('aria-valuenow')),
  levelText: meter.getAttribute('aria-valuetext'),
  testing: document.getElementById('mic-test').getAttribute('aria-pressed') === 'true',
  rosterNames: [...document.querySelectorAll('#roster-names option')].map((o) => o.value),
  speakers: [...document.querySelectorAll('#speakers-body tr')].map((row) => ({
    text: row.textContent.replace(/\s+/g, ' ').trim(),
    list: row.querySelector('.name-input').getAttribute('list'),
    status: row.querySelector('.badge').textContent.trim(),
  })),
  resultKey: result.hidden ? '' : text('result-key'),
  error: document.getElementById('banner-error').hidden ? null : text('banner-error-text'),
};
"#;

/// WebDriver's Control and Shift keys: held down until the end of one `send_keys`.
const CTRL_SHIFT: &str = "\u{E009}\u{E008}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_microphone_test_moves_the_meter_and_the_keys_start_pause_and_finalize() {
    e2e::require_display();
    let app = e2e::app_binary();
    let artifacts = e2e::artifacts_dir();
    let home = settings_home(&artifacts, "keys", "e2e-keys");
    // A roster, for the speakers panel's suggestions.
    let mut settings: Value =
        serde_json::from_slice(&std::fs::read(home.join("config/settings.json")).unwrap()).unwrap();
    settings["roster"] = json!([{"name": "Ada Lovelace"}, {"name": "Grace Hopper"}]);
    std::fs::write(home.join("config/settings.json"), settings.to_string()).unwrap();
    let env = app_env(&home);
    let driver = TauriDriver::start("keys", &as_refs(&env), &artifacts);
    let client = connect(&driver, &app).await;
    let outcome = tokio::time::timeout(Duration::from_secs(180), test_then_keys(&client)).await;
    finish(client, driver, outcome, &artifacts.join("keys-failure.png")).await;
    let _ = std::fs::remove_dir_all(&home);
}

async fn test_then_keys(client: &Client) -> anyhow::Result<()> {
    bundled_gateway(client).await?;
    let page = client.execute(READ_RECORD, vec![]).await?;
    anyhow::ensure!(
        page["level"] == -60 && page["levelText"] == "no signal" && page["testing"] == false,
        "the meter before the test: {page:#}"
    );
    // The microphone test: the meter moves, nothing is recorded.
    click(client, "#mic-test").await?;
    let page = wait_for_read(
        client,
        READ_RECORD,
        "the meter to move in the test",
        20,
        |page| page["testing"] == true && page["level"].as_f64().is_some_and(|l| l > -40.0),
    )
    .await?;
    anyhow::ensure!(
        page["recordState"] == "Ready" && page["acked"] == 0,
        "the microphone test recorded: {page:#}"
    );
    click(client, "#mic-test").await?;
    wait_for_read(
        client,
        READ_RECORD,
        "the meter at rest after the test",
        20,
        |page| page["testing"] == false && page["level"] == -60,
    )
    .await?;

    // Ctrl+Shift+R starts and pauses, Ctrl+Shift+F finalizes, wherever the focus is (here on
    // the Record tab, the one control never disabled while recording).
    let keys = |k: &'static str| async move {
        client
            .find(fantoccini::Locator::Css("#tab-record"))
            .await?
            .send_keys(&format!("{CTRL_SHIFT}{k}"))
            .await?;
        anyhow::Ok(())
    };
    keys("r").await?;
    let page = wait_for_read(client, READ_RECORD, "Ctrl+Shift+R to record", 20, |page| {
        page["recordState"]
            .as_str()
            .is_some_and(|s| s.starts_with("Recording"))
    })
    .await?;
    anyhow::ensure!(page["testing"] == false, "the test still on: {page:#}");
    let page = wait_for_read(
        client,
        READ_RECORD,
        "a voice and 4 acked seconds",
        60,
        |page| {
            page["acked"].as_u64() >= Some(4)
                && page["speakers"].as_array().is_some_and(|s| !s.is_empty())
        },
    )
    .await?;
    // Plain words: "Voice 1" and a status in words, the engine's ids and scores only in
    // tooltips; the roster's names offered in the name field.
    let speaker = &page["speakers"][0];
    anyhow::ensure!(
        speaker["text"]
            .as_str()
            .is_some_and(|t| t.contains("Voice 1")
                && !t.contains("spk_")
                && !t.contains("unknown ")
                && !t.contains("auto"))
            && [
                "Recognized",
                "Please confirm",
                "Not named yet",
                "Named by you"
            ]
            .contains(&speaker["status"].as_str().unwrap_or_default())
            && speaker["list"] == "roster-names"
            && page["rosterNames"] == json!(["Ada Lovelace", "Grace Hopper"]),
        "the speakers panel: {page:#}"
    );
    keys("r").await?;
    wait_for_read(client, READ_RECORD, "Ctrl+Shift+R to pause", 30, |page| {
        page["recordState"]
            .as_str()
            .is_some_and(|s| s.starts_with("Paused"))
    })
    .await?;
    keys("f").await?;
    let page = wait_for_read(
        client,
        READ_RECORD,
        "Ctrl+Shift+F to finalize",
        60,
        |page| {
            page["resultKey"].as_str().is_some_and(|k| !k.is_empty()) || !page["error"].is_null()
        },
    )
    .await?;
    anyhow::ensure!(
        page["resultKey"] == "sessions/e2e-keys/result.json",
        "after Ctrl+Shift+F: {page:#}"
    );
    Ok(())
}

// ---------- the tray and notifications, over the session bus ----------

fn require_session_bus() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "\n\nThis test needs a D-Bus session bus (notifications, the tray). scripts/e2e.sh runs \
         the tests under dbus-run-session.\n"
    );
}

const TRAY_SESSION: &str = "e2e-tray";

/// The tray menu's labels, in order, and which are enabled.
fn labels(menu: &[MenuItem]) -> Vec<(&str, bool)> {
    menu.iter().map(|i| (i.label.as_str(), i.enabled)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_shows_the_recording_and_a_hidden_window_tells_the_outage_and_the_stop() {
    e2e::require_display();
    require_session_bus();
    // The desktop's side first: the app's tray and notifications find them as they start.
    let notifications = NotificationServer::start()
        .await
        .expect("own org.freedesktop.Notifications on the session bus");
    let tray = TrayHost::start()
        .await
        .expect("own org.kde.StatusNotifierWatcher on the session bus");
    let app = e2e::app_binary();
    let artifacts = e2e::artifacts_dir();
    let home = tempdir(&artifacts, "tray");
    std::fs::create_dir_all(home.join("config")).unwrap();
    // A gateway of the test's own, to take it away mid-recording.
    let gateway = gateway::server::start(gateway::server::GatewayConfig::local(
        home.join("remote-gateway"),
    ))
    .await
    .expect("start the remote gateway");
    let settings = json!({
        "input": "tone:440",
        "record_system": false,
        "gateway": {"mode": "remote", "remote_url": gateway.http_url(), "remote_api_key": ""},
        "session_id": TRAY_SESSION,
    });
    std::fs::write(home.join("config/settings.json"), settings.to_string()).unwrap();
    let env = app_env(&home);
    let driver = TauriDriver::start("tray", &as_refs(&env), &artifacts);
    let client = connect(&driver, &app).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(150),
        tray_and_notices(&client, &tray, &notifications, gateway),
    )
    .await;
    finish(client, driver, outcome, &artifacts.join("tray-failure.png")).await;
    let _ = std::fs::remove_dir_all(&home);
}

async fn tray_and_notices(
    client: &Client,
    tray: &TrayHost,
    notifications: &NotificationServer,
    gateway: gateway::server::RunningGateway,
) -> anyhow::Result<()> {
    let menu = tray.menu(30).await?;
    anyhow::ensure!(
        labels(&menu)
            == [
                ("Show window", true),
                ("Hide window", true),
                ("Start recording", true),
                ("Stop recording", false),
                ("Open logs", true),
                ("Quit", true),
            ],
        "the tray menu before recording: {menu:#?}"
    );
    start(client).await?;
    wait_for_read(client, READ, "2 acked seconds", 30, |page| {
        page["acked"].as_u64() >= Some(2)
    })
    .await?;
    // The recording indicator: Pause instead of Start, Stop enabled.
    tray.wait_for_menu("the tray to show the recording", 10, |menu| {
        let items = labels(menu);
        items.contains(&("Pause recording", true)) && items.contains(&("Stop recording", true))
    })
    .await?;
    anyhow::ensure!(
        notifications.seen().is_empty(),
        "notifications while the window was in sight: {:#?}",
        notifications.seen()
    );

    tray.click("Hide window").await?;
    // The gateway goes away: the recording goes on, and the hidden window says so once.
    gateway.shutdown().await?;
    let outage = notifications
        .wait_for("Gateway unreachable", 40, |n| {
            n.summary == "Gateway unreachable"
        })
        .await?;
    anyhow::ensure!(
        outage.body.contains("held on this computer"),
        "the outage notice: {outage:?}"
    );
    // Stop from the tray, with the window still hidden.
    tray.click("Stop recording").await?;
    let stopped = notifications
        .wait_for("Recording stopped", 40, |n| {
            n.summary == "Recording stopped"
        })
        .await?;
    anyhow::ensure!(
        stopped.body.contains(TRAY_SESSION) && stopped.body.contains("held on this computer"),
        "the stop notice: {stopped:?}"
    );
    let outages = notifications
        .seen()
        .iter()
        .filter(|n| n.summary == "Gateway unreachable")
        .count();
    anyhow::ensure!(
        outages == 1,
        "one outage told {outages} times: {:#?}",
        notifications.seen()
    );
    tray.wait_for_menu("the tray to show the stop", 20, |menu| {
        let items = labels(menu);
        items.contains(&("Start recording", true)) && items.contains(&("Stop recording", false))
    })
    .await?;
    tray.click("Show window").await?;
    let page = wait_for_read(client, READ, "the window back, paused", 20, |page| {
        page["visibility"] == "visible"
            && page["recordState"]
                .as_str()
                .is_some_and(|s| s.starts_with("Paused"))
    })
    .await?;
    println!("tray and notifications: {page}; {:?}", notifications.seen());
    Ok(())
}

// ---------- a microphone unplugged while the window is hidden ----------

const UNPLUG_SESSION: &str = "e2e-unplug";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_unplugged_while_the_window_is_hidden_is_told_in_a_notification() {
    e2e::require_display();
    require_session_bus();
    let notifications = NotificationServer::start()
        .await
        .expect("own org.freedesktop.Notifications on the session bus");
    let tray = TrayHost::start()
        .await
        .expect("own org.kde.StatusNotifierWatcher on the session bus");
    let app = e2e::app_binary();
    let artifacts = e2e::artifacts_dir();
    // A real microphone this time (no tone): the system's default input, served by a sound
    // server of the test's own so that the test can pull it out.
    let sound = SoundServer::start(&artifacts.join("unplug.pulseaudio.log"))
        .expect("start the test's PulseAudio server");
    let home = settings_home(&artifacts, "unplug", UNPLUG_SESSION);
    let mut settings: Value =
        serde_json::from_slice(&std::fs::read(home.join("config/settings.json")).unwrap()).unwrap();
    settings["input"] = json!("default");
    std::fs::write(home.join("config/settings.json"), settings.to_string()).unwrap();
    let mut env: Vec<_> = app_env(&home)
        .into_iter()
        .filter(|(key, _)| *key != "RECORDER_INPUT")
        .collect();
    env.push(sound.env());
    let driver = TauriDriver::start("unplug", &as_refs(&env), &artifacts);
    let client = connect(&driver, &app).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(150),
        unplugged(&client, &tray, &notifications, &sound),
    )
    .await;
    finish(
        client,
        driver,
        outcome,
        &artifacts.join("unplug-failure.png"),
    )
    .await;
    drop(sound);
    let _ = std::fs::remove_dir_all(&home);
}

async fn unplugged(
    client: &Client,
    tray: &TrayHost,
    notifications: &NotificationServer,
    sound: &SoundServer,
) -> anyhow::Result<()> {
    bundled_gateway(client).await?;
    tray.menu(30).await?;
    start(client).await?;
    wait_for_read(client, READ, "2 acked seconds", 30, |page| {
        page["acked"].as_u64() >= Some(2)
    })
    .await?;
    // The audio comes from the sound server's microphone.
    anyhow::ensure!(
        sound.recording_streams()? == 1,
        "the app does not record from the test's microphone"
    );

    tray.click("Hide window").await?;
    wait_for_read(client, READ, "the window hidden", 20, |page| {
        page["visibility"] == "hidden"
    })
    .await?;
    anyhow::ensure!(
        notifications.seen().is_empty(),
        "notifications before the unplug: {:#?}",
        notifications.seen()
    );
    sound.unplug()?;
    let lost = notifications
        .wait_for("Microphone lost", 30, |n| n.summary == "Microphone lost")
        .await?;
    anyhow::ensure!(
        lost.body.contains("Default Audio Device"),
        "the lost-microphone notice names the device: {lost:?}"
    );
    // The microphone was the recording's only input: the recording ends by itself, and says
    // where its audio is.
    let stopped = notifications
        .wait_for("Recording stopped", 60, |n| {
            n.summary == "Recording stopped"
        })
        .await?;
    anyhow::ensure!(
        stopped.body.contains(UNPLUG_SESSION),
        "the stop notice: {stopped:?}"
    );
    let told = notifications
        .seen()
        .iter()
        .filter(|n| n.summary == "Microphone lost")
        .count();
    anyhow::ensure!(
        told == 1,
        "the loss told {told} times: {:#?}",
        notifications.seen()
    );

    // Back in sight, the window says the same in words, paused.
    tray.click("Show window").await?;
    let page = wait_for_read(
        client,
        READ,
        "the window back, paused, with the loss",
        20,
        |page| {
            page["visibility"] == "visible"
                && page["recordState"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Paused"))
                && page["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("Input:") && e.contains("Default Audio Device"))
        },
    )
    .await?;
    println!("unplugged: {page}; {:?}", notifications.seen());
    Ok(())
}

// ---------- the global hotkey and the log file ----------

const LOG_SESSION: &str = "e2e-hotkey-log";

/// What the hotkey test reads of the page.
const READ_HOTKEY: &str = r#"
const text = (id) => { const el = document.getElementById(id); return el ? el.textContent.trim() : null; };
return {
  recordState: text('record-state'),
  acked: Number(text('count-acked')),
  hotkey: document.getElementById('hotkey').value,
  keys: text('hotkey-keys'),
  saveState: text('save-state'),
  error: document.getElementById('banner-error').hidden ? null : text('banner-error-text'),
};
"#;

/// Presses keys on the X display as a keyboard would (XTEST), for the app's global grab.
fn press(keys: &str) -> anyhow::Result<()> {
    let xdotool = e2e::which("xdotool").ok_or_else(|| {
        anyhow::anyhow!(
            "xdotool is not installed (scripts/e2e.sh installs it: apt-get install xdotool)"
        )
    })?;
    let status = Command::new(xdotool)
        .args(["key", "--clearmodifiers", keys])
        .stdin(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "xdotool key {keys}: {status}");
    Ok(())
}

/// The app's log file in a test's data directory.
fn log_file(home: &Path) -> PathBuf {
    home.join("data/logs/interview-recorder.log")
}

/// Waits up to `secs` for the file at `path` to hold a line that `wanted` accepts.
async fn wait_for_line(
    path: &Path,
    what: &str,
    secs: u64,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(&wanted) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("waited {secs} s for {what} in {}:\n{text}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hotkey_changes_without_a_restart_and_the_log_file_keeps_the_run_through_a_kill() {
    e2e::require_display();
    let app = e2e::app_binary();
    let artifacts = e2e::artifacts_dir();
    let home = settings_home(&artifacts, "hotkey", LOG_SESSION);
    let env = app_env(&home);
    let driver = TauriDriver::start("hotkey", &as_refs(&env), &artifacts);
    let client = connect(&driver, &app).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(150),
        hotkey_and_log(&client, &driver, &app, &home, &artifacts),
    )
    .await;
    finish(
        client,
        driver,
        outcome,
        &artifacts.join("hotkey-failure.png"),
    )
    .await;
    let _ = std::fs::remove_dir_all(&home);
}

async fn hotkey_and_log(
    client: &Client,
    driver: &TauriDriver,
    app: &Path,
    home: &Path,
    artifacts: &Path,
) -> anyhow::Result<()> {
    bundled_gateway(client).await?;
    let log = log_file(home);
    let saved_hotkey = || -> anyhow::Result<Value> {
        let settings: Value =
            serde_json::from_slice(&std::fs::read(home.join("config/settings.json"))?)?;
        Ok(settings["hotkey"].clone())
    };
    let page = client.execute(READ_HOTKEY, vec![]).await?;
    anyhow::ensure!(
        page["hotkey"] == "Ctrl+Alt+R" && page["keys"] == "Ctrl+Alt+R start or pause",
        "the hotkey out of the box: {page:#}"
    );
    wait_for_line(&log, "the default hotkey registered", 10, |l| {
        l.contains("global hotkey control+alt+KeyR registered")
    })
    .await?;

    // A combination without Ctrl, Alt or Super is refused in words, and not saved.
    replace_text(client, "#hotkey", "Shift+R").await?;
    let page = wait_for_read(client, READ_HOTKEY, "the refusal", 10, |page| {
        page["saveState"] == "Not saved."
    })
    .await?;
    anyhow::ensure!(
        page["error"]
            .as_str()
            .is_some_and(|e| e.contains("needs Ctrl, Alt or Super")),
        "a hotkey without a modifier: {page:#}"
    );
    // (The test's settings file has no hotkey yet: the default applies.)
    anyhow::ensure!(
        saved_hotkey()?.is_null(),
        "saved after a refusal: {}",
        saved_hotkey()?
    );

    // A new one applies at once: saved, shown in the keys, registered in place of the old.
    replace_text(client, "#hotkey", "Ctrl+Alt+J").await?;
    wait_for_read(client, READ_HOTKEY, "Ctrl+Alt+J saved", 10, |page| {
        page["saveState"] == "Saved." && page["keys"] == "Ctrl+Alt+J start or pause"
    })
    .await?;
    anyhow::ensure!(
        saved_hotkey()? == "Ctrl+Alt+J",
        "Ctrl+Alt+J not in the file"
    );
    wait_for_line(&log, "the old hotkey released", 10, |l| {
        l.contains("global hotkey control+alt+KeyR released")
    })
    .await?;

    // Another app takes Ctrl+Alt+R (a second copy of this app, on its own data directory, so
    // not turned away as a second instance): choosing it here is refused in words.
    let other = taken_by_another_app(app, home, artifacts).await?;
    let refused = match replace_text(client, "#hotkey", "Ctrl+Alt+R").await {
        Ok(()) => {
            wait_for_read(
                client,
                READ_HOTKEY,
                "the taken hotkey refused",
                10,
                |page| page["saveState"] == "Not saved.",
            )
            .await
        }
        Err(e) => Err(e),
    };
    other.stop();
    let page = refused?;
    anyhow::ensure!(
        page["error"]
            .as_str()
            .is_some_and(|e| e.contains("Ctrl+Alt+R is taken by another app")),
        "a hotkey another app holds: {page:#}"
    );
    anyhow::ensure!(
        page["hotkey"] == "Ctrl+Alt+J" && saved_hotkey()? == "Ctrl+Alt+J",
        "a taken hotkey stays in the field or the file: {page:#}"
    );

    // The keyboard: the old combination does nothing, the new one starts the recording. The X
    // server hands the presses over in order, so once the second is logged the first would be.
    press("ctrl+alt+r")?;
    press("ctrl+alt+j")?;
    wait_for_read(client, READ_HOTKEY, "Ctrl+Alt+J to record", 20, |page| {
        page["recordState"]
            .as_str()
            .is_some_and(|s| s.starts_with("Recording"))
    })
    .await?;
    wait_for_read(client, READ_HOTKEY, "2 acked seconds", 30, |page| {
        page["acked"].as_u64() >= Some(2)
    })
    .await?;
    wait_for_line(&log, "the recording's session", 10, |l| {
        l.contains(&format!("recording started: session {LOG_SESSION}"))
    })
    .await?;

    // kill -9: what was logged is in the file already.
    let pids = driver.app_pids(app);
    anyhow::ensure!(pids.len() == 1, "the app's processes: {pids:?}");
    let status = Command::new("kill")
        .args(["-KILL", &pids[0].to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -9 the app: {status}");
    let text = std::fs::read_to_string(&log)?;
    let has = |needle: &str| text.lines().any(|l| l.contains(needle));
    for needle in [
        "Interview Recorder 0.1.0 started",
        "bundled gateway started on http://127.0.0.1:",
        &format!("recording started: session {LOG_SESSION}"),
        "global hotkey control+alt+KeyJ registered",
        "global hotkey control+alt+KeyJ pressed",
    ] {
        anyhow::ensure!(has(needle), "the log has no {needle:?}:\n{text}");
    }
    // The bundled gateway's own lines (its requests, named by the session).
    anyhow::ensure!(
        text.lines()
            .any(|l| l.contains("] gateway::") && l.contains(LOG_SESSION)),
        "the log has no line of the bundled gateway about the session:\n{text}"
    );
    let presses = text.lines().filter(|l| l.contains("pressed")).count();
    anyhow::ensure!(presses == 1, "{presses} hotkey presses logged:\n{text}");
    let last_registered = text.lines().rev().find(|l| l.contains("registered"));
    anyhow::ensure!(
        last_registered.is_some_and(|l| l.contains("control+alt+KeyJ"))
            && saved_hotkey()? == "Ctrl+Alt+J",
        "the hotkey moved after the refusal:\n{text}"
    );
    // No folder of this computer: the test's folders are under the artifacts directory.
    for folder in [home, artifacts] {
        anyhow::ensure!(
            !text.contains(&folder.display().to_string()),
            "the log names {}:\n{text}",
            folder.display()
        );
    }
    println!("the log after kill -9:\n{text}");
    Ok(())
}

/// A second copy of the app, on its own data directory, holding the default hotkey.
struct OtherApp {
    child: std::process::Child,
    home: PathBuf,
}

impl OtherApp {
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

async fn taken_by_another_app(
    app: &Path,
    home: &Path,
    artifacts: &Path,
) -> anyhow::Result<OtherApp> {
    let other_home = home.join("other");
    std::fs::create_dir_all(other_home.join("config"))?;
    let log = std::fs::File::create(artifacts.join("hotkey.other-app.log"))?;
    let child = Command::new(app)
        .env("RECORDER_CONFIG_DIR", other_home.join("config"))
        .env("RECORDER_DATA_DIR", other_home.join("data"))
        .env("RECORDER_INPUT", "tone:440")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let other = OtherApp {
        child,
        home: other_home.clone(),
    };
    let held = wait_for_line(
        &log_file(&other_home),
        "the other app to hold Ctrl+Alt+R",
        30,
        |l| l.contains("global hotkey control+alt+KeyR registered"),
    )
    .await;
    match held {
        Ok(()) => Ok(other),
        Err(e) => {
            other.stop();
            Err(e)
        }
    }
}
