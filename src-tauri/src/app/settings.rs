//! The user's settings: what to record, where to send it, and who is in the room.
//!
//! Persisted as `settings.json` in the config directory, written whole through a temporary file
//! and a rename so a crash never leaves half a file, readable by the user alone (it holds API
//! keys; see [`recorder::private_file`]). A missing file means defaults; an unreadable
//! one also means defaults, plus a warning the window shows (the bad file is kept until the user
//! saves over it).

use std::path::Path;

use anyhow::Context as _;
use contract::protocol::RosterEntry;
use contract::session_id::SessionId;
use recorder::endpoint::GatewayEndpoint;
use recorder::source::InputSpec;
use serde::{Deserialize, Serialize};
use tauri_plugin_global_shortcut::{Modifiers, Shortcut};

/// Overrides the input for this run (`tone:440`, a `.wav` path, a device name); not saved.
pub const INPUT_ENV: &str = "RECORDER_INPUT";
/// Overrides the meeting audio's source for this run (`tone:660`, a `.wav` path, an output's
/// name), when [`Settings::record_system`] is on; not saved. Without it: the default output.
pub const SYSTEM_ENV: &str = "RECORDER_SYSTEM";

/// Whether this OS can record what the computer plays (see [`recorder::source::system`]):
/// the "Also record meeting audio" toggle starts on here.
pub const SYSTEM_AUDIO_SUPPORTED: bool = cfg!(any(
    target_os = "linux",
    target_os = "windows",
    target_os = "macos"
));

/// Everything the setup area edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Input spec as the engine reads it: `default`, a device name, a `.wav` file, `tone:FREQ`.
    pub input: String,
    /// "Also record meeting audio": the default output's audio (what the call plays) as the
    /// session's `system` stream. On by default where the OS allows it.
    pub record_system: bool,
    pub gateway: GatewaySetting,
    /// The bundled gateway's inference service (a remote gateway has its own).
    pub inference: InferenceSetting,
    /// The session the next recording streams to; resuming it continues its numbering.
    pub session_id: String,
    pub roster: Vec<RosterEntry>,
    /// Seconds between live speaker resolutions.
    pub resolve_every_secs: f64,
    /// The global start/pause hotkey, as the user wrote it (`Ctrl+Alt+R`, `Super+Shift+F9`);
    /// empty: none. Checked by [`parse_hotkey`]; registered by `desktop::use_hotkey`.
    pub hotkey: String,
}

/// The global hotkey out of the box. Ctrl+Alt rather than Ctrl+Shift: Ctrl+Shift+R is the
/// window's own start/pause key (and the browsers' hard reload), and a global key takes its
/// combination from every other app.
pub const DEFAULT_HOTKEY: &str = if cfg!(target_os = "macos") {
    "Cmd+Alt+R"
} else {
    "Ctrl+Alt+R"
};

/// The window's own keys (`ui/app.js`), which a global hotkey must not take from it.
const WINDOW_KEYS: [(&str, &str); 2] = [
    ("Ctrl+Shift+R", "start or pause"),
    ("Ctrl+Shift+F", "finalize"),
];

/// The shortcut `hotkey` names (`None`: empty, the hotkey is off), or why it cannot be one, in
/// words for the window. It needs Ctrl, Alt or Super (a global Shift+key or bare key would
/// take typing from every app) and must not be one of the window's own keys.
pub fn parse_hotkey(hotkey: &str) -> anyhow::Result<Option<Shortcut>> {
    use std::str::FromStr as _;
    let hotkey = hotkey.trim();
    if hotkey.is_empty() {
        return Ok(None);
    }
    let shortcut = Shortcut::from_str(hotkey).map_err(|e| {
        anyhow::anyhow!(
            "The hotkey {hotkey:?} is not a key combination ({e}). Write it like Ctrl+Alt+R \
             or Super+Shift+F9, or leave it empty to turn the global hotkey off."
        )
    })?;
    if !shortcut
        .mods
        .intersects(Modifiers::CONTROL | Modifiers::ALT | Modifiers::SUPER | Modifiers::META)
    {
        anyhow::bail!(
            "The hotkey {hotkey} needs Ctrl, Alt or Super: without one it would take that key \
             from every other app."
        );
    }
    for (keys, what) in WINDOW_KEYS {
        if Shortcut::from_str(keys).is_ok_and(|own| own == shortcut) {
            anyhow::bail!("{keys} is the window's own key to {what}: choose another hotkey.");
        }
    }
    Ok(Some(shortcut))
}

/// Which gateway receives the audio.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewaySetting {
    pub mode: GatewayMode,
    /// Kept while the bundled gateway is selected, so switching back restores it.
    pub remote_url: String,
    pub remote_api_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayMode {
    /// The gateway library started inside the app on 127.0.0.1.
    #[default]
    Bundled,
    Remote,
}

/// The inference service the bundled gateway forwards `/resolve` to. Empty URL: none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InferenceSetting {
    pub base_url: String,
    pub api_key: String,
    pub timeout_ms: u64,
}

