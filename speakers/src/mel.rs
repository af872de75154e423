//! The model's front end: a 40-bin mel *power* spectrogram of 16 kHz audio, 25 ms Hann windows
//! every 10 ms, computed the way the reference implementation (librosa) does so the network sees
//! the features it was trained on: centred frames, a periodic Hann window, Slaney's mel scale
//! with area-normalised triangles, no logarithm.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::SAMPLE_RATE;

/// Samples per analysis window (25 ms).
pub const N_FFT: usize = 400;
/// Samples between frames (10 ms).
pub const HOP: usize = 160;
/// Mel bins per frame.
pub const N_MELS: usize = 40;
/// Frequency bins of one power spectrum (`N_FFT / 2 + 1`).
const N_BINS: usize = N_FFT / 2 + 1;

/// One frame of features.
pub type MelFrame = [f32; N_MELS];

/// Computes mel frames; holds the FFT plan, window and filter bank so each call only transforms.
pub struct MelFrontEnd {
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    /// `filters[m]` holds the (first bin, weights) of mel band `m`: most weights are zero, so
    /// only the non-zero run is kept.
    filters: Vec<(usize, Vec<f32>)>,
}

impl Default for MelFrontEnd {
    fn default() -> Self {
        MelFrontEnd::new()
    }
}

impl MelFrontEnd {
    pub fn new() -> MelFrontEnd {
        MelFrontEnd {
            fft: FftPlanner::new().plan_fft_forward(N_FFT),
            window: hann_periodic(N_FFT),
            filters: slaney_filters(),
        }
    }

    /// Number of frames [`MelFrontEnd::frames`] gives for `samples` samples (centred framing).
    pub fn frame_count(samples: usize) -> usize {
        1 + samples / HOP
    }

    /// The mel power spectrogram of `samples` (floats in [-1, 1]); frame `t` is centred on sample
    /// `t * HOP`, with zeros beyond both ends of the signal.
    pub fn frames(&self, samples: &[f32]) -> Vec<MelFrame> {
        let count = Self::frame_count(samples.len());
        let mut out = Vec::with_capacity(count);
        let mut buffer = vec![Complex32::default(); N_FFT];
        let mut scratch = vec![Complex32::default(); self.fft.get_inplace_scratch_len()];
        let mut power = [0f32; N_BINS];
        for t in 0..count {
            let start = (t * HOP) as isize - (N_FFT / 2) as isize;
            for (i, slot) in buffer.iter_mut().enumerate() {
                let at = start + i as isize;
                let sample = if at >= 0 {
                    samples.get(at as usize).copied().unwrap_or(0.0)
                } else {
                    0.0
                };
                *slot = Complex32::new(sample * self.window[i], 0.0);
            }
            self.fft.process_with_scratch(&mut buffer, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buffer) {
                *p = c.norm_sqr();
            }
            let mut frame = [0f32; N_MELS];
            for (value, (first, weights)) in frame.iter_mut().zip(&self.filters) {
                *value = weights
                    .iter()
                    .zip(&power[*first..])
                    .map(|(w, p)| w * p)
                    .sum();
            }
            out.push(frame);
        }
        out
    }
}

/// The periodic Hann window (as `scipy.signal.get_window("hann", n, fftbins=True)`).
fn hann_periodic(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let phase = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
            (0.5 - 0.5 * phase.cos()) as f32
        })
        .collect()
}

/// Slaney's mel scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = (6.4f64).ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = (6.4f64).ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp()
    } else {
        mel * F_SP
    }
}

/// Triangular filters between 0 Hz and Nyquist, equally spaced on the mel scale, each scaled to
/// unit area (Slaney normalisation), computed in f64 like the reference and stored as f32.
fn slaney_filters() -> Vec<(usize, Vec<f32>)> {
    let nyquist = f64::from(SAMPLE_RATE) / 2.0;
    let (low, high) = (hz_to_mel(0.0), hz_to_mel(nyquist));
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(low + (high - low) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let bin_hz: Vec<f64> = (0..N_BINS)
        .map(|k| k as f64 * f64::from(SAMPLE_RATE) / N_FFT as f64)
        .collect();
    (0..N_MELS)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (right - left);
            let weights: Vec<f32> = bin_hz
                .iter()
                .map(|&f| {
                    let rising = (f - left) / (centre - left);
                    let falling = (right - f) / (right - centre);
                    (rising.min(falling).max(0.0) * norm) as f32
                })
                .collect();
            let first = weights.iter().position(|&w| w > 0.0).unwrap_or(0);
            let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
            (first, weights[first..=last].to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_centred_one_frame_per_hop() {
        assert_eq!(MelFrontEnd::frame_count(0), 1);
        assert_eq!(MelFrontEnd::frame_count(159), 1);
        assert_eq!(MelFrontEnd::frame_count(160), 2);
        assert_eq!(MelFrontEnd::frame_count(16_000), 101);
        assert_eq!(MelFrontEnd::new().frames(&[0.0; 16_000]).len(), 101);
    }

    #[test]
    fn the_mel_scale_round_trips_on_both_sides_of_1_khz() {
        for hz in [0.0, 300.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6, "{hz}");
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn a_tone_lights_the_band_that_holds_its_frequency() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let frames = MelFrontEnd::new().frames(&tone);
        let middle = frames[50];
        let loudest = (0..N_MELS)
            .max_by(|&a, &b| middle[a].total_cmp(&middle[b]))
            .unwrap();
        let edges: Vec<f64> = (0..N_MELS + 2)
            .map(|i| mel_to_hz(hz_to_mel(8000.0) * i as f64 / (N_MELS + 1) as f64))
            .collect();
        assert!(
            edges[loudest] < 1000.0 && 1000.0 < edges[loudest + 2],
            "band {loudest}"
        );
    }
}
