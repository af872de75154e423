//! The app as a desktop app, through Tauri's official plugins (issue 11, item 7): one
//! instance per data directory (a second launch brings the first to the front), the window's
//! size and place kept between runs, a confirm before quitting mid-recording,
//! notifications while the window is out of sight, and the global start/pause hotkey (the
//! one in the settings, changed without a restart). The tray is in [`super::tray`], the log
//! file in [`super::logs`].
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
use tauri_plugin_notification::NotificationExt as _;
use tauri_plugin_window_state::StateFlags;

use super::notices::Notices;
use super::paths::{self, Paths};
use super::settings;
use super::state::AppState;
use super::tray::Tray;

/// The window's label (`tauri.conf.json`).
pub const MAIN: &str = "main";

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

/// The window-state plugin, keeping its file beside the settings (so a test's or a portable
/// setup's window never takes the user's).
pub fn window_state(paths: &Paths) -> TauriPlugin<Wry> {
    tauri_plugin_window_state::Builder::new()
        .with_filename(paths.window_state_file().display().to_string())
        .with_state_flags(window_flags())
        .build()
}

/// The global hotkey's plugin: a press starts or pauses the recording through the page.
/// Which key it is comes from the settings ([`use_hotkey`]).
pub fn hotkey() -> TauriPlugin<Wry> {
    tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, shortcut, event| {
            if event.state == ShortcutState::Pressed {
                log::info!(
                    "global hotkey {} pressed: start or pause",
                    shortcut.into_string()
                );
                page_command(app, "toggle");
            }
        })
        .build()
}

/// Registers the saved hotkey at launch. Where the desktop refuses it (taken by another app,
/// Wayland, which gives apps no global keys) the app works without it and the log says why.
pub fn register_hotkey(app: &AppHandle) {
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    if let Err(e) = use_hotkey(app, "", &state.settings().hotkey) {
        log::warn!("{e:#}");
    }
}

/// Moves the global hotkey from `before` to `wanted` (the settings' texts; empty: off). Where
/// `wanted` is not a usable shortcut or the desktop refuses it (taken by another app) the old
/// one stays, and the error says so in words for the window.
///
/// The old one is released before the new one is registered: on X11 the release is only sent
/// to the X server with the next request that waits for an answer (global-hotkey queues it),
/// and registering is one, so another app can take the old key at once.
pub fn use_hotkey(app: &AppHandle, before: &str, wanted: &str) -> anyhow::Result<()> {
    let old = settings::parse_hotkey(before).ok().flatten();
    let new = settings::parse_hotkey(wanted)?;
    if old == new {
        return Ok(());
    }
    let keys = app.global_shortcut();
    // Not registered when the desktop refused it at launch: nothing to release then.
    let released = old.filter(|old| keys.unregister(*old).is_ok());
    if let Some(new) = new
        && let Err(e) = keys.register(new)
    {
        if let Some(old) = released
            && let Err(again) = keys.register(old)
        {
            log::warn!(
                "global hotkey {} lost while trying another: {again}",
                old.into_string()
            );
        }
        return Err(refused(wanted.trim(), &e));
    }
    if let Some(old) = released {
        log::info!("global hotkey {} released", old.into_string());
    }
    if let Some(new) = new {
        log::info!("global hotkey {} registered", new.into_string());
    }
    Ok(())
}

/// Why the desktop did not take `wanted`, in words.
fn refused(wanted: &str, error: &tauri_plugin_global_shortcut::Error) -> anyhow::Error {
    if error.to_string().contains("already registered") {
        anyhow::anyhow!(
            "The hotkey {wanted} is taken by another app. Choose another one, or leave the \
             field empty to turn the global hotkey off."
        )
    } else {
        anyhow::anyhow!("The desktop did not accept the hotkey {wanted}: {error}.")
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
        log_milestone(message);
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

/// The recording's start and end in the log, with the session they belong to.
fn log_milestone(message: &serde_json::Value) {
    match message["type"].as_str() {
        Some("recording") if message["state"] == "recording" => log::info!(
            "recording started: session {} from second {}",
            message["info"]["session_id"].as_str().unwrap_or("?"),
            message["info"]["first_seq"].as_u64().unwrap_or(0)
        ),
        Some("finished") => log::info!(
            "recording stopped: session {}, up to second {}, {} s held on this computer",
            message["session_id"].as_str().unwrap_or("?"),
            message["last_seq"].as_u64().unwrap_or(0),
            message["uplink"]["pending"].as_u64().unwrap_or(0)
        ),
        _ => {}
    }
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
