//! Sample-format conversions at the edges of the audio path.
//!
//! Everything between a source and the s16le output runs on `f32` in the range `[-1.0, 1.0)`,
//! the convention cpal and hound use: an integer sample is divided by `2^(bits-1)`, so the most
//! negative integer maps to exactly `-1.0` and `0` maps to `0.0`. Using the same power-of-two
//! scale in both directions is what makes 16-bit input survive `i16 → f32 → i16` bit-exactly.

/// Target sample rate of the normalized stream, fixed by the gateway's wire contract.
pub const TARGET_RATE: u32 = 16_000;

/// Scale between an `i16` sample and full scale (`1.0`).
const I16_SCALE: f32 = 32_768.0;

/// Converts a signed 16-bit sample to `f32` in `[-1.0, 1.0)`.
#[inline]
pub fn i16_to_f32(sample: i16) -> f32 {
    f32::from(sample) / I16_SCALE
}

/// Converts an unsigned 16-bit sample (silence at 32768) to `f32` in `[-1.0, 1.0)`.
#[inline]
pub fn u16_to_f32(sample: u16) -> f32 {
    (f32::from(sample) - I16_SCALE) / I16_SCALE
}

/// Converts a signed 32-bit sample to `f32` in `[-1.0, 1.0]`.
///
/// Computed in `f64` so the division itself adds no error; the final cast rounds to the nearest
/// `f32`, which keeps 24 significant bits — more than any ADC delivers.
#[inline]
pub fn i32_to_f32(sample: i32) -> f32 {
    (f64::from(sample) / 2_147_483_648.0) as f32
}

/// Converts a signed integer sample holding `bits` significant bits (8, 16, 24 or 32, as a
/// WAV file declares them) to `f32`.
#[inline]
pub fn int_to_f32(sample: i32, bits: u16) -> f32 {
    let scale = (1_u64 << (bits.clamp(1, 32) - 1)) as f64;
    (f64::from(sample) / scale) as f32
}

/// Converts one `f32` sample to `i16`: scale by 32768, round half away from zero, then clip.
///
/// Clipping rather than wrapping matters: an overdriven microphone must sound distorted, not
/// produce full-scale clicks of the opposite sign. NaN (a corrupt source) becomes silence.
#[inline]
pub fn f32_to_i16(sample: f32) -> i16 {
    let scaled = (sample * I16_SCALE).round();
    if scaled.is_nan() {
        0
    } else {
        // `as` saturates for floats out of range, which is exactly the clipping we want.
        scaled as i16
    }
}

/// Appends `samples` to `out` as signed 16-bit little-endian bytes.
pub fn i16_to_le_bytes(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
}

/// Decodes signed 16-bit little-endian bytes; a trailing odd byte is ignored.
pub fn le_bytes_to_i16(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i16_round_trips_bit_exactly() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(f32_to_i16(i16_to_f32(sample)), sample);
        }
    }

    #[test]
    fn f32_to_i16_rounds_and_clips() {
        assert_eq!(f32_to_i16(0.4 / 32768.0), 0);
        assert_eq!(f32_to_i16(0.6 / 32768.0), 1);
        assert_eq!(f32_to_i16(-1.5 / 32768.0), -2);
        assert_eq!(f32_to_i16(1.0), i16::MAX);
        assert_eq!(f32_to_i16(7.0), i16::MAX);
        assert_eq!(f32_to_i16(-1.0), i16::MIN);
        assert_eq!(f32_to_i16(-7.0), i16::MIN);
        assert_eq!(f32_to_i16(f32::NAN), 0);
    }

    #[test]
    fn integer_formats_share_one_scale() {
        assert_eq!(u16_to_f32(32768), 0.0);
        assert_eq!(u16_to_f32(0), -1.0);
        assert_eq!(u16_to_f32(49152), 0.5);
        assert_eq!(i32_to_f32(i32::MIN), -1.0);
        assert_eq!(i32_to_f32(1 << 30), 0.5);
        assert_eq!(int_to_f32(-128, 8), -1.0);
        assert_eq!(int_to_f32(1 << 22, 24), 0.5);
        assert_eq!(int_to_f32(-16384, 16), i16_to_f32(-16384));
    }

    #[test]
    fn le_bytes_round_trip() {
        let samples = [0, 1, -1, i16::MIN, i16::MAX, 0x1234];
        let mut bytes = Vec::new();
        i16_to_le_bytes(&samples, &mut bytes);
        assert_eq!(&bytes[..4], &[0, 0, 1, 0]);
        assert_eq!(le_bytes_to_i16(&bytes), samples);
    }
}
