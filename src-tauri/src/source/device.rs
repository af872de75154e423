//! A cpal input device as a source, and the device list for the UI.
//!
//! The device is opened at its own default config (rate, channels, sample format): all format
//! work happens in our converter, never in a backend plugin (ALSA's `plug` drops frames, see
//! `notes/virtual-capture.md`). The cpal stream lives on a dedicated thread because streams are
//! not `Send` on every platform; that thread builds it, reports success or the error, then
//! parks until the [`Capture`] is dropped.
//!
//! The data callback only converts to `f32` and sends: it never blocks (the channel is
//! unbounded) and never allocates more than the block itself. Backend errors (device unplugged,
//! stream invalidated) arrive through cpal's error callback and are forwarded as
//! [`SourceEvent::Error`]; a device that goes quiet without an error is caught by the
//! consumer's stall timeout ([`Capture::recv_timeout`]).
//!
//! Microphones come from `mic_host`: on Linux always ALSA (cpal's PulseAudio host is compiled
//! in for the system-audio source, and would otherwise become the default host). The opening
//! and the callbacks are shared with [`system`](super::system) through `open_with`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{InputCallbackInfo, SampleFormat, SizedSample};

use super::{AudioBlock, AudioFormat, Capture, SourceError, SourceEvent};
use crate::pcm;

/// How long opening a device may take before we give up (some backends ignore cpal's timeout).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// An input device as the UI lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Name to show and to pass back as the input spec.
    pub name: String,
    /// Whether it is the system's default input.
    pub is_default: bool,
    /// The config it would be opened with, if it reports one.
    pub default_config: Option<SupportedConfig>,
    /// Every config range it reports.
    pub configs: Vec<SupportedConfig>,
}

/// One supported capture configuration (a range of rates for one layout and format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedConfig {
    /// Channels.
    pub channels: u16,
    /// Lowest supported rate, Hz.
    pub min_rate: u32,
    /// Highest supported rate, Hz.
    pub max_rate: u32,
    /// Sample format as cpal names it (`f32`, `i16`, ...).
    pub sample_format: String,
}

