//! The app's log file: where it is, what goes in, and what never does.
//!
//! One file, `interview-recorder.log`, in the app's log directory (the one "Open logs" and the
//! tray's Open logs show; with `RECORDER_DATA_DIR` its `logs/`), rotated at 5 MB keeping 3,
//! and the same lines on stderr. In it: the app's own messages (`log`, target `recorder::…`)
//! and the bundled gateway's and the engine's (`tracing`, handed to `log` by tracing's `log`
//! feature, since the app installs no tracing subscriber), through one filter and one format.
//!
//! Each line is written to the file and flushed as it is logged (tauri-plugin-log's file
//! target is a fern writer, which flushes every record: one `write` per line), so a
//! `kill -9` loses at most the line being written.
//!
//! Never in a line: this computer's folders and keys. The app's own folders become `<data>`,
//! `<config>`, `<logs>`, `<exports>`, the home directory `~`; the bundled gateway's key for
//! this launch and the keys in the settings are told to [`hide_secret`]; and the value of any
//! `key=`/`token=` parameter in a URL is hidden too (see [`redact`]).

use std::sync::RwLock;

use log::LevelFilter;
use tauri::Wry;
use tauri::plugin::TauriPlugin;
use tauri_plugin_log::{RotationStrategy, Target, TargetKind};

use super::paths::Paths;

/// The log file's name, without `.log`.
pub const FILE_NAME: &str = "interview-recorder";

/// What [`redact`] replaces: folders (longest first) with their placeholder, and secrets.
#[derive(Default)]
struct Redactions {
    folders: Vec<(String, &'static str)>,
    secrets: Vec<String>,
}

/// Set once the paths are known; secrets are added as the gateway starts and settings change.
static REDACTIONS: RwLock<Redactions> = RwLock::new(Redactions {
    folders: Vec::new(),
    secrets: Vec::new(),
});

/// Keeps `secret` out of every line from now on (an API key, the bundled gateway's key).
pub fn hide_secret(secret: &str) {
    let secret = secret.trim();
    // A short value would cut words out of unrelated lines.
    if secret.len() < 6 {
        return;
    }
    let mut redactions = REDACTIONS.write().unwrap_or_else(|e| e.into_inner());
    if !redactions.secrets.iter().any(|s| s == secret) {
        redactions.secrets.push(secret.to_owned());
    }
}

/// The log plugin: the file in `paths.log_dir` and stderr. `RUST_LOG` set to a level
/// (`debug`, `trace`, ...) applies it to everything; by default warnings from every library,
/// and information from the app and the bundled gateway: the app's start, the gateway's start,
/// each recording's session, requests and sockets, notifications raised, the hotkey.
pub fn plugin(paths: &Paths) -> TauriPlugin<Wry> {
    {
        let mut redactions = REDACTIONS.write().unwrap_or_else(|e| e.into_inner());
        let mut folders = vec![
            (paths.log_dir.display().to_string(), "<logs>"),
            (paths.data_dir.display().to_string(), "<data>"),
            (paths.config_dir.display().to_string(), "<config>"),
            (paths.exports_dir.display().to_string(), "<exports>"),
        ];
        if let Some(home) = std::env::var_os("HOME").filter(|h| h.len() > 1) {
            folders.push((std::path::Path::new(&home).display().to_string(), "~"));
        }
        // The longest first: the log folder inside the data folder is `<logs>`, not
        // `<data>/logs`.
        folders.sort_by_key(|(folder, _)| std::cmp::Reverse(folder.len()));
        redactions.folders = folders;
    }
    let everything = std::env::var("RUST_LOG")
        .ok()
        .and_then(|level| level.trim().parse::<LevelFilter>().ok());
    let stamp = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
    );
    let mut builder = tauri_plugin_log::Builder::new()
        .clear_targets()
        .target(Target::new(TargetKind::Stderr))
        .target(Target::new(TargetKind::Folder {
            path: paths.log_dir.clone(),
            file_name: Some(FILE_NAME.into()),
        }))
        .max_file_size(5 * 1024 * 1024)
        .rotation_strategy(RotationStrategy::KeepSome(3))
        .format(move |out, message, record| {
            let now = time::OffsetDateTime::now_utc();
            let line = redacted(&message.to_string());
            out.finish(format_args!(
                "{} UTC [{}] {}: {line}",
                now.format(&stamp).unwrap_or_default(),
                record.level(),
                record.target(),
            ))
        });
    builder = match everything {
        Some(level) => builder.level(level),
        None => builder
            .level(LevelFilter::Warn)
            .level_for("gateway", LevelFilter::Info)
            .level_for("recorder", LevelFilter::Info)
            .level_for("interview_recorder", LevelFilter::Info),
    };
    builder.build()
}