impl Default for InferenceSetting {
    fn default() -> Self {
        InferenceSetting {
            base_url: String::new(),
            api_key: String::new(),
            timeout_ms: gateway::inference::DEFAULT_TIMEOUT_MS,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            input: "default".into(),
            record_system: SYSTEM_AUDIO_SUPPORTED,
            gateway: GatewaySetting::default(),
            inference: InferenceSetting::default(),
            session_id: new_session_id(),
            roster: Vec::new(),
            resolve_every_secs: 5.0,
            hotkey: DEFAULT_HOTKEY.into(),
        }
    }
}

impl Settings {
    /// Reads the file; returns defaults and a warning when it is missing or unreadable.
    pub fn load(path: &Path) -> (Settings, Option<String>) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (Settings::default(), None);
            }
            Err(e) => {
                let warning = format!("Could not read {}: {e}. Using defaults.", path.display());
                return (Settings::default(), Some(warning));
            }
        };
        match serde_json::from_str::<Settings>(&text) {
            Ok(mut settings) => {
                if SessionId::parse(&settings.session_id).is_err() {
                    settings.session_id = new_session_id();
                }
                (settings, None)
            }
            Err(e) => {
                let warning = format!(
                    "Settings in {} are damaged ({e}); using defaults until you save.",
                    path.display()
                );
                (Settings::default(), Some(warning))
            }
        }
    }

    /// Writes the file atomically (temporary file, then rename), mode 0600 on unix.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self).context("cannot serialize settings")?;
        recorder::private_file::write(path, &json)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Trims what the user typed and refuses what would fail later, in words for the window.
    pub fn normalized(mut self) -> anyhow::Result<Settings> {
        self.input = self.input.trim().to_owned();
        self.input_spec()?;
        self.session_id = self.session_id.trim().to_owned();
        SessionId::parse(&self.session_id)
            .map_err(|e| anyhow::anyhow!("The session id is not valid: {e}."))?;
        self.gateway.remote_url = self.gateway.remote_url.trim().to_owned();
        self.gateway.remote_api_key = self.gateway.remote_api_key.trim().to_owned();
        if self.gateway.mode == GatewayMode::Remote {
            if self.gateway.remote_url.is_empty() {
                anyhow::bail!("Enter the remote gateway's URL, or choose the bundled gateway.");
            }
            self.remote_endpoint()?;
        }
        self.inference.base_url = self.inference.base_url.trim().to_owned();
        self.inference.api_key = self.inference.api_key.trim().to_owned();
        if !self.inference.base_url.is_empty() {
            let url = reqwest::Url::parse(&self.inference.base_url).map_err(|e| {
                anyhow::anyhow!(
                    "The inference URL {:?} is not a URL: {e}.",
                    self.inference.base_url
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                anyhow::bail!("The inference URL must start with http:// or https://.");
            }
        }
        if self.inference.timeout_ms == 0 {
            self.inference.timeout_ms = gateway::inference::DEFAULT_TIMEOUT_MS;
        }
        self.roster = self
            .roster
            .into_iter()
            .filter_map(|entry| {
                let name = entry.name.trim().to_owned();
                let email = entry
                    .email
                    .map(|e| e.trim().to_owned())
                    .filter(|e| !e.is_empty());
                (!name.is_empty()).then_some(RosterEntry { name, email })
            })
            .collect();
        if !(self.resolve_every_secs.is_finite() && self.resolve_every_secs >= 1.0) {
            self.resolve_every_secs = 5.0;
        }
        self.hotkey = self.hotkey.trim().to_owned();
        parse_hotkey(&self.hotkey)?;
        Ok(self)
    }

    pub fn input_spec(&self) -> anyhow::Result<InputSpec> {
        self.input
            .parse()
            .map_err(|e| anyhow::anyhow!("The input {:?} is not usable: {e}.", self.input))
    }

    /// The meeting audio's source, or `None` when the toggle is off: `override_spec` (from
    /// [`SYSTEM_ENV`]) if given, else the default output's monitor/loopback (`default`).
    pub fn system_spec(&self, override_spec: Option<&str>) -> anyhow::Result<Option<InputSpec>> {
        if !self.record_system {
            return Ok(None);
        }
        let spec = override_spec.unwrap_or("default");
        spec.parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("The meeting audio source {spec:?} is not usable: {e}."))
    }

    /// The remote gateway with its key.
    pub fn remote_endpoint(&self) -> anyhow::Result<GatewayEndpoint> {
        let key = Some(self.gateway.remote_api_key.clone()).filter(|k| !k.is_empty());
        GatewayEndpoint::parse(&self.gateway.remote_url, key)
            .map_err(|e| anyhow::anyhow!("The remote gateway URL is not usable: {e}."))
    }

    /// The bundled gateway's inference config, if a URL is set.
    pub fn inference_config(&self) -> Option<gateway::inference::InferenceConfig> {
        let base_url = self.inference.base_url.trim();
        (!base_url.is_empty()).then(|| gateway::inference::InferenceConfig {
            base_url: base_url.to_owned(),
            api_key: Some(self.inference.api_key.clone()).filter(|k| !k.is_empty()),
            timeout: std::time::Duration::from_millis(self.inference.timeout_ms.max(1)),
            resolve_path: gateway::inference::DEFAULT_RESOLVE_PATH.to_owned(),
        })
    }
}

