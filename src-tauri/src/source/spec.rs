//! The input spec string (`--input`, `--system`): `default`, a device name, a `*.wav` path (or
//! `file:PATH` for any name) or `tone:FREQ`.
//!
//! The same string names the microphone and the system-audio source; what `default` and a device
//! name mean differs (an input device for the mic, an output device's loopback or monitor for
//! the system stream, see [`system`](super::system)), files and tones are the same.

use std::path::PathBuf;
use std::str::FromStr;

use super::SourceError;

/// Which source to record from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// The system's default input device (`default`).
    DefaultDevice,
    /// An input device by its name as [`list_devices`](super::list_devices) shows it.
    Device(String),
    /// A WAV file (`file:PATH`, or any string ending in `.wav`, case-insensitive).
    Wav(PathBuf),
    /// A generated sine of `freq` Hz (`tone:440`).
    Tone {
        /// Frequency in Hz.
        freq: f64,
    },
}

impl FromStr for InputSpec {
    type Err = SourceError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| SourceError::InvalidSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = spec.trim();
        if trimmed.is_empty() {
            return Err(invalid(
                "expected `default`, a device name, a .wav file or tone:FREQ",
            ));
        }
        if trimmed == "default" {
            return Ok(Self::DefaultDevice);
        }
        if let Some(freq) = trimmed.strip_prefix("tone:") {
            let freq: f64 = freq
                .trim()
                .parse()
                .map_err(|_| invalid("tone frequency must be a number of Hz, e.g. tone:440"))?;
            if !(freq.is_finite() && freq > 0.0) {
                return Err(invalid("tone frequency must be positive"));
            }
            return Ok(Self::Tone { freq });
        }
        if let Some(path) = trimmed.strip_prefix("file:") {
            if path.trim().is_empty() {
                return Err(invalid("file: needs a path, e.g. file:meeting.wav"));
            }
            return Ok(Self::Wav(PathBuf::from(path.trim())));
        }
        if trimmed.to_ascii_lowercase().ends_with(".wav") {
            return Ok(Self::Wav(PathBuf::from(trimmed)));
        }
        Ok(Self::Device(trimmed.to_string()))
    }
}

impl std::fmt::Display for InputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DefaultDevice => f.write_str("default"),
            Self::Device(name) => f.write_str(name),
            // A name that would not read back as a file gets the explicit prefix.
            Self::Wav(path)
                if path
                    .to_string_lossy()
                    .to_ascii_lowercase()
                    .ends_with(".wav") =>
            {
                write!(f, "{}", path.display())
            }
            Self::Wav(path) => write!(f, "file:{}", path.display()),
            Self::Tone { freq } => write!(f, "tone:{freq}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "default".parse::<InputSpec>().unwrap(),
            InputSpec::DefaultDevice
        );
        assert_eq!(
            "tone:440".parse::<InputSpec>().unwrap(),
            InputSpec::Tone { freq: 440.0 }
        );
        assert_eq!(
            "tone:997.5".parse::<InputSpec>().unwrap(),
            InputSpec::Tone { freq: 997.5 }
        );
        assert_eq!(
            "/tmp/Interview.WAV".parse::<InputSpec>().unwrap(),
            InputSpec::Wav(PathBuf::from("/tmp/Interview.WAV"))
        );
        assert_eq!(
            "USB Audio Device".parse::<InputSpec>().unwrap(),
            InputSpec::Device("USB Audio Device".into())
        );
        assert_eq!(
            "file:/tmp/meeting.raw.WAVE".parse::<InputSpec>().unwrap(),
            InputSpec::Wav(PathBuf::from("/tmp/meeting.raw.WAVE"))
        );
    }

    #[test]
    fn rejects_bad_tones_and_empty_specs() {
        for bad in [
            "", "  ", "tone:", "tone:abc", "tone:-5", "tone:0", "tone:inf", "file:", "file: ",
        ] {
            let err = bad.parse::<InputSpec>().unwrap_err();
            assert!(matches!(err, SourceError::InvalidSpec { .. }), "{bad}");
            assert!(err.to_string().starts_with("invalid input"), "{err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for spec in ["default", "tone:440", "a.wav", "file:a.pcm", "Mic 2"] {
            assert_eq!(spec.parse::<InputSpec>().unwrap().to_string(), spec);
        }
    }
}
