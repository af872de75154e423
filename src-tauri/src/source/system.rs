//! System audio (what the computer plays: the remote side of a call) as a source.
//!
//! Each OS offers it differently; all of them end in the same cpal input stream and the same
//! callbacks as a microphone (`device::open_with`), so errors, timestamps and sample formats
//! are handled in one place:
//!
//! - **Linux**: the monitor source of the default output, through cpal's native PulseAudio host
//!   (which PipeWire serves too, through pipewire-pulse). PulseAudio names the monitor of sink
//!   `S` `S.monitor`; `default` follows the default sink *when the capture opens*.
//! - **Windows**: WASAPI loopback: cpal opens an input stream on an output device.
//! - **macOS**: the same call; cpal records it through a Core Audio process tap, which needs
//!   macOS 14.6 or later (older versions get [`SourceError::SystemAudioUnsupported`]) and the
//!   user's permission to record system audio.
//!
//! A device change while recording: on Linux, `default` follows the default output — when
//! another output becomes the default (headphones plugged in, a switch in the sound settings)
//! or the recorded one disappears and another takes over, capture moves to the new output's
//! monitor within a quarter of a second, at the same config (PulseAudio converts), so the stream
//! goes on; the seconds of the switch are filled from the capture clock. With no output left,
//! or on Windows and macOS (whose loopback only offers the device's own format), the stream
//! stays on the output it opened, and the loss of that output ends it with the backend's error
//! ([`SourceEvent::Error`]), exactly as an unplugged microphone does. Silence is not an error: WASAPI loopback delivers nothing while
//! nothing plays, and the pipeline fills such gaps from the capture clock (see
//! [`PipelineConfig::fill_gaps`](crate::pipeline::PipelineConfig::fill_gaps)).
//!
//! [`SourceEvent::Error`]: super::SourceEvent::Error

use super::device::{self, Opened};
use super::{Capture, SourceError};

/// Starts capturing the system audio of the default output (`None`) or of the output named
/// `name` (on Linux also a monitor source's own name).
pub fn open(name: Option<&str>) -> Result<Capture, SourceError> {
    let label = match name {
        Some(name) => format!("system audio of {name}"),
        None => "system audio".to_string(),
    };
    check_supported()?;
    let wanted = name.map(str::to_string);
    // PulseAudio (and pipewire-pulse) records any monitor at any config, so on Linux the
    // default output can be followed without changing the stream's format; WASAPI loopback
    // and Core Audio taps only offer the device's own mix format.
    let follow = if cfg!(target_os = "linux") && name.is_none() {
        device::Follow::Default
    } else {
        device::Follow::No
    };
    device::open_with(label, follow, move || pick(wanted.as_deref()))
}

/// Names of the outputs whose audio can be recorded, for help texts and the UI.
pub fn list_outputs() -> Result<Vec<String>, SourceError> {
    let host = host()?;
    let outputs = output_devices(&host)?;
    Ok(outputs.iter().map(device::device_name).collect())
}

#[cfg(target_os = "linux")]
fn host() -> Result<cpal::Host, SourceError> {
    cpal::host_from_id(cpal::HostId::PulseAudio).map_err(|e| SourceError::Device {
        device: "system audio".into(),
        message: format!(
            "recording system audio needs PulseAudio or PipeWire (pipewire-pulse): {e}"
        ),
    })
}

#[cfg(not(target_os = "linux"))]
fn host() -> Result<cpal::Host, SourceError> {
    Ok(cpal::default_host())
}

fn backend(device: &str) -> impl Fn(cpal::Error) -> SourceError + '_ {
    move |e| SourceError::Device {
        device: device.to_string(),
        message: e.to_string(),
    }
}

fn output_devices(host: &cpal::Host) -> Result<Vec<cpal::Device>, SourceError> {
    use cpal::traits::HostTrait;
    Ok(host
        .output_devices()
        .map_err(backend("system audio"))?
        .collect())
}

/// The backend's own id of a device (PulseAudio's sink or source name), without the host part.
fn backend_id(device: &cpal::Device) -> Option<String> {
    device::device_id(device)
}

