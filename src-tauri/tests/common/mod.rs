//! Signal generators and measurements shared by the integration tests.
//!
//! The measurements are deliberately model-based (least-squares sinusoid fits) rather than
//! FFT-bin based, so they resolve frequency to millihertz and distortion to well below 16-bit
//! quantization over a few seconds of audio.
#![allow(dead_code)]

use std::f64::consts::PI;

use recorder::resample::Resampler;

/// Interleaved sine with the same signal on every channel, phase 0 at frame 0.
pub fn sine(rate: u32, channels: u16, freq: f64, amplitude: f64, frames: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(frames * usize::from(channels));
    for n in 0..frames {
        let value = (amplitude * (2.0 * PI * freq * n as f64 / f64::from(rate)).sin()) as f32;
        out.extend(std::iter::repeat_n(value, usize::from(channels)));
    }
    out
}

/// Runs `input` through a fresh converter in blocks of `chunk_frames` frames, then finishes it.
pub fn convert(input: &[f32], rate: u32, channels: u16, chunk_frames: usize) -> Vec<i16> {
    let mut resampler = Resampler::new(rate, channels).expect("valid format");
    let mut out = Vec::new();
    for block in input.chunks(chunk_frames * usize::from(channels)) {
        resampler.push(block, &mut out).expect("push");
    }
    resampler.finish(&mut out).expect("finish");
    out
}

/// `i16` samples as `f64` full-scale units.
pub fn to_f64(samples: &[i16]) -> Vec<f64> {
    samples.iter().map(|&s| f64::from(s) / 32768.0).collect()
}

/// Least-squares fit of `a·cos(ωt) + b·sin(ωt) + c` with `t = (start + n) / rate`.
/// Returns `(a, b, c)`.
pub fn fit_sine(y: &[f64], start: usize, rate: f64, freq: f64) -> (f64, f64, f64) {
    let w = 2.0 * PI * freq / rate;
    let mut m = [[0.0_f64; 3]; 3];
    let mut v = [0.0_f64; 3];
    for (n, &value) in y.iter().enumerate() {
        let phase = w * (start + n) as f64;
        let basis = [phase.cos(), phase.sin(), 1.0];
        for i in 0..3 {
            v[i] += basis[i] * value;
            for j in 0..3 {
                m[i][j] += basis[i] * basis[j];
            }
        }
    }
    let x = solve3(m, v);
    (x[0], x[1], x[2])
}

fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> [f64; 3] {
    for col in 0..3 {
        let pivot = (col..3)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap();
        m.swap(col, pivot);
        v.swap(col, pivot);
        let pivot_row = m[col];
        for row in col + 1..3 {
            let f = m[row][col] / pivot_row[col];
            for (cell, &above) in m[row].iter_mut().zip(&pivot_row).skip(col) {
                *cell -= f * above;
            }
            v[row] -= f * v[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let tail: f64 = (row + 1..3).map(|k| m[row][k] * x[k]).sum();
        x[row] = (v[row] - tail) / m[row][row];
    }
    x
}

/// Frequency from interpolated upward zero crossings: a coarse estimate (well under 0.1 Hz).
fn zero_crossing_freq(y: &[f64], rate: f64) -> f64 {
    let mut crossings = Vec::new();
    for n in 1..y.len() {
        if y[n - 1] < 0.0 && y[n] >= 0.0 {
            crossings.push((n - 1) as f64 + y[n - 1] / (y[n - 1] - y[n]));
        }
    }
    assert!(crossings.len() >= 3, "no periodic signal found");
    let first = crossings[0];
    let last = *crossings.last().unwrap();
    (crossings.len() - 1) as f64 * rate / (last - first)
}

/// Precise frequency: start from zero crossings, then refine from the phase drift between
/// sinusoid fits of the first and second half of `y`.
pub fn measure_freq(y: &[f64], rate: f64) -> f64 {
    let mut freq = zero_crossing_freq(y, rate);
    let half = y.len() / 2;
    for _ in 0..4 {
        let (a1, b1, _) = fit_sine(&y[..half], 0, rate, freq);
        let (a2, b2, _) = fit_sine(&y[half..], half, rate, freq);
        let mut drift = b2.atan2(a2) - b1.atan2(a1);
        while drift > PI {
            drift -= 2.0 * PI;
        }
        while drift < -PI {
            drift += 2.0 * PI;
        }
        // The halves' centres are `half` samples apart; a phase θ that grows means the true
        // frequency is lower than `freq`.
        freq -= drift / (2.0 * PI * half as f64 / rate);
    }
    freq
}

/// THD+N in dB: power of what a sinusoid at `freq` (fitted with DC) leaves unexplained,
/// relative to the power of the fitted sinusoid.
pub fn thd_n_db(y: &[f64], rate: f64, freq: f64) -> f64 {
    let (a, b, c) = fit_sine(y, 0, rate, freq);
    let w = 2.0 * PI * freq / rate;
    let mut residual = 0.0;
    for (n, &value) in y.iter().enumerate() {
        let phase = w * n as f64;
        let model = a * phase.cos() + b * phase.sin() + c;
        residual += (value - model).powi(2);
    }
    let signal = (a * a + b * b) / 2.0 * y.len() as f64;
    10.0 * (residual / signal).log10()
}

/// Timing error, in seconds, of a sine `sin(2π·freq·t)` that the converter should reproduce
/// at `t = k / rate` exactly: positive means the output lags the input.
pub fn sine_lag_seconds(y: &[f64], start: usize, rate: f64, freq: f64) -> f64 {
    let (a, b, _) = fit_sine(y, start, rate, freq);
    // a·cos + b·sin = R·sin(ωt + φ) with φ = atan2(a, b); a lag τ gives φ = −ωτ.
    let phi = a.atan2(b);
    -phi / (2.0 * PI * freq)
}
