//! Speaker embeddings: the [`SpeakerEncoder`] interface and the shipped GE2E d-vector network.
//!
//! The network is Resemblyzer's pretrained GE2E encoder (Apache-2.0, see `model/PROVENANCE.md`):
//! a 3-layer LSTM over 40 mel bins (hidden 256), a 256→256 linear layer, ReLU and L2 norm. It
//! is read with candle and run on the CPU by the hand-written loops of [`kernels`]: the input
//! projection of every time step is one product per layer, and only the recurrent product runs
//! step by step, batched over all partials of a request.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::kernels;

use crate::mel::{MelFrame, N_MELS};

/// Length of an embedding.
pub const EMBEDDING_DIM: usize = 256;
/// Mel frames in one partial utterance the network was trained on (1.6 s).
pub const PARTIAL_FRAMES: usize = 160;

/// A unit-length speaker embedding.
pub type Embedding = Vec<f32>;

/// The weights shipped with the project, embedded in the binary so that a fresh machine and
/// the desktop bundle need no download.
pub static SHIPPED_MODEL: &[u8] = include_bytes!("../model/ge2e.safetensors");

/// Why a model could not be loaded or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("speaker model file {0} cannot be read: {1}")]
    Unreadable(String, String),
    #[error("speaker model is not a valid safetensors file: {0}")]
    Corrupt(String),
    #[error("speaker model is missing tensor {0}")]
    MissingTensor(String),
    #[error("speaker model tensor {name} has shape {found:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("speaker model failed: {0}")]
    Run(String),
}

impl From<candle_core::Error> for ModelError {
    fn from(err: candle_core::Error) -> Self {
        ModelError::Run(err.to_string())
    }
}

/// Turns runs of mel frames into speaker embeddings. A stronger model implements this and is
/// dropped in without touching segmentation or clustering.
pub trait SpeakerEncoder: Send + Sync {
    /// Embeds each partial (a run of mel frames, at most [`PARTIAL_FRAMES`] long); the answers
    /// are unit length and in the order given.
    fn embed_partials(&self, partials: &[&[MelFrame]]) -> Result<Vec<Embedding>, ModelError>;
}

/// One LSTM layer's weights, in PyTorch's `[out, in]` layout (what [`kernels::matmul_acc`]
/// reads).
struct LstmLayer {
    /// Inputs of the layer (40 mel bins for the first, 256 after).
    inputs: usize,
    /// `weight_ih`, `[4·hidden, inputs]`.
    w_input: Vec<f32>,
    /// `weight_hh`, `[4·hidden, hidden]`.
    w_hidden: Vec<f32>,
    /// `bias_ih + bias_hh`, `[4·hidden]`.
    bias: Vec<f32>,
}

/// The GE2E d-vector encoder.
pub struct Ge2eEncoder {
    layers: Vec<LstmLayer>,
    /// `[256, 256]`.
    w_linear: Vec<f32>,
    b_linear: Vec<f32>,
}

const HIDDEN: usize = 256;
const GATES: usize = 4 * HIDDEN;
/// Most partials run through the network together: their hidden states (16 KiB) stay in L1
/// while each weight row is read.
const MAX_BATCH: usize = 16;
const LAYERS: usize = 3;

impl Ge2eEncoder {
    /// The model shipped with the project.
    pub fn shipped() -> Result<Ge2eEncoder, ModelError> {
        Ge2eEncoder::from_bytes(SHIPPED_MODEL)
    }

