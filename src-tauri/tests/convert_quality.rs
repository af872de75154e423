//! Resampling quality of the converter, measured on generated signals (DESIGN §5, issue 3).

mod common;

use common::{convert, measure_freq, sine, sine_lag_seconds, thd_n_db, to_f64};

const OUT_RATE: f64 = 16_000.0;

/// Skips the first and last 0.25 s, where the signal starts and stops abruptly.
fn steady(y: &[f64]) -> (&[f64], usize) {
    let edge = 4_000;
    (&y[edge..y.len() - edge], edge)
}

fn check_1khz(rate: u32, channels: u16) {
    let seconds = 4;
    let input = sine(rate, channels, 1000.0, 0.9, rate as usize * seconds);
    let out = convert(&input, rate, channels, 480);
    assert_eq!(out.len(), 16_000 * seconds);
    let y = to_f64(&out);
    let (middle, start) = steady(&y);

    let freq = measure_freq(middle, OUT_RATE);
    assert!(
        (freq - 1000.0).abs() <= 0.01,
        "{rate} Hz x{channels}: measured {freq:.5} Hz"
    );
    let thd_n = thd_n_db(middle, OUT_RATE, freq);
    assert!(thd_n < -90.0, "{rate} Hz x{channels}: THD+N {thd_n:.2} dB");
    let lag = sine_lag_seconds(middle, start, OUT_RATE, 1000.0);
    assert!(
        lag.abs() < 5e-6,
        "{rate} Hz x{channels}: output lags input by {:.2} µs",
        lag * 1e6
    );
    eprintln!(
        "{rate} Hz x{channels}: {freq:.5} Hz, THD+N {thd_n:.2} dB, lag {:.3} µs",
        lag * 1e6
    );
}

#[test]
fn sine_1khz_at_44100_mono_keeps_frequency_and_purity() {
    check_1khz(44_100, 1);
}

#[test]
fn sine_1khz_at_48000_stereo_keeps_frequency_and_purity() {
    check_1khz(48_000, 2);
}

#[test]
fn tone_above_new_nyquist_is_removed_not_aliased() {
    // 12 kHz at 48 kHz would alias to 4 kHz without anti-aliasing. The tone is faded in and
    // out over 20 ms so that its onset (a broadband click, which legitimately passes the
    // filter) is not mistaken for aliasing; then every output sample must round to zero.
    let rate = 48_000;
    let frames = rate as usize * 2;
    let fade = 960;
    let mut input = sine(rate, 1, 12_000.0, 1.0, frames);
    for n in 0..fade {
        let gain = 0.5 - 0.5 * (std::f32::consts::PI * n as f32 / fade as f32).cos();
        input[n] *= gain;
        input[frames - 1 - n] *= gain;
    }
    let out = convert(&input, rate, 1, 480);
    assert_eq!(out.len(), 32_000);
    let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert_eq!(peak, 0, "12 kHz leaked through at {peak} LSB");
}

#[test]
fn impulse_is_not_delayed() {
    // A unit impulse at exactly t = 0.5 s must peak at output sample 8000.
    for rate in [44_100_u32, 48_000, 22_050, 96_000, 8_000] {
        let mut input = vec![0.0_f32; rate as usize];
        input[rate as usize / 2] = 1.0;
        let out = convert(&input, rate, 1, 441);
        let y = to_f64(&out);
        let (peak_at, _) = y
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap();
        // Parabolic interpolation around the peak gives the sub-sample position.
        let (l, c, r) = (y[peak_at - 1], y[peak_at], y[peak_at + 1]);
        let offset = 0.5 * (l - r) / (l - 2.0 * c + r);
        let delay_samples = peak_at as f64 + offset - 8_000.0;
        assert!(
            delay_samples.abs() < 0.05,
            "{rate} Hz: impulse delayed by {delay_samples:.4} samples"
        );
    }
}

#[test]
fn output_length_matches_input_duration_for_any_rate_and_block_size() {
    for rate in [
        8_000_u32, 11_025, 22_050, 32_000, 44_100, 48_000, 96_000, 44_056,
    ] {
        for chunk in [1_usize, 441, 480, 4096] {
            // An awkward length: 0.73 s plus 7 frames, so rounding matters.
            let frames = rate as usize * 73 / 100 + 7;
            let input = sine(rate, 2, 440.0, 0.5, frames);
            let out = convert(&input, rate, 2, chunk);
            let expected = (frames as u64 * 16_000 + u64::from(rate) / 2) / u64::from(rate);
            assert_eq!(out.len() as u64, expected, "{rate} Hz in blocks of {chunk}");
        }
    }
}

#[test]
fn block_size_does_not_change_a_single_sample() {
    // Continuity: the same input split differently must give bit-identical output, which rules
    // out dropped, repeated or zero-padded samples at block boundaries.
    for rate in [44_100_u32, 48_000] {
        let input = sine(rate, 2, 997.0, 0.7, rate as usize * 3 / 2);
        let reference = convert(&input, rate, 2, input.len());
        for chunk in [1_usize, 441, 480, 4096] {
            assert_eq!(
                convert(&input, rate, 2, chunk),
                reference,
                "{rate} Hz, {chunk}"
            );
        }
    }
}

#[test]
fn mono_16khz_passes_through_bit_exact() {
    let samples: Vec<i16> = (0..40_000_i32)
        .map(|n| ((n * 7919) % 65_536 - 32_768) as i16)
        .collect();
    let input: Vec<f32> = samples
        .iter()
        .map(|&s| recorder::pcm::i16_to_f32(s))
        .collect();
    for chunk in [1, 480, 4096] {
        assert_eq!(convert(&input, 16_000, 1, chunk), samples);
    }
}

#[test]
fn loud_input_is_clipped_not_wrapped() {
    let input = sine(16_000, 1, 1000.0, 1.5, 16_000);
    let out = convert(&input, 16_000, 1, 480);
    assert_eq!(*out.iter().max().unwrap(), i16::MAX);
    assert_eq!(*out.iter().min().unwrap(), i16::MIN);
}
