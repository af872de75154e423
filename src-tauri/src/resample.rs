//! The converter from whatever a source delivers to the gateway's format: 16 kHz mono s16.
//!
//! Three steps, in this order: downmix (mean of the channels), resample to 16 kHz with rubato's
//! FFT resampler (band-limited, so content above 8 kHz is filtered out instead of aliasing into
//! speech), then round and clip to `i16`.
//!
//! Invariants the rest of the engine relies on:
//! - **Continuity.** Input may arrive in blocks of any size; rubato always sees the same fixed
//!   chunks, so the output does not depend on how the input was split (no dropped, repeated or
//!   zero-padded samples at block boundaries).
//! - **Alignment.** The resampler's internal delay is trimmed, so output sample `k` is the signal
//!   at input time `k / 16000` s. Frame timestamps can therefore be computed from sample indices.
//! - **Length.** After [`Resampler::finish`], exactly `round(input_frames * 16000 / input_rate)`
//!   samples have come out; the tail still inside the filter is flushed, not lost.
//! - **Pass-through.** 16 kHz input is not resampled at all, so 16-bit mono input at 16 kHz comes
//!   out bit-exact.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _, WindowFunction};

use crate::pcm::{TARGET_RATE, f32_to_i16};

/// Input frames per call into rubato, roughly. Large enough that the per-call overhead vanishes,
/// small enough that output follows a 10 ms capture callback closely (about 21 ms at 48 kHz).
const CHUNK_FRAMES: usize = 1024;

/// Smallest FFT block on the input side: below this the anti-aliasing filter gets too short
/// for a clean 16-bit result.
const MIN_FFT_BLOCK: usize = 256;

/// Chooses rubato's FFT block so that its delay is a whole number of output samples, and
/// returns `(chunk_frames, blocks_per_chunk)` for `Fft::new_custom`.
///
/// rubato's filter is centred at `block_in / 2` input frames (integer division) and it reports
/// `block_out / 2` output frames of delay. Both are exact only when the block holds an even
/// number of the rate ratio's smallest units; with an odd count (441 frames at 44.1 kHz) the
/// output would lead the input by half an input sample after trimming. So the unit count is
/// a power of two, at least 2: even, and it keeps the FFT length free of large prime factors
/// (258 = 2·3·43 frames at 48 kHz made rustfft fall back to Rader's algorithm, 3× slower
/// than 384 = 2⁷·3).
fn fft_layout(in_rate: u32) -> (usize, usize) {
    let gcd = gcd(in_rate as usize, TARGET_RATE as usize);
    let unit_in = in_rate as usize / gcd;
    let units = MIN_FFT_BLOCK.div_ceil(unit_in).next_power_of_two().max(2);
    let block_in = units * unit_in;
    let blocks_per_chunk = (CHUNK_FRAMES / block_in).max(1);
    (blocks_per_chunk * block_in, blocks_per_chunk)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Why a conversion could not proceed.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// The source declared a format the converter cannot represent.
    #[error("unsupported input format: {rate} Hz with {channels} channel(s)")]
    UnsupportedFormat {
        /// Declared sample rate.
        rate: u32,
        /// Declared channel count.
        channels: u16,
    },
    /// A block did not contain a whole number of frames, so channels would be mixed up.
    #[error("audio block of {len} samples is not a whole number of {channels}-channel frames")]
    RaggedBlock {
        /// Samples in the block.
        len: usize,
        /// Channels per frame.
        channels: u16,
    },
    /// Audio was pushed after [`Resampler::finish`].
    #[error("the converter was already finished; start a new one for a new stream")]
    Finished,
    /// rubato refused to build or run; this would be a bug in how it is driven here.
    #[error("resampler failure: {0}")]
    Rubato(String),
}

/// Converts interleaved `f32` audio at any rate and channel count to 16 kHz mono `i16`.
///
/// One instance converts one continuous stream; see the module docs for its invariants.
pub struct Resampler {
    /// Native rate of the input, in Hz.
    in_rate: u32,
    /// Channels per input frame; the downmix averages them.
    channels: u16,
    /// `None` when the input is already at 16 kHz and only needs downmix and quantization.
    stage: Option<FftStage>,
    /// Input frames accepted so far; fixes the output length at `finish`.
    input_frames: u64,
    /// Output samples emitted so far.
    output_samples: u64,
    /// Set by `finish`; the filter state is spent after the flush.
    finished: bool,
}

