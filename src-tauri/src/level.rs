//! Input level for the UI meter: RMS and peak in dBFS over ~50 ms windows (~20 updates/s).
//!
//! Measured on the normalized 16 kHz stream, so the meter shows what is actually recorded and
//! sent, after downmix and clipping. 0 dBFS is full scale of a 16-bit sample (32768); a
//! full-scale sine therefore reads about −3 dBFS RMS and 0 dBFS peak. Silence reads
//! [`SILENCE_DBFS`] rather than −∞, so the value always serializes as a plain number.

/// Samples per window: 50 ms at 16 kHz.
pub const WINDOW_SAMPLES: usize = 800;

/// Floor reported for digital silence (below the smallest non-zero 16-bit level, −90.3 dBFS).
pub const SILENCE_DBFS: f32 = -100.0;

/// Level of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Root mean square level, dBFS.
    pub rms_dbfs: f32,
    /// Largest absolute sample, dBFS.
    pub peak_dbfs: f32,
    /// Index (in 16 kHz samples since the stream start) of the window's first sample, so the UI
    /// can line levels up with frames.
    pub start_sample: u64,
}

/// Accumulates samples into windows and reports one [`Level`] per full window.
#[derive(Debug, Default)]
pub struct LevelMeter {
    sum_squares: f64,
    peak: u16,
    count: usize,
    window_start: u64,
}

impl LevelMeter {
    /// A meter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples; calls `emit` for each window they complete.
    pub fn push(&mut self, samples: &[i16], mut emit: impl FnMut(Level)) {
        for &sample in samples {
            let value = f64::from(sample);
            self.sum_squares += value * value;
            self.peak = self.peak.max(sample.unsigned_abs());
            self.count += 1;
            if self.count == WINDOW_SAMPLES {
                emit(self.take());
            }
        }
    }

    fn take(&mut self) -> Level {
        let rms = (self.sum_squares / self.count as f64).sqrt();
        let level = Level {
            rms_dbfs: to_dbfs(rms),
            peak_dbfs: to_dbfs(f64::from(self.peak)),
            start_sample: self.window_start,
        };
        self.window_start += self.count as u64;
        self.sum_squares = 0.0;
        self.peak = 0;
        self.count = 0;
        level
    }
}

fn to_dbfs(amplitude: f64) -> f32 {
    if amplitude <= 0.0 {
        return SILENCE_DBFS;
    }
    ((20.0 * (amplitude / 32768.0).log10()) as f32).max(SILENCE_DBFS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(samples: &[i16]) -> Vec<Level> {
        let mut meter = LevelMeter::new();
        let mut out = Vec::new();
        meter.push(samples, |l| out.push(l));
        out
    }

    #[test]
    fn full_scale_sine_reads_minus_3_rms_and_0_peak() {
        let samples: Vec<i16> = (0..1600)
            .map(|n| {
                (32767.0 * (2.0 * std::f64::consts::PI * n as f64 / 16.0).sin()).round() as i16
            })
            .collect();
        let out = levels(&samples);
        assert_eq!(out.len(), 2);
        assert!((out[0].rms_dbfs + 3.01).abs() < 0.01, "{:?}", out[0]);
        assert!(out[0].peak_dbfs.abs() < 0.01, "{:?}", out[0]);
        assert_eq!(out[1].start_sample, 800);
    }

    #[test]
    fn half_scale_square_wave_reads_minus_6() {
        let samples: Vec<i16> = (0..800)
            .map(|n| if n % 2 == 0 { 16384 } else { -16384 })
            .collect();
        let out = levels(&samples);
        assert!((out[0].rms_dbfs + 6.02).abs() < 0.01);
        assert!((out[0].peak_dbfs + 6.02).abs() < 0.01);
    }

    #[test]
    fn silence_reads_the_floor_and_partial_windows_wait() {
        let out = levels(&[0; 799]);
        assert!(out.is_empty());
        let out = levels(&[0; 800]);
        assert_eq!(out[0].rms_dbfs, SILENCE_DBFS);
        assert_eq!(out[0].peak_dbfs, SILENCE_DBFS);
    }
}
