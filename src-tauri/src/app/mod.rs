//! The Tauri 2 shell over the recorder engine: thin glue, no audio or network logic of its own.
//!
//! - [`paths`]: where settings and data live (env overrides for tests);
//! - [`settings`]: the persisted setup (`settings.json`);
//! - [`gateway_host`]: the bundled in-process gateway, or a remote one;
//! - [`recording`]: one running engine recording, owned by a task;
//! - [`session`]: what the window shows of the session in Setup (recorded time, finalized);
//! - [`held`]: the list of sessions with audio held on this computer; [`delivery`]: sending
//!   it without recording;
//! - [`ui_events`]: the event stream to the page;
//! - [`mic_test`]: the input's level before recording; [`speakers`]: name corrections; [`folders`]: "open folder", "play", "open logs";
//! - the desktop side: [`desktop`] (single instance, window state, logs, the quit question,
//!   notifications, the global hotkey; their rules in [`notices`]), [`tray`] and [`logs`]
//!   (the log file);
//! - the Sessions view: [`history`] (the list), [`titles`] (renames), [`audio_server`] and
//!   [`gateway_audio`] (the session audio it plays, streamed from this computer or from the
//!   gateway), [`export`], [`playback`] (gateway audio saved for exports) and
//!   [`export_folder`] (the files), [`deletes`] (deletes the gateway still owes); their
//!   actions are methods of `AppState` in [`sessions_view`];
//! - [`state`]: every action, as methods; [`commands`]: the page's entry points to them.

mod audio_server;
mod commands;
mod deletes;
mod delivery;
mod desktop;
mod export;
mod export_folder;
mod folders;
mod gateway_audio;
mod gateway_host;
mod held;
mod history;
mod logs;
mod mic_test;
mod notices;
mod paths;
mod playback;
mod recording;
mod session;
mod sessions_view;
mod settings;
mod speakers;
mod state;
mod titles;
mod tray;
mod ui_events;

use tauri::Manager as _;

use self::state::AppState;

/// Builds the window and runs until it closes; on exit stops the recording and the gateway.
pub fn run() {
    let context = tauri::generate_context!();
    let identifier = context.config().identifier.clone();
    let app = tauri::Builder::default()
        // First: a second launch must leave before it opens anything.
        .plugin(desktop::single_instance(&identifier))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(desktop::hotkey())
        .setup(|app| {
            let paths = paths::Paths::resolve(app.handle())?;
            // Both need the paths (a test's or a portable setup's own folders).
            app.handle().plugin(logs::plugin(&paths))?;
            log::info!(
                "Interview Recorder {} started (logs in this folder)",
                app.package_info().version
            );
            app.handle().plugin(desktop::window_state(&paths))?;
            // The bundled gateway starts in milliseconds; having it before the page loads
            // means the first status the page asks for is already the real one.
            let state = tauri::async_runtime::block_on(AppState::open(paths));
            app.manage(state);
            desktop::open_window(app)?;
            // Deletes an earlier run could not do on its gateway.
            sessions_view::watch_deletes(app.handle());
            let tray = tray::Tray::build(app.handle())
                .inspect_err(|e| log::warn!("no tray icon: {e:#}"))
                .ok();
            desktop::watch_events(app.handle(), tray);
            desktop::register_hotkey(app.handle());
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window quits; while recording it asks first, except under WebDriver
            // (tauri-driver sets TAURI_WEBVIEW_AUTOMATION), whose end of session closes the
            // window and can answer no native dialog: it quits as before, stopping the
            // recording on the way out.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event
                && window.label() == desktop::MAIN
                && std::env::var("TAURI_WEBVIEW_AUTOMATION").as_deref() != Ok("true")
                && window
                    .try_state::<AppState>()
                    .is_some_and(|state| state.recording_now())
            {
                api.prevent_close();
                desktop::request_quit(window.app_handle());
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::subscribe,
            commands::app_status,
            commands::list_devices,
            commands::save_settings,
            commands::new_session_id,
            commands::session_view,
            commands::send_held,
            commands::mic_test,
            commands::start_recording,
            commands::stop_recording,
            commands::rename_speaker,
            commands::finalize_session,
            commands::open_folder,
            commands::play_recording,
            commands::open_logs,
            commands::list_sessions,
            commands::session_audio,
            commands::rename_session,
            commands::export_session,
            commands::choose_export_folder,
            commands::open_export,
            commands::delete_session,
        ])
        .build(context)
        .unwrap_or_else(|e| {
            eprintln!("interview-recorder: cannot start the window: {e}");
            std::process::exit(1);
        });
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event
            && let Some(state) = handle.try_state::<AppState>()
        {
            tauri::async_runtime::block_on(state.shutdown());
        }
    });
}
