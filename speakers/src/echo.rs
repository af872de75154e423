//! An echo gate for the microphone of a call without headphones: the meeting audio (the far
//! end) comes out of the speakers and back into the microphone, a little later and quieter,
//! and would otherwise be attributed to the interviewer.
//!
//! Per block of microphone audio, the far end's best-matching delay (up to [`MAX_DELAY`]) is
//! found by cross-correlation (FFT) and its least-squares projection subtracted: what the far
//! end explains is echo, the rest is the interviewer. A block that is still mostly explained by
//! the far end after that (little of the interviewer in it) is silenced outright, so the
//! speech detector finds nothing there. This is a single-tap canceller plus a gate, not a full
//! adaptive filter: it removes the remote voice from attribution, not from the recording.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Samples per block (256 ms at 16 kHz).
pub const BLOCK: usize = 4096;
/// Longest speaker-to-microphone delay looked for (256 ms at 16 kHz).
pub const MAX_DELAY: usize = 4096;
/// The far end must explain at least this share of a block's energy to be subtracted.
const MIN_EXPLAINED: f32 = 0.1;
/// A block the far end explains at least this share of is silenced.
const GATE_EXPLAINED: f32 = 0.75;
/// Blocks quieter than this mean-square are left alone (-60 dBFS).
const SILENCE: f32 = 1e-6;

/// What [`EchoGate::apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoReport {
    /// Blocks whose far-end share was subtracted.
    pub cancelled: usize,
    /// Blocks silenced as echo.
    pub gated: usize,
}

pub struct EchoGate {
    size: usize,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
}

impl Default for EchoGate {
    fn default() -> Self {
        EchoGate::new()
    }
}

impl EchoGate {
    pub fn new() -> EchoGate {
        let size = (BLOCK + MAX_DELAY).next_power_of_two() * 2;
        let mut planner = FftPlanner::new();
        EchoGate {
            size,
            forward: planner.plan_fft_forward(size),
            inverse: planner.plan_fft_inverse(size),
        }
    }

    /// Removes from `mic` what `far` explains. `far[i]` was played at the moment `mic[i]` was
    /// captured (both streams on one clock); samples past `far`'s end count as silence.
    pub fn apply(&self, mic: &mut [f32], far: &[f32]) -> EchoReport {
        let mut report = EchoReport::default();
        let mut start = 0;
        while start < mic.len() {
            let end = (start + BLOCK).min(mic.len());
            match self.block(&mic[start..end], far, start) {
                Some(Action::Gate) => {
                    mic[start..end].fill(0.0);
                    report.gated += 1;
                }
                Some(Action::Subtract { delay, gain }) => {
                    for (i, m) in mic[start..end].iter_mut().enumerate() {
                        *m -= gain * far_at(far, (start + i) as isize - delay as isize);
                    }
                    report.cancelled += 1;
                }
                None => {}
            }
            start = end;
        }
        report
    }

    /// What to do with the block `mic` that starts at sample `start`.
    fn block(&self, mic: &[f32], far: &[f32], start: usize) -> Option<Action> {
        let mic_energy: f32 = mic.iter().map(|m| m * m).sum();
        if mic_energy / (mic.len() as f32) < SILENCE {
            return None;
        }
        // The far end from MAX_DELAY before the block to its end: window[j] = far[start - MAX_DELAY + j].
        let window: Vec<f32> = (0..MAX_DELAY + mic.len())
            .map(|j| far_at(far, (start + j) as isize - MAX_DELAY as isize))
            .collect();
        let correlation = self.correlate(mic, &window);
        // Energy of the far end aligned at each delay, by prefix sums.
        let mut prefix = vec![0f32; window.len() + 1];
        for (j, w) in window.iter().enumerate() {
            prefix[j + 1] = prefix[j] + w * w;
        }
        let mut best: Option<(usize, f32, f32)> = None;
        for delay in 0..=MAX_DELAY {
            let offset = MAX_DELAY - delay;
            let far_energy = prefix[offset + mic.len()] - prefix[offset];
            if far_energy <= f32::EPSILON {
                continue;
            }
            let c = correlation[offset];
            let explained = c * c / far_energy;
            if best.is_none_or(|(_, e, _)| explained > e) {
                best = Some((delay, explained, c / far_energy));
            }
        }
        let (delay, explained, gain) = best?;
        let share = explained / mic_energy;
        if share >= GATE_EXPLAINED {
            Some(Action::Gate)
        } else if share >= MIN_EXPLAINED {
            Some(Action::Subtract { delay, gain })
        } else {
            None
        }
    }

    /// `out[offset] = Σ mic[i] · window[offset + i]` for every offset, by FFT.
    fn correlate(&self, mic: &[f32], window: &[f32]) -> Vec<f32> {
        let mut a: Vec<Complex32> = (0..self.size)
            .map(|i| Complex32::new(window.get(i).copied().unwrap_or(0.0), 0.0))
            .collect();
        let mut b: Vec<Complex32> = (0..self.size)
            .map(|i| Complex32::new(mic.get(i).copied().unwrap_or(0.0), 0.0))
            .collect();
        self.forward.process(&mut a);
        self.forward.process(&mut b);
        // Correlation is the product with the conjugate.
        for (x, y) in a.iter_mut().zip(&b) {
            *x *= y.conj();
        }
        self.inverse.process(&mut a);
        let scale = 1.0 / self.size as f32;
        a.iter().take(MAX_DELAY + 1).map(|c| c.re * scale).collect()
    }
}

enum Action {
    Gate,
    Subtract { delay: usize, gain: f32 },
}

fn far_at(far: &[f32], index: isize) -> f32 {
    usize::try_from(index)
        .ok()
        .and_then(|i| far.get(i))
        .copied()
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise-like "speech" (a linear congruential sequence), amplitude ~0.3.
    fn voice(seed: u32, len: usize) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.6
            })
            .collect()
    }

    fn energy(samples: &[f32]) -> f32 {
        samples.iter().map(|s| s * s).sum()
    }

    #[test]
    fn an_echo_alone_is_silenced() {
        let far = voice(1, 16_000);
        // The far end comes back 40 ms later at half the level (-6 dB).
        let mut mic: Vec<f32> = (0..16_000)
            .map(|i| 0.5 * far_at(&far, i as isize - 640))
            .collect();
        let report = EchoGate::new().apply(&mut mic, &far);
        assert_eq!(report.gated, 4, "{report:?}");
        assert_eq!(energy(&mic), 0.0);
    }

    #[test]
    fn the_interviewer_over_an_echo_is_kept_and_the_echo_subtracted() {
        let far = voice(1, 16_000);
        let own = voice(2, 16_000);
        let mut mic: Vec<f32> = (0..16_000)
            .map(|i| own[i] + 0.5 * far_at(&far, i as isize - 640))
            .collect();
        let report = EchoGate::new().apply(&mut mic, &far);
        assert_eq!(report.gated, 0, "{report:?}");
        let left: f32 = mic.iter().zip(&own).map(|(m, o)| (m - o) * (m - o)).sum();
        assert!(
            left < 0.05 * energy(&own),
            "residual echo {:.4} of the voice",
            left / energy(&own)
        );
    }

    #[test]
    fn the_interviewer_alone_is_untouched() {
        let far = voice(1, 16_000);
        let own = voice(2, 16_000);
        let mut mic = own.clone();
        let report = EchoGate::new().apply(&mut mic, &far);
        assert_eq!(report, EchoReport::default());
        assert_eq!(mic, own);
        // And with a silent far end.
        let mut mic = own.clone();
        assert_eq!(EchoGate::new().apply(&mut mic, &[]), EchoReport::default());
    }
}