/// A fresh, readable, unique-enough session id: `interview-20250314-0930-k3f9q2`.
pub fn new_session_id() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute]"
        ))
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    // RandomState is seeded per process; mixing in the clock makes ids differ within one run.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i128(now.unix_timestamp_nanos());
    let mut bits = hasher.finish();
    let alphabet = b"abcdefghijkmnpqrstuvwxyz23456789";
    let suffix: String = (0..6)
        .map(|_| {
            let c = alphabet[(bits % alphabet.len() as u64) as usize] as char;
            bits /= alphabet.len() as u64;
            c
        })
        .collect();
    format!("interview-{stamp}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let mut settings = Settings::default();
        settings.roster.push(RosterEntry {
            name: "Ada".into(),
            email: None,
        });
        settings.save(&path).unwrap();
        assert_eq!(Settings::load(&path), (settings, None));
    }

    #[test]
    fn a_damaged_file_gives_defaults_and_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{not json").unwrap();
        let (settings, warning) = Settings::load(&path);
        assert_eq!(settings.input, "default");
        assert!(warning.unwrap().contains("damaged"));
    }

    #[test]
    fn meeting_audio_is_on_by_default_and_a_file_without_the_field_keeps_it_on() {
        assert_eq!(Settings::default().record_system, SYSTEM_AUDIO_SUPPORTED);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, r#"{"input": "tone:440", "session_id": "s1"}"#).unwrap();
        let (settings, warning) = Settings::load(&path);
        assert_eq!(warning, None);
        assert_eq!(settings.record_system, SYSTEM_AUDIO_SUPPORTED);
    }

    #[test]
    fn the_meeting_audio_source_is_the_default_output_unless_overridden_or_off() {
        let mut settings = Settings {
            record_system: true,
            ..Settings::default()
        };
        assert_eq!(
            settings.system_spec(None).unwrap(),
            Some(InputSpec::DefaultDevice)
        );
        assert_eq!(
            settings.system_spec(Some("tone:660")).unwrap(),
            Some("tone:660".parse().unwrap())
        );
        settings.record_system = false;
        assert_eq!(settings.system_spec(Some("tone:660")).unwrap(), None);
    }

    #[test]
    fn remote_mode_needs_a_usable_url() {
        let mut settings = Settings::default();
        settings.gateway.mode = GatewayMode::Remote;
        let err = settings.clone().normalized().unwrap_err().to_string();
        assert!(err.contains("remote gateway's URL"), "{err}");
        settings.gateway.remote_url = " https://gw.example.com ".into();
        assert_eq!(
            settings.normalized().unwrap().gateway.remote_url,
            "https://gw.example.com"
        );
    }

    #[test]
    fn the_hotkey_is_a_combination_with_ctrl_alt_or_super_or_empty_for_off() {
        assert!(parse_hotkey(DEFAULT_HOTKEY).unwrap().is_some());
        assert!(parse_hotkey(" super+shift+F9 ").unwrap().is_some());
        assert_eq!(parse_hotkey("  ").unwrap(), None);
        assert_eq!(
            parse_hotkey("ctrl+alt+r").unwrap(),
            parse_hotkey("Control+Alt+KeyR").unwrap()
        );
        let refusals = [
            ("Ctrl+Alt+", "not a key combination"),
            ("Ctrl+Banana", "not a key combination"),
            ("Shift+R", "needs Ctrl, Alt or Super"),
            ("F9", "needs Ctrl, Alt or Super"),
            ("ctrl+shift+r", "the window's own key to start or pause"),
            ("Ctrl+Shift+F", "the window's own key to finalize"),
        ];
        for (hotkey, why) in refusals {
            let err = parse_hotkey(hotkey).unwrap_err().to_string();
            assert!(err.contains(why), "{hotkey}: {err}");
        }
    }

    #[test]
    fn a_settings_file_without_a_hotkey_gets_the_default_and_a_bad_one_is_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, r#"{"input": "tone:440", "session_id": "s1"}"#).unwrap();
        assert_eq!(Settings::load(&path).0.hotkey, DEFAULT_HOTKEY);
        let off = Settings {
            hotkey: " ".into(),
            ..Settings::default()
        };
        assert_eq!(off.normalized().unwrap().hotkey, "");
        let bad = Settings {
            hotkey: "R".into(),
            ..Settings::default()
        };
        assert!(bad.normalized().is_err());
    }

    #[test]
    fn session_ids_are_valid_and_distinct() {
        let a = new_session_id();
        let b = new_session_id();
        assert!(SessionId::parse(&a).is_ok(), "{a}");
        assert_ne!(a, b);
    }
}
