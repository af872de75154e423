//! The tray (menu-bar) icon: the app's icon, with a red dot while a recording runs, and a menu
//! to show or hide the window, start or pause, stop, open the logs and quit. While the window
//! is hidden the app goes on recording, and tells what happens in notifications.
//!
//! Start goes through the page (see `desktop.rs`), after bringing the window to the front: the
//! page may have a question to ask first. Stop and Quit work with the window hidden.

use tauri::image::Image;
use tauri::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager as _, Wry};

use super::desktop;
use super::folders;
use super::state::AppState;

/// The tray icon and the menu items that change with the recording. Cheap to clone (handles).
#[derive(Clone)]
pub struct Tray {
    icon: TrayIcon<Wry>,
    toggle: MenuItem<Wry>,
    stop: MenuItem<Wry>,
    idle: Image<'static>,
    recording: Image<'static>,
}

impl Tray {
    /// Builds the tray from the window's icon. Fails where the desktop has no tray (Linux
    /// without libayatana-appindicator3 or a status-notifier host); the app runs without it.
    pub fn build(app: &AppHandle) -> anyhow::Result<Tray> {
        let icon = app
            .default_window_icon()
            .ok_or_else(|| anyhow::anyhow!("the app has no icon"))?;
        let idle = icon.clone().to_owned();
        let recording = Image::new(
            &with_dot(icon.rgba(), icon.width(), icon.height()),
            icon.width(),
            icon.height(),
        )
        .to_owned();
        let show = MenuItem::with_id(app, "show", "Show window", true, None::<&str>)?;
        let hide = MenuItem::with_id(app, "hide", "Hide window", true, None::<&str>)?;
        let toggle = MenuItem::with_id(app, "toggle", "Start recording", true, None::<&str>)?;
        let stop = MenuItem::with_id(app, "stop", "Stop recording", false, None::<&str>)?;
        let logs = MenuItem::with_id(app, "logs", "Open logs", true, None::<&str>)?;
        let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
        let separator = PredefinedMenuItem::separator(app)?;
        let menu = Menu::with_items(
            app,
            &[&show, &hide, &toggle, &stop, &separator, &logs, &quit],
        )?;
        // Linux's indicators build the icon in a library loaded at run time, which panics
        // when it is missing instead of returning an error.
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            TrayIconBuilder::with_id("main")
                .icon(idle.clone())
                .tooltip("Interview Recorder")
                .menu(&menu)
                .on_menu_event(on_menu)
                .build(app)
        }))
        .map_err(|_| anyhow::anyhow!("this desktop has no tray (libayatana-appindicator3)"))?;
        Ok(Tray {
            icon: built?,
            toggle,
            stop,
            idle,
            recording,
        })
    }

    /// The recording indicator: the dot, the tooltip and which items apply.
    pub fn show_recording(&self, recording: bool) {
        let (image, tooltip, toggle) = if recording {
            (
                &self.recording,
                "Interview Recorder: recording",
                "Pause recording",
            )
        } else {
            (&self.idle, "Interview Recorder", "Start recording")
        };
        let _ = self.icon.set_icon(Some(image.clone()));
        let _ = self.icon.set_tooltip(Some(tooltip));
        let _ = self.toggle.set_text(toggle);
        let _ = self.stop.set_enabled(recording);
    }
}

fn on_menu(app: &AppHandle, event: MenuEvent) {
    match event.id.as_ref() {
        "show" => desktop::bring_to_front(app),
        "hide" => {
            if let Some(window) = app.get_webview_window(desktop::MAIN) {
                let _ = window.hide();
            }
        }
        "toggle" => {
            desktop::bring_to_front(app);
            desktop::page_command(app, "toggle");
        }
        "stop" => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Some(state) = app.try_state::<AppState>()
                    && let Err(e) = state.stop().await
                {
                    log::warn!("the tray's Stop: {e:#}");
                }
            });
        }
        "logs" => {
            if let Some(state) = app.try_state::<AppState>()
                && let Err(e) = folders::open_dir(app, &state.log_dir())
            {
                log::warn!("the tray's Open logs: {e:#}");
            }
        }
        "quit" => desktop::request_quit(app),
        _ => {}
    }
}

/// The icon with a red dot (white-ringed, so it reads on dark and light bars) in its
/// lower right quarter.
fn with_dot(rgba: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = rgba.to_vec();
    let size = width.min(height) as f32;
    let (cx, cy) = (width as f32 - size * 0.25, height as f32 - size * 0.25);
    let radius = size * 0.22;
    let ring = size * 0.05;
    for y in 0..height {
        for x in 0..width {
            let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
            let colour = if d <= radius {
                [0xd9, 0x30, 0x36, 0xff]
            } else if d <= radius + ring {
                [0xff, 0xff, 0xff, 0xff]
            } else {
                continue;
            };
            let at = ((y * width + x) * 4) as usize;
            if let Some(pixel) = out.get_mut(at..at + 4) {
                pixel.copy_from_slice(&colour);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recording_icon_has_a_red_dot_in_its_lower_right_and_keeps_the_rest() {
        let (w, h) = (32u32, 32u32);
        let icon: Vec<u8> = (0..w * h).flat_map(|_| [10, 20, 30, 255]).collect();
        let dotted = with_dot(&icon, w, h);
        assert_eq!(dotted.len(), icon.len());
        let pixel = |x: u32, y: u32| &dotted[((y * w + x) * 4) as usize..][..4];
        assert_eq!(pixel(24, 24), [0xd9, 0x30, 0x36, 0xff]);
        assert_eq!(pixel(2, 2), [10, 20, 30, 255]);
        assert_eq!(pixel(24, 2), [10, 20, 30, 255]);
    }
}
