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
//! - [`speakers`]: name corrections; [`folders`]: "open folder";
//! - the Sessions view: [`history`] (the list), [`titles`] (renames), [`playback`] (the
//!   session audio it plays), [`export`] (the files); their actions are methods of
//!   `AppState` in [`sessions_view`];
//! - [`state`]: every action, as methods; [`commands`]: the page's entry points to them.

mod commands;
mod delivery;
mod export;
mod folders;
mod gateway_host;
mod held;
mod history;
mod paths;
mod playback;
mod recording;
mod session;
mod sessions_view;
mod settings;
mod speakers;
mod state;
mod titles;
mod ui_events;

use tauri::Manager as _;

use self::state::AppState;

/// Builds the window and runs until it closes; on exit stops the recording and the gateway.
pub fn run() {
    init_logging();
    let app = tauri::Builder::default()
        .setup(|app| {
            let paths = paths::Paths::resolve(app.handle())?;
            // The bundled gateway starts in milliseconds; having it before the page loads
            // means the first status the page asks for is already the real one.
            let state = tauri::async_runtime::block_on(AppState::open(paths));
            app.manage(state);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::subscribe,
            commands::app_status,
            commands::list_devices,
            commands::save_settings,
            commands::new_session_id,
            commands::session_view,
            commands::send_held,
            commands::start_recording,
            commands::stop_recording,
            commands::rename_speaker,
            commands::finalize_session,
            commands::open_folder,
            commands::list_sessions,
            commands::session_audio,
            commands::rename_session,
            commands::export_session,
            commands::open_export,
            commands::delete_session,
        ])
        .build(tauri::generate_context!())
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

/// Gateway and engine logs to stderr, filtered by `RUST_LOG` (default: warnings, and the
/// gateway's startup line).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,gateway=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