/// Lists the input devices of the default host with their configurations.
///
/// A device that fails to report its configs is still listed (with empty `configs`): the user
/// should see it exists even if it is busy right now.
pub fn list_devices() -> Result<Vec<DeviceInfo>, SourceError> {
    let host = mic_host()?;
    // Compared by id: the default device's description may not match its listed twin's.
    let default_id = host.default_input_device().and_then(|d| d.id().ok());
    let devices = host.input_devices().map_err(|e| SourceError::Device {
        device: "(all)".into(),
        message: e.to_string(),
    })?;
    Ok(devices
        .map(|device| {
            let name = device_name(&device);
            let default_config = device.default_input_config().ok().map(|c| SupportedConfig {
                channels: c.channels(),
                min_rate: c.sample_rate(),
                max_rate: c.sample_rate(),
                sample_format: c.sample_format().to_string(),
            });
            let configs = device
                .supported_input_configs()
                .map(|ranges| {
                    ranges
                        .map(|r| SupportedConfig {
                            channels: r.channels(),
                            min_rate: r.min_sample_rate(),
                            max_rate: r.max_sample_rate(),
                            sample_format: r.sample_format().to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            DeviceInfo {
                is_default: default_id.is_some() && device.id().ok() == default_id,
                name,
                default_config,
                configs,
            }
        })
        .collect())
}

/// The host microphones are opened on: ALSA on Linux (as before the PulseAudio host was
/// compiled in), the platform's default elsewhere.
pub(crate) fn mic_host() -> Result<cpal::Host, SourceError> {
    #[cfg(target_os = "linux")]
    {
        cpal::host_from_id(cpal::HostId::Alsa).map_err(|e| SourceError::Device {
            device: "(all)".into(),
            message: e.to_string(),
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(cpal::default_host())
    }
}

/// Opens the default input device (`None`) or the one named `name`, and starts capturing.
pub fn open(name: Option<&str>) -> Result<Capture, SourceError> {
    let label = name.unwrap_or("default").to_string();
    let wanted = name.map(str::to_string);
    open_with(label, Follow::No, move || {
        let host = mic_host()?;
        let device = find_device(&host, wanted.as_deref())?;
        let label = device_name(&device);
        let config = device
            .default_input_config()
            .map_err(|e| SourceError::Device {
                device: label.clone(),
                message: e.to_string(),
            })?;
        Ok(Opened {
            device,
            config,
            label,
        })
    })
}

/// A device chosen and the config to capture it with (an input stream is built on it, even
/// when it is an output device: that is how cpal offers loopback).
pub(crate) struct Opened {
    pub device: cpal::Device,
    pub config: cpal::SupportedStreamConfig,
    /// Name for descriptions and errors.
    pub label: String,
}

/// Whether a capture moves to another device when `pick` would choose another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Stay on the device opened; its loss ends the capture with the backend's error.
    No,
    /// Check `pick` every [`FOLLOW_EVERY`]; when it chooses another device (the default output
    /// changed), or the device is lost and `pick` finds one within [`LOST_GRACE`], capture goes
    /// on there at the same config (the backend converts), so the stream keeps its format.
    Default,
}

/// How often a following capture asks `pick` again.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// How long a following capture looks for a device after losing its own.
const LOST_GRACE: Duration = Duration::from_secs(2);

/// Starts a capture thread that runs `pick` (cpal devices and streams are not `Send` on every
/// platform, so everything happens on that thread), builds an input stream on what it picked,
/// and parks until the [`Capture`] is dropped (or, with [`Follow::Default`], keeps checking
/// whether to move). `label` names the device in errors before `pick` has found it.
pub(crate) fn open_with(
    label: String,
    follow: Follow,
    pick: impl Fn() -> Result<Opened, SourceError> + Send + 'static,
) -> Result<Capture, SourceError> {
    let (init_tx, init_rx) = mpsc::sync_channel(1);
    let (events_tx, events_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("capture-device".into())
        .spawn(move || {
            let lost = Arc::new(std::sync::Mutex::new(None));
            let errors = match follow {
                Follow::No => Errors::End(events_tx.clone()),
                Follow::Default => Errors::Note(Arc::clone(&lost)),
            };
            let opened = match pick() {
                Ok(opened) => opened,
                Err(error) => {
                    let _ = init_tx.send(Err(error));
                    return;
                }
            };
            let id = device_id(&opened.device);
            let config = opened.config;
            match start_stream(opened, events_tx.clone(), errors.clone()) {
                Ok((stream, format, description)) => {
                    let _ = init_tx.send(Ok((format, description)));
                    match follow {
                        // Park until the Capture drops its sender; then the stream is dropped
                        // here, on the thread that created it.
                        Follow::No => {
                            let _ = stop_rx.recv();
                            drop(stream);
                        }
                        Follow::Default => {
                            follow_default(stream, id, config, &pick, &stop_rx, &lost, &events_tx)
                        }
                    }
                }
                Err(error) => {
                    let _ = init_tx.send(Err(error));
                }
            }
        })
        .map_err(|e| SourceError::Device {
            device: label.clone(),
            message: format!("cannot start capture thread: {e}"),
        })?;
    let (format, description) = match init_rx.recv_timeout(OPEN_TIMEOUT) {
        Ok(result) => result?,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            return Err(SourceError::OpenTimeout {
                device: label,
                seconds: OPEN_TIMEOUT.as_secs(),
            });
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => return Err(SourceError::Disconnected),
    };
    Ok(Capture::new(
        format,
        description,
        events_rx,
        Arc::new(AtomicBool::new(false)),
        Some(stop_tx),
        thread,
    ))
}

/// Where a stream's backend errors go.
#[derive(Clone)]
enum Errors {
    /// To the consumer: the capture ends.
    End(mpsc::Sender<SourceEvent>),
    /// Kept for the following thread, which looks for another device first.
    Note(Arc<std::sync::Mutex<Option<SourceError>>>),
}

/// The capture thread of a [`Follow::Default`] capture: until the [`Capture`] is dropped, moves
/// the stream to whatever `pick` chooses when that changes or the device is lost. A loss with
/// no device to move to within [`LOST_GRACE`] ends the capture with the backend's error.
fn follow_default(
    mut stream: cpal::Stream,
    mut id: Option<String>,
    config: cpal::SupportedStreamConfig,
    pick: &dyn Fn() -> Result<Opened, SourceError>,
    stop: &mpsc::Receiver<()>,
    lost: &Arc<std::sync::Mutex<Option<SourceError>>>,
    events: &mpsc::Sender<SourceEvent>,
) {
    let mut lost_since: Option<std::time::Instant> = None;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(FOLLOW_EVERY) {
        if lost.lock().expect("lost lock").is_some() && lost_since.is_none() {
            lost_since = Some(std::time::Instant::now());
        }
        let next = pick()
            .ok()
            .filter(|next| lost_since.is_some() || device_id(&next.device) != id);
        if let Some(next) = next {
            let next_id = device_id(&next.device);
            let moved = Opened {
                device: next.device,
                config,
                label: next.label,
            };
            // A device that refuses is tried again on the next check.
            if let Ok((started, _, _)) =
                start_stream(moved, events.clone(), Errors::Note(Arc::clone(lost)))
            {
                drop(std::mem::replace(&mut stream, started));
                id = next_id;
                lost_since = None;
                lost.lock().expect("lost lock").take();
                continue;
            }
        }
        if lost_since.is_some_and(|since| since.elapsed() >= LOST_GRACE) {
            let error = lost.lock().expect("lost lock").take();
            let _ = events.send(SourceEvent::Error(
                error.unwrap_or(SourceError::Disconnected),
            ));
            let _ = stop.recv();
            return;
        }
    }
    drop(stream);
}

/// The backend's own id of a device (PulseAudio's sink or source name).
pub(crate) fn device_id(device: &cpal::Device) -> Option<String> {
    device.id().ok().map(|id| id.id().to_string())
}

pub(crate) fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_string())
        .unwrap_or_else(|_| "(unnamed device)".into())
}

fn find_device(host: &cpal::Host, name: Option<&str>) -> Result<cpal::Device, SourceError> {
    let Some(name) = name else {
        return host
            .default_input_device()
            .ok_or(SourceError::NoDefaultDevice);
    };
    let devices: Vec<cpal::Device> = host
        .input_devices()
        .map_err(|e| SourceError::Device {
            device: name.to_string(),
            message: e.to_string(),
        })?
        .collect();
    let names: Vec<String> = devices.iter().map(device_name).collect();
    devices
        .into_iter()
        .zip(&names)
        .find(|(_, candidate)| candidate.as_str() == name)
        .map(|(device, _)| device)
        .ok_or_else(|| SourceError::DeviceNotFound {
            name: name.to_string(),
            available: names,
        })
}

type Started = (cpal::Stream, AudioFormat, String);

fn start_stream(
    opened: Opened,
    events: mpsc::Sender<SourceEvent>,
    errors: Errors,
) -> Result<Started, SourceError> {
    let Opened {
        device,
        config: supported,
        label,
    } = opened;
    let backend = |e: cpal::Error| SourceError::Device {
        device: label.clone(),
        message: e.to_string(),
    };
    let config = supported.config();
    let format = AudioFormat {
        rate: config.sample_rate,
        channels: config.channels,
    };
    let stream = match supported.sample_format() {
        SampleFormat::F32 => build::<f32>(&device, &config, &label, events, errors),
        SampleFormat::F64 => build::<f64>(&device, &config, &label, events, errors),
        SampleFormat::I8 => build::<i8>(&device, &config, &label, events, errors),
        SampleFormat::I16 => build::<i16>(&device, &config, &label, events, errors),
        SampleFormat::I24 => build::<cpal::I24>(&device, &config, &label, events, errors),
        SampleFormat::I32 => build::<i32>(&device, &config, &label, events, errors),
        SampleFormat::U8 => build::<u8>(&device, &config, &label, events, errors),
        SampleFormat::U16 => build::<u16>(&device, &config, &label, events, errors),
        other => {
            return Err(SourceError::UnsupportedSampleFormat {
                device: label,
                format: other.to_string(),
            });
        }
    }
    .map_err(backend)?;
    // cpal streams start paused.
    stream.play().map_err(backend)?;
    let description = format!(
        "{label} ({} Hz, {} ch, {})",
        format.rate,
        format.channels,
        supported.sample_format()
    );
    Ok((stream, format, description))
}

fn build<T: CaptureSample>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    label: &str,
    events: mpsc::Sender<SourceEvent>,
    errors: Errors,
) -> Result<cpal::Stream, cpal::Error> {
    let channels = config.channels;
    let rate = config.sample_rate;
    let error_label = label.to_string();
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], info: &InputCallbackInfo| {
            let block = AudioBlock {
                samples: data.iter().map(|&s| s.to_f32()).collect(),
                channels,
                rate,
                captured_at: capture_wall_clock(info),
            };
            // A closed receiver means the consumer is gone; the stream is about to be dropped.
            let _ = events.send(SourceEvent::Block(block));
        },
        move |error: cpal::Error| {
            let error = SourceError::Device {
                device: error_label.clone(),
                message: error.to_string(),
            };
            match &errors {
                Errors::End(events) => {
                    let _ = events.send(SourceEvent::Error(error));
                }
                Errors::Note(lost) => {
                    lost.lock().expect("lost lock").get_or_insert(error);
                }
            }
        },
        Some(OPEN_TIMEOUT),
    )
}

/// Wall clock of the first frame in a callback: now, minus how long ago the backend says the
/// data was captured (cpal's instants are monotonic, not wall clock).
fn capture_wall_clock(info: &InputCallbackInfo) -> SystemTime {
    let stamp = info.timestamp();
    let age = stamp.callback.saturating_duration_since(stamp.capture);
    SystemTime::now() - age
}

/// Sample types a device may deliver, and their conversion to our `f32` convention.
trait CaptureSample: SizedSample + Send + 'static {
    fn to_f32(self) -> f32;
}

impl CaptureSample for f32 {
    fn to_f32(self) -> f32 {
        self
    }
}

impl CaptureSample for f64 {
    fn to_f32(self) -> f32 {
        self as f32
    }
}

impl CaptureSample for i8 {
    fn to_f32(self) -> f32 {
        f32::from(self) / 128.0
    }
}

impl CaptureSample for u8 {
    fn to_f32(self) -> f32 {
        (f32::from(self) - 128.0) / 128.0
    }
}

impl CaptureSample for i16 {
    fn to_f32(self) -> f32 {
        pcm::i16_to_f32(self)
    }
}

impl CaptureSample for u16 {
    fn to_f32(self) -> f32 {
        pcm::u16_to_f32(self)
    }
}

impl CaptureSample for i32 {
    fn to_f32(self) -> f32 {
        pcm::i32_to_f32(self)
    }
}

impl CaptureSample for cpal::I24 {
    fn to_f32(self) -> f32 {
        pcm::int_to_f32(self.inner(), 24)
    }
}