/// The resampling state, present only when the input is not already at 16 kHz.
struct FftStage {
    fft: Fft<f32>,
    /// Downmixed input waiting for a full rubato chunk.
    pending: Vec<f32>,
    /// Output buffer for one rubato call, kept to avoid allocating per chunk.
    scratch: Vec<f32>,
    /// Leading output samples still to drop: the filter's delay, so that the output is aligned
    /// with the input instead of starting with a few milliseconds of silence.
    to_trim: usize,
}

impl Resampler {
    /// Prepares a converter for a stream at `in_rate` Hz with `channels` interleaved channels.
    pub fn new(in_rate: u32, channels: u16) -> Result<Self, ResampleError> {
        if in_rate == 0 || channels == 0 {
            return Err(ResampleError::UnsupportedFormat {
                rate: in_rate,
                channels,
            });
        }
        let stage = if in_rate == TARGET_RATE {
            None
        } else {
            let (chunk_frames, blocks_per_chunk) = fft_layout(in_rate);
            let fft = Fft::<f32>::new_custom(
                in_rate as usize,
                TARGET_RATE as usize,
                chunk_frames,
                blocks_per_chunk,
                1,
                WindowFunction::BlackmanHarris2,
                FixedSync::Input,
            )
            .map_err(|e| ResampleError::Rubato(e.to_string()))?;
            Some(FftStage {
                to_trim: fft.output_delay(),
                scratch: vec![0.0; fft.output_frames_max()],
                pending: Vec::with_capacity(fft.input_frames_max() * 2),
                fft,
            })
        };
        Ok(Self {
            in_rate,
            channels,
            stage,
            input_frames: 0,
            output_samples: 0,
            finished: false,
        })
    }

    /// Native input rate in Hz.
    pub fn input_rate(&self) -> u32 {
        self.in_rate
    }

    /// Input channel count.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Input frames accepted so far.
    pub fn input_frames(&self) -> u64 {
        self.input_frames
    }

    /// 16 kHz samples emitted so far.
    pub fn output_samples(&self) -> u64 {
        self.output_samples
    }

    /// Output samples the whole stream will have once finished: the input duration at 16 kHz,
    /// rounded to the nearest sample.
    pub fn expected_output_samples(&self) -> u64 {
        let rate = u128::from(self.in_rate);
        ((u128::from(self.input_frames) * u128::from(TARGET_RATE) + rate / 2) / rate) as u64
    }

    /// Converts one block of interleaved samples and appends whatever output is ready to `out`.
    ///
    /// Output lags input by up to one rubato chunk plus the filter delay; [`finish`](Self::finish)
    /// delivers the rest.
    pub fn push(&mut self, interleaved: &[f32], out: &mut Vec<i16>) -> Result<(), ResampleError> {
        if self.finished {
            return Err(ResampleError::Finished);
        }
        let channels = usize::from(self.channels);
        if !interleaved.len().is_multiple_of(channels) {
            return Err(ResampleError::RaggedBlock {
                len: interleaved.len(),
                channels: self.channels,
            });
        }
        let frames = interleaved.len() / channels;
        self.input_frames += frames as u64;
        match &mut self.stage {
            None => {
                let before = out.len();
                out.extend(downmix(interleaved, channels).map(f32_to_i16));
                self.output_samples += (out.len() - before) as u64;
            }
            Some(stage) => {
                stage.pending.extend(downmix(interleaved, channels));
                self.output_samples += stage.drain_full_chunks(out, u64::MAX)?;
            }
        }
        Ok(())
    }

    /// Ends the stream: flushes the filter's tail so the total output is exactly
    /// [`expected_output_samples`](Self::expected_output_samples), and appends it to `out`.
    pub fn finish(&mut self, out: &mut Vec<i16>) -> Result<(), ResampleError> {
        if self.finished {
            return Err(ResampleError::Finished);
        }
        self.finished = true;
        let target = self.expected_output_samples();
        if let Some(stage) = &mut self.stage {
            while self.output_samples < target {
                let budget = target - self.output_samples;
                self.output_samples += stage.flush_chunk(out, budget)?;
            }
        }
        debug_assert_eq!(self.output_samples, target);
        Ok(())
    }
}

impl FftStage {
    /// Runs rubato over every full chunk in `pending`; returns the samples appended to `out`.
    fn drain_full_chunks(&mut self, out: &mut Vec<i16>, budget: u64) -> Result<u64, ResampleError> {
        let mut consumed = 0;
        let mut emitted = 0;
        while self.pending.len() - consumed >= self.fft.input_frames_next() {
            let wanted = self.fft.input_frames_next();
            let (used, produced) = self.run(consumed, wanted, None)?;
            consumed += used;
            emitted += self.emit(produced, out, budget - emitted);
        }
        self.pending.drain(..consumed);
        Ok(emitted)
    }