/// Linux: the monitor source of the chosen sink, opened at the monitor's own config.
#[cfg(target_os = "linux")]
fn pick(name: Option<&str>) -> Result<Opened, SourceError> {
    use cpal::traits::{DeviceTrait, HostTrait};
    let host = host()?;
    let sources: Vec<cpal::Device> = host
        .input_devices()
        .map_err(backend("system audio"))?
        .collect();
    let by_id = |id: &str| {
        sources
            .iter()
            .find(|s| backend_id(s).as_deref() == Some(id))
            .cloned()
    };
    let monitor = match name {
        None => {
            let sink = host
                .default_output_device()
                .ok_or(SourceError::NoDefaultOutput)?;
            let sink_id = backend_id(&sink).unwrap_or_default();
            by_id(&monitor_name(&sink_id)).ok_or_else(|| SourceError::Device {
                device: device::device_name(&sink),
                message: format!(
                    "the output has no monitor source `{}`",
                    monitor_name(&sink_id)
                ),
            })?
        }
        Some(name) => {
            // An output (by its description or PulseAudio name) means its monitor; a source
            // given by name is taken as it is (e.g. `nullsink.monitor`).
            let outputs = output_devices(&host)?;
            let sink = outputs
                .iter()
                .find(|d| device::device_name(d) == name || backend_id(d).as_deref() == Some(name));
            let found = match sink {
                Some(sink) => by_id(&monitor_name(&backend_id(sink).unwrap_or_default())),
                None => sources
                    .iter()
                    .find(|s| {
                        device::device_name(s) == name || backend_id(s).as_deref() == Some(name)
                    })
                    .cloned(),
            };
            found.ok_or_else(|| SourceError::OutputNotFound {
                name: name.to_string(),
                available: outputs.iter().map(device::device_name).collect(),
            })?
        }
    };
    let label = device::device_name(&monitor);
    let config = monitor.default_input_config().map_err(backend(&label))?;
    Ok(Opened {
        device: monitor,
        config,
        label,
    })
}

/// PulseAudio's (and pipewire-pulse's) name for the monitor source of sink `sink`.
#[cfg(target_os = "linux")]
fn monitor_name(sink: &str) -> String {
    format!("{sink}.monitor")
}

/// Windows and macOS: an input stream on the output device itself (cpal turns it into WASAPI
/// loopback or a Core Audio tap), at the output's own config.
#[cfg(not(target_os = "linux"))]
fn pick(name: Option<&str>) -> Result<Opened, SourceError> {
    use cpal::traits::{DeviceTrait, HostTrait};
    let host = host()?;
    let output = match name {
        None => host
            .default_output_device()
            .ok_or(SourceError::NoDefaultOutput)?,
        Some(name) => {
            let outputs = output_devices(&host)?;
            let names: Vec<String> = outputs.iter().map(device::device_name).collect();
            outputs
                .into_iter()
                .zip(&names)
                .find(|(d, candidate)| {
                    candidate.as_str() == name || backend_id(d).as_deref() == Some(name)
                })
                .map(|(d, _)| d)
                .ok_or_else(|| SourceError::OutputNotFound {
                    name: name.to_string(),
                    available: names.clone(),
                })?
        }
    };
    let label = device::device_name(&output);
    let config = output.default_output_config().map_err(backend(&label))?;
    Ok(Opened {
        device: output,
        config,
        label,
    })
}

/// macOS before 14.6 has no system-audio tap that cpal can use: say so instead of failing deep
/// inside Core Audio.
#[cfg(target_os = "macos")]
fn check_supported() -> Result<(), SourceError> {
    let version = std::process::Command::new("sw_vers")
        .arg("-productVersion")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    match parse_version(&version) {
        Some(v) if v >= (14, 6) => Ok(()),
        Some(_) => Err(SourceError::SystemAudioUnsupported(format!(
            "recording system audio needs macOS 14.6 or later; this is macOS {version}"
        ))),
        // Unknown version: let Core Audio decide.
        None => Ok(()),
    }
}

#[cfg(not(target_os = "macos"))]
fn check_supported() -> Result<(), SourceError> {
    Ok(())
}

/// `"14.6.1"` → `(14, 6)`.
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.trim().parse().ok())?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macos_versions_parse_to_major_and_minor() {
        assert_eq!(parse_version("14.6.1"), Some((14, 6)));
        assert_eq!(parse_version("15"), Some((15, 0)));
        assert_eq!(parse_version("13.7"), Some((13, 7)));
        assert!(parse_version("13.7") < Some((14, 6)));
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("x.1"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_monitor_of_a_sink_is_named_after_it() {
        assert_eq!(monitor_name("nullsink"), "nullsink.monitor");
    }
}
