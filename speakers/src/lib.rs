//! The built-in speaker engine: who is speaking, offline, on the user's machine.
//!
//! - [`mel`]: the model's features (40-bin mel power spectrogram, 16 kHz);
//! - [`encoder`]: speaker embeddings behind the [`SpeakerEncoder`] trait, with the shipped GE2E
//!   network (weights read by candle, run by the loops of [`kernels`]);
//! - [`vad`]: speech detection; [`diarize`]: speaker turns of a stretch of audio;
//! - [`cluster`]: online clustering of voices; [`naming`]: names from self-introductions;
//! - [`der`]: diarization error rate and equal error rate, for the benchmarks.
//!
//! The crate knows nothing of the gateway's wire contract: the gateway maps its answers to the
//! seed's resolve shape.

pub mod cluster;
pub mod der;
pub mod diarize;
pub mod echo;
pub mod encoder;
pub mod kernels;
pub mod mel;
pub mod naming;
pub mod vad;

use cluster::Clusters;
use diarize::{Attribution, DiarizeConfig};
pub use encoder::{Embedding, Ge2eEncoder, ModelError, SpeakerEncoder};
use mel::MelFrontEnd;

/// The only sample rate the engine works at.
pub const SAMPLE_RATE: u32 = 16_000;

/// Milliseconds of `samples` samples at [`SAMPLE_RATE`].
pub fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(SAMPLE_RATE)
}

/// Signed 16-bit little-endian PCM as floats in [-1, 1); a trailing odd byte is ignored.
pub fn pcm_s16le_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

/// Partial utterances per second when one clip is embedded whole (the reference's rate).
const PARTIALS_PER_SECOND: f64 = 1.3;
/// The last partial of a clip is kept only if the clip covers this much of it.
const MIN_COVERAGE: f64 = 0.75;

/// The engine: features, the speaker model and the segmentation settings. Cheap to share
/// between threads (`&Engine` is all a call needs).
pub struct Engine {
    mel: MelFrontEnd,
    encoder: Box<dyn SpeakerEncoder>,
    pub config: DiarizeConfig,
}

impl Engine {
    /// The engine with the model shipped in this crate.
    pub fn shipped() -> Result<Engine, ModelError> {
        Ok(Engine::with_encoder(Box::new(Ge2eEncoder::shipped()?)))
    }

    pub fn with_encoder(encoder: Box<dyn SpeakerEncoder>) -> Engine {
        Engine {
            mel: MelFrontEnd::new(),
            encoder,
            config: DiarizeConfig::default(),
        }
    }

    /// Speaker turns of `samples`, which start `offset_ms` into the stream, against (and
    /// growing) `clusters`. See [`diarize::attribute`].
    pub fn attribute(
        &self,
        samples: &[f32],
        offset_ms: u64,
        clusters: &mut Clusters,
        finished: bool,
    ) -> Result<Attribution, ModelError> {
        diarize::attribute(
            self.encoder.as_ref(),
            &self.mel,
            &self.config,
            samples,
            offset_ms,
            clusters,
            finished,
        )
    }

    /// One embedding for a whole clip, as the reference implementation computes it: 1.6 s
    /// partials at 1.3 per second over the zero-padded clip, embedded, averaged, normalised.
    pub fn embed_utterance(&self, samples: &[f32]) -> Result<Embedding, ModelError> {
        let (ranges, padded_len) = partial_ranges(samples.len());
        let mut padded = samples.to_vec();
        padded.resize(padded_len.max(samples.len()), 0.0);
        let frames = self.mel.frames(&padded);
        let partials: Vec<&[mel::MelFrame]> = ranges.iter().map(|r| &frames[r.clone()]).collect();
        let embeddings = self.encoder.embed_partials(&partials)?;
        let mut mean = vec![0f32; encoder::EMBEDDING_DIM];
        for embedding in &embeddings {
            mean.iter_mut().zip(embedding).for_each(|(m, e)| *m += e);
        }
        mean.iter_mut().for_each(|m| *m /= embeddings.len() as f32);
        encoder::normalize(&mut mean);
        Ok(mean)
    }
}

/// The mel-frame ranges of a clip's partials and the length the clip is padded to, following
/// the reference: steps of round(100 / 1.3) = 77 frames, the last partial dropped when the clip
/// covers less than 75 % of it (unless it is the only one).
pub fn partial_ranges(samples: usize) -> (Vec<std::ops::Range<usize>>, usize) {
    let hop = mel::HOP;
    let frames = (samples + 1).div_ceil(hop);
    let step = ((f64::from(SAMPLE_RATE) / PARTIALS_PER_SECOND) / hop as f64).round() as usize;
    let len = encoder::PARTIAL_FRAMES;
    let limit = (frames + step + 1).saturating_sub(len).max(1);
    let mut ranges: Vec<std::ops::Range<usize>> =
        (0..limit).step_by(step).map(|i| i..i + len).collect();
    let last = ranges.last().expect("at least one partial").clone();
    let coverage = (samples as f64 - (last.start * hop) as f64) / (len * hop) as f64;
    if coverage < MIN_COVERAGE && ranges.len() > 1 {
        ranges.pop();
    }
    let padded = ranges.last().expect("at least one partial").end * hop;
    (ranges, padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_is_read_little_endian_and_scaled() {
        assert_eq!(
            pcm_s16le_to_f32(&[0x00, 0x80, 0xff, 0x7f, 0x00, 0x40, 0x01]),
            vec![-1.0, 32767.0 / 32768.0, 0.5]
        );
    }

    #[test]
    fn partials_follow_the_reference_slicing() {
        // 1 s: one partial, padded to 1.6 s.
        let (ranges, padded) = partial_ranges(16_000);
        assert_eq!(
            (ranges.len(), ranges[0].clone(), padded),
            (1, 0..160, 25_600)
        );
        // 2.5 s (251 frames): steps at 0 and 77 ((251 + 78 - 160) = 169 -> 0, 77, 154); the
        // last covers (40000 - 24640) / 25600 = 60 % and is dropped.
        let (ranges, padded) = partial_ranges(40_000);
        assert_eq!(ranges, vec![0..160, 77..237]);
        assert_eq!(padded, 237 * 160);
    }
}