fn redacted(line: &str) -> String {
    let redactions = REDACTIONS.read().unwrap_or_else(|e| e.into_inner());
    redact(line, &redactions.folders, &redactions.secrets)
}

/// `line` with each folder replaced by its placeholder, each secret by `[hidden]`, and the
/// value of each `key=`, `api_key=` or `token=` parameter by `[hidden]`.
fn redact(line: &str, folders: &[(String, &'static str)], secrets: &[String]) -> String {
    let mut out = line.to_owned();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[hidden]");
        }
    }
    for (folder, placeholder) in folders {
        if !folder.is_empty() && out.contains(folder.as_str()) {
            out = out.replace(folder.as_str(), placeholder);
        }
    }
    hide_parameters(&out)
}

/// Hides the values of URL parameters that carry keys (`?key=…`, `&api_key=…`, `token=…`).
fn hide_parameters(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(['?', '&']) {
        let (before, after) = rest.split_at(at + 1);
        out.push_str(before);
        rest = after;
        let name_end = rest.find('=').unwrap_or(0);
        let name = &rest[..name_end];
        let is_key = matches!(
            name.to_ascii_lowercase().as_str(),
            "key" | "api_key" | "apikey" | "token" | "access_token"
        );
        if name_end > 0 && is_key {
            out.push_str(name);
            out.push_str("=[hidden]");
            let value = &rest[name_end + 1..];
            let end = value
                .find(|c: char| c == '&' || c == '#' || c.is_whitespace() || "\"'<>)".contains(c))
                .unwrap_or(value.len());
            rest = &value[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders() -> Vec<(String, &'static str)> {
        vec![
            ("/home/ada/.local/share/rec/logs".into(), "<logs>"),
            ("/home/ada/.local/share/rec".into(), "<data>"),
            ("/home/ada".into(), "~"),
        ]
    }

    #[test]
    fn a_line_names_no_folder_of_this_computer() {
        let line = "cannot open /home/ada/.local/share/rec/spool/s1 (logs in \
                    /home/ada/.local/share/rec/logs, wav in /home/ada/Music/a.wav)";
        assert_eq!(
            redact(line, &folders(), &[]),
            "cannot open <data>/spool/s1 (logs in <logs>, wav in ~/Music/a.wav)"
        );
    }

    #[test]
    fn a_line_shows_no_key() {
        let secrets = vec!["k3y-of-this-launch".to_owned()];
        let line =
            "connect ws://127.0.0.1:4000/v1/ws?session=s1&key=abc123 with k3y-of-this-launch";
        assert_eq!(
            redact(line, &[], &secrets),
            "connect ws://127.0.0.1:4000/v1/ws?session=s1&key=[hidden] with [hidden]"
        );
        assert_eq!(
            hide_parameters("GET /x?token=t0k&b=1 \"https://h/?api_key=zz\""),
            "GET /x?token=[hidden]&b=1 \"https://h/?api_key=[hidden]\""
        );
        // Nothing to hide: unchanged.
        let plain = "request method=GET path=/v1/sessions/s1 status=200 q? & x";
        assert_eq!(redact(plain, &folders(), &secrets), plain);
    }

    #[test]
    fn a_short_secret_is_not_hidden_everywhere() {
        hide_secret("ab");
        assert!(REDACTIONS.read().unwrap().secrets.iter().all(|s| s != "ab"));
    }
}
