//! Cuts the normalized 16 kHz mono stream into the gateway's one-second frames.
//!
//! A frame is exactly 32000 bytes (16000 `i16` samples, little-endian); frame `seq` holds
//! samples `[16000·(seq−1), 16000·seq)` of the stream, so `seq` starts at 1 and never skips.
//! Its `timestamp_ms` is computed from the stream's start time and the sample index, not read
//! from a clock when the frame completes: callback jitter and processing delay must not move
//! timestamps, and two frames are always exactly 1000 ms apart.

use crate::pcm::TARGET_RATE;

/// Samples in one frame: one second at 16 kHz.
pub const FRAME_SAMPLES: usize = TARGET_RATE as usize;

/// Bytes in one frame, as the wire contract requires.
pub const FRAME_BYTES: usize = FRAME_SAMPLES * 2;

/// One second of normalized audio, ready to be sent as a `chunk` message.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Position in the stream, from 1.
    pub seq: u64,
    /// Wall clock (Unix epoch, ms) of the frame's first sample.
    pub timestamp_ms: u64,
    /// Exactly [`FRAME_BYTES`] bytes of s16le PCM.
    pub pcm: Vec<u8>,
    /// Samples that came from the source; the rest (only in the last frame) is padding silence.
    pub real_samples: usize,
}

impl std::fmt::Debug for Frame {
    // The PCM is 32 KB of noise in a log; show its size instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("seq", &self.seq)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("pcm_bytes", &self.pcm.len())
            .field("real_samples", &self.real_samples)
            .finish()
    }
}

impl Frame {
    /// Whether the frame holds only source audio (every frame but possibly the last).
    pub fn is_complete(&self) -> bool {
        self.real_samples == FRAME_SAMPLES
    }
}

/// Accumulates 16 kHz samples and yields complete frames.
pub struct Framer {
    /// Wall clock (epoch ms) of sample 0 of the stream.
    start_ms: u64,
    /// Seq of the frame being filled.
    next_seq: u64,
    /// Bytes of the frame being filled; always shorter than [`FRAME_BYTES`] between calls.
    filling: Vec<u8>,
}

impl Framer {
    /// A framer for a stream whose first sample was captured at `start_ms` (epoch ms).
    pub fn new(start_ms: u64) -> Self {
        Self::resume(start_ms, 1)
    }

    /// A framer that continues a stream at `first_seq` (for example after a restart that
    /// recovered earlier frames); `start_ms` is still the wall clock of the stream's sample 0.
    pub fn resume(start_ms: u64, first_seq: u64) -> Self {
        Self {
            start_ms,
            next_seq: first_seq.max(1),
            filling: Vec::with_capacity(FRAME_BYTES),
        }
    }

    /// Seq that the next emitted frame will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Samples waiting in the partial frame.
    pub fn buffered_samples(&self) -> usize {
        self.filling.len() / 2
    }

    /// Appends samples and calls `emit` for every frame they complete, in order.
    pub fn push(&mut self, samples: &[i16], mut emit: impl FnMut(Frame)) {
        let mut rest = samples;
        while !rest.is_empty() {
            let room = (FRAME_BYTES - self.filling.len()) / 2;
            let (now, later) = rest.split_at(room.min(rest.len()));
            crate::pcm::i16_to_le_bytes(now, &mut self.filling);
            rest = later;
            if self.filling.len() == FRAME_BYTES {
                emit(self.take_frame(FRAME_SAMPLES));
            }
        }
    }

    /// Ends the stream: pads the partial frame with silence and returns it, or `None` when the
    /// stream ended exactly on a frame boundary.
    pub fn finish(&mut self) -> Option<Frame> {
        if self.filling.is_empty() {
            return None;
        }
        let real = self.buffered_samples();
        self.filling.resize(FRAME_BYTES, 0);
        Some(self.take_frame(real))
    }

    fn take_frame(&mut self, real_samples: usize) -> Frame {
        let seq = self.next_seq;
        self.next_seq += 1;
        let pcm = std::mem::replace(&mut self.filling, Vec::with_capacity(FRAME_BYTES));
        Frame {
            seq,
            timestamp_ms: self.start_ms + (seq - 1) * 1000,
            pcm,
            real_samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(len: usize) -> Vec<i16> {
        (0..len).map(|n| (n % 30_011) as i16 - 15_000).collect()
    }

    fn frame_all(samples: &[i16], block: usize) -> Vec<Frame> {
        let mut framer = Framer::new(1_700_000_000_123);
        let mut frames = Vec::new();
        for chunk in samples.chunks(block) {
            framer.push(chunk, |f| frames.push(f));
        }
        frames.extend(framer.finish());
        frames
    }

    #[test]
    fn frames_are_exact_numbered_and_timed_from_the_start() {
        let samples = ramp(3 * FRAME_SAMPLES + 1234);
        for block in [1, 160, 480, 16_000, 17_000, samples.len()] {
            let frames = frame_all(&samples, block);
            assert_eq!(frames.len(), 4, "block {block}");
            for (i, frame) in frames.iter().enumerate() {
                assert_eq!(frame.seq, i as u64 + 1);
                assert_eq!(frame.timestamp_ms, 1_700_000_000_123 + 1000 * i as u64);
                assert_eq!(frame.pcm.len(), FRAME_BYTES);
            }
            assert!(frames[..3].iter().all(Frame::is_complete));
            assert_eq!(frames[3].real_samples, 1234);
        }
    }

    #[test]
    fn concatenated_frames_are_the_stream_plus_silence() {
        let samples = ramp(2 * FRAME_SAMPLES + 5);
        let frames = frame_all(&samples, 441);
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.pcm.iter().copied()).collect();
        let mut expected = Vec::new();
        crate::pcm::i16_to_le_bytes(&samples, &mut expected);
        assert_eq!(&joined[..expected.len()], &expected[..]);
        assert!(joined[expected.len()..].iter().all(|&b| b == 0));
        assert_eq!(joined.len(), 3 * FRAME_BYTES);
    }

    #[test]
    fn stream_ending_on_a_boundary_has_no_padding_frame() {
        let frames = frame_all(&ramp(2 * FRAME_SAMPLES), 1000);
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(Frame::is_complete));
        assert!(Framer::new(0).finish().is_none());
    }

    #[test]
    fn resume_continues_numbering_and_timing() {
        let mut framer = Framer::resume(10_000, 5);
        let mut frames = Vec::new();
        framer.push(&ramp(FRAME_SAMPLES), |f| frames.push(f));
        assert_eq!(frames[0].seq, 5);
        assert_eq!(frames[0].timestamp_ms, 14_000);
        assert_eq!(framer.next_seq(), 6);
    }
}
