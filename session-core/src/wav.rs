//! The shape of `audio.wav`, the same on every host: the 44-byte header of a 16 kHz 16-bit
//! PCM file, the caps on its length, and the texts of its refusals. Hosts stream the samples.

use crate::caps::MAX_WAV_SECONDS;
use crate::session_id::SessionId;
use crate::stream::Stream;
use contract::protocol::{FRAME_BYTES, SAMPLE_RATE};

/// Samples in one frame (one second).
pub const FRAME_SAMPLES: usize = FRAME_BYTES / 2;

/// Why a WAV is not served: the cap it would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthCap {
    /// [`MAX_WAV_SECONDS`].
    Seconds,
    /// What a WAV's 32-bit sizes can say, in seconds of this many channels.
    Header { max_seconds: u64 },
}

/// The data size of a 16-bit WAV of `samples` per channel in `channels`, refused past
/// [`MAX_WAV_SECONDS`] and past what its 32-bit header can say.
pub fn data_bytes(samples: u64, channels: u16) -> Result<u32, LengthCap> {
    let per_sample = 2 * u64::from(channels);
    if samples > MAX_WAV_SECONDS * FRAME_SAMPLES as u64 {
        return Err(LengthCap::Seconds);
    }
    let bytes = samples * per_sample;
    u32::try_from(bytes + 36)
        .map(|_| bytes as u32)
        .map_err(|_| LengthCap::Header {
            max_seconds: (u64::from(u32::MAX) - 36) / per_sample / FRAME_SAMPLES as u64,
        })
}

/// The 404 text for a stream with no stored frame.
pub fn no_audio(id: &SessionId, stream: Stream) -> String {
    match stream {
        Stream::Mic => format!("no audio stored for session '{id}'"),
        other => format!("no {other} audio stored for session '{id}'"),
    }
}

/// The 422 text for a WAV over a cap: how long it would be, how much of it is silence, which
/// cap.
pub fn too_long(id: &SessionId, what: &str, seconds: u64, missing: u64, cap: LengthCap) -> String {
    let cap = match cap {
        LengthCap::Seconds => format!(
            "the gateway serves at most {MAX_WAV_SECONDS} s ({} h) of audio in one file",
            MAX_WAV_SECONDS / 3600
        ),
        LengthCap::Header { max_seconds } => format!(
            "a stereo WAV holds at most {max_seconds} s: download ?stream=mic and ?stream=system instead"
        ),
    };
    format!(
        "audio.wav ({what}) of session '{id}' would be {seconds} s long, {missing} s of it never received (silence); {cap}"
    )
}

/// The 44-byte header of a 16 kHz 16-bit PCM WAV of `channels` with `data_bytes` of samples.
pub fn wav_header(channels: u16, data_bytes: u32) -> [u8; 44] {
    let bits: u16 = 16;
    let block_align = channels * bits / 8;
    let byte_rate = SAMPLE_RATE * u32::from(block_align);
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_bytes).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&bits.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// Interleaves two lanes of samples into stereo bytes (left first).
pub fn interleave(left: &[i16], right: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(left.len() * 4);
    for (l, r) in left.iter().zip(right) {
        out.extend_from_slice(&l.to_le_bytes());
        out.extend_from_slice(&r.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_describes_16k_16_bit_mono_or_stereo() {
        let h = wav_header(1, 64_000);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), 64_036);
        assert_eq!(u32::from_le_bytes(h[24..28].try_into().unwrap()), 16_000);
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 32_000);
        assert_eq!(u32::from_le_bytes(h[40..44].try_into().unwrap()), 64_000);
        let h = wav_header(2, 64_000);
        assert_eq!(u16::from_le_bytes(h[22..24].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 64_000);
        assert_eq!(u16::from_le_bytes(h[32..34].try_into().unwrap()), 4);
    }

    #[test]
    fn a_wav_longer_than_the_cap_or_its_header_is_refused() {
        let day = MAX_WAV_SECONDS * FRAME_SAMPLES as u64;
        assert_eq!(data_bytes(day, 1), Ok((day * 2) as u32));
        assert_eq!(data_bytes(day + 1, 1), Err(LengthCap::Seconds));
        // Frames 1 and 134 217: just inside 32 bits, far past the cap.
        assert_eq!(
            data_bytes(134_217 * FRAME_SAMPLES as u64, 1),
            Err(LengthCap::Seconds)
        );
        let stereo_max = 67_108 * FRAME_SAMPLES as u64;
        assert_eq!(data_bytes(stereo_max, 2), Ok((stereo_max * 4) as u32));
        assert_eq!(
            data_bytes(stereo_max + FRAME_SAMPLES as u64, 2),
            Err(LengthCap::Header {
                max_seconds: 67_108
            })
        );
    }

    #[test]
    fn interleaving_puts_the_mic_left_and_the_meeting_right() {
        let bytes = interleave(&[1, -1], &[2, -2]);
        assert_eq!(&bytes[..], &[1, 0, 2, 0, 255, 255, 254, 255]);
    }
}