    /// Loads a GE2E model from a safetensors file the user provides.
    pub fn from_file(path: &std::path::Path) -> Result<Ge2eEncoder, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| {
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            ModelError::Unreadable(name, e.to_string())
        })?;
        Ge2eEncoder::from_bytes(&bytes)
    }

    /// Loads a GE2E model from the bytes of a safetensors file, checking every tensor's shape.
    pub fn from_bytes(bytes: &[u8]) -> Result<Ge2eEncoder, ModelError> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        let mut layers = Vec::with_capacity(LAYERS);
        for layer in 0..LAYERS {
            let inputs = if layer == 0 { N_MELS } else { HIDDEN };
            let w_input = take(
                &tensors,
                &format!("lstm.weight_ih_l{layer}"),
                &[GATES, inputs],
            )?;
            let w_hidden = take(
                &tensors,
                &format!("lstm.weight_hh_l{layer}"),
                &[GATES, HIDDEN],
            )?;
            let b_ih = take(&tensors, &format!("lstm.bias_ih_l{layer}"), &[GATES])?;
            let b_hh = take(&tensors, &format!("lstm.bias_hh_l{layer}"), &[GATES])?;
            layers.push(LstmLayer {
                inputs,
                w_input,
                w_hidden,
                bias: b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect(),
            });
        }
        Ok(Ge2eEncoder {
            layers,
            w_linear: take(&tensors, "linear.weight", &[EMBEDDING_DIM, HIDDEN])?,
            b_linear: take(&tensors, "linear.bias", &[EMBEDDING_DIM])?,
        })
    }

    /// Runs a batch of partials that all have `frames` frames; one unit-length embedding each.
    fn embed_batch(&self, partials: &[&[MelFrame]], frames: usize) -> Vec<Embedding> {
        let batch = partials.len();
        // [batch, time, features], row-major.
        let mut sequence = Vec::with_capacity(batch * frames * N_MELS);
        for partial in partials {
            for frame in partial.iter() {
                sequence.extend_from_slice(frame);
            }
        }
        let mut last_hidden = Vec::new();
        for layer in &self.layers {
            let (output, hidden) = run_layer(layer, &sequence, batch, frames);
            sequence = output;
            last_hidden = hidden;
        }
        last_hidden
            .chunks_exact(HIDDEN)
            .map(|hidden| {
                let mut embedding = self.b_linear.clone();
                kernels::matmul_acc(
                    hidden,
                    1,
                    HIDDEN,
                    &self.w_linear,
                    EMBEDDING_DIM,
                    &mut embedding,
                    EMBEDDING_DIM,
                );
                embedding.iter_mut().for_each(|v| *v = v.max(0.0));
                // A silent input can give an all-zero vector: it stays zero.
                normalize(&mut embedding);
                embedding
            })
            .collect()
    }
}

impl SpeakerEncoder for Ge2eEncoder {
    fn embed_partials(&self, partials: &[&[MelFrame]]) -> Result<Vec<Embedding>, ModelError> {
        // Partials of equal length share one batch; answers go back in the caller's order.
        let mut by_length: HashMap<usize, Vec<usize>> = HashMap::new();
        for (index, partial) in partials.iter().enumerate() {
            if partial.is_empty() || partial.len() > PARTIAL_FRAMES {
                return Err(ModelError::Run(format!(
                    "a partial must hold 1..={PARTIAL_FRAMES} frames, not {}",
                    partial.len()
                )));
            }
            by_length.entry(partial.len()).or_default().push(index);
        }
        let mut out = vec![Vec::new(); partials.len()];
        for (frames, indices) in by_length {
            for batch in indices.chunks(MAX_BATCH) {
                let group: Vec<&[MelFrame]> = batch.iter().map(|&i| partials[i]).collect();
                for (&index, embedding) in batch.iter().zip(self.embed_batch(&group, frames)) {
                    out[index] = embedding;
                }
            }
        }
        Ok(out)
    }
}

/// One LSTM layer over `[batch, time, inputs]`: returns every step's hidden state
/// `[batch, time, hidden]` and the last one `[batch, hidden]`.
///
/// The input projection of every step is one product up front; the recurrent product is then
/// added step by step into the same rows, and the gates turn them into the new state.
fn run_layer(
    layer: &LstmLayer,
    sequence: &[f32],
    batch: usize,
    frames: usize,
) -> (Vec<f32>, Vec<f32>) {
    let rows = batch * frames;
    let mut gates: Vec<f32> = layer
        .bias
        .iter()
        .copied()
        .cycle()
        .take(rows * GATES)
        .collect();
    kernels::matmul_acc(
        sequence,
        rows,
        layer.inputs,
        &layer.w_input,
        GATES,
        &mut gates,
        GATES,
    );
    let mut hidden = vec![0f32; batch * HIDDEN];
    let mut cell = vec![0f32; batch * HIDDEN];
    let mut outputs = vec![0f32; rows * HIDDEN];
    for t in 0..frames {
        // Row b of this step is row b·frames + t of `gates`.
        kernels::matmul_acc(
            &hidden,
            batch,
            HIDDEN,
            &layer.w_hidden,
            GATES,
            &mut gates[t * GATES..],
            frames * GATES,
        );
        for b in 0..batch {
            let row = b * frames + t;
            let state = b * HIDDEN..(b + 1) * HIDDEN;
            kernels::lstm_cell(
                &gates[row * GATES..(row + 1) * GATES],
                &mut cell[state.clone()],
                &mut hidden[state.clone()],
            );
            outputs[row * HIDDEN..(row + 1) * HIDDEN].copy_from_slice(&hidden[state]);
        }
    }
    (outputs, hidden)
}

fn take(
    tensors: &HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, ModelError> {
    let tensor = tensors
        .get(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_owned()))?;
    if tensor.dims() != shape {
        return Err(ModelError::WrongShape {
            name: name.to_owned(),
            found: tensor.dims().to_vec(),
            expected: shape.to_vec(),
        });
    }
    Ok(tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// Cosine similarity of two unit-length embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
