//! `interview-recorder`: the desktop app. A Tauri 2 window (front end in `ui/`) over the recorder
//! engine of this crate's library, with the gateway bundled in-process. All the glue lives in
//! [`app`]; this file only starts it.

// A release build on Windows opens no console window next to the app.
#![cfg_attr(
    all(not(debug_assertions), target_os = "windows"),
    windows_subsystem = "windows"
)]

mod app;

fn main() {
    app::run();
}
