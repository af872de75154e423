//! The port against the reference implementation: features, partial slicing and embeddings
//! computed once by Resemblyzer (PyTorch + librosa) on a fixed signal (see fixtures/README.md).

use base64::Engine as _;
use serde_json::Value;
use speakers::encoder::{Ge2eEncoder, SpeakerEncoder};
use speakers::mel::{MelFrame, MelFrontEnd};
use speakers::{Engine, partial_ranges};

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn input(reference: &Value) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(reference["input"]["int16_le_base64"].as_str().unwrap())
        .unwrap();
    speakers::pcm_s16le_to_f32(&bytes)
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// Largest difference relative to the largest reference value of the frame.
fn relative_error(ours: &[f32], theirs: &[f32]) -> f32 {
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0, f32::max)
}

fn max_abs_diff(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

#[test]
fn mel_frames_match_librosa() {
    let reference = reference();
    let samples = input(&reference);
    assert_eq!(samples.len(), 40_000);
    let frames = MelFrontEnd::new().frames(&samples);
    assert_eq!(frames.len(), 251, "shape {:?}", reference["mel"]["shape"]);
    let indices = reference["mel"]["frame_indices"].as_array().unwrap();
    let expected = reference["mel"]["frames"].as_array().unwrap();
    for (index, frame) in indices.iter().zip(expected) {
        let t = index.as_u64().unwrap() as usize;
        let error = relative_error(&frames[t], &floats(frame));
        assert!(error < 1e-4, "frame {t}: relative error {error}");
    }
}

#[test]
fn partial_slices_match_the_reference() {
    let reference = reference();
    let (ranges, _) = partial_ranges(40_000);
    let expected: Vec<(u64, u64)> = reference["partials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["mel"][0].as_u64().unwrap(), p["mel"][1].as_u64().unwrap()))
        .collect();
    let ours: Vec<(u64, u64)> = ranges
        .iter()
        .map(|r| (r.start as u64, r.end as u64))
        .collect();
    assert_eq!(ours, expected);
    let (short, padded) = partial_ranges(16_000);
    assert_eq!(short.len(), 1);
    assert_eq!(
        padded as u64,
        reference["short"]["padded_len"].as_u64().unwrap()
    );
}

#[test]
fn partial_embeddings_match_pytorch() {
    let reference = reference();
    let samples = input(&reference);
    let frames = MelFrontEnd::new().frames(&samples);
    let partials: Vec<&[MelFrame]> = vec![&frames[0..160], &frames[77..237]];
    let ours = Ge2eEncoder::shipped()
        .unwrap()
        .embed_partials(&partials)
        .unwrap();
    for (i, expected) in reference["partial_embeds"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let diff = max_abs_diff(&ours[i], &floats(expected));
        assert!(diff < 1e-4, "partial {i}: max abs diff {diff}");
    }
}

#[test]
fn utterance_embeddings_match_the_reference() {
    let reference = reference();
    let samples = input(&reference);
    let engine = Engine::shipped().unwrap();
    let whole = engine.embed_utterance(&samples).unwrap();
    let diff = max_abs_diff(&whole, &floats(&reference["embedding"]));
    assert!(diff < 1e-4, "2.5 s clip: max abs diff {diff}");
    let short = engine.embed_utterance(&samples[..16_000]).unwrap();
    let diff = max_abs_diff(&short, &floats(&reference["embedding_short"]));
    assert!(diff < 1e-4, "1 s clip: max abs diff {diff}");
}

#[test]
fn a_damaged_model_is_refused_with_a_reason() {
    let shipped = speakers::encoder::SHIPPED_MODEL;
    let cut = Ge2eEncoder::from_bytes(&shipped[..shipped.len() / 2])
        .err()
        .unwrap();
    assert!(
        cut.to_string()
            .starts_with("speaker model is not a valid safetensors file"),
        "{cut}"
    );
    let missing = Ge2eEncoder::from_file(std::path::Path::new("/nonexistent/ge2e.safetensors"))
        .err()
        .unwrap();
    assert!(
        missing
            .to_string()
            .starts_with("speaker model file ge2e.safetensors cannot be read"),
        "{missing}"
    );
}