    /// Feeds what is left in `pending` (zero-padded to a full chunk) through rubato once.
    fn flush_chunk(&mut self, out: &mut Vec<i16>, budget: u64) -> Result<u64, ResampleError> {
        let emitted = self.drain_full_chunks(out, budget)?;
        if emitted >= budget {
            return Ok(emitted);
        }
        let partial = self.pending.len();
        let (_, produced) = self.run(0, partial, Some(partial))?;
        self.pending.clear();
        Ok(emitted + self.emit(produced, out, budget - emitted))
    }

    /// One rubato call on `pending[offset..offset + frames]`; `partial` marks a short final chunk.
    fn run(
        &mut self,
        offset: usize,
        frames: usize,
        partial: Option<usize>,
    ) -> Result<(usize, usize), ResampleError> {
        let rubato_err = |e: &dyn std::fmt::Display| ResampleError::Rubato(e.to_string());
        let input = InterleavedSlice::new(&self.pending[offset..offset + frames], 1, frames)
            .map_err(|e| rubato_err(&e))?;
        let out_frames = self.scratch.len();
        let mut output = InterleavedSlice::new_mut(&mut self.scratch, 1, out_frames)
            .map_err(|e| rubato_err(&e))?;
        let indexing = partial.map(|len| Indexing::new().partial_len(len));
        self.fft
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| rubato_err(&e))
    }

    /// Quantizes `scratch[..produced]` into `out`, after dropping any delay still to trim and
    /// never more than `budget` samples. Returns how many samples were appended.
    fn emit(&mut self, produced: usize, out: &mut Vec<i16>, budget: u64) -> u64 {
        let skip = self.to_trim.min(produced);
        self.to_trim -= skip;
        let available = produced - skip;
        let take = available.min(usize::try_from(budget).unwrap_or(usize::MAX));
        out.extend(
            self.scratch[skip..skip + take]
                .iter()
                .copied()
                .map(f32_to_i16),
        );
        take as u64
    }
}

/// Averages each interleaved frame's channels into one mono sample.
///
/// The mean (not the sum) keeps full scale at full scale, so a stereo source with the same
/// signal on both channels sounds exactly like its mono version.
fn downmix(interleaved: &[f32], channels: usize) -> impl Iterator<Item = f32> + '_ {
    let scale = 1.0 / channels as f32;
    interleaved.chunks_exact(channels).map(move |frame| {
        if channels == 1 {
            frame[0]
        } else {
            frame.iter().sum::<f32>() * scale
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_ragged_blocks_and_zero_formats() {
        let mut r = Resampler::new(48_000, 2).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            r.push(&[0.0; 3], &mut out),
            Err(ResampleError::RaggedBlock {
                len: 3,
                channels: 2
            })
        ));
        assert!(matches!(
            Resampler::new(0, 1),
            Err(ResampleError::UnsupportedFormat { .. })
        ));
        assert!(matches!(
            Resampler::new(16_000, 0),
            Err(ResampleError::UnsupportedFormat { .. })
        ));
    }

    #[test]
    fn push_after_finish_is_an_error() {
        let mut r = Resampler::new(44_100, 1).unwrap();
        let mut out = Vec::new();
        r.push(&[0.1; 441], &mut out).unwrap();
        r.finish(&mut out).unwrap();
        assert_eq!(out.len(), 160);
        assert!(matches!(
            r.push(&[0.0], &mut out),
            Err(ResampleError::Finished)
        ));
    }

    #[test]
    fn fft_blocks_hold_an_even_number_of_ratio_units() {
        // 48 kHz: unit of 3 frames, 128 units = 384 frames, 2 blocks per call.
        assert_eq!(fft_layout(48_000), (768, 2));
        // 44.1 kHz: unit of 441 frames, rounded up from 1 to 2 units.
        assert_eq!(fft_layout(44_100), (882, 1));
        // 8 kHz upsampling: unit of 1 frame.
        assert_eq!(fft_layout(8_000), (1024, 4));
    }

    #[test]
    fn downmix_averages_channels() {
        let mixed: Vec<f32> = downmix(&[0.5, -0.5, 1.0, 0.0], 2).collect();
        assert_eq!(mixed, [0.0, 0.5]);
    }
}
