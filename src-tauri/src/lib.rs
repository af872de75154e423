//! Recorder engine: capture, convert and frame audio for the gateway, without any UI types.
//!
//! The audio path, one module per concept:
//! - [`source`] produces interleaved `f32` blocks from a device, a WAV file or a generated tone;
//! - [`resample`] turns them into 16 kHz mono `i16` (the [`pcm`] helpers do the sample formats);
//! - [`framer`] cuts that stream into the gateway's 32000-byte frames;
//! - [`local_copy`] keeps a WAV of the normalized stream, [`level`] measures it for the meter;
//! - [`pipeline`] wires these together and hands frames to whoever sends them (the uplink).
//!
//! After a session: [`export`] writes its report (Markdown, HTML) and subtitles (SRT, VTT).
//!
//! Nothing here knows about WebSockets; nothing in the uplink needs to know about cpal.

pub mod export;
pub mod framer;
pub mod level;
pub mod local_copy;
pub mod pcm;
pub mod resample;
pub mod source;

// The network half: spool → uplink to the gateway, speaker resolution, events for the UI.
#[cfg(feature = "window")]
pub mod bundled;
pub mod endpoint;
pub mod engine;
pub mod events;
pub mod pipeline;
pub mod private_file;
pub mod resolve;
pub mod spool;
pub mod stream;
pub mod uplink;
