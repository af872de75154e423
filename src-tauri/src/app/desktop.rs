//! The app as a desktop app, through Tauri's official plugins (issue 11, item 7): one
//! instance per data directory (a second launch brings the first to the front), the window's
//! size and place kept between runs, log files, a confirm before quitting mid-recording,
//! notifications while the window is out of sight, and the global start/pause hotkey. The
//! tray is in [`super::tray`].
//!
//! The page stays the one place that starts a recording (it saves the settings and asks about
//! finalized sessions first): the tray's Start and the hotkey send it a `command` message, as
//! a click on its button would. Stopping needs no question, so the tray's Stop stops here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use tauri::plugin::TauriPlugin;
use tauri::{AppHandle, Manager as _, Runtime, WebviewWindow, Wry};
use tauri_plugin_dialog::{DialogExt as _, MessageDialogButtons, MessageDialogKind};
use tauri_plugin_global_shortcut::{GlobalShortcutExt as _, ShortcutState};
use tauri_plugin_log::{RotationStrategy, Target, TargetKind};
use tauri_plugin_notification::NotificationExt as _;
use tauri_plugin_window_state::StateFlags;

use super::notices::Notices;
use super::paths::{self, Paths};
use super::state::AppState;
use super::tray::Tray;

/// The window's label (`tauri.conf.json`).
pub const MAIN: &str = "main";

/// Starts or pauses the recording from anywhere (X11, Windows, macOS; Wayland gives apps no
/// global keys). Ctrl+Alt rather than Ctrl+Shift: Ctrl+Shift+R is the browsers' hard reload,
/// and a global key takes its combination from every other app.
pub const HOTKEY: &str = "CommandOrControl+Alt+R";

/// The size and place of the window; never its visibility (a window closed while hidden
/// would otherwise come back hidden).
fn window_flags() -> StateFlags {
    StateFlags::all() - StateFlags::VISIBLE
}

/// The single-instance plugin; registered before every other plugin, so a second launch
/// exits before it opens a window or a gateway.
///
/// One instance per data directory: two apps on one spool and one bundled gateway database
/// would fight over them, while a test or a portable setup with its own `RECORDER_DATA_DIR`
/// is a different app and may run beside the user's.
pub fn single_instance(identifier: &str) -> TauriPlugin<Wry> {
    let id = match std::env::var_os(paths::DATA_DIR_ENV) {
        Some(dir) => {
            use std::hash::{Hash as _, Hasher as _};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            dir.hash(&mut hasher);
            format!("{identifier}.d{:016x}", hasher.finish())
        }
        None => identifier.to_owned(),
    };
    tauri_plugin_single_instance::Builder::new()
        .dbus_id(id)
        .callback(|app, _argv, _cwd| {
            bring_to_front(app);
            log::info!("a second launch was turned away; this window is brought to the front");
            if let Some(state) = app.try_state::<AppState>() {
                state
                    .events()
                    .send(json!({"type": "window", "reason": "second_launch"}));
            }
        })
        .build()
}

/// Logs go to a file in the app's log directory (the one "Open logs" shows) and to stderr.
/// `RUST_LOG` set to a level (`debug`, `trace`, ...) applies it to everything; by default
/// warnings, plus the gateway's and the app's own information (the gateway's startup line).
pub fn logging(paths: &Paths) -> TauriPlugin<Wry> {
    use log::LevelFilter;
    let everything = std::env::var("RUST_LOG")
        .ok()
        .and_then(|level| level.trim().parse::<LevelFilter>().ok());
    let mut builder = tauri_plugin_log::Builder::new()
        .clear_targets()
        .target(Target::new(TargetKind::Stderr))
        .target(Target::new(TargetKind::Folder {
            path: paths.log_dir.clone(),
            file_name: Some("interview-recorder".into()),
        }))
        .max_file_size(5 * 1024 * 1024)
        .rotation_strategy(RotationStrategy::KeepSome(3));
    builder = match everything {
        Some(level) => builder.level(level),
        None => builder
            .level(LevelFilter::Warn)
            .level_for("gateway", LevelFilter::Info)
            .level_for("interview_recorder", LevelFilter::Info),
    };
    builder.build()
}

/// The window-state plugin, keeping its file beside the settings (so a test's or a portable
/// setup's window never takes the user's).
pub fn window_state(paths: &Paths) -> TauriPlugin<Wry> {
    tauri_plugin_window_state::Builder::new()
        .with_filename(paths.window_state_file().display().to_string())
        .with_state_flags(window_flags())
        .build()
}

/// The global hotkey's plugin: a press starts or pauses the recording through the page.
pub fn hotkey() -> TauriPlugin<Wry> {
    tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, _shortcut, event| {
            if event.state == ShortcutState::Pressed {
                page_command(app, "toggle");
            }
        })
        .build()
}

/// Registers [`HOTKEY`]; where the desktop refuses it (taken by another app, Wayland) the app
/// works without it and the log says why.
pub fn register_hotkey(app: &AppHandle) {
    if let Err(e) = app.global_shortcut().register(HOTKEY) {
        log::warn!("the global hotkey {HOTKEY} is not available: {e}");
    }
}

/// Asks the page to do what its own button would (`toggle`: Start or Pause).
pub fn page_command(app: &AppHandle, action: &str) {
    if let Some(state) = app.try_state::<AppState>() {
        state
            .events()
            .send(json!({"type": "command", "action": action}));
    }
}

/// Shows, restores and focuses the window.
pub fn bring_to_front<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN) {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Whether the window is out of sight: hidden or minimized.
fn hidden(window: &WebviewWindow) -> bool {
    !window.is_visible().unwrap_or(true) || window.is_minimized().unwrap_or(false)
}

/// Only one quit question at a time (a second close click while it is up does nothing).
static ASKING: AtomicBool = AtomicBool::new(false);

/// Quits, asking first while a recording runs (the window's close button and the tray's Quit).
/// Quitting stops the recording; what the gateway has not taken stays in the spool and is
/// offered as held audio at the next launch.
pub fn request_quit(app: &AppHandle) {
    let recording = app
        .try_state::<AppState>()
        .is_some_and(|state| state.recording_now());
    if !recording {
        app.exit(0);
        return;
    }
    if ASKING.swap(true, Ordering::SeqCst) {
        return;
    }
    bring_to_front(app);
    let handle = app.clone();
    let mut dialog = app
        .dialog()
        .message(
            "A recording is running. Quitting stops it; audio the gateway has not taken yet \
             stays on this computer and is offered at the next launch.",
        )
        .title("Quit while recording?")
        .kind(MessageDialogKind::Warning)
        .buttons(MessageDialogButtons::OkCancelCustom(
            "Stop and quit".into(),
            "Keep recording".into(),
        ));
    if let Some(window) = app.get_webview_window(MAIN) {
        dialog = dialog.parent(&window);
    }
    dialog.show(move |quit| {
        ASKING.store(false, Ordering::SeqCst);
        if quit {
            handle.exit(0);
        }
    });
}

/// The desktop side's view of the page's messages: the tray's indicator and the
/// notifications (rules in [`Notices`]).
pub fn watch_events(app: &AppHandle, tray: Option<Tray>) {
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    let handle = app.clone();
    let notices = Mutex::new(Notices::default());
    state.events().watch(Box::new(move |message| {
        // Level and counter messages come many times a second: only the few kinds the rules
        // read go further.
        if !matches!(
            message["type"].as_str(),
            Some("recording" | "finished" | "connection" | "error")
        ) {
            return;
        }
        let out_of_sight = handle.get_webview_window(MAIN).is_none_or(|w| hidden(&w));
        let reading = notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read(message, out_of_sight);
        if let (Some(recording), Some(tray)) = (reading.recording, &tray) {
            tray.show_recording(recording);
        }
        if let Some(notice) = reading.notice {
            log::info!("notification: {}: {}", notice.title, notice.body);
            if let Err(e) = handle
                .notification()
                .builder()
                .title(&notice.title)
                .body(&notice.body)
                .show()
            {
                log::warn!("cannot show the notification {:?}: {e}", notice.title);
            }
        }
    }));
}

/// Builds the main window (after the window-state plugin, so it opens where it was left).
pub fn open_window(app: &tauri::App) -> anyhow::Result<()> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN)
        .ok_or_else(|| anyhow::anyhow!("tauri.conf.json has no window {MAIN:?}"))?
        .clone();
    // The window-state plugin restores its size and place as it opens.
    tauri::WebviewWindowBuilder::from_config(app.handle(), &config)?.build()?;
    Ok(())
}
